"""Performance figures: per session from its task records, server-wide from psutil and the stored attempts.

Parallel efficiency is busy agent-seconds divided by available slot-seconds over the wall time, where
the available slots are min(max_agents, number of tasks): a session cannot use more slots than tasks.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import psutil

from parallel_coordinator.config.settings import AlertLimits
from parallel_coordinator.engine.session import TaskRecord
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.state.store import StoredAttempt


def attempt_failed(outcome: str, error: str | None, exit_code: int | None = None) -> bool:
    """A failed attempt, the one definition: it ended other than by exiting cleanly (status 0, no error).

    One the caller cancelled is not the agent's failure, and one still running has not failed yet.
    """
    if outcome in ("cancelled", "running"):
        return False
    return outcome != "exited" or error is not None or exit_code not in (0, None)


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
    failed_attempts = [a for a in attempts if attempt_failed(a.outcome, a.error, a.exit_code)]
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


def agent_figures(attempts: Iterable[tuple[str, float, bool]]) -> dict[str, tuple[int, int, float]]:
    """(agent, duration, failed) per attempt -> {agent: (runs, failures, average duration)}."""
    durations: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for agent, duration, failed in attempts:
        durations[agent].append(duration)
        failures[agent] += failed
    return {
        name: (len(values), failures[name], round(sum(values) / len(values), 3))
        for name, values in sorted(durations.items())
    }


@dataclass(frozen=True)
class PrefixAverage:
    """The first-turn prompt of some runs, averaged: uncached, cache writes, cache reads (tokens)."""

    runs: int
    input_tokens: float
    cache_creation_input_tokens: float
    cache_read_input_tokens: float

    @property
    def tokens(self) -> float:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


def prefix_averages(prefixes: Iterable[tuple[str, Mapping[str, int] | None]]) -> dict[str, PrefixAverage]:
    """(agent, prefix or None) per run -> {agent: its average prefix}, over the runs that reported one."""
    sums: dict[str, list[int]] = {}
    for agent, prefix in prefixes:
        if prefix is None:
            continue
        total = sums.setdefault(agent, [0, 0, 0, 0])
        total[0] += 1
        for i, key in enumerate(("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"), 1):
            total[i] += prefix.get(key, 0)
    return {
        agent: PrefixAverage(runs, round(inp / runs, 1), round(creation / runs, 1), round(read / runs, 1))
        for agent, (runs, inp, creation, read) in sorted(sums.items())
    }


def overall_prefix(averages: Mapping[str, PrefixAverage]) -> PrefixAverage | None:
    """Every run's prefix averaged together, from the per-agent averages; None when no run reported one."""
    runs = sum(a.runs for a in averages.values())
    if not runs:
        return None
    inp = sum(a.input_tokens * a.runs for a in averages.values())
    creation = sum(a.cache_creation_input_tokens * a.runs for a in averages.values())
    read = sum(a.cache_read_input_tokens * a.runs for a in averages.values())
    return PrefixAverage(runs, round(inp / runs, 1), round(creation / runs, 1), round(read / runs, 1))


def find_alerts(
    limits: AlertLimits,
    *,
    error_rate: float,
    outcomes: Sequence[tuple[str, bool]] = (),
    cpu_percent: float | None = None,
    memory_percent: float | None = None,
    throughput_per_min: float | None = None,
) -> list[str]:
    """The seed's alerts as flags. `outcomes` is (agent, failed) per attempt, oldest first."""
    alerts = []
    if error_rate > limits.max_error_rate:
        alerts.append(f"error rate {error_rate:.0%} is over {limits.max_error_rate:.0%}")
    if cpu_percent is not None and cpu_percent >= limits.max_cpu_percent:
        alerts.append(f"CPU at {cpu_percent:.0f}%, at or over the {limits.max_cpu_percent:g}% limit")
    if memory_percent is not None and memory_percent >= limits.max_memory_percent:
        alerts.append(f"memory at {memory_percent:.0f}%, at or over the {limits.max_memory_percent:g}% limit")
    if (
        limits.min_throughput_per_min is not None
        and throughput_per_min is not None
        and throughput_per_min < limits.min_throughput_per_min
    ):
        alerts.append(
            f"throughput {throughput_per_min:.2f} tasks/min is under {limits.min_throughput_per_min:g}"
        )
    recent: dict[str, list[bool]] = defaultdict(list)
    for agent, failed in outcomes:
        recent[agent].append(failed)
    for agent, history in sorted(recent.items()):
        tail = history[-limits.repeated_failures:]
        if len(tail) == limits.repeated_failures and all(tail):
            alerts.append(f"agent {agent!r} failed its last {limits.repeated_failures} runs")
    return alerts


def memory_sample() -> tuple[float, float]:
    """(memory used MB, memory percent) for the whole machine."""
    memory = psutil.virtual_memory()
    return round((memory.total - memory.available) / (1024 * 1024), 1), memory.percent


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
    """Figures over recorded attempts: response time is one attempt's wall time, start to reaped.

    Attempts the caller cancelled say nothing about the agents, so they are left out.
    """
    timed = [
        (a, a.started_at, a.finished_at)
        for a in attempts
        if a.started_at is not None and a.finished_at is not None and a.outcome != "cancelled"
    ]
    if not timed:
        return AttemptFigures(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, {})
    durations = [end - start for _, start, end in timed]
    ok = [not attempt_failed(a.outcome, a.error, a.exit_code) for a, _, _ in timed]
    succeeded = sum(ok)
    span = max(max(end for _, _, end in timed) - min(start for _, start, _ in timed), 1e-9)
    per_agent: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for (attempt, _, _), duration, fine in zip(timed, durations, ok, strict=True):
        per_agent[attempt.agent].append(duration)
        if not fine:
            failures[attempt.agent] += 1
    return AttemptFigures(
        tasks_per_second=round(succeeded / span, 3),
        avg_response_time_s=round(sum(durations) / len(durations), 3),
        p95_response_time_s=round(percentile(durations, 95), 3),
        success_rate=round(succeeded / len(timed), 4),
        error_rate=round(1 - succeeded / len(timed), 4),
        parallel_efficiency=round(min(1.0, sum(durations) / (span * _peak_overlap(timed))), 4),
        per_agent={
            name: (len(values), failures[name], round(sum(values) / len(values), 3))
            for name, values in sorted(per_agent.items())
        },
    )


def _peak_overlap(spans: Sequence[tuple[StoredAttempt, float, float]]) -> int:
    return max(peak_parallelism((start, end) for _, start, end in spans), 1)


def peak_parallelism(intervals: Iterable[tuple[float, float]]) -> int:
    """Peak parallelism, the one definition: the most agent runs (attempts) in flight at one moment.

    A live session counts it as attempts start and end (the same figure); a task waiting for an
    identical twin's result runs no agent and does not count.
    """
    spans = list(intervals)
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    peak = current = 0
    for _, delta in edges:  # at equal times, an end (-1) sorts first: touching runs do not overlap
        current += delta
        peak = max(peak, current)
    return peak

