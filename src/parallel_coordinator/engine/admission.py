"""Machine admission: new agents wait in the queue while our agents use too much CPU or memory is short.

Running agents are never killed for it, and at least one agent always runs. `max_cpu_usage` limits
what *our* processes use (this server's descendants: pool workers, supervisors and every agent tree),
as a percentage of all cores, so a machine busy with other programs does not serialise agents that
mostly wait on an API. The machine-wide figure is still sampled, for metrics. Available memory is read
when asked, at most every 0.1 s (parsing /proc/meminfo takes ~0.5 ms, and a burst asks once per agent).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

import psutil

_MEMORY_READ_S = 0.1


class CpuReading(Protocol):
    def cpu_percent(self) -> float:
        """Percent of all cores used since the last call (100 = every core busy)."""
        ...


class OwnProcesses:
    """CPU use of this process's descendants, with cached handles (cpu_percent needs the previous sample)."""

    def __init__(self) -> None:
        self._me = psutil.Process()
        self._known: dict[int, psutil.Process] = {}

    def cpu_percent(self) -> float:
        """Percent of all cores our descendants used since the last call (100 = every core busy)."""
        try:
            current = self._me.children(recursive=True)
        except psutil.Error:
            return 0.0
        total = 0.0
        seen: dict[int, psutil.Process] = {}
        for proc in current:
            known = self._known.get(proc.pid, proc)
            try:
                total += known.cpu_percent(None)  # 0.0 on the first call for a new process
            except psutil.Error:
                continue
            seen[proc.pid] = known
        self._known = seen
        return total / (psutil.cpu_count() or 1)


class Gate(Protocol):
    """What the engine asks of the machine before it starts an agent (MachineGate is the real one)."""

    cpu_percent: float
    own_cpu_percent: float

    def sample_cpu(self, *, ours: bool = True) -> float: ...

    def refusal(self, need_mb: float, running_agents: int) -> str | None: ...


@dataclass
class MachineGate:
    max_cpu_usage: float = 80.0
    cpu_percent: float = 0.0  # the whole machine's, for metrics
    own_cpu_percent: float = 0.0  # ours: what admission goes by
    _available_mb: float = 0.0
    _read_at: float = -1.0
    # Where our share of the CPU is read: this server's process tree, unless a test gives a fixed reading.
    own_cpu: CpuReading = field(default_factory=OwnProcesses)

    def sample_cpu(self, *, ours: bool = True) -> float:
        """Sample the machine's CPU, and ours when asked (a walk of our process tree: only worth it while we run)."""
        self.cpu_percent = psutil.cpu_percent(None)
        self.own_cpu_percent = self.own_cpu.cpu_percent() if ours else 0.0
        return self.cpu_percent

    @staticmethod
    def total_memory_mb() -> float:
        return psutil.virtual_memory().total / (1024 * 1024)

    def refusal(self, need_mb: float, running_agents: int) -> str | None:
        """Why a new agent needing `need_mb` must wait now, or None if it may start."""
        if running_agents == 0:
            return None  # one agent always runs: waiting could not free anything
        now = time.monotonic()
        if self._read_at < 0 or now - self._read_at >= _MEMORY_READ_S:
            self._available_mb = psutil.virtual_memory().available / (1024 * 1024)
            self._read_at = now
        available_mb = self._available_mb
        if available_mb < need_mb:
            return f"waiting for memory: {available_mb:.0f} MB available, the next agent needs about {need_mb:.0f} MB"
        if self.own_cpu_percent > self.max_cpu_usage:
            return (
                f"waiting for CPU: our agents use {self.own_cpu_percent:.0f}% of the machine's cores,"
                f" limit {self.max_cpu_usage:g}%"
            )
        return None
