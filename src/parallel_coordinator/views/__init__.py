"""Views: a live or stored session rendered as the tool outputs (progress status, coordination result).

Results are kept small for the caller's context: each output is cut to `result_chars` and all of
them together to `total_result_chars`; the full text stays in the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from parallel_coordinator.config.settings import AlertLimits
from parallel_coordinator.engine.figures import (
    PrefixAverage,
    agent_figures,
    attempt_failed,
    attempt_figures,
    find_alerts,
    overall_prefix,
    prefix_averages,
    session_figures,
)
from parallel_coordinator.engine.health import RECENT_ATTEMPTS, Health, server_alerts
from parallel_coordinator.engine.read_model import SessionView
from parallel_coordinator.engine.session import TaskRecord
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.outputs import (
    ActiveAgent,
    AgentFigures,
    AttemptRecord,
    BudgetFigures,
    CoordinationResult,
    ForecastFigures,
    PerformanceFigures,
    PerformanceMetrics,
    PrefixFigures,
    PrefixTokens,
    ProgressStatus,
    QaCheck,
    ReplicaResult,
    SessionMetrics,
    SpendFigures,
    SystemHealth,
    TaskResult,
)
from parallel_coordinator.state.outputs import read_output
from parallel_coordinator.state.store import Store
from parallel_coordinator.views._live import MAX_LIVE_ATTEMPTS, MAX_LIVE_TASKS, live_snapshot
from parallel_coordinator.views._plans import approval_needed_result, dry_run_result, planned_tasks

__all__ = [
    "MAX_LIVE_ATTEMPTS",
    "MAX_LIVE_TASKS",
    "MAX_RESULT_ENTRIES",
    "approval_needed_result",
    "coordination_result",
    "dry_run_result",
    "iso",
    "live_snapshot",
    "performance_metrics",
    "planned_tasks",
    "progress_status",
    "session_metrics",
    "session_uri",
    "structured_summary",
    "task_results",
    "task_uri",
]

def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds") if ts else None


def session_uri(session_id: str) -> str:
    return f"pcoord://sessions/{session_id}"


def task_uri(session_id: str, task_id: str) -> str:
    # Task ids are free text: quoted so each is one path segment.
    return f"pcoord://sessions/{session_id}/tasks/{quote(task_id, safe='')}"


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


def session_metrics(snap: SessionView, limits: AlertLimits | None = None) -> SessionMetrics:
    figures = session_figures(snap.tasks.values(), snap.created_at, snap.finished_at, snap.max_agents)
    records = list(snap.tasks.values())
    attempts = sorted((a for r in records for a in r.attempts if a.finished_at), key=lambda a: a.started_at)
    per_agent = agent_figures(
        (a.agent, (a.finished_at or a.started_at) - a.started_at, attempt_failed(a.outcome, a.error, a.exit_code))
        for a in attempts
    )
    ended = [r for r in records if r.status in (TaskState.SUCCEEDED, TaskState.FAILED, TaskState.INTERRUPTED)]
    tokens_in = _total(r.input_tokens for r in records)
    tokens_out = _total(r.output_tokens for r in records)
    cost = _total(r.cost_usd for r in records)
    prefixes = prefix_averages((a.agent, a.prefix) for a in attempts)
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
            name: AgentFigures(
                runs=runs, failures=failures, avg_duration_s=avg, prefix=_prefix_figures(prefixes.get(name)),
            )
            for name, (runs, failures, avg) in per_agent.items()
        },
        alerts=find_alerts(
            limits or AlertLimits(), error_rate=figures.error_rate,
            outcomes=[(a.agent, attempt_failed(a.outcome, a.error, a.exit_code)) for a in attempts],
        ),
    )


def _prefix_figures(average: PrefixAverage | None) -> PrefixFigures | None:
    if average is None:
        return None
    return PrefixFigures(
        runs=average.runs, avg_tokens=round(average.tokens, 1), avg_input_tokens=average.input_tokens,
        avg_cache_creation_input_tokens=average.cache_creation_input_tokens,
        avg_cache_read_input_tokens=average.cache_read_input_tokens,
    )


def _prefix_tokens(prefix: dict[str, int] | None) -> PrefixTokens | None:
    if prefix is None:
        return None
    return PrefixTokens(**prefix, total_tokens=sum(prefix.values()))


def _total(values: Iterable[float | int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(sum(known)) if known else None


def performance_metrics(store: Store, health: Health) -> PerformanceMetrics:
    """Machine health now, and figures over the last 1,000 recorded runs."""
    recent = store.recent_attempts(RECENT_ATTEMPTS)
    figures = attempt_figures(recent)
    tokens = store.token_totals()
    alerts = server_alerts(store, health, recent)
    total_in = _total(t[0] for t in tokens.values())
    total_out = _total(t[1] for t in tokens.values())
    total_cost = _total(t[2] for t in tokens.values())
    prefixes = prefix_averages((a.agent, a.prefix) for a in recent)
    return PerformanceMetrics(
        system_health=SystemHealth(
            cpu_percent=health.cpu_percent, memory_used_mb=health.memory_used_mb,
            memory_percent=health.memory_percent, active_agents=health.active_agents, queue_size=health.queue_size,
            error_rate=figures.error_rate, queue_reasons=health.queue_reasons,
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
                prefix=_prefix_figures(prefixes.get(name)),
            )
            for name, (runs, failures, avg) in figures.per_agent.items()
        },
        alerts=alerts,
        prefix=_prefix_figures(overall_prefix(prefixes)),
        input_tokens=_int(total_in),
        output_tokens=_int(total_out),
        cost_usd=round(total_cost, 6) if total_cost is not None else None,
    )


def _int(value: float | int | None) -> int | None:
    return int(value) if value is not None else None


# An answer lists at most this many tasks: ten thousand results would flood the caller's context
# (and take seconds to send). Past it, the tasks that need attention come first.
MAX_RESULT_ENTRIES = 200


def _listed(snap: SessionView) -> tuple[list[TaskRecord], int]:
    """The task records an answer lists, in plan order, and how many it leaves out (replicas are listed
    inside their subtask's result, not beside it)."""
    records = [r for r in snap.tasks.values() if r.replica_of is None]
    if len(records) <= MAX_RESULT_ENTRIES:
        return records, 0
    first = [r for r in records if r.status is not TaskState.SUCCEEDED] + [
        r for r in records if r.status is TaskState.SUCCEEDED
    ]
    keep = {r.task_id for r in first[:MAX_RESULT_ENTRIES]}
    return [r for r in records if r.task_id in keep], len(records) - MAX_RESULT_ENTRIES


def task_results(snap: SessionView, result_chars: int, total_chars: int) -> tuple[list[TaskResult], int]:
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
                output_json=record.output_json,
                flags=list(record.flags), qa=[QaCheck.model_validate(check) for check in record.qa],
                replicas=_replicas(snap, record.task_id, result_chars) if _has_replicas(snap, record) else None,
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
                prefix=_prefix_tokens(record.attempts[-1].prefix) if record.attempts else None,
                attempt_log=[
                    AttemptRecord(
                        number=a.number, agent=a.agent, started_at=iso(a.started_at),
                        finished_at=iso(a.finished_at), exit_code=a.exit_code, outcome=a.outcome,
                        error=a.error, prefix=_prefix_tokens(a.prefix),
                    )
                    for a in record.attempts
                ],
            )
        )
    return results, omitted


def _has_replicas(snap: SessionView, record: TaskRecord) -> bool:
    return f"{record.task_id}#1" in snap.tasks and snap.tasks[f"{record.task_id}#1"].replica_of == record.task_id


def _replicas(snap: SessionView, task_id: str, result_chars: int) -> list[ReplicaResult]:
    """Each replica of a subtask, its output cut to an even share of the per-result cap."""
    replicas = [r for r in snap.tasks.values() if r.replica_of == task_id]
    share = max(result_chars // max(len(replicas), 1), 0)
    listed = []
    for replica in replicas:
        shown = read_output(replica.kept, share)
        listed.append(ReplicaResult(
            task_id=replica.task_id, agent=replica.attempts[-1].agent if replica.attempts else replica.agent,
            status=replica.status.value, output=shown, output_truncated=len(shown) < replica.kept.chars,
            output_uri=task_uri(snap.id, replica.task_id), output_json=replica.output_json, error=replica.error,
            attempts=len(replica.attempts),
        ))
    return listed


def progress_status(
    snap: SessionView, result_chars: int, total_chars: int, *, with_metrics: bool = True
) -> ProgressStatus:
    """The session's progress; `with_metrics=False` leaves the figures out (a live display redraws often)."""
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
        ready=snap.ready if not ended else None,
        estimated_completion=iso(eta),
        performance_metrics=session_metrics(snap) if with_metrics else SessionMetrics(),
        results=results,
        results_omitted=omitted,
        **_counts(snap.tasks),
        **_spend_figures(snap),
    )


def _spend_figures(snap: SessionView) -> dict[str, Any]:
    """Forecast, spend and budget, the three a caller holds against each other (outputs.py)."""
    return {
        "forecast": ForecastFigures(**snap.forecast) if snap.forecast else None,
        "spent": SpendFigures(**snap.spent) if snap.spent else None,
        "budget": BudgetFigures(**snap.budget) if snap.budget else None,
    }


def coordination_result(snap: SessionView, result_chars: int, total_chars: int) -> CoordinationResult:
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
        **_spend_figures(snap),
    )


def structured_summary(snap: SessionView, limit: int, lines_per_task: int = 3) -> str:
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
