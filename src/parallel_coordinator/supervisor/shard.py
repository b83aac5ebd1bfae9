"""The shard loop: one supervisor process running many agents at once on one selector.

A shard receives jobs on its link, starts each agent (spawn.py), and watches all of them together:
their pipes and exit descriptors, the link, and a periodic tick that checks every agent's limits
(agent_watch.py). Memory is sampled round-robin, a bounded number of trees per tick. It is the
subreaper of every agent's tree (process_tree.py) and reaps only what it can name. When the link
closes (the coordinator is gone) or the process is told to stop, every agent is killed and reported
lost; the shard ends once every tree is dead.
"""

from __future__ import annotations

import os
import selectors
import signal
import tempfile
import time
from collections import deque
from itertools import islice
from pathlib import Path
from typing import Any

from parallel_coordinator.runners.base import AttemptOutcome, EndReason
from parallel_coordinator.state.private_files import private_dir, write_private
from parallel_coordinator.supervisor.agent_watch import AgentWatch
from parallel_coordinator.supervisor.exits import child_exits_fd, drain
from parallel_coordinator.supervisor.job import SupervisorJob
from parallel_coordinator.supervisor.link import ShardLink
from parallel_coordinator.supervisor.platform import MECHANISMS
from parallel_coordinator.supervisor.process_tree import Family
from parallel_coordinator.supervisor.spawn import become_subreaper, start_agent

POLL_INTERVAL_S = 0.1
# Trees sampled for memory per tick: up to this many agents each is sampled every tick; past it
# round-robin (a tree walk per agent every tick does not scale to 256 agents).
SAMPLES_PER_TICK = 32
_IDLE_WAKE_S = 1.0  # with no agent running, still wake now and then to reap what is left

# In a shard process of its own (the Dask backend's), SIGTERM means its Dask worker is gone: the
# handler writes to this pipe, which wakes the loop to kill every agent's tree.
_STOP_PIPE: tuple[int, int] | None = None


def stop_on_sigterm() -> None:
    """From now on, SIGTERM to this process ends the shard's agents as "lost" (after killing their trees)."""
    global _STOP_PIPE
    _STOP_PIPE = os.pipe()
    os.set_blocking(_STOP_PIPE[1], False)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: os.write(_STOP_PIPE[1], b"x") if _STOP_PIPE else None)


class Shard:
    """Runs jobs from `link` (or given up front, without a link) until the link closes or says exit."""

    def __init__(self, link: ShardLink | None = None) -> None:
        self.link = link
        self.selector = selectors.DefaultSelector()
        self.family = Family()
        self.running: dict[str, AgentWatch] = {}
        self.finishing: list[AgentWatch] = []
        self.to_start: deque[SupervisorJob] = deque()
        self.outcomes: dict[str, AttemptOutcome] = {}  # without a link: what run() returns
        self.closing = False
        self._silent = False  # kill every tree but report nothing (the pool speaks for a dead worker)
        self._stopped: list[AgentWatch] = []  # told to stop since the last tick
        self._next_tick = 0.0
        self._sample_from = 0

    def run(self) -> dict[str, AttemptOutcome]:
        become_subreaper()
        if self.link is not None:
            self.selector.register(self.link, selectors.EVENT_READ, "link")
        if _STOP_PIPE is not None:
            self.selector.register(_STOP_PIPE[0], selectors.EVENT_READ, "stop")
        children = child_exits_fd() if not MECHANISMS.pidfd else None
        if children is not None:
            self.selector.register(children, selectors.EVENT_READ, "children")
        try:
            while not self._done():
                self._turn()
        finally:
            self.family.kill_orphans()
            self.family.reap_orphans()
            self.selector.close()
        return self.outcomes

    def _done(self) -> bool:
        if self.running or self.finishing or self.to_start:
            return False
        return self.closing or self.link is None

    def _turn(self) -> None:
        """One turn of the loop: read what is ready, start what was asked, tick, finish, send."""
        touched: list[AgentWatch] = []
        woken = False
        events = self.selector.select(self._timeout())
        self.family.new_turn()
        for key, _ in events:
            if key.data == "link":
                self._on_link()
            elif key.data == "stop":
                # Its worker is gone: the pool reports these attempts lost, with its own word on why.
                self.selector.unregister(key.fd)  # once is enough, and it would stay readable
                self._silent = True
                self._lose_all("its worker died; the agent was killed")
            elif key.data == "children":
                drain(key.fd)
                woken = True
            else:
                watch, name = key.data
                watch.on_ready(name, self.selector)
                touched.append(watch)
        while self.to_start:
            self._start(self.to_start.popleft())
        now = time.monotonic()
        periodic = woken or now >= self._next_tick
        self._tick(now, periodic, touched + self._stopped)
        self._stopped.clear()
        had_finishing = bool(self.finishing)
        for watch in list(self.finishing):
            outcome = watch.poll_finished(now)
            if outcome is not None:
                self.finishing.remove(watch)
                self._deliver(watch.attempt_id, outcome)
        if had_finishing and not self.running and not self.finishing:
            self.family.kill_orphans()  # nothing runs now: what is left belongs to no one
        if periodic:
            self.family.reap_orphans()
        if self.link is not None:
            self.link.flush()

    def _timeout(self) -> float | None:
        if self.finishing or self.to_start or self._stopped:
            return 0.01
        if self.running:
            return max(0.0, self._next_tick - time.monotonic())
        return _IDLE_WAKE_S

    def _tick(self, now: float, periodic: bool, touched: list[AgentWatch]) -> None:
        watches = list(self.running.values()) if periodic else touched
        sampled: set[str] = set()
        if periodic:
            self._next_tick = now + POLL_INTERVAL_S
            order = list(self.running)
            if len(order) <= SAMPLES_PER_TICK:
                sampled = set(order)
            else:
                start = self._sample_from % len(order)
                sampled = set(islice(order * 2, start, start + SAMPLES_PER_TICK))
                self._sample_from = start + SAMPLES_PER_TICK
        for watch in watches:
            if self.running.get(watch.attempt_id) is not watch:
                continue  # finished earlier in this turn
            if watch.tick(now, periodic=periodic, sample=watch.attempt_id in sampled):
                del self.running[watch.attempt_id]
                watch.begin_finish(self.selector, now)
                self.finishing.append(watch)

    def _on_link(self) -> None:
        assert self.link is not None
        messages = self.link.receive()
        if messages is None:
            self.selector.unregister(self.link)  # at end of file it stays readable: the loop would spin
            self._lose_all("the coordinator went away; the agent was killed")
            return
        for op, value in messages:
            if op == "start" and self.closing:
                # Sent before the coordinator read our "closing": it places the job on another shard.
                self._post({"attempt": value.attempt_id, "event": "refused"})
            elif op == "start":
                self.to_start.append(value)
            elif op == "cancel":
                self._cancel(str(value))
            elif op == "exit":
                self.closing = True

    def _cancel(self, attempt_id: str) -> None:
        for job in self.to_start:
            if job.attempt_id == attempt_id:  # a cancel that arrived with its start: never started
                self.to_start.remove(job)
                now = time.time()
                self._deliver(attempt_id, AttemptOutcome(
                    reason="cancelled", started_at=now, finished_at=now, error="cancelled before it started",
                ))
                return
        self._stop(attempt_id, "cancelled", "cancelled")

    def _stop(self, attempt_id: str, end: EndReason, error: str) -> None:
        watch = self.running.get(attempt_id)
        if watch is not None:
            watch.stop(end, error)
            self._stopped.append(watch)

    def _lose_all(self, error: str) -> None:
        if not self.closing and self.link is not None:
            # Before any outcome: the coordinator must not send this shard the retries of its lost attempts.
            self.link.post({"shard_event": "closing"})
        self.closing = True
        now = time.time()
        while self.to_start:
            job = self.to_start.popleft()
            self._deliver(job.attempt_id, AttemptOutcome(reason="lost", started_at=now, finished_at=now, error=error))
        for attempt_id in list(self.running):
            self._stop(attempt_id, "lost", error)

    def _start(self, job: SupervisorJob) -> None:
        started_at = time.time()
        try:
            artefacts = _artefact_dir(job)
            stdin_path = None
            if job.invocation.stdin:
                stdin_path = artefacts / "stdin"
                write_private(stdin_path, job.invocation.stdin)
            proc = start_agent(job, stdin_path)
        except Exception as exc:  # a bad job is a bug of the caller's: it gets the exception, the shard goes on
            self._fail(job.attempt_id, exc)
            return
        if isinstance(proc, str):
            self._deliver(job.attempt_id, AttemptOutcome(
                reason="spawn_failed", started_at=started_at, finished_at=time.time(), error=proc,
            ))
            return
        self.family.leaders.add(proc.pid)
        self._post({"attempt": job.attempt_id, "event": "started", "pid": proc.pid})
        watch = AgentWatch(job, proc, self.family, artefacts, started_at, self._post)
        watch.register(self.selector)
        self.running[job.attempt_id] = watch

    def _post(self, event: dict[str, Any]) -> None:
        if self.link is not None:
            self.link.post(event)

    def _deliver(self, attempt_id: str, outcome: AttemptOutcome) -> None:
        if self._silent:
            return
        self.outcomes[attempt_id] = outcome
        if self.link is not None:
            self.link.post({"attempt": attempt_id, "event": "outcome", "outcome": outcome})
            del self.outcomes[attempt_id]  # sent: a long-lived shard keeps nothing per finished attempt

    def _fail(self, attempt_id: str, exc: Exception) -> None:
        if self.link is None:
            raise exc
        try:
            self.link.post({"attempt": attempt_id, "event": "error", "exception": exc})
        except Exception:  # the exception itself does not pickle: send its words
            self.link.post({"attempt": attempt_id, "event": "error", "exception": RuntimeError(repr(exc))})


def _artefact_dir(job: SupervisorJob) -> Path:
    """The attempt's artefact directory; on a worker machine where that path cannot be made, a temporary one."""
    artefacts = Path(job.artefact_dir)
    try:
        private_dir(artefacts)
    except OSError:
        artefacts = Path(tempfile.mkdtemp(prefix=f"pcoord-{job.attempt_id[:40]}-"))
    return artefacts
