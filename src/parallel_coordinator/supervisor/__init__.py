"""The supervisor: runs inside a pool worker, starts one agent as a child and watches it to the end.

The agent never runs inside the worker itself (killing a loky worker breaks the whole pool, see
NOTES.md): it runs as a child in its own session and process group, and the supervisor kills only
that child's tree on cancel, timeout, memory excess or loss of the coordinator. Standard library and
psutil only: this package is imported by every pool worker.

    job.py           SupervisorJob, what one attempt sends to a worker
    worker.py        worker_init, supervise, supervise_in_subprocess (the entry points)
    link.py          the supervisor's end of the link to the coordinator's hub
    platform.py      what this machine offers (prctl, /proc children files, pidfd, setpriv); PCOORD_PORTABLE
    spawn.py         starting the agent (setpriv or preexec_fn for the parent-death signal, subreaper;
                     elsewhere a shell gate that waits for the lifeline keeper)
    lifeline.py      the supervisor's end of its lifeline keeper (lifeline_keeper.py, a script of its own)
    watch.py         reading its streams, progress, timeout, memory cap, token budget, cancel
    exits.py         a descriptor readable when the agent exits (pidfd, kqueue or a waiting thread)
    process_tree.py  finding, sampling, killing and reaping the agent's process tree
    artefact_files.py  the capped stdout/stderr files
"""

from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.link import split_address
from parallel_coordinator.supervisor.worker import supervise, supervise_in_subprocess, worker_init

__all__ = ["SupervisorJob", "split_address", "supervise", "supervise_in_subprocess", "worker_init"]
