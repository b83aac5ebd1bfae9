"""The supervisor: shards that run inside pool workers, each starting and watching many agents at once.

An agent never runs inside the worker itself (killing a loky worker breaks the whole pool, see
NOTES.md): it runs as a child of its shard, in its own session and process group, and the shard
kills only that child's tree on cancel, timeout, memory excess or loss of the coordinator. Standard
library and psutil only: this package is imported by every pool worker.

    job.py             SupervisorJob, what one attempt sends to its shard
    worker.py          the entry points: worker_init, run_shard, supervise, run_shard_in_subprocess
    shard.py           the shard loop: one selector over every agent, the link and a periodic tick
    agent_watch.py     one agent: its streams, progress, timeout, memory cap, token budget and end
    spawn.py           starting an agent (setpriv or preexec_fn for the parent-death signal; elsewhere
                       a shell gate that waits for the lifeline keeper)
    process_tree.py    each agent's tree inside a shard: finding, sampling, killing, reaping
    exits.py           waking on agents' exits (pidfd, kqueue, SIGCHLD), telling an exit without reaping
    link.py            the shard's end of its link to the coordinator's hub (frames)
    lifeline.py        the shard's end of its lifeline keeper (lifeline_keeper.py, a script of its own)
    platform.py        what this machine offers (prctl, /proc children files, pidfd, setpriv); PCOORD_PORTABLE
    artefact_files.py  the capped stdout/stderr files
"""

from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.link import split_address
from parallel_coordinator.supervisor.worker import run_shard, run_shard_in_subprocess, supervise, worker_init

__all__ = ["SupervisorJob", "run_shard", "run_shard_in_subprocess", "split_address", "supervise", "worker_init"]
