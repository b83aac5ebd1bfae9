"""Views: a live or stored session rendered as the tool outputs (progress status, coordination result).

Results are kept small for the caller's context: each output is cut to `result_chars` and all of
them together to `total_result_chars`; the full text stays in the store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from parallel_coordinator.estimates import DurationEstimator, remaining_seconds
from parallel_coordinator.graph import TaskGraph
from parallel_coordinator.metrics import session_figures
from parallel_coordinator.scheduler import TaskState
from parallel_coordinator.schemas.outputs import (
    ActiveAgent,
    AttemptRecord,
    CoordinationResult,
    PlannedTask,
    ProgressStatus,
    SessionMetrics,
    TaskResult,
)
from parallel_coordinator.session import AttemptInfo, Session, SessionStatus, TaskRecord
from parallel_coordinator.store import StoredSession


@dataclass(frozen=True)
class Snapshot:
    """What the views need of a session, whether it is live in memory or read back from the store."""

    id: str
    status: SessionStatus
    created_at: float
    finished_at: float | None
    error_summary: str | None
    max_agents: int
    tasks: dict[str, TaskRecord]
    peak_parallelism: int
    expected_remaining_s: float | None
    queue_reason: str | None = None
    resumed_from: str | None = None


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None


def session_uri(session_id: str) -> str:
    return f"pcoord://sessions/{session_id}"


def task_uri(session_id: str, task_id: str) -> str:
    # Task ids are free text: quoted so each is one path segment.
    return f"pcoord://sessions/{session_id}/tasks/{quote(task_id, safe='')}"


def snapshot_of(session: Session | StoredSession, estimator: DurationEstimator | None = None) -> Snapshot:
    if isinstance(session, Session):
        return Snapshot(
            id=session.id, status=session.status, created_at=session.created_at,
            finished_at=session.finished_at, error_summary=session.error_summary,
            max_agents=session.options.max_agents, tasks=session.tasks,
            peak_parallelism=session.peak_parallelism,
            expected_remaining_s=estimate_remaining(session, estimator or DurationEstimator()),
            queue_reason=session.queue_reason, resumed_from=session.resumed_from,
        )
    tasks: dict[str, TaskRecord] = {}
    for stored in session.tasks:
        record = TaskRecord(
            task_id=stored.task_id, agent=stored.agent, status=TaskState(stored.status),
            output=stored.output or "", error=stored.error, started_at=stored.started_at,
            finished_at=stored.finished_at, input_tokens=stored.input_tokens,
            output_tokens=stored.output_tokens, cost_usd=stored.cost_usd,
        )
        tasks[stored.task_id] = record
    for attempt in session.attempts:
        if attempt.task_id in tasks:
            tasks[attempt.task_id].attempts.append(
                AttemptInfo(
                    number=attempt.number, agent=attempt.agent, started_at=attempt.started_at or 0.0,
                    finished_at=attempt.finished_at, exit_code=attempt.exit_code, outcome=attempt.outcome,
                    error=attempt.error,
                )
            )
    status: SessionStatus = session.status  # type: ignore[assignment]
    return Snapshot(
        id=session.id, status=status, created_at=session.created_at, finished_at=session.finished_at,
        error_summary=session.error_summary, max_agents=session.max_agents, tasks=tasks,
        peak_parallelism=0, expected_remaining_s=None, resumed_from=session.resumed_from,
    )


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
    return remaining_seconds(session.graph, remaining, session.options.max_agents)


def _counts(tasks: dict[str, TaskRecord]) -> dict[str, int]:
    states = [r.status for r in tasks.values()]
    return {
        "total_tasks": len(states),
        "completed": sum(s is TaskState.SUCCEEDED for s in states),
        "in_progress": sum(s is TaskState.RUNNING for s in states),
        "failed": sum(s in (TaskState.FAILED, TaskState.INTERRUPTED) for s in states),
        "pending": sum(s is TaskState.PENDING for s in states),
        "cancelled": sum(s is TaskState.CANCELLED for s in states),
        "skipped": sum(s is TaskState.SKIPPED for s in states),
    }


def session_metrics(snap: Snapshot) -> SessionMetrics:
    figures = session_figures(snap.tasks.values(), snap.created_at, snap.finished_at, snap.max_agents)
    return SessionMetrics(
        avg_task_time_s=figures.avg_task_time_s,
        throughput_per_min=figures.throughput_per_min,
        error_rate=figures.error_rate,
        p95_task_time_s=figures.p95_task_time_s,
        parallel_efficiency=figures.parallel_efficiency,
        peak_parallelism=snap.peak_parallelism,
    )


def task_results(snap: Snapshot, result_chars: int, total_chars: int) -> list[TaskResult]:
    results = []
    budget = total_chars
    for record in snap.tasks.values():
        output = record.output
        room = max(0, min(result_chars, budget))
        shown = output[:room]
        budget -= len(shown)
        results.append(
            TaskResult(
                task_id=record.task_id,
                agent=record.attempts[-1].agent if record.attempts else record.agent,
                status=record.status.value,
                output=shown,
                output_truncated=len(shown) < len(output),
                output_chars=len(output),
                output_uri=task_uri(snap.id, record.task_id),
                error=record.error,
                attempts=len(record.attempts),
                started_at=iso(record.started_at),
                finished_at=iso(record.finished_at),
                duration_s=round(record.finished_at - record.started_at, 3)
                if record.started_at and record.finished_at
                else None,
                input_tokens=record.input_tokens,
                output_tokens=record.output_tokens,
                cost_usd=record.cost_usd,
                attempt_log=[
                    AttemptRecord(
                        number=a.number, agent=a.agent, started_at=iso(a.started_at),
                        finished_at=iso(a.finished_at), exit_code=a.exit_code, outcome=a.outcome,
                        error=a.error,
                    )
                    for a in record.attempts
                ],
            )
        )
    return results


def progress_status(snap: Snapshot, result_chars: int, total_chars: int) -> ProgressStatus:
    now = time.time()
    active = [
        ActiveAgent(
            agent=r.agent, task_id=r.task_id, progress=r.progress, message=r.message,
            elapsed_s=round(now - (r.started_at or now), 3), pid=r.pid,
        )
        for r in snap.tasks.values()
        if r.status is TaskState.RUNNING
    ]
    ended = snap.status != "RUNNING"
    eta = snap.finished_at if ended else (
        now + snap.expected_remaining_s if snap.expected_remaining_s is not None else None
    )
    return ProgressStatus(
        session_id=snap.id,
        status=snap.status,
        agents_active=active,
        queue_reason=snap.queue_reason,
        estimated_completion=iso(eta),
        performance_metrics=session_metrics(snap),
        results=task_results(snap, result_chars, total_chars) if ended else None,
        **_counts(snap.tasks),
    )


def coordination_result(snap: Snapshot, result_chars: int, total_chars: int) -> CoordinationResult:
    running = snap.status == "RUNNING"
    end = snap.finished_at or time.time()
    return CoordinationResult(
        session_id=snap.id,
        status=snap.status,
        results=task_results(snap, result_chars, total_chars),
        execution_time_s=round(end - snap.created_at, 3),
        performance_metrics=session_metrics(snap),
        error_summary=snap.error_summary,
        resumed_from=snap.resumed_from,
        progress=progress_status(snap, result_chars, total_chars) if running else None,
        next_step=(
            f"still running: call get_progress_status(session_id={snap.id!r}) to follow it, "
            f"or cancel_execution(session_id={snap.id!r}) to stop it"
        )
        if running
        else None,
    )


def planned_tasks(graph: TaskGraph) -> list[PlannedTask]:
    return [
        PlannedTask(
            task_id=n.id, agent=n.agent, description=n.description, dependencies=list(n.dependencies),
            priority=n.priority,
        )
        for n in graph.nodes.values()
    ]
