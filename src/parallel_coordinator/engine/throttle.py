"""Rate-limit back-off per runner: fewer concurrent runs after a 429/529, more again as runs succeed.

Additive increase, multiplicative decrease (as TCP does): one rate limit halves the runner's
concurrency and pauses new starts, for as long as the limited run's stream asked (the API's
Retry-After, up to `max_wait_s`) or, when it named no wait, for a growing, jittered delay of our own;
each success adds one slot back. A start is admitted and counted in one step (`try_start`), so a
pause that ends lets in only as many runs as the limit, not everything that waited.
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
    # The longest wait a stream may ask of us. A per-minute API limit asks for less than a minute; a
    # subscription's window may open hours later, and waiting that out blind would hide the session:
    # past this, one run tries again (and is refused at once, costing nothing) every `max_wait_s`.
    max_wait_s: float = 300.0
    limit: float = field(init=False)
    running: int = 0  # runs admitted and not ended yet
    resume_at: float = 0.0
    consecutive: int = 0  # rounds of rate limits that named no wait since the last success
    rate_limits: int = 0
    asked_s: float | None = None  # the wait the last rate-limited run's stream asked for, if it named one

    def __post_init__(self) -> None:
        self.limit = float(self.max_limit)

    def admits(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now >= self.resume_at and self.running < max(1, int(self.limit))

    def try_start(self, now: float | None = None) -> bool:
        """Admit one more run and count it, if the throttle allows one now."""
        if not self.admits(now):
            return False
        self.running += 1
        return True

    def ended(self) -> None:
        """An admitted run is over (tell on_success or on_rate_limit first: they go by what was in flight)."""
        self.running = max(0, self.running - 1)

    def pause_left(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        return max(0.0, self.resume_at - now)

    def on_rate_limit(self, now: float | None = None, wait_s: float | None = None) -> float:
        """Record a rate limit, with the wait its stream asked for if any; returns the pause before the next start."""
        now = time.monotonic() if now is None else now
        self.rate_limits += 1
        # running still counts the run that was just limited: halve what was actually in flight.
        self.limit = max(1.0, min(self.limit, float(max(self.running, 1))) / 2)
        self.asked_s = wait_s if wait_s is not None and wait_s > 0 else None  # "0 s" would be no pause at all
        if self.asked_s is not None:
            pause = min(self.max_wait_s, self.asked_s)  # the API knows when it will take more: no guess
        else:
            # The guess doubles with each round of refusals that named no wait; refusals that arrive
            # during the pause are the same round (64 runs refused at once are one signal, not 64).
            if self.consecutive == 0 or now >= self.resume_at:
                self.consecutive += 1
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
