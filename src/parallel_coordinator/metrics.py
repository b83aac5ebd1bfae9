"""Performance figures: per session from its task records, server-wide from psutil and the stored attempts.

Parallel efficiency is busy agent-seconds divided by available slot-seconds over the wall time, where
the available slots are min(max_agents, number of tasks): a session cannot use more slots than tasks.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psutil

from parallel_coordinator.scheduler import TaskState
from parallel_coordinator.session import TaskRecord
from parallel_coordinator.store import StoredAttempt


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class SessionFigures:
    avg_task_time_s: float
    p95_task_time_s: float
    throughput_per_min: float
    error_rate: float
    parallel_efficiency: float


def session_figures(
    tasks: Iterable[TaskRecord], created_at: float, finished_at: float | None, max_agents: int
) -> SessionFigures:
    records = list(tasks)
    now = finished_at or time.time()
    wall = max(now - created_at, 1e-9)
    durations = [
        r.finished_at - r.started_at
        for r in records
        if r.status is TaskState.SUCCEEDED and r.started_at is not None and r.finished_at is not None
    ]
    attempts = [a for r in records for a in r.attempts if a.finished_at is not None]
    failed_attempts = [a for a in attempts if a.outcome != "cancelled" and (a.outcome != "exited" or a.error)]
    busy = sum(
        (a.finished_at or now) - a.started_at for r in records for a in r.attempts if a.started_at
    )
    slots = max(1, min(max_agents, len(records)))
    return SessionFigures(
        avg_task_time_s=round(sum(durations) / len(durations), 3) if durations else 0.0,
        p95_task_time_s=round(percentile(durations, 95), 3),
        throughput_per_min=round(len(durations) / wall * 60, 3),
        error_rate=round(len(failed_attempts) / len(attempts), 4) if attempts else 0.0,
        parallel_efficiency=round(min(1.0, busy / (slots * wall)), 4),
    )


class SystemSampler:
    """Machine CPU and memory; cpu_percent(None) measures since the previous call, so prime it once."""

    def __init__(self) -> None:
        psutil.cpu_percent(None)

    def sample(self) -> tuple[float, float, float]:
        """(cpu percent, memory used MB, memory percent) for the whole machine."""
        memory = psutil.virtual_memory()
        used_mb = (memory.total - memory.available) / (1024 * 1024)
        return psutil.cpu_percent(None), round(used_mb, 1), memory.percent


@dataclass(frozen=True)
class AttemptFigures:
    tasks_per_second: float
    avg_response_time_s: float
    p95_response_time_s: float
    success_rate: float
    error_rate: float
    parallel_efficiency: float
    per_agent: dict[str, tuple[int, int, float]]


def attempt_figures(attempts: Sequence[StoredAttempt]) -> AttemptFigures:
    """Figures over recorded attempts: response time is one attempt's wall time, start to reaped."""
    timed = [
        (a, a.started_at, a.finished_at) for a in attempts if a.started_at is not None and a.finished_at is not None
    ]
    if not timed:
        return AttemptFigures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, {})
    durations = [end - start for _, start, end in timed]
    succeeded = [a for a, _, _ in timed if a.outcome == "exited" and a.error is None]
    span = max(max(end for _, _, end in timed) - min(start for _, start, _ in timed), 1e-9)
    per_agent: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for (attempt, _, _), duration in zip(timed, durations, strict=True):
        per_agent[attempt.agent].append(duration)
        if attempt not in succeeded:
            failures[attempt.agent] += 1
    return AttemptFigures(
        tasks_per_second=round(len(succeeded) / span, 3),
        avg_response_time_s=round(sum(durations) / len(durations), 3),
        p95_response_time_s=round(percentile(durations, 95), 3),
        success_rate=round(len(succeeded) / len(timed), 4),
        error_rate=round(1 - len(succeeded) / len(timed), 4),
        parallel_efficiency=round(min(1.0, sum(durations) / (span * _peak_overlap(timed))), 4),
        per_agent={
            name: (len(values), failures[name], round(sum(values) / len(values), 3))
            for name, values in sorted(per_agent.items())
        },
    )


def _peak_overlap(spans: Sequence[tuple[StoredAttempt, float, float]]) -> int:
    """The most attempts that ran at the same moment: the parallelism actually available."""
    edges = sorted([(start, 1) for _, start, _ in spans] + [(end, -1) for _, _, end in spans])
    peak = current = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return max(peak, 1)
