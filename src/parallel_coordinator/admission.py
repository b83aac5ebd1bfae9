"""Machine admission: new agents wait in the queue while the CPU is busy or memory is short.

Running agents are never killed for it. CPU is sampled in the background (cpu_percent needs an
interval); available memory is read when asked, at most every 0.1 s (parsing /proc/meminfo takes
~0.5 ms, and a burst asks once per agent it starts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil

# What an agent is expected to need before we have seen it run: a Claude Code process holds
# 0.4 to 1.2 GB (NOTES.md); a command agent is usually a small script.
DEFAULT_NEED_MB = {"claude": 400.0, "command": 50.0}
_MEMORY_READ_S = 0.1


@dataclass
class MachineGate:
    max_cpu_usage: float = 80.0
    cpu_percent: float = 0.0
    _available_mb: float = 0.0
    _read_at: float = -1.0

    def sample_cpu(self) -> float:
        self.cpu_percent = psutil.cpu_percent(None)
        return self.cpu_percent

    def refusal(self, need_mb: float, running_agents: int) -> str | None:
        """Why a new agent needing `need_mb` must wait now, or None if it may start."""
        now = time.monotonic()
        if self._read_at < 0 or now - self._read_at >= _MEMORY_READ_S:
            self._available_mb = psutil.virtual_memory().available / (1024 * 1024)
            self._read_at = now
        available_mb = self._available_mb
        if available_mb < need_mb:
            return f"waiting for memory: {available_mb:.0f} MB available, the next agent needs about {need_mb:.0f} MB"
        # At least one agent always runs, so a machine busy with other work slows us but never stalls us.
        if running_agents > 0 and self.cpu_percent > self.max_cpu_usage:
            return f"waiting for CPU: {self.cpu_percent:.0f}% busy, limit {self.max_cpu_usage:g}%"
        return None
