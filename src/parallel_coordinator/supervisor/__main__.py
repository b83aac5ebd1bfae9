"""`python -m parallel_coordinator.supervisor`: one supervisor in a process of its own (the Dask backend's)."""

from parallel_coordinator.supervisor.worker import main

main()
