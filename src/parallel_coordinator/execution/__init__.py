"""Execution: where attempts run and what an agent gets to run with.

    backend             the ExecutionBackend seam, and the backend the settings choose
    shards              what the pool and Dask backends share: shards that each run many attempts
    pool                the local loky pool
    dask                the Dask distributed backend
    inline              InlineBackend, an in-process test double: outcomes from a handler, no process
    channel             the coordinator's end of the shards' links (the hub)
    hub_dirs            the hub's private directory, cleaned after dead servers
    forkserver_preload  imported only inside the pool's fork server
    environment         the environment an agent starts with, less secrets
    worktrees           git worktree isolation: create, summarise, remove
    worktree_records    a worktree's record on disk
    git                 running git, retrying its lock errors
"""

__all__ = [
    "backend",
    "channel",
    "dask",
    "environment",
    "forkserver_preload",
    "git",
    "hub_dirs",
    "inline",
    "pool",
    "shards",
    "worktree_records",
    "worktrees",
]
