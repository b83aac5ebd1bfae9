"""Views: a live or stored session rendered as the tool outputs (progress status, coordination result).

Results are kept small for the caller's context: each output is cut to `result_chars` and all of
them together to `total_result_chars`; the full text stays in the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from parallel_coordinator.engine.session import AttemptInfo, Session, SessionStatus, TaskRecord
from parallel_coordinator.planning.estimates import DurationEstimator, remaining_seconds
from parallel_coordinator.planning.graph import TaskGraph
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.outputs import (
    ActiveAgent,
    AgentFigures,
    AttemptRecord,
    CoordinationResult,
    PerformanceFigures,
    PerformanceMetrics,
    PlannedTask,
    ProgressStatus,
    SessionMetrics,
    SystemHealth,
    TaskResult,
)
from parallel_coordinator.state.outputs import read_output
from parallel_coordinator.state.store import Store, StoredSession
from parallel_coordinator.views.metrics import AlertLimits, agent_figures, attempt_figures, find_alerts, session_figures


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
    notes: tuple[str, ...] = ()
    synthesis: str | None = None


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
            queue_reason=session.queue_reason, resumed_from=session.resumed_from, notes=tuple(session.notes),
            synthesis=session.synthesis,
        )
    tasks: dict[str, TaskRecord] = {}
    for stored in session.tasks:
        record = TaskRecord(
            task_id=stored.task_id, agent=stored.agent, status=TaskState(stored.status),
            error=stored.error, started_at=stored.started_at,
            finished_at=stored.finished_at, input_tokens=stored.input_tokens,
            output_tokens=stored.output_tokens, cost_usd=stored.cost_usd, progress=stored.progress,
            message=stored.message, worktree=stored.worktree,
        )
        record.keep(stored.kept)
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
        peak_parallelism=session.peak_parallelism, expected_remaining_s=None, resumed_from=session.resumed_from,
        synthesis=session.synthesis, notes=session.notes,
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


def session_metrics(snap: Snapshot, limits: AlertLimits | None = None) -> SessionMetrics:
    figures = session_figures(snap.tasks.values(), snap.created_at, snap.finished_at, snap.max_agents)
    records = list(snap.tasks.values())
    attempts = sorted((a for r in records for a in r.attempts if a.finished_at), key=lambda a: a.started_at)
    per_agent = agent_figures(
        (a.agent, (a.finished_at or a.started_at) - a.started_at, attempt_failed(a.outcome, a.error))
        for a in attempts
    )
    ended = [r for r in records if r.status in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.INTERRUPTED)]
    tokens_in = _total(r.input_tokens for r in records)
    tokens_out = _total(r.output_tokens for r in records)
    cost = _total(r.cost_usd for r in records)
    return SessionMetrics(
        avg_task_time_s=figures.avg_task_time_s,
        throughput_per_min=figures.throughput_per_min,
        error_rate=figures.error_rate,
        p95_task_time_s=figures.p95_task_time_s,
        success_rate=round(sum(r.status is TaskState.SUCCEEDED for r in ended) / len(ended), 4) if ended else 0.0,
        parallel_efficiency=figures.parallel_efficiency,
        peak_parallelism=snap.peak_parallelism,
        input_tokens=int(tokens_in) if tokens_in is not None else None,
        output_tokens=int(tokens_out) if tokens_out is not None else None,
        cost_usd=round(cost, 6) if cost is not None else None,
        agents={
            name: AgentFigures(runs=runs, failures=failures, avg_duration_s=avg)
            for name, (runs, failures, avg) in per_agent.items()
        },
        alerts=find_alerts(
            limits or AlertLimits(), error_rate=figures.error_rate,
            outcomes=[(a.agent, attempt_failed(a.outcome, a.error)) for a in attempts],
        ),
    )


def attempt_failed(outcome: str, error: str | None) -> bool:
    """A failed attempt; one cancelled by the caller is not the agent's failure."""
    return outcome not in ("cancelled", "running") and (outcome != "exited" or error is not None)


def _total(values: Iterable[float | int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None


def performance_metrics(
    store: Store,
    sample: tuple[float, float, float],
    *,
    active_agents: int,
    queue_size: int,
    queue_reasons: list[str],
    limits: AlertLimits,
) -> PerformanceMetrics:
    """Machine health now, and figures over the last 1,000 recorded runs."""
    cpu, used_mb, memory_percent = sample
    recent = store.recent_attempts(1000)
    figures = attempt_figures(recent)
    oldest_first = list(reversed(recent))
    tokens = store.token_totals()
    alerts = find_alerts(
        limits, error_rate=figures.error_rate, cpu_percent=cpu, memory_percent=memory_percent,
        outcomes=[(a.agent, attempt_failed(a.outcome, a.error)) for a in oldest_first[-100:]],
        throughput_per_min=figures.tasks_per_second * 60 if active_agents else None,
    )
    total_in = _total(t[0] for t in tokens.values())
    total_out = _total(t[1] for t in tokens.values())
    total_cost = _total(t[2] for t in tokens.values())
    return PerformanceMetrics(
        system_health=SystemHealth(
            cpu_percent=cpu, memory_used_mb=used_mb, memory_percent=memory_percent, active_agents=active_agents,
            queue_size=queue_size, error_rate=figures.error_rate, queue_reasons=queue_reasons,
        ),
        performance=PerformanceFigures(
            tasks_per_second=figures.tasks_per_second,
            avg_response_time_s=figures.avg_response_time_s,
            p95_response_time_s=figures.p95_response_time_s,
            success_rate=figures.success_rate,
            parallel_efficiency=figures.parallel_efficiency,
        ),
        agents={
            name: AgentFigures(
                runs=runs, failures=failures, avg_duration_s=avg,
                input_tokens=_int(tokens.get(name, (None, None, None))[0]),
                output_tokens=_int(tokens.get(name, (None, None, None))[1]),
                cost_usd=tokens.get(name, (None, None, None))[2],
            )
            for name, (runs, failures, avg) in figures.per_agent.items()
        },
        alerts=alerts,
        input_tokens=_int(total_in),
        output_tokens=_int(total_out),
        cost_usd=round(total_cost, 6) if total_cost is not None else None,
    )


def _int(value: float | int | None) -> int | None:
    return int(value) if value is not None else None


# An answer lists at most this many tasks: ten thousand results would flood the caller's context
# (and take seconds to send). Past it, the tasks that need attention come first.
MAX_RESULT_ENTRIES = 200


def _listed(snap: Snapshot) -> tuple[list[TaskRecord], int]:
    """The task records an answer lists, in plan order, and how many it leaves out."""
    records = list(snap.tasks.values())
    if len(records) <= MAX_RESULT_ENTRIES:
        return records, 0
    first = [r for r in records if r.status is not TaskState.SUCCEEDED] + [
        r for r in records if r.status is TaskState.SUCCEEDED
    ]
    keep = {r.task_id for r in first[:MAX_RESULT_ENTRIES]}
    return [r for r in records if r.task_id in keep], len(records) - MAX_RESULT_ENTRIES


def task_results(snap: Snapshot, result_chars: int, total_chars: int) -> tuple[list[TaskResult], int]:
    """The listed tasks' results, and how many tasks were left out (see MAX_RESULT_ENTRIES)."""
    results = []
    budget = total_chars
    listed, omitted = _listed(snap)
    for record in listed:
        room = max(0, min(result_chars, budget))
        shown = read_output(record.kept, room)
        budget -= len(shown)
        results.append(
            TaskResult(
                task_id=record.task_id,
                agent=record.attempts[-1].agent if record.attempts else record.agent,
                status=record.status.value,
                output=shown,
                output_truncated=len(shown) < record.kept.chars,
                output_chars=record.kept.chars,
                output_uri=task_uri(snap.id, record.task_id),
                output_cut_on_disk=record.output_cut,
                worktree=record.worktree,
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
    return results, omitted


def progress_status(snap: Snapshot, result_chars: int, total_chars: int) -> ProgressStatus:
    now = time.time()
    active = [
        ActiveAgent(
            agent=r.agent, task_id=r.task_id, progress=r.progress, message=r.message,
            elapsed_s=round(now - (r.started_at or now), 3), pid=r.pid,
        )
        for r in snap.tasks.values()
        if r.status is TaskState.RUNNING and r.waiting_for is None
    ]
    twins = {
        r.task_id: r.waiting_for for r in snap.tasks.values()
        if r.status is TaskState.RUNNING and r.waiting_for is not None
    }
    ended = snap.status != "RUNNING"
    results, omitted = task_results(snap, result_chars, total_chars) if ended else (None, 0)
    eta = snap.finished_at if ended else (
        now + snap.expected_remaining_s if snap.expected_remaining_s is not None else None
    )
    return ProgressStatus(
        session_id=snap.id,
        status=snap.status,
        agents_active=active,
        waiting_on_twins=twins,
        queue_reason=snap.queue_reason,
        estimated_completion=iso(eta),
        performance_metrics=session_metrics(snap),
        results=results,
        results_omitted=omitted,
        **_counts(snap.tasks),
    )


def coordination_result(snap: Snapshot, result_chars: int, total_chars: int) -> CoordinationResult:
    running = snap.status == "RUNNING"
    # While it runs, progress carries the counts; results come once it has ended.
    results, omitted = ([], 0) if running else task_results(snap, result_chars, total_chars)
    end = snap.finished_at or time.time()
    return CoordinationResult(
        session_id=snap.id,
        status=snap.status,
        results=results,
        results_omitted=omitted,
        execution_time_s=round(end - snap.created_at, 3),
        performance_metrics=session_metrics(snap),
        error_summary=snap.error_summary,
        resumed_from=snap.resumed_from,
        notes=list(snap.notes),
        synthesis=None if running else _capped(snap.synthesis, total_chars) or structured_summary(snap, result_chars),
        progress=progress_status(snap, result_chars, total_chars) if running else None,
        next_step=(
            f"still running: call get_progress_status(session_id={snap.id!r}) to follow it, "
            f"or cancel_execution(session_id={snap.id!r}) to stop it"
        )
        if running
        else None,
    )


def structured_summary(snap: Snapshot, limit: int, lines_per_task: int = 3) -> str:
    """One answer without a synthesizer: each task's agent, status, first lines and where the rest is."""
    parts = [f"{snap.status}: {sum(r.status is TaskState.SUCCEEDED for r in snap.tasks.values())} of"
             f" {len(snap.tasks)} tasks succeeded."]
    size = len(parts[0])
    for record in snap.tasks.values():
        if size > limit:  # the rest would be cut anyway
            break
        agent = record.attempts[-1].agent if record.attempts else record.agent
        head = [line[:200] for line in record.output.strip().splitlines()[:lines_per_task]]
        if record.status is not TaskState.SUCCEEDED and record.error:
            head = [f"error: {record.error.strip().splitlines()[0][:200]}"]
        entry = f"- {record.task_id} ({agent}, {record.status.value})"
        if head:
            entry += ": " + " / ".join(head)
        if record.output:
            entry += f" [whole output: {task_uri(snap.id, record.task_id)}]"
        parts.append(entry)
        size += len(entry) + 1
    return _capped("\n".join(parts), limit) or ""


def _capped(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 40)] + f"\n[... cut at {limit:,} characters]"


def planned_tasks(graph: TaskGraph) -> list[PlannedTask]:
    return [
        PlannedTask(
            task_id=n.id, agent=n.agent, description=n.description, dependencies=list(n.dependencies),
            priority=n.priority,
        )
        for n in graph.nodes.values()
    ]
