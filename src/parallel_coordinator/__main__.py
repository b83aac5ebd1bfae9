"""`python -m parallel_coordinator` is the `pcoord` command."""

from parallel_coordinator.cli import main

raise SystemExit(main())
