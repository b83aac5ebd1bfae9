"""The supervisor's entry points in a worker: the pool worker's initializer, `run_shard` (the pool task
of one shard), `supervise` (one job in this process, no coordinator), and a shard in a process of its
own for pools that run tasks in threads (Dask).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time

import psutil

from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.link import ShardLink
from parallel_coordinator.supervisor.platform import MECHANISMS
from parallel_coordinator.supervisor.shard import Shard, stop_on_sigterm
from parallel_coordinator.supervisor.spawn import die_with_parent

# Held while a supervisor runs, so a worker whose coordinator died exits only after cleaning up.
_SUPERVISING = threading.Lock()
_ORPHAN_CHECK_S = 0.25


def _drop_fork_server_alive_fd() -> None:
    """Close this worker's copy of the fork server's liveness pipe.

    The fork server exits once every write end of that pipe is closed, and multiprocessing hands one
    to each process it forks: left open, the server (our parent) would outlive a dead coordinator
    for as long as we do, and we would wait for it forever.
    """
    forkserver = sys.modules.get("multiprocessing.forkserver")
    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
        server._forkserver_alive_fd = None  # type: ignore[union-attr]


def worker_init(coordinator_pid: int, environ: dict[str, str] | None = None) -> None:
    """Pool worker initializer: take the coordinator's environment; exit when the coordinator is gone.

    loky workers outlive a SIGKILLed parent; ours must not. A running supervisor sees its channel
    close and kills its agent first; the watchdog waits for that, then ends the worker. The
    coordinator's pid is passed in, because it may already be gone by the time this runs.
    A worker forked by the pool's fork server has that server as its parent: the server is the
    coordinator's child and exits when the coordinator does, so the worker watches it instead.
    """
    if environ is not None:
        os.environ.clear()
        os.environ.update(environ)
    # A terminal's Ctrl-C reaches the whole foreground group: the coordinator cancels on it, and the
    # workers must live to kill their agents and report them cancelled, not die as "lost".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watched = os.getppid()
    if watched != coordinator_pid:
        _drop_fork_server_alive_fd()
        try:
            if psutil.Process(watched).ppid() != coordinator_pid:
                watched = coordinator_pid  # our parent is neither: the coordinator is gone
        except psutil.Error:
            watched = coordinator_pid

    def watch_coordinator() -> None:
        while os.getppid() == watched:
            time.sleep(_ORPHAN_CHECK_S)
        with _SUPERVISING:
            os._exit(0)

    threading.Thread(target=watch_coordinator, name="pcoord-orphan-watchdog", daemon=True).start()


def run_shard(address: str, secret: str, shard_id: str) -> None:
    """The pool task of one shard: connect to the hub, run every job it sends until it says exit or goes away."""
    _allow_many_files()
    with _SUPERVISING:
        try:
            link = ShardLink(address, shard_id, secret, os.getpid())
        except OSError:
            return  # the coordinator is gone already: its backend sees this shard end
        try:
            Shard(link).run()
        finally:
            link.close()


def _allow_many_files() -> None:
    """Three descriptors per agent (two pipes and a pidfd): raise the soft limit to the hard one (macOS's is 256)."""
    with contextlib.suppress(ValueError, OSError):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def supervise(job: SupervisorJob) -> AttemptOutcome:
    """Run one agent to its end in this process, with no coordinator: a shard of one, given its job up front."""
    shard = Shard()
    shard.to_start.append(job)
    with _SUPERVISING:
        return shard.run()[job.attempt_id]


def run_shard_in_subprocess(address: str, secret: str, shard_id: str) -> None:
    """Run a shard in a fresh Python process of its own until it ends.

    For pools whose workers run several tasks at once in threads (Dask): a shard makes its process
    the subreaper of its agents' trees and reaps their orphans, which is only right when that
    process does nothing else. The process dies with the worker thread that started it (SIGTERM
    through PR_SET_PDEATHSIG; without it, when the pipe it holds from this worker closes), and kills
    its agents' trees first.
    """
    # Without prctl: a pipe whose write end only this process holds; its end of file means we are gone.
    lifeline = None if MECHANISMS.prctl else os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parallel_coordinator.supervisor", str(os.getpid()),
             *([str(lifeline[0])] if lifeline else [])], stdin=subprocess.PIPE,
            preexec_fn=functools.partial(die_with_parent, signal.SIGTERM) if MECHANISMS.prctl else None,
            close_fds=True, pass_fds=(lifeline[0],) if lifeline else (),
        )
    finally:
        if lifeline:
            os.close(lifeline[0])
    try:
        proc.communicate(json.dumps([address, secret, shard_id]).encode())
    finally:
        if lifeline:
            os.close(lifeline[1])
    if proc.returncode != 0:
        raise ShardEnded(f"the shard process ended with code {proc.returncode}")


class ShardEnded(RuntimeError):
    """A shard process of its own ended abnormally (killed, out of memory)."""


def _sigterm_when_closed(fd: int) -> None:
    """SIGTERM this process once nothing holds the write end of `fd`'s pipe: the parent-death signal, by hand."""

    def wait() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="pcoord-parent-watch", daemon=True).start()


def main() -> None:
    """`python -m parallel_coordinator.supervisor PARENT_PID [LIFELINE_FD]`: a shard; its hub's address,
    secret and shard id come as a JSON list on stdin."""
    stop_on_sigterm()
    if len(sys.argv) > 2:
        _sigterm_when_closed(int(sys.argv[2]))
    if len(sys.argv) > 1 and os.getppid() != int(sys.argv[1]):  # the parent died before the signal was armed
        sys.exit(1)
    address, secret, shard_id = json.loads(sys.stdin.buffer.read())
    run_shard(address, secret, shard_id)
