"""Watching a running agent to its end: reading its streams, reporting progress, and stopping it on a
cancel, a timeout, a memory or token limit, or the loss of the coordinator; then killing its whole tree.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

from parallel_coordinator.runners.base import AttemptOutcome, EndReason
from parallel_coordinator.runners.streams import Progress, make_stream_reader
from parallel_coordinator.supervisor.artefact_files import CappedStream
from parallel_coordinator.supervisor.exits import exit_fd as process_exit_fd
from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.link import HubLink
from parallel_coordinator.supervisor.process_tree import ProcessTree

_READ_CHUNK = 65536
_STDERR_TAIL_LINES = 20
_MAX_LINE = 1 << 20  # a line longer than this is cut before it reaches the stream reader
_LINGER_S = 1.0  # after the agent exits, how long a descendant may keep its output pipes open

# In a supervisor process of its own (see `supervise_in_subprocess`), SIGTERM means its pool worker
# is gone: the signal handler writes to this pipe, which wakes the watch loop to kill the agent's tree.
_STOP_PIPE: tuple[int, int] | None = None


def stop_on_sigterm() -> None:
    """From now on, SIGTERM to this process ends the running watch as "lost" (after killing the agent's tree)."""
    global _STOP_PIPE
    _STOP_PIPE = os.pipe()
    os.set_blocking(_STOP_PIPE[1], False)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os.write(_STOP_PIPE[1], b"x") if _STOP_PIPE else None)


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


def watch(
    job: SupervisorJob,
    channel: HubLink,
    ready: selectors.BaseSelector,
    proc: subprocess.Popen[bytes],
    artefacts: Path,
    started_at: float,
) -> AttemptOutcome:
    if proc.stdout is None or proc.stderr is None:  # start_agent always pipes both
        raise RuntimeError("the agent was started without pipes for stdout and stderr")
    reader = make_stream_reader(job.invocation.stream)
    tree = ProcessTree(proc.pid)
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
    exit_fd = process_exit_fd(proc.pid)
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
