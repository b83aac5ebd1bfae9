"""One view of a session, built from either source: a live session in memory or one read back from the store.

Everything outside the engine (tools, resources, MCP tasks, the CLI) reads sessions through this.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from parallel_coordinator.engine.session import AttemptInfo, Session, SessionStatus, TaskRecord
from parallel_coordinator.planning.estimates import DurationEstimator, remaining_seconds
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.state.store import StoredSession


class PlannedTask(Protocol):
    """What the plan says of a task, whichever source: a live graph's node or a stored task."""

    @property
    def description(self) -> str: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class SessionView:
    id: str
    status: SessionStatus
    created_at: float
    finished_at: float | None
    error_summary: str | None
    max_agents: int
    tasks: dict[str, TaskRecord]
    peak_parallelism: int
    expected_remaining_s: float | None
    owner: str | None = None
    queue_reason: str | None = None
    resumed_from: str | None = None
    notes: tuple[str, ...] = ()
    synthesis: str | None = None
    # The session's own caps on outputs in answers; None: the server's.
    result_chars: int | None = None
    total_result_chars: int | None = None
    live: bool = False  # held in memory by this server (it may still be running)
    forecast: dict[str, Any] | None = None  # planning/forecast.py's figures, as made at the start
    spent: dict[str, Any] | None = None  # engine/budget.py's: so far, or at the end
    budget: dict[str, Any] | None = None  # options.budget, the caps that were set
    ready: int | None = None  # pending tasks with every dependency ended: known for a live session only
    task_description: str = ""
    plan: Mapping[str, PlannedTask] = field(default_factory=dict)  # task id -> its description and dependencies

    @property
    def last_activity(self) -> float:
        """When a task last started or ended; the session's creation when none has."""
        return max((r.finished_at or r.started_at or 0.0 for r in self.tasks.values()), default=self.created_at)


def view_of(source: Session | StoredSession, estimator: DurationEstimator | None = None) -> SessionView:
    """The one place that tells the two sources apart. Without an estimator a live view has no time-left
    estimate (it walks the whole graph: a live display at 2,000 tasks need not pay for it)."""
    return view_of_live(source, estimator) if isinstance(source, Session) else view_of_stored(source)


def view_of_live(session: Session, estimator: DurationEstimator | None = None) -> SessionView:
    policy = session.policy
    return SessionView(
        id=session.id, status=session.status, created_at=session.created_at, finished_at=session.finished_at,
        error_summary=session.error_summary, max_agents=policy.max_agents, tasks=session.tasks,
        peak_parallelism=session.peak_parallelism,
        expected_remaining_s=estimate_remaining(session, estimator) if estimator is not None else None,
        owner=session.owner,
        queue_reason=session.queue_reason, resumed_from=session.resumed_from, notes=tuple(session.notes),
        synthesis=session.synthesis, result_chars=policy.result_chars, total_result_chars=policy.total_result_chars,
        live=True, forecast=session.forecast.as_dict() if session.forecast is not None else None,
        spent=session.spend.as_dict((session.finished_at or time.time()) - session.created_at),
        budget=policy.budget.model_dump(exclude_none=True) if policy.budget is not None else None,
        ready=session.scheduler.ready_count(),
        task_description=session.task_description, plan=session.graph.nodes,
    )


def view_of_stored(session: StoredSession) -> SessionView:
    tasks: dict[str, TaskRecord] = {}
    for stored in session.tasks:
        record = TaskRecord(
            task_id=stored.task_id, agent=stored.agent, status=TaskState(stored.status),
            error=stored.error, started_at=stored.started_at,
            finished_at=stored.finished_at, input_tokens=stored.input_tokens,
            output_tokens=stored.output_tokens, cost_usd=stored.cost_usd, progress=stored.progress,
            message=stored.message, worktree=stored.worktree, output_json=stored.output_json,
            flags=list(stored.flags), replica_of=stored.spec.get("replica_of"), qa=list(stored.qa),
        )
        record.keep(stored.kept)
        tasks[stored.task_id] = record
    for attempt in session.attempts:
        if attempt.task_id in tasks:
            tasks[attempt.task_id].attempts.append(
                AttemptInfo(
                    number=attempt.number, agent=attempt.agent, started_at=attempt.started_at or 0.0,
                    finished_at=attempt.finished_at, exit_code=attempt.exit_code, outcome=attempt.outcome,
                    error=attempt.error, prefix=attempt.prefix,
                )
            )
    status: SessionStatus = session.status  # type: ignore[assignment]
    return SessionView(
        id=session.id, status=status, created_at=session.created_at, finished_at=session.finished_at,
        error_summary=session.error_summary, max_agents=session.max_agents, tasks=tasks,
        peak_parallelism=session.peak_parallelism, expected_remaining_s=None, owner=session.owner,
        resumed_from=session.resumed_from, synthesis=session.synthesis, notes=session.notes,
        forecast=session.forecast, spent=session.spend, budget=_budget_of(session.options),
        task_description=session.task_description, plan={t.task_id: t for t in session.tasks},
    )


def _budget_of(options: dict[str, Any]) -> dict[str, Any] | None:
    budget = options.get("budget")
    if not isinstance(budget, dict):
        return None
    return {k: v for k, v in budget.items() if v is not None} or None


def estimate_remaining(session: Session, estimator: DurationEstimator) -> float:
    """Seconds until the session ends, from per-agent run times and the remaining graph (estimates.py)."""
    if session.status != "RUNNING":
        return 0.0
    now = time.time()
    remaining: dict[str, float] = {}
    for task_id, node in session.graph.nodes.items():
        record = session.tasks[task_id]
        if record.status not in (TaskState.PENDING, TaskState.RUNNING):
            remaining[task_id] = 0.0
            continue
        guess = estimator.estimate(record.agent, node.expected_duration_s)
        if record.status is TaskState.RUNNING and record.started_at is not None:
            guess = max(guess - (now - record.started_at), 0.0)
        remaining[task_id] = guess
    return remaining_seconds(session.graph, remaining, session.policy.max_agents)
