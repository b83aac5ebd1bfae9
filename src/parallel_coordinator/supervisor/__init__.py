"""The supervisor: runs inside a pool worker, starts one agent as a child and watches it to the end.

The agent never runs inside the worker itself (killing a loky worker breaks the whole pool, see
NOTES.md): it runs as a child in its own session and process group, and the supervisor kills only
that child's tree on cancel, timeout, memory excess or loss of the coordinator. Standard library and
psutil only: this module is imported by every pool worker.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import os
import pickle
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psutil

from parallel_coordinator.runners.base import AttemptOutcome, EndReason, Invocation
from parallel_coordinator.runners.streams import Progress, make_stream_reader
from parallel_coordinator.state.private_files import private_dir, write_private
from parallel_coordinator.supervisor.artefact_files import CappedStream

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_READ_CHUNK = 65536
_STDERR_TAIL_LINES = 20
_MAX_LINE = 1 << 20  # a line longer than this is cut before it reaches the stream reader
_TREE_REFRESH_S = 1.0  # finding the tree's members costs /proc reads: refresh membership rarely (NOTES.md)
_LINGER_S = 1.0  # after the agent exits, how long a descendant may keep its output pipes open
_KILL_ROUNDS = 10  # rescans in kill(): each one catches descendants forked during the one before


# In a supervisor process of its own (see `supervise_in_subprocess`), SIGTERM means its pool worker
# is gone: the signal handler writes to this pipe, which wakes the watch loop to kill the agent's tree.
_STOP_PIPE: tuple[int, int] | None = None

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

    def watch() -> None:
        while os.getppid() == watched:
            time.sleep(_ORPHAN_CHECK_S)
        with _SUPERVISING:
            os._exit(0)

    threading.Thread(target=watch, name="pcoord-orphan-watchdog", daemon=True).start()


@dataclass(frozen=True)
class SupervisorJob:
    """Everything one attempt needs, picklable, sent to a pool worker."""

    attempt_id: str
    invocation: Invocation
    artefact_dir: str
    channel: str  # the hub's address: a Unix socket path or tcp://host:port
    cwd: str | None = None
    # The agent's whole environment, built by the coordinator (environment.py); None: this worker's own.
    env: dict[str, str] | None = None
    timeout_s: float | None = None
    memory_limit_mb: float | None = None
    output_cap_bytes: int = 4 * 1024 * 1024
    # What each of stdout and stderr may take on disk; past it the rest is counted, not kept.
    disk_cap_bytes: int = 64 * 1024 * 1024
    poll_interval_s: float = 0.1
    token_budget: int | None = None
    channel_secret: str = ""


def _load_libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


# Loaded once here: between fork and exec only the already-bound prctl call may run.
_LIBC = _load_libc()


def _die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Runs in a child between fork and exec: it gets `sig` when the thread that started it dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


_SETPRIV: list[str] | None = None
_SETPRIV_CHECKED = False


def _pdeathsig_wrapper() -> list[str] | None:
    """`setpriv --pdeathsig KILL --` (util-linux 2.33+), or None where there is no such setpriv.

    A `preexec_fn` makes subprocess fork() the whole worker interpreter and run Python in the child;
    without one it uses vfork(). Setting PR_SET_PDEATHSIG through setpriv, which execs the agent in
    the same process, costs one small exec instead: ~1.9 ms of CPU per agent against ~3.6 ms.
    Checked once per worker (the pool's fork server checks it before forking them).
    """
    global _SETPRIV, _SETPRIV_CHECKED
    if not _SETPRIV_CHECKED:
        _SETPRIV_CHECKED = True
        path = shutil.which("setpriv", path=os.defpath + os.pathsep + os.environ.get("PATH", ""))
        if path is not None:
            try:
                usage = subprocess.run([path, "--help"], capture_output=True, timeout=5).stdout
            except (OSError, subprocess.SubprocessError):
                usage = b""
            if b"--pdeathsig" in usage:
                _SETPRIV = [path, "--pdeathsig", "KILL", "--"]
    return _SETPRIV


def _resolve(argv0: str, env: dict[str, str], cwd: str | None) -> str:
    """Where exec would find argv[0]; raises as Popen would when it cannot be started.

    With setpriv in front, Popen itself always succeeds: we look first, so a missing or
    non-executable command is still reported as spawn_failed, not as an exit code from setpriv.
    """
    if cwd is not None and not os.path.isdir(cwd):
        raise FileNotFoundError(2, "No such file or directory", cwd)
    if os.sep in argv0:
        candidates = [os.path.join(cwd or "", argv0)]
    else:
        candidates = [os.path.join(cwd or "", folder, argv0) for folder in os.get_exec_path(env)]
    denied = None
    for candidate in candidates:
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            denied = candidate
    if denied is not None:
        raise PermissionError(13, "Permission denied", denied)
    raise FileNotFoundError(2, "No such file or directory", argv0)


def _become_subreaper() -> None:
    """Orphaned grandchildren of the agent reparent to us, so the whole tree stays findable."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def split_address(address: str) -> tuple[str, int]:
    """'tcp://host:port' or 'tcp://[v6]:port' -> (host, port)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    return host.strip("[]"), int(port)


def _connect(address: str) -> socket.socket:
    """A connected socket to the hub: a Unix socket path, or tcp://host:port for remote workers."""
    if not address.startswith("tcp://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        return sock
    sock = socket.create_connection(split_address(address), timeout=10)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A coordinator whose machine vanished sends no FIN: keepalive probes find out within ~30 s.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 4)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


class _Channel:
    """The line-oriented link to the coordinator: events out, `cancel` in, EOF means it is gone."""

    def __init__(self, address: str, attempt_id: str, secret: str = "") -> None:
        self.sock = _connect(address)
        self._inbox = b""
        self.send({"attempt": attempt_id, "event": "hello", "worker_pid": os.getpid(), "secret": secret})

    def send(self, event: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps(event).encode() + b"\n")

    def read_commands(self) -> list[str] | None:
        """Commands received so far; None once the coordinator has gone away."""
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self._inbox += data
        *lines, self._inbox = self._inbox.split(b"\n")
        return [line.decode(errors="replace").strip() for line in lines]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _ProcessTree:
    """The agent and its descendants, with cached psutil handles for cheap RSS sampling."""

    def __init__(self, leader_pid: int) -> None:
        self.leader_pid = leader_pid
        self._me = psutil.Process()
        self._members: dict[int, psutil.Process] = {}
        self._refreshed = 0.0
        self.peak_rss_mb = 0.0

    def refresh(self, *, reuse: bool = True) -> None:
        # We are a subreaper running one attempt, so every descendant of ours belongs to this agent.
        # reuse=False builds fresh handles: a cached one whose pid was recycled would refuse to kill.
        pids = _descendants()
        if pids is None:
            try:
                current = {p.pid: p for p in self._me.children(recursive=True)}
            except psutil.Error:
                return
        else:
            current = {}
            for pid in pids:
                proc = self._members.get(pid) if reuse else None
                if proc is None:
                    try:
                        proc = psutil.Process(pid)
                    except psutil.Error:
                        continue
                current[pid] = proc
        for pid, proc in current.items():
            if reuse:
                self._members.setdefault(pid, proc)
            else:
                self._members[pid] = proc
        for pid in list(self._members):
            if pid not in current:
                del self._members[pid]
        self._refreshed = time.monotonic()

    def rss_mb(self) -> float:
        if time.monotonic() - self._refreshed > _TREE_REFRESH_S:
            self.refresh()
        total = 0
        for proc in list(self._members.values()):
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        mb = total / (1024 * 1024)
        self.peak_rss_mb = max(self.peak_rss_mb, mb)
        return mb

    def kill(self) -> int:
        """SIGKILL the agent's process group and every descendant; returns how many were alive.

        Rescans until a scan finds nothing it has not already killed, so a descendant forked while
        we were killing (and reparented to us when its parent died) is caught too.
        """
        killed: dict[int, psutil.Process] = {}
        for round_ in range(_KILL_ROUNDS):
            self.refresh(reuse=round_ > 0)
            fresh = {pid: p for pid, p in self._members.items() if pid not in killed and _is_running(p)}
            if round_ == 0:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.leader_pid, signal.SIGKILL)
            if not fresh:
                break
            for proc in fresh.values():
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            killed.update(fresh)
        self._members.update(killed)
        return len(killed)

    def wait_gone(self, timeout: float = 2.0) -> None:
        """Wait until every killed member has died, then reap those that reparented to us."""
        psutil.wait_procs(list(self._members.values()), timeout=timeout)
        self.reap_strays()

    @staticmethod
    def reap_strays() -> None:
        """Collect exit statuses of reparented descendants so none stays a zombie."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return


def _children_files(pid: int | str) -> list[str]:
    try:
        return [f"/proc/{pid}/task/{tid}/children" for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _read_children(pid: int | str) -> list[int]:
    found: list[int] = []
    for path in _children_files(pid):
        try:
            with open(path, "rb") as f:
                found.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return found


_HAVE_CHILDREN_FILES = os.path.exists(f"/proc/self/task/{threading.get_native_id()}/children")


def _descendants() -> set[int] | None:
    """Our descendants, walked through /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN).

    Costs a few reads per member instead of psutil's scan of every process on the machine, which
    took milliseconds per call with 64 workers and their agents running. None where the kernel
    has no such files: the caller falls back to psutil.
    """
    if not _HAVE_CHILDREN_FILES:
        return None
    seen: set[int] = set()
    todo = _read_children("self")
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo.extend(_read_children(pid))
    return seen


def _pidfd(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` exits (Linux 5.3+), or None where there is none."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        return int(opener(pid))
    except OSError:
        return None


def _is_running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class _LineSplitter:
    """Turns chunks into complete lines, cutting any line longer than _MAX_LINE."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._partial + chunk
        *lines, rest = data.split(b"\n")
        self._partial = rest[-_MAX_LINE:] if len(rest) > _MAX_LINE else rest
        return [line[:_MAX_LINE].decode("utf-8", errors="replace") for line in lines]

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [rest.decode("utf-8", errors="replace")] if rest else []


def supervise(job: SupervisorJob) -> AttemptOutcome:
    """Run one agent to the end and report what happened. Never raises for agent failures."""
    started_at = time.time()
    artefacts = _artefact_dir(job)
    with _SUPERVISING:
        try:
            channel = _Channel(job.channel, job.attempt_id, job.channel_secret)
        except OSError as exc:
            return AttemptOutcome(
                reason="lost", started_at=started_at, finished_at=time.time(),
                error=f"the coordinator's channel {job.channel!r} is gone ({exc})",
            )
        try:
            return _supervise(job, channel, artefacts, started_at)
        finally:
            channel.close()


def _artefact_dir(job: SupervisorJob) -> Path:
    """The attempt's artefact directory; on a worker machine where that path cannot be made, a temporary one."""
    artefacts = Path(job.artefact_dir)
    try:
        private_dir(artefacts)
    except OSError:
        artefacts = Path(tempfile.mkdtemp(prefix=f"pcoord-{job.attempt_id[:40]}-"))
    return artefacts


def _supervise(job: SupervisorJob, channel: _Channel, artefacts: Path, started_at: float) -> AttemptOutcome:
    # A cancel may arrive before we start the agent: then it is never started.
    channel.sock.setblocking(False)
    ready = selectors.DefaultSelector()
    ready.register(channel.sock, selectors.EVENT_READ, "channel")
    if ready.select(timeout=0):
        commands = channel.read_commands()
        if commands is None or "cancel" in commands:
            return AttemptOutcome(
                reason="cancelled" if commands is not None else "lost",
                started_at=started_at, finished_at=time.time(), error="cancelled before it started",
            )

    stdin_path = artefacts / "stdin"
    write_private(stdin_path, job.invocation.stdin)
    env = {**(os.environ if job.env is None else job.env), **job.invocation.env}
    _become_subreaper()
    argv = job.invocation.argv
    wrapper = _pdeathsig_wrapper()
    try:
        if wrapper is not None:
            _resolve(argv[0], env, job.cwd)
        with stdin_path.open("rb") as stdin:
            proc = subprocess.Popen(
                [*wrapper, *argv] if wrapper else argv, stdin=stdin, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=job.cwd, env=env, start_new_session=True,
                preexec_fn=None if wrapper else _die_with_parent, close_fds=True,
            )
    except FileNotFoundError:
        missing = job.cwd if job.cwd and not Path(job.cwd).is_dir() else argv[0]
        what = "working directory" if missing == job.cwd else "command"
        return AttemptOutcome(
            reason="spawn_failed", started_at=started_at, finished_at=time.time(),
            error=f"{what} not found: {missing!r}",
        )
    except (PermissionError, OSError) as exc:
        return AttemptOutcome(
            reason="spawn_failed", started_at=started_at, finished_at=time.time(),
            error=f"cannot start {argv[0]!r}: {exc.strerror or exc}",
        )
    channel.send({"attempt": job.attempt_id, "event": "started", "pid": proc.pid})
    return _watch(job, channel, ready, proc, artefacts, started_at)


def _watch(
    job: SupervisorJob,
    channel: _Channel,
    ready: selectors.BaseSelector,
    proc: subprocess.Popen[bytes],
    artefacts: Path,
    started_at: float,
) -> AttemptOutcome:
    assert proc.stdout is not None and proc.stderr is not None
    reader = make_stream_reader(job.invocation.stream)
    tree = _ProcessTree(proc.pid)
    tree.refresh()
    stdout_file = CappedStream(
        artefacts / "stdout", disk_cap=job.disk_cap_bytes, memory_cap=job.output_cap_bytes, count_chars=True
    )
    stderr_file = CappedStream(artefacts / "stderr", disk_cap=job.disk_cap_bytes)
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
    splitters = {"stdout": _LineSplitter(), "stderr": _LineSplitter()}
    for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
        os.set_blocking(stream.fileno(), False)
        ready.register(stream, selectors.EVENT_READ, name)
    open_streams = 2
    # A pidfd turns readable when the agent exits, so the loop wakes at once instead of at its next tick.
    exit_fd = _pidfd(proc.pid)
    if exit_fd is not None:
        ready.register(exit_fd, selectors.EVENT_READ, "exit")
    if _STOP_PIPE is not None:
        ready.register(_STOP_PIPE[0], selectors.EVENT_READ, "stop")
    deadline = time.monotonic() + job.timeout_s if job.timeout_s else None
    next_sample = 0.0
    last_progress_sent = 0.0
    pending_progress: Progress | None = None
    end: EndReason | None = None
    error: str | None = None
    leader_exited_at = 0.0

    def handle_lines(name: str, lines: list[str]) -> None:
        nonlocal pending_progress
        for line in lines:
            if name == "stderr":
                stderr_tail.append(line[:2000])
                update = reader.on_stderr_line(line)
            else:
                update = reader.on_stdout_line(line)
            if update is not None:
                pending_progress = update

    try:
        while True:
            for key, _ in ready.select(timeout=job.poll_interval_s):
                if key.data == "exit":
                    ready.unregister(key.fd)
                    continue
                if key.data == "stop":
                    end, error = "lost", "its pool worker went away; the agent was killed"
                    continue
                if key.data == "channel":
                    commands = channel.read_commands()
                    if commands is None:
                        end, error = "lost", "the coordinator went away; the agent was killed"
                    elif "cancel" in commands:
                        end, error = "cancelled", "cancelled"
                    continue
                fd = key.fd
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    ready.unregister(fd)
                    open_streams -= 1
                    handle_lines(key.data, splitters[key.data].flush())
                    continue
                (stdout_file if key.data == "stdout" else stderr_file).write(chunk)
                handle_lines(key.data, splitters[key.data].feed(chunk))
            now = time.monotonic()
            if pending_progress is not None and now - last_progress_sent >= 0.1:
                channel.send({
                    "attempt": job.attempt_id, "event": "progress",
                    "percent": pending_progress.percent, "message": pending_progress.message,
                })
                pending_progress, last_progress_sent = None, now
            if end is None and deadline is not None and now >= deadline:
                end = "timeout"
                error = f"timed out after {job.timeout_s:g} s; its process tree was killed"
            if end is None and job.token_budget is not None:
                used = reader.tokens_used()
                if used is not None and used > job.token_budget:
                    end = "budget"
                    error = f"token budget exceeded: {used:,} tokens > {job.token_budget:,}; the run was stopped"
            if end is None and now >= next_sample:
                next_sample = now + job.poll_interval_s
                rss = tree.rss_mb()
                if job.memory_limit_mb is not None and rss > job.memory_limit_mb:
                    end = "memory"
                    error = f"memory limit exceeded: {rss:.0f} MB > {job.memory_limit_mb:g} MB"
            if end is not None:
                break
            if proc.poll() is not None:
                # A background descendant may hold the pipes open forever: give it a moment, then stop.
                leader_exited_at = leader_exited_at or now
                if open_streams == 0 or now - leader_exited_at >= _LINGER_S:
                    end = "exited"
                    break
        killed = tree.kill()
        proc.wait()
        tree.wait_gone()
        # Drain whatever the streams still hold (their writers are dead now).
        for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            with contextlib.suppress(OSError, ValueError):
                rest = stream.read() or b""
                if rest:
                    (stdout_file if name == "stdout" else stderr_file).write(rest)
                    handle_lines(name, splitters[name].feed(rest))
                handle_lines(name, splitters[name].flush())
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
        stdout_file.close()
        stderr_file.close()
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    return AttemptOutcome(
        reason=end,
        exit_code=proc.returncode,
        stdout=stdout_file.text(),
        stdout_truncated=stdout_file.cut_in_memory,
        stdout_bytes=stdout_file.total_bytes,
        stdout_chars=stdout_file.total_chars,
        stderr_bytes=stderr_file.total_bytes,
        stdout_cut_on_disk=stdout_file.cut_on_disk,
        stderr_cut_on_disk=stderr_file.cut_on_disk,
        stderr_tail="\n".join(stderr_tail),
        final_event=reader.final_event(),
        started_at=started_at,
        finished_at=time.time(),
        pid=proc.pid,
        peak_rss_mb=round(tree.peak_rss_mb, 1),
        killed_processes=killed,
        error=error,
    )


def supervise_in_subprocess(job: SupervisorJob) -> AttemptOutcome:
    """Run `supervise` in a fresh Python process of its own and return its outcome.

    For pools whose workers run several tasks at once in threads (Dask): a supervisor makes its
    process the subreaper of its agent's tree and reaps every stray child, which is only right when
    that process supervises nothing else. The process dies with the worker thread that started it
    (SIGTERM through PR_SET_PDEATHSIG), and kills its agent's tree first.
    """
    started_at = time.time()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "parallel_coordinator.supervisor", str(os.getpid())], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, preexec_fn=functools.partial(_die_with_parent, signal.SIGTERM), close_fds=True,
        )
    except OSError as exc:
        return AttemptOutcome(
            reason="lost", started_at=started_at, finished_at=time.time(),
            error=f"cannot start a supervisor process on this worker: {exc}",
        )
    # Pickle both ways: the job came to this worker as a pickle already, and the parent is our own code.
    stdout, _ = proc.communicate(pickle.dumps(job))
    try:
        outcome = pickle.loads(stdout)
    except Exception:  # the supervisor process died before it could answer (killed, out of memory)
        return AttemptOutcome(
            reason="lost", started_at=started_at, finished_at=time.time(),
            error=f"the supervisor process ended with code {proc.returncode} before reporting",
        )
    assert isinstance(outcome, AttemptOutcome)
    return outcome


def _main() -> None:
    """`python -m parallel_coordinator.supervisor`: a pickled SupervisorJob in, a pickled AttemptOutcome out."""
    global _STOP_PIPE
    _STOP_PIPE = os.pipe()
    os.set_blocking(_STOP_PIPE[1], False)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os.write(_STOP_PIPE[1], b"x") if _STOP_PIPE else None)
    if len(sys.argv) > 1 and os.getppid() != int(sys.argv[1]):  # the parent died before the signal was armed
        sys.exit(1)
    job = pickle.loads(sys.stdin.buffer.read())
    outcome = supervise(job)
    sys.stdout.buffer.write(pickle.dumps(outcome))
    sys.stdout.buffer.flush()

