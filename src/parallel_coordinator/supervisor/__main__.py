"""`python -m parallel_coordinator.supervisor`: one supervisor in a process of its own (the Dask backend's)."""

from parallel_coordinator.supervisor import _main

_main()
