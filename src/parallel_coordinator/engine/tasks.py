"""One task to its end: reuse an identical task's result, or run it with retries, then each fallback agent.

What to do after each attempt is decisions.py's; this module carries it out (waits, slot moves) and
records how the task ended, through events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import anyio

from parallel_coordinator.agents import AgentSpec
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.attempts import Attempts
from parallel_coordinator.engine.batching import batch_note, combined_node, split_batch
from parallel_coordinator.engine.decisions import AttemptCounts, after_attempt
from parallel_coordinator.engine.events import EventBus, SessionEvent
from parallel_coordinator.engine.replicas import ReplicaAnswer, merge_all, vote
from parallel_coordinator.engine.reuse import ResultReuse
from parallel_coordinator.engine.session import RECHECK_S, Session, TaskRecord
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.planning.estimates import DurationEstimator
from parallel_coordinator.planning.graph import TaskNode
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.runners.base import RunResult
from parallel_coordinator.state.outputs import keep_text
from parallel_coordinator.state.store import StoredTask

log = logging.getLogger(__name__)



class TaskRuns:
    def __init__(
        self, settings: Settings, attempts: Attempts, slots: Slots, reuse: ResultReuse, events: EventBus,
        estimator: DurationEstimator, request_stop: Callable[[Session, str], None],
    ) -> None:
        self.settings, self.attempts, self.slots, self.reuse = settings, attempts, slots, reuse
        self.events, self.estimator, self._request_stop = events, estimator, request_stop

    async def run_task(self, session: Session, task_id: str, admitted: bool = False) -> None:
        """Run one task to its end; it holds one slot of its agent, taken by the caller, given back here.

        `admitted`: the caller has counted the task's first run with its runner's throttle (Slots.admit).
        """
        node = session.graph.nodes[task_id]
        record = session.tasks[task_id]
        if node.merge is not None and (node.merge != "judge" or not self._any_replica_succeeded(session, node)):
            # Merging runs no agent (nor does a judge with nothing to judge): its slot and admission go back.
            self._admission_unused(session.agents[node.agent], admitted)
            self.slots.give_back(node.agent)
            self.finish(session, task_id, merged_replicas(session, node))
            return
        held = node.agent  # the agent whose concurrency slot this task holds
        result = RunResult(ok=False, error="not run")
        key: str | None = None
        reused: RunResult | None = None
        try:
            key, reused = await self.reuse.find(session, node)
            for agent_name in (node.agent, *node.fallback_agents) if reused is None else ():
                if agent_name != held:
                    held = await self.slots.move(held, session.agents[agent_name], session.is_stopping)
                    if held != agent_name:
                        break  # stopped while waiting for the fallback's slot
                    record.agent = agent_name
                    log.info("task %r moves to fallback agent %r", task_id, agent_name)
                first, admitted = admitted, False  # from here on _attempts_with owns the admission
                result = await self._attempts_with(session, node, record, session.agents[agent_name], first)
                if result.ok or session.stop_reason is not None:
                    break
        finally:
            self._admission_unused(session.agents[node.agent], admitted)  # reused, or never got to run
            self.slots.give_back(held)
        self.finish(session, task_id, reused or result)
        if key is not None:
            self.reuse.publish(session, key, task_id, result)

    @staticmethod
    def _any_replica_succeeded(session: Session, node: TaskNode) -> bool:
        return any(session.tasks[r].status is TaskState.SUCCEEDED for r in node.dependencies)

    async def _attempts_with(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec, admitted: bool = False,
    ) -> RunResult:
        """Up to max_attempts runs of one agent; rate-limited runs wait and do not use up attempts.

        Each run is admitted by the runner's throttle first (`admitted`: the first one already was).
        """
        throttle = self.slots.throttle(agent.runner)
        counts = AttemptCounts(
            max_attempts=node.max_attempts or session.policy.retry_attempts,
            max_rate_limit_retries=self.settings.max_rate_limit_retries,
        )
        result = RunResult(ok=False, error="not run")
        try:
            while session.stop_reason is None:
                if not admitted and not await self._admitted(session, agent.runner):
                    if result.rate_limited:  # stopped while it waited out a rate limit: cancelled, not failed
                        result = RunResult(ok=False, error=session.stop_reason, details={"reason": "cancelled"})
                    break
                admitted = False
                try:
                    result = await self.attempts.run(session, node, record, agent)
                    decision = after_attempt(
                        result, counts, stopping=session.stop_reason is not None, backoff_s=node.backoff_s,
                        max_backoff_s=self.settings.max_backoff_s,
                    )
                    # The throttle hears how the run went while it still counts it as running.
                    if decision.action == "succeeded":
                        throttle.on_success()
                    elif decision.action == "rate_limited":
                        pause = throttle.on_rate_limit(wait_s=_asked_wait(result))
                finally:
                    self._run_ended(agent.runner)
                if decision.action == "succeeded":
                    break
                if decision.action == "rate_limited":
                    log.warning("%s run of task %r was rate limited; backing off %.1f s", agent.runner, node.id, pause)
                    asked = " (as the API asked)" if throttle.asked_s is not None else ""
                    record.message = f"rate limited: the next try waits {pause:.1f} s{asked}"
                    session.notify()
                    continue  # the throttle holds the next start back
                if decision.action != "retry":
                    break
                with anyio.move_on_after(decision.delay_s):  # a stop cuts the backoff short
                    await session.stopped.wait()
        finally:
            self._admission_unused(agent, admitted)  # stopped before its first run
        return result

    async def _admitted(self, session: Session, runner: str) -> bool:
        """Wait until the runner's throttle admits one more run (counted); False if the session stops first."""
        throttle = self.slots.throttle(runner)
        while session.stop_reason is None:
            if throttle.try_start():
                return True
            pause = throttle.pause_left()
            # Paused: until the pause ends; at its limit: until a run ends (RECHECK_S is a backstop).
            with anyio.move_on_after(pause if pause > 0 else RECHECK_S):
                await _first_of(session.stopped, self.slots.next_freed)
        return False

    def _run_ended(self, runner: str) -> None:
        throttle = self.slots.throttle(runner)
        throttle.ended()
        if throttle.throttled:
            self.slots.freed()  # runs may wait for this one's place under the throttle's limit

    def _admission_unused(self, agent: AgentSpec, admitted: bool) -> None:
        if admitted:
            self._run_ended(agent.runner)

    async def run_batch(self, session: Session, batch: list[str], admitted: bool = False) -> None:
        """Several small tasks of one agent in one run; the answer is split back per task.

        Tasks the answer has no section for run again on their own, so a batch can only save work.
        `admitted` as for run_task.
        """
        nodes = [session.graph.nodes[t] for t in batch]
        agent = session.agents[nodes[0].agent]
        carrier = session.tasks[batch[0]]
        combined = combined_node(nodes, agent.timeout or self.settings.task_timeout_s)
        try:
            result = await self._attempts_with(session, combined, carrier, agent, admitted)
        finally:
            self.slots.give_back(agent.name)
        parts = split_batch(result.output, batch) if result.ok else {}
        for member in batch:
            if member in parts:
                if member != batch[0]:
                    session.tasks[member].attempts = list(carrier.attempts)
                first = member == batch[0]
                self.finish(session, member, RunResult(
                    ok=True, output=parts[member], input_tokens=result.input_tokens if first else None,
                    output_tokens=result.output_tokens if first else None, cost_usd=result.cost_usd if first else None,
                ))
        session.notes.append(batch_note(agent.name, batch, len(parts)))
        for member in batch:
            if member in parts:
                continue
            if session.stop_reason is not None:
                self.finish(session, member, RunResult(ok=False, error=session.stop_reason,
                                                       details={"reason": "cancelled"}))
                continue
            session.tasks[member].attempts = []
            self.slots.take(agent.name)
            await self.run_task(session, member)

    def keep(self, session: Session, stored: StoredTask) -> None:
        """A task that succeeded in the session being resumed: its result is kept, it does not run again."""
        record = session.tasks[stored.task_id]
        record.status = TaskState.SUCCEEDED
        record.agent = stored.agent
        record.keep(stored.kept)
        record.started_at, record.finished_at = stored.started_at, stored.finished_at
        record.input_tokens, record.output_tokens, record.cost_usd = (
            stored.input_tokens, stored.output_tokens, stored.cost_usd,
        )
        record.output_json, record.flags, record.qa = stored.output_json, list(stored.flags), list(stored.qa)
        record.progress = 100.0
        session.scheduler.mark_succeeded(stored.task_id)
        self.events.emit(SessionEvent("task_kept", session.id, stored.task_id, stored.agent, state={
            "status": "succeeded", "output": record.output, "output_chars": record.output_chars,
            "output_path": record.output_path, "output_cut": record.output_cut, "started_at": record.started_at,
            "finished_at": record.finished_at, "input_tokens": record.input_tokens,
            "output_tokens": record.output_tokens, "cost_usd": record.cost_usd,
            "error": f"kept from session {session.resumed_from!r}",
            "qa": json.dumps(record.qa) if record.qa else None,
        }))

    def finish(self, session: Session, task_id: str, result: RunResult) -> None:
        """Record how a task ended, free its dependents (or skip them), and learn its duration."""
        record = session.tasks[task_id]
        record.finished_at = time.time()
        # From here on the server holds only the output's head; a long one lives whole in a file.
        record.keep(result.kept or keep_text(
            result.output, self.attempts.artefacts(session.id, task_id, max(1, len(record.attempts)))
        ))
        if result.ok:
            record.status = TaskState.SUCCEEDED
            record.error, record.progress = None, 100.0
            session.scheduler.succeed(task_id)
        else:
            # Stopped by the session, not failed: a cancel, a lost worker, or the session's budget (a run capped
            # at what the budget had left ends `budget` in its own supervisor).
            reason = result.details.get("reason")
            stopped = session.stop_reason is not None and (
                reason in ("cancelled", "lost") or (reason == "budget" and session.budget_reason is not None)
            )
            record.status = TaskState.CANCELLED if stopped else TaskState.FAILED
            record.error = result.error
            self._skip_dependents(session, task_id)
        record.output_json, record.flags = (result.output_json if result.ok else None), result.flags
        record.qa = result.qa
        if result.flags:
            session.notes.append(f"task {task_id!r} is flagged: " + "; ".join(result.flags))
        if any(a is not None for a in (result.input_tokens, result.output_tokens, result.cost_usd)):
            record.input_tokens, record.output_tokens, record.cost_usd = (
                result.input_tokens, result.output_tokens, result.cost_usd,
            )
        if result.ok and record.started_at is not None:
            last = record.attempts[-1] if record.attempts else None
            if last is not None and last.finished_at is not None:
                self.estimator.observe(record.agent, last.finished_at - last.started_at)
        self.events.emit(SessionEvent(
            "task_ended", session.id, task_id, record.agent, status=record.status.value, error=record.error,
            details={"attempts": len(record.attempts), "output_chars": record.output_chars},
            state={
                "status": record.status.value, "output": record.output, "output_chars": record.output_chars,
                "output_path": record.output_path, "output_cut": record.output_cut, "error": record.error,
                "agent": record.agent, "attempts": len(record.attempts), "finished_at": record.finished_at,
                "input_tokens": record.input_tokens, "output_tokens": record.output_tokens,
                "cost_usd": record.cost_usd, "progress": record.progress, "message": record.message,
                "output_json": json.dumps(record.output_json) if record.output_json is not None else None,
                "flags": json.dumps(record.flags) if record.flags else None,
                "qa": json.dumps(record.qa) if record.qa else None,
            },
        ))
        session.poke()
        if record.status is TaskState.FAILED and session.policy.on_failure == "stop" and not session.stop_reason:
            self._request_stop(session, f"stopped at the first failure: task {task_id!r} failed")

    def _skip_dependents(self, session: Session, task_id: str) -> None:
        for other in session.scheduler.fail(task_id, session.tasks[task_id].status):
            record = session.tasks[other]
            record.status = TaskState.SKIPPED
            record.error = session.scheduler.skip_reason[other]
            self.events.emit(SessionEvent(
                "task_ended", session.id, other, record.agent, status="skipped", error=record.error,
                state={"status": "skipped", "error": record.error},
            ))


def _asked_wait(result: RunResult) -> float | None:
    """The wait a rate-limited run's stream asked for, as its runner reported it (details["retry_after_s"])."""
    wait = result.details.get("retry_after_s")
    return float(wait) if isinstance(wait, int | float) and not isinstance(wait, bool) else None


async def _first_of(*events: anyio.Event) -> None:
    """Return as soon as one of the events is set."""
    async with anyio.create_task_group() as group:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            group.cancel_scope.cancel()

        for event in events:
            group.start_soon(wait, event)


def merged_replicas(session: Session, node: TaskNode) -> RunResult:
    """A subtask's replicas as its one result (replicas.py); a judge with no answer to judge fails here."""
    answers = [
        ReplicaAnswer(r, session.tasks[r].agent, session.tasks[r].status is TaskState.SUCCEEDED,
                      session.tasks[r].output, session.tasks[r].output_json, session.tasks[r].error)
        for r in node.dependencies
    ]
    merged = vote(answers) if node.merge == "vote" else merge_all(answers)
    if node.merge == "judge":  # only reached when no replica succeeded
        merged = merge_all(answers)
    if merged.note:
        session.notes.append(f"task {node.id!r}: {merged.note}")
    return RunResult(ok=merged.ok, output=merged.output, error=merged.error, output_json=merged.output_json,
                     details={"reason": "merged"})
