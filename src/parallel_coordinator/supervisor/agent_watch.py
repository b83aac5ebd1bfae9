"""One running agent inside a shard: its streams, progress, timeout, memory cap, token budget and end.

The shard loop owns the selector and the clock; an AgentWatch only reacts. `on_ready` reads what a
stream has, `tick` checks the limits and says when the agent must end, `begin_finish` kills its
whole tree without waiting, and `poll_finished` returns the outcome once the tree is dead and
reaped. Nothing here blocks, so one agent's end never stalls its shard-mates.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from parallel_coordinator.runners.base import AttemptOutcome, EndReason
from parallel_coordinator.runners.streams import Progress, make_stream_reader
from parallel_coordinator.supervisor.artefact_files import CappedStream
from parallel_coordinator.supervisor.exits import exit_fd, leader_exited
from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.lifeline import release
from parallel_coordinator.supervisor.process_tree import Family, ProcessTree

_READ_CHUNK = 65536
_STDERR_TAIL_LINES = 20
_MAX_LINE = 1 << 20  # a line longer than this is cut before it reaches the stream reader
_LINGER_S = 1.0  # after the agent exits, how long a descendant may keep its output pipes open
_KILL_GRACE_S = 2.0  # how long killed members may take to die before the outcome is reported anyway
_PROGRESS_EVERY_S = 0.1
# The stall watchdog: a tree that gained less CPU than this since the last look counts as idle.
_IDLE_CPU_S = 0.01


class LineSplitter:
    """Turns chunks into complete lines, cutting any line longer than _MAX_LINE."""

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self._partial + chunk
        *lines, rest = data.split(b"\n")
        self._partial = rest[:_MAX_LINE]  # its head, as for a whole line: the cut must not depend on the chunks
        return [line[:_MAX_LINE].decode("utf-8", errors="replace") for line in lines]

    def flush(self) -> list[str]:
        rest, self._partial = self._partial, b""
        return [rest.decode("utf-8", errors="replace")] if rest else []


class AgentWatch:
    def __init__(
        self, job: SupervisorJob, proc: subprocess.Popen[bytes], family: Family, artefacts: Path,
        started_at: float, post: Callable[[dict[str, Any]], None],
    ) -> None:
        if proc.stdout is None or proc.stderr is None:  # start_agent always pipes both
            raise RuntimeError("the agent was started without pipes for stdout and stderr")
        self.job = job
        self.proc = proc
        self.family = family
        self.started_at = started_at
        self._post = post
        self._reader = make_stream_reader(job.invocation.stream)
        self.tree = ProcessTree(proc.pid, family)
        self._files = {
            "stdout": CappedStream(
                artefacts / "stdout", disk_cap=job.disk_cap_bytes, memory_cap=job.output_cap_bytes, count_chars=True
            ),
            "stderr": CappedStream(artefacts / "stderr", disk_cap=job.disk_cap_bytes),
        }
        self._pipes = {"stdout": proc.stdout.fileno(), "stderr": proc.stderr.fileno()}
        self._open = set(self._pipes)
        self._splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
        self._stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._exit_fd = exit_fd(proc.pid)
        self._exit_seen = False
        self._deadline = time.monotonic() + job.timeout_s if job.timeout_s else None
        self._pending_progress: Progress | None = None
        self._progress_sent_at = 0.0
        self._leader_exited_at: float | None = None
        self._finish_deadline = 0.0
        # The stall watchdog: when the agent last showed a sign of work (output, or CPU in its tree).
        self._active_at = time.monotonic()
        self._cpu_seen = 0.0
        self._quiet_told = False
        self.end: EndReason | None = None
        self.error: str | None = None
        self.killed = 0

    @property
    def attempt_id(self) -> str:
        return self.job.attempt_id

    def register(self, selector: selectors.BaseSelector) -> None:
        for name, fd in self._pipes.items():
            os.set_blocking(fd, False)
            selector.register(fd, selectors.EVENT_READ, (self, name))
        # A pidfd (or kqueue) turns readable when the agent exits: the loop wakes at once, not at its next tick.
        if self._exit_fd is not None:
            selector.register(self._exit_fd, selectors.EVENT_READ, (self, "exit"))

    def on_ready(self, name: str, selector: selectors.BaseSelector) -> None:
        if name == "exit":
            if self._exit_fd is not None:
                self._exit_seen = True
                selector.unregister(self._exit_fd)
            return
        fd = self._pipes[name]
        try:
            chunk = os.read(fd, _READ_CHUNK)
        except BlockingIOError:
            return
        if not chunk:
            selector.unregister(fd)
            self._open.discard(name)
            self._lines(name, self._splitters[name].flush())
            return
        self._files[name].write(chunk)
        self._lines(name, self._splitters[name].feed(chunk))
        self._active_at, self._quiet_told = time.monotonic(), False

    def _lines(self, name: str, lines: list[str]) -> None:
        for line in lines:
            if name == "stderr":
                self._stderr_tail.append(line[:2000])
                update = self._reader.on_stderr_line(line)
            else:
                update = self._reader.on_stdout_line(line)
            if update is not None:
                if self._pending_progress is not None and self._pending_progress.first_response:
                    update = replace(update, first_response=True)  # the mark outlives a newer message
                self._pending_progress = update

    def stop(self, end: EndReason, error: str) -> None:
        """End the agent for `end` (a cancel, a lost coordinator); the first reason given wins."""
        if self.end is None:
            self.end, self.error = end, error

    def tick(self, now: float, *, periodic: bool, sample: bool) -> bool:
        """Check the limits; True once the agent must end (the reason is in `end`)."""
        if self._pending_progress is not None and now - self._progress_sent_at >= _PROGRESS_EVERY_S:
            # Tokens so far ride along: the engine holds a session's token budget against every running agent.
            event = {
                "attempt": self.attempt_id, "event": "progress",
                "percent": self._pending_progress.percent, "message": self._pending_progress.message,
                "tokens": self._reader.tokens_used(),
            }
            if self._pending_progress.first_response:
                event["first_response"] = True
            self._post(event)
            self._pending_progress, self._progress_sent_at = None, now
        if self.end is None and self._deadline is not None and now >= self._deadline:
            self.stop("timeout", f"timed out after {self.job.timeout_s:g} s; its process tree was killed")
        if self.end is None and self.job.token_budget is not None:
            used = self._reader.tokens_used()
            if used is not None and used > self.job.token_budget:
                self.stop("budget", f"token budget exceeded: {used:,} tokens > {self.job.token_budget:,}; "
                          "the run was stopped")
        if self.end is None and sample:
            rss, cpu = self.tree.sample()
            if self.job.stall_timeout_s is not None:
                self._watch_for_a_stall(now, self.job.stall_timeout_s, cpu)
            if self.end is None and self.job.memory_limit_mb is not None and rss > self.job.memory_limit_mb:
                self.stop("memory", f"memory limit exceeded: {rss:.0f} MB > {self.job.memory_limit_mb:g} MB")
        if self.end is not None:
            return True
        looked = periodic or self._exit_seen or not self._open
        if self._leader_exited_at is None and looked and leader_exited(self.proc):
            self._leader_exited_at = self.tree.leader_exited_at = time.monotonic()
            self.tree.leader_reaped = self.proc.returncode is not None
        # A background descendant may hold the pipes open forever: give it a moment, then stop.
        if self._leader_exited_at is not None and (not self._open or now - self._leader_exited_at >= _LINGER_S):
            self.end = "exited"
            return True
        return False

    def _watch_for_a_stall(self, now: float, window: float, cpu: float) -> None:
        """No output and an idle tree (`cpu`: its CPU seconds so far) for `window` seconds: stalled. Half-way,
        the coordinator hears it is quiet."""
        if cpu - self._cpu_seen >= _IDLE_CPU_S:  # a long tool call burning CPU in a child is work
            self._active_at, self._quiet_told = now, False
        self._cpu_seen = max(self._cpu_seen, cpu)
        quiet = now - self._active_at
        if quiet >= window:
            self.stop("stalled", f"stalled: no output and its process tree idle on CPU for {quiet:.0f} s "
                      f"(stall_timeout {window:g} s); its process tree was killed")
        elif quiet >= window / 2 and not self._quiet_told:
            self._quiet_told = True
            self._post({"attempt": self.attempt_id, "event": "quiet", "quiet_s": round(quiet, 1), "stall_s": window})

    def begin_finish(self, selector: selectors.BaseSelector, now: float) -> None:
        """Stop listening and SIGKILL the whole tree, without waiting for it to die."""
        for name in self._open:
            selector.unregister(self._pipes[name])
        if self._exit_fd is not None and not self._exit_seen:
            selector.unregister(self._exit_fd)
        self.tree.leader_reaped = self.proc.returncode is not None
        self.killed = self.tree.kill()
        self._finish_deadline = now + _KILL_GRACE_S

    def poll_finished(self, now: float) -> AttemptOutcome | None:
        """The outcome once the leader is reaped and every member is dead (or the grace is over); else None."""
        if self.proc.returncode is None and self.proc.poll() is None and now < self._finish_deadline:
            return None
        if not self.tree.gone() and now < self._finish_deadline:
            return None
        if self.proc.returncode is None:
            self.family.unreaped.append(self.proc)  # stuck in the kernel past the grace: reaped later
        else:
            self.family.leaders.discard(self.proc.pid)
        self._drain()
        self._close()
        release(self.proc.pid)  # the orphans it killed are reaped on the shard's next periodic tick
        return self._outcome()

    def _drain(self) -> None:
        """Read what the pipes still hold; their writers are dead, unless one is stuck past the grace."""
        for name in sorted(self._open):
            fd = self._pipes[name]
            with contextlib.suppress(OSError):
                while chunk := os.read(fd, _READ_CHUNK):
                    self._files[name].write(chunk)
                    self._lines(name, self._splitters[name].feed(chunk))
            self._lines(name, self._splitters[name].flush())

    def _close(self) -> None:
        if self._exit_fd is not None:
            os.close(self._exit_fd)
        for file in self._files.values():
            file.close()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _outcome(self) -> AttemptOutcome:
        stdout, stderr = self._files["stdout"], self._files["stderr"]
        return AttemptOutcome(
            reason=self.end or "exited",
            exit_code=self.proc.returncode,
            stdout=stdout.text(),
            stdout_truncated=stdout.cut_in_memory,
            stdout_bytes=stdout.total_bytes,
            stdout_chars=stdout.total_chars,
            stderr_bytes=stderr.total_bytes,
            stdout_cut_on_disk=stdout.cut_on_disk,
            stderr_cut_on_disk=stderr.cut_on_disk,
            stderr_tail="\n".join(self._stderr_tail),
            final_event=self._reader.final_event(),
            tokens_used=self._reader.tokens_used(),
            started_at=self.started_at,
            finished_at=time.time(),
            pid=self.proc.pid,
            peak_rss_mb=round(self.tree.peak_rss_mb, 1),
            killed_processes=self.killed,
            error=self.error,
        )
