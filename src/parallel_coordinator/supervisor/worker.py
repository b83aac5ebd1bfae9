"""The supervisor's entry points in a worker: the pool worker's initializer, `supervise` (one attempt,
start to reaped), and a supervisor in a process of its own for pools that run tasks in threads (Dask).
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.state.private_files import private_dir, write_private
from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.link import HubLink
from parallel_coordinator.supervisor.platform import MECHANISMS
from parallel_coordinator.supervisor.spawn import die_with_parent, start_agent
from parallel_coordinator.supervisor.watch import stop_on_sigterm, watch

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


def supervise(job: SupervisorJob) -> AttemptOutcome:
    """Run one agent to the end and report what happened. Never raises for agent failures."""
    started_at = time.time()
    artefacts = _artefact_dir(job)
    with _SUPERVISING:
        try:
            link = HubLink(job.channel, job.attempt_id, job.channel_secret)
        except OSError as exc:
            return AttemptOutcome(
                reason="lost", started_at=started_at, finished_at=time.time(),
                error=f"the coordinator's channel {job.channel!r} is gone ({exc})",
            )
        try:
            return _supervise(job, link, artefacts, started_at)
        finally:
            link.close()


def _artefact_dir(job: SupervisorJob) -> Path:
    """The attempt's artefact directory; on a worker machine where that path cannot be made, a temporary one."""
    artefacts = Path(job.artefact_dir)
    try:
        private_dir(artefacts)
    except OSError:
        artefacts = Path(tempfile.mkdtemp(prefix=f"pcoord-{job.attempt_id[:40]}-"))
    return artefacts


def _supervise(job: SupervisorJob, link: HubLink, artefacts: Path, started_at: float) -> AttemptOutcome:
    # A cancel may arrive before we start the agent: then it is never started.
    link.sock.setblocking(False)
    ready = selectors.DefaultSelector()
    ready.register(link.sock, selectors.EVENT_READ, "channel")
    if ready.select(timeout=0):
        commands = link.read_commands()
        if commands is None or "cancel" in commands:
            return AttemptOutcome(
                reason="cancelled" if commands is not None else "lost",
                started_at=started_at, finished_at=time.time(), error="cancelled before it started",
            )

    stdin_path = artefacts / "stdin"
    write_private(stdin_path, job.invocation.stdin)
    proc = start_agent(job, stdin_path)
    if isinstance(proc, str):
        return AttemptOutcome(reason="spawn_failed", started_at=started_at, finished_at=time.time(), error=proc)
    link.send({"attempt": job.attempt_id, "event": "started", "pid": proc.pid})
    return watch(job, link, ready, proc, artefacts, started_at)


def supervise_in_subprocess(job: SupervisorJob) -> AttemptOutcome:
    """Run `supervise` in a fresh Python process of its own and return its outcome.

    For pools whose workers run several tasks at once in threads (Dask): a supervisor makes its
    process the subreaper of its agent's tree and reaps every stray child, which is only right when
    that process supervises nothing else. The process dies with the worker thread that started it
    (SIGTERM through PR_SET_PDEATHSIG; without it, when the pipe it holds from this worker closes),
    and kills its agent's tree first.
    """
    started_at = time.time()
    # Without prctl: a pipe whose write end only this process holds; its end of file means we are gone.
    lifeline = None if MECHANISMS.prctl else os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parallel_coordinator.supervisor", str(os.getpid()),
             *([str(lifeline[0])] if lifeline else [])], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            preexec_fn=functools.partial(die_with_parent, signal.SIGTERM) if MECHANISMS.prctl else None,
            close_fds=True, pass_fds=(lifeline[0],) if lifeline else (),
        )
    except OSError as exc:
        return AttemptOutcome(
            reason="lost", started_at=started_at, finished_at=time.time(),
            error=f"cannot start a supervisor process on this worker: {exc}",
        )
    finally:
        if lifeline:
            os.close(lifeline[0])
    try:
        # Pickle both ways: the job came to this worker as a pickle already, and the parent is our own code.
        stdout, _ = proc.communicate(pickle.dumps(job))
    finally:
        if lifeline:
            os.close(lifeline[1])
    try:
        outcome = pickle.loads(stdout)
    except Exception:  # the supervisor process died before it could answer (killed, out of memory)
        outcome = None
    if not isinstance(outcome, AttemptOutcome):
        return AttemptOutcome(
            reason="lost", started_at=started_at, finished_at=time.time(),
            error=f"the supervisor process ended with code {proc.returncode} before reporting",
        )
    return outcome


def _sigterm_when_closed(fd: int) -> None:
    """SIGTERM this process once nothing holds the write end of `fd`'s pipe: the parent-death signal, by hand."""

    def wait() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="pcoord-parent-watch", daemon=True).start()


def main() -> None:
    """`python -m parallel_coordinator.supervisor`: a pickled SupervisorJob in, a pickled AttemptOutcome out."""
    stop_on_sigterm()
    if len(sys.argv) > 2:
        _sigterm_when_closed(int(sys.argv[2]))
    if len(sys.argv) > 1 and os.getppid() != int(sys.argv[1]):  # the parent died before the signal was armed
        sys.exit(1)
    job = pickle.loads(sys.stdin.buffer.read())
    outcome = supervise(job)
    sys.stdout.buffer.write(pickle.dumps(outcome))
    sys.stdout.buffer.flush()
