"""The server's health now: the machine, our queue, and the alerts they raise; sampled in the background.

The sampler reads CPU once a second (our processes' share only while sessions run), and while
sessions run it logs each new alert once and answers cancel requests from other servers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import anyio

from parallel_coordinator.config.settings import AlertLimits
from parallel_coordinator.engine.admission import Gate
from parallel_coordinator.engine.figures import attempt_failed, attempt_figures, find_alerts, memory_sample
from parallel_coordinator.engine.session import Session
from parallel_coordinator.state.store import Store, StoredAttempt

log = logging.getLogger(__name__)

_CPU_SAMPLE_S = 1.0
RECENT_ATTEMPTS = 1000  # server-wide figures are over this many of the latest runs


@dataclass(frozen=True)
class Health:
    cpu_percent: float
    memory_used_mb: float
    memory_percent: float
    active_agents: int
    queue_size: int
    queue_reasons: list[str]
    limits: AlertLimits


def server_alerts(store: Store, health: Health, recent: Sequence[StoredAttempt] | None = None) -> list[str]:
    """The alerts the last runs (`recent`, newest first; read when not given) and the machine raise now
    (get_performance_metrics shows the same)."""
    recent = store.recent_attempts(RECENT_ATTEMPTS) if recent is None else recent
    figures = attempt_figures(recent)
    oldest_first = list(reversed(recent))
    return find_alerts(
        health.limits, error_rate=figures.error_rate, cpu_percent=health.cpu_percent,
        memory_percent=health.memory_percent,
        outcomes=[(a.agent, attempt_failed(a.outcome, a.error, a.exit_code)) for a in oldest_first[-100:]],
        throughput_per_min=figures.tasks_per_second * 60 if health.active_agents else None,
    )


def health_now(gate: Gate, sessions: Sequence[Session], active_agents: int, limits: AlertLimits) -> Health:
    used_mb, percent = memory_sample()
    return Health(
        cpu_percent=gate.cpu_percent, memory_used_mb=used_mb, memory_percent=percent, active_agents=active_agents,
        queue_size=sum(s.scheduler.ready_count() for s in sessions),
        queue_reasons=sorted({s.queue_reason for s in sessions if s.queue_reason}), limits=limits,
    )


class Sampler:
    def __init__(
        self, gate: Gate, store: Store, health: Callable[[], Health], busy: Callable[[], bool],
        while_busy: Callable[[], Awaitable[None]],
    ) -> None:
        self.gate, self.store, self._health, self._busy, self._while_busy = gate, store, health, busy, while_busy
        self.sampled = anyio.Event()
        self._alerts: set[str] = set()

    async def next_sample(self) -> None:
        await self.sampled.wait()

    async def run(self) -> None:
        while True:
            busy = self._busy()
            self.gate.sample_cpu(ours=busy)
            self.sampled.set()
            self.sampled = anyio.Event()
            if busy:
                self._warn_about_alerts()
                await self._while_busy()  # a cancel here pauses sampling for its few seconds
            await anyio.sleep(_CPU_SAMPLE_S)

    def _warn_about_alerts(self) -> None:
        """Log each alert once, when it first appears."""
        current = set(server_alerts(self.store, self._health()))
        for alert in sorted(current - self._alerts):
            log.warning("alert: %s", alert)
        self._alerts = current

