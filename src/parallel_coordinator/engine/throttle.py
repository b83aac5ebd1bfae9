"""Rate-limit back-off per runner: fewer concurrent runs after a 429/529, more again as runs succeed.

Additive increase, multiplicative decrease (as TCP does): one rate limit halves the runner's
concurrency and pauses new starts for a growing, jittered delay; each success adds one slot back.
Shared by all sessions, because the limit belongs to the account behind the runner, not to a session.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field


@dataclass
class RunnerThrottle:
    max_limit: int = 64
    base_pause_s: float = 2.0
    max_pause_s: float = 60.0
    limit: float = field(init=False)
    running: int = 0
    resume_at: float = 0.0
    consecutive: int = 0
    rate_limits: int = 0

    def __post_init__(self) -> None:
        self.limit = float(self.max_limit)

    def admits(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now >= self.resume_at and self.running < max(1, int(self.limit))

    def pause_left(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(0.0, self.resume_at - now)

    def on_rate_limit(self, now: float | None = None) -> float:
        """Record a rate limit; returns the pause before the next start."""
        now = time.monotonic() if now is None else now
        self.rate_limits += 1
        self.consecutive += 1
        # running still counts the run that was just limited: halve what was actually in flight.
        self.limit = max(1.0, min(self.limit, float(max(self.running, 1))) / 2)
        pause = min(self.max_pause_s, self.base_pause_s * 2.0 ** (self.consecutive - 1))
        pause *= random.uniform(0.5, 1.0)
        self.resume_at = max(self.resume_at, now + pause)
        return pause

    def on_success(self) -> None:
        self.consecutive = 0
        self.limit = min(float(self.max_limit), self.limit + 1)

    @property
    def throttled(self) -> bool:
        return self.limit < self.max_limit or self.resume_at > time.monotonic()
