"""Predictive timing: how long a task will take, and how long the rest of a session will take.

Per agent, an exponentially weighted moving average of its successful runs (recent runs count more);
before an agent has run, the task's `expected_duration`, else a default. The rest of a session takes
at least its remaining critical path and at least its remaining work spread over the free slots:
the larger of the two is the estimate (NOTES.md: critical-path-first scheduling comes close to it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from parallel_coordinator.planning.graph import TaskGraph


@dataclass
class DurationEstimator:
    alpha: float = 0.3
    default_s: float = 60.0
    _average: dict[str, float] = field(default_factory=dict)
    _runs: dict[str, int] = field(default_factory=dict)

    def observe(self, agent: str, seconds: float) -> None:
        previous = self._average.get(agent)
        self._average[agent] = seconds if previous is None else self.alpha * seconds + (1 - self.alpha) * previous
        self._runs[agent] = self._runs.get(agent, 0) + 1

    def seed(self, runs: Iterable[tuple[str, float]]) -> None:
        """Learn from past runs, oldest first."""
        for agent, seconds in runs:
            self.observe(agent, seconds)

    def estimate(self, agent: str, prior_s: float | None = None) -> float:
        seen = self._average.get(agent)
        if seen is not None:
            return seen
        return prior_s if prior_s is not None else self.default_s

    def known(self, agent: str) -> bool:
        return agent in self._average


def remaining_seconds(graph: TaskGraph, remaining: Mapping[str, float], slots: int) -> float:
    """Lower bound on the time left: max(critical path of the remaining work, remaining work / slots).

    `remaining` holds each task's remaining seconds: 0 for finished ones, the rest of its estimate
    for a running one, the whole estimate for one not started.
    """
    critical = max(graph.critical_paths(remaining).values(), default=0.0)
    return max(critical, sum(remaining.values()) / max(slots, 1))
