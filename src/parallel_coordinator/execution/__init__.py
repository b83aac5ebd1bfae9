"""Execution: where attempts run and what an agent gets to run with.

    pool                the ExecutionBackend seam and the local loky pool
    dask                the Dask distributed backend
    channel             the coordinator's end of the supervisor link
    hub_dirs            the hub's private directory, cleaned after dead servers
    forkserver_preload  imported only inside the pool's fork server
    environment         the environment an agent starts with, less secrets
    worktrees           git worktree isolation: create, summarise, remove
    worktree_records    a worktree's record on disk
    git                 running git, retrying its lock errors
"""

__all__ = [
    "channel",
    "dask",
    "environment",
    "forkserver_preload",
    "git",
    "hub_dirs",
    "pool",
    "worktree_records",
    "worktrees",
]
