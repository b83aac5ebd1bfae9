"""A session's run loop: start what may start, wait for a change or the deadline, stop, and sum up at the end.

One anyio task group per session owns its tasks' runs; a stop cancels what has not started and tells
every running attempt's supervisor to kill its agent.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from parallel_coordinator.engine.admission import Gate
from parallel_coordinator.engine.attempts import Attempts
from parallel_coordinator.engine.batching import BURST_BATCH_SIZE
from parallel_coordinator.engine.budget import BudgetGuard
from parallel_coordinator.engine.events import EventBus, SessionEvent
from parallel_coordinator.engine.session import RECHECK_S, Session
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.engine.summary import error_summary
from parallel_coordinator.engine.tasks import TaskRuns
from parallel_coordinator.engine.warmup import PromptWarmup
from parallel_coordinator.execution.backend import ExecutionBackend
from parallel_coordinator.planning.graph import TaskNode
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.runners.base import Runner, RunResult

log = logging.getLogger(__name__)

_UNKNOWN_RUNNER_NEED_MB = 50.0


def batchable(node: TaskNode) -> bool:
    """Whether a task may share a burst's run: not a replica (independent by design), not a merge (it runs
    no agent, or a judge), not one whose output is checked against a schema (a shared answer has none)."""
    return node.replica_of is None and node.merge is None and node.output_schema is None


class SessionRuns:
    def __init__(
        self, runners: dict[str, Runner], backend: ExecutionBackend, gate: Gate, slots: Slots,
        attempts: Attempts, tasks: TaskRuns, events: EventBus,
        synthesize: Callable[[Session], Awaitable[None]], budgets: BudgetGuard,
    ) -> None:
        self.runners, self.backend, self.gate, self.slots = runners, backend, gate, slots
        self.attempts, self.tasks, self.events, self._synthesize = attempts, tasks, events, synthesize
        self.budgets = budgets

    async def run(self, session: Session, on_end: Callable[[Session], None]) -> None:
        timeout = session.policy.timeout_s
        deadline = anyio.current_time() + timeout if timeout else None
        seconds_budget = session.policy.budget.seconds if session.policy.budget is not None else None
        budget_deadline = anyio.current_time() + seconds_budget if seconds_budget else math.inf
        if session.policy.cache_warmup:
            session.warmup = PromptWarmup(self.attempts.settings.cache_warmup_wait_s)
        try:
            async with anyio.create_task_group() as group:
                while not session.scheduler.finished:
                    self._start_ready(session, group)
                    # A queue held back by CPU, memory, a rate limit or a warm-up is looked at again shortly,
                    # and the moment a rate limit's pause ends.
                    wait = math.inf
                    if session.queue_reason:
                        wait = min(RECHECK_S, self.slots.resume_in(a.runner for a in session.agents.values()))
                    release = session.warmup.next_release() if session.warmup else None
                    if release is not None:
                        wait = min(wait, max(0.0, release - time.monotonic()))
                    if deadline is not None:
                        wait = min(wait, deadline - anyio.current_time())
                    wait = min(wait, budget_deadline - anyio.current_time())
                    with anyio.move_on_after(wait):
                        await session.wake.wait()
                    session.wake = anyio.Event()
                    self.budgets.check(session)  # the seconds budget; tokens and dollars are checked as runs report
                    if deadline is not None and anyio.current_time() >= deadline and session.stop_reason is None:
                        await self.stop(session, f"session timed out after {timeout:g} s")
            if session.budget_reason is None:  # a spent budget pays for no merging run either
                with anyio.move_on_after(deadline - anyio.current_time() if deadline else math.inf):
                    await self._synthesize(session)
        finally:
            self._finish(session)
            on_end(session)

    def _start_ready(self, session: Session, group: anyio.abc.TaskGroup) -> None:
        before = session.queue_reason
        session.queue_reason = self._start_what_may(session, group)
        if session.queue_reason != before:
            session.notify()

    def _start_what_may(self, session: Session, group: anyio.abc.TaskGroup) -> str | None:
        """Start ready tasks while the limits allow; returns why the rest must wait, if they must."""
        if session.stop_reason is not None:
            return None
        scheduler, warmup, now = session.scheduler, session.warmup, time.monotonic()
        while len(scheduler.running) < session.policy.max_agents and scheduler.ready_count():
            refusal = self.gate.refusal(self._expected_need_mb(session), self.slots.active)
            if refusal is not None:
                return refusal
            # A warm-up hold is asked first: admission counts the run with its runner's throttle, so a pass
            # never starts more than it admits.
            task_id = scheduler.take_ready(
                lambda agent: (warmup is None or warmup.may_start(agent, now))
                and self.slots.admit(session.agents[agent])
            )
            if task_id is None:
                throttled = self.slots.throttle_reason({a.runner for a in session.agents.values()})
                held = (session.agents[agent] for agent, _ in scheduler.ready_groups() if agent in session.agents)
                return throttled or (warmup.reason(now) if warmup is not None else None) or self.slots.busy_reason(held)
            agent = session.agents[session.tasks[task_id].agent]
            runner = self.runners.get(agent.runner)
            if warmup is not None and runner is not None and runner.warms_prompt_cache:
                warmup.started(agent.name, now)  # the first run of this agent holds back the others
            batch = [task_id]
            if self._batches(session, agent.runner) and batchable(session.graph.nodes[task_id]):
                # Small tasks for the same agent share one run: one start-up and one system prompt.
                same_agent = agent.name.__eq__
                while len(batch) < BURST_BATCH_SIZE:
                    more = scheduler.take_ready(same_agent, batchable)
                    if more is None:
                        break
                    batch.append(more)
            self.slots.take(agent.name)  # one slot, however many tasks the run carries
            for member in batch:
                record = session.tasks[member]
                record.status = TaskState.RUNNING
                record.started_at = time.time()
                self.events.emit(SessionEvent(
                    "task_started", session.id, member, agent.name, ts=record.started_at,
                    state={"status": "running", "started_at": record.started_at},
                ))
            if len(batch) == 1:
                group.start_soon(self._guarded, session, batch, self.tasks.run_task(session, task_id, True),
                                 name=f"task {session.id}/{task_id}")
            else:
                group.start_soon(self._guarded, session, batch, self.tasks.run_batch(session, batch, True),
                                 name=f"batch {session.id}/{task_id}")
        if scheduler.ready_count():
            return self.slots.session_full_reason(session.policy.max_agents)
        return None

    async def _guarded(self, session: Session, task_ids: list[str], run: Awaitable[None]) -> None:
        """A task's run; a bug of ours in it fails its tasks, saying so, and never ends the server."""
        try:
            await run
        except Exception as exc:
            log.exception("task(s) %s of session %s failed inside Parallel Coordinator", task_ids, session.id)
            for task_id in task_ids:
                if session.scheduler.state[task_id] is TaskState.RUNNING:
                    self.tasks.finish(session, task_id, RunResult(ok=False, retryable=False, error=(
                        f"internal error in Parallel Coordinator ({exc!r}); this is a bug, please report it"
                    )))

    def _batches(self, session: Session, runner_kind: str) -> bool:
        """Burst batching, where the runner gains by it; "quality" gives every task a run of its own."""
        runner = self.runners.get(runner_kind)
        return (
            session.strategy == "burst" and runner is not None and runner.batches
            and session.policy.priority_mode != "quality"
        )

    def _expected_need_mb(self, session: Session) -> float:
        """Memory the next agent is expected to need, the most of any task waiting to start.

        A subtask's `resources_required.memory_mb` says it outright; otherwise the most its agent has
        been seen to use, or its runner's default; never more than the per-agent cap.
        """
        needs = []
        for agent, declared in session.scheduler.ready_groups():
            if declared is not None:
                needs.append(declared)
                continue
            runner = self.runners.get(session.agents[agent].runner)
            default = runner.default_memory_mb if runner is not None else _UNKNOWN_RUNNER_NEED_MB
            needs.append(self.attempts.peak_rss_mb.get(agent, default))
        return min(max(needs, default=0.0), session.policy.memory_limit_mb)

    async def stop(self, session: Session, reason: str) -> int:
        """Cancel what has not started and tell every running attempt to kill its agent."""
        if session.stop_reason is None:
            session.stop_reason = reason
        session.stopped.set()
        pending = session.scheduler.cancel_pending()
        for task_id in pending:
            session.tasks[task_id].status = TaskState.CANCELLED
            session.tasks[task_id].error = reason
        if pending:
            self.events.emit(SessionEvent(
                "tasks_cancelled", session.id,
                state={"task_ids": pending, "status": "cancelled", "error": reason},
            ))
        for task_id in pending:
            self.events.emit(SessionEvent(
                "task_ended", session.id, task_id, session.tasks[task_id].agent, status="cancelled", error=reason,
            ))
        running = session.running()
        for record in running:
            if record.attempt_id is not None:
                await self.backend.cancel(record.attempt_id)
        for attempt_id in list(session.extra_attempts):
            await self.backend.cancel(attempt_id)
        session.poke()
        return len(pending) + len(running)

    def _finish(self, session: Session) -> None:
        cancelled = session.scheduler.cancel_pending()
        for task_id in cancelled:
            session.tasks[task_id].status = TaskState.CANCELLED
        if cancelled:
            self.events.emit(SessionEvent(
                "tasks_cancelled", session.id, state={"task_ids": cancelled, "status": "cancelled"},
            ))
        for record in session.tasks.values():
            if record.status is TaskState.RUNNING:  # only when the server itself is going down
                record.status = TaskState.INTERRUPTED
                self.events.emit(SessionEvent(
                    "task_changed", session.id, record.task_id, record.agent, state={"status": "interrupted"},
                ))
        session.finished_at = time.time()
        session.status = session.decide_status()
        session.queue_reason = None
        session.error_summary = error_summary(session)
        self.events.emit(SessionEvent(
            "session_ended", session.id, status=session.status, error=session.error_summary,
            details={"execution_time_s": round(session.finished_at - session.created_at, 3)},
            state={
                "status": session.status, "finished_at": session.finished_at,
                "error_summary": session.error_summary, "synthesis": session.synthesis,
                "peak_parallelism": session.peak_parallelism, "notes": session.notes,
                "killed_processes": session.killed_processes,
                "spend": session.spend.as_dict(session.finished_at - session.created_at),
            },
        ))
        session.done.set()
        session.poke()
