"""What happens after an attempt, decided without I/O: retry after a delay, back off, move on, or stop.

engine/tasks.py carries a decision out (waits, starts the next attempt, moves the task to its next
agent); this module only says which, so every path is testable with no process and no event loop.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from parallel_coordinator.runners.base import RunResult

# Outcomes that running again cannot help: it could not start (missing command), or it spent its budget.
PERMANENT_REASONS = frozenset({"spawn_failed", "budget"})


@dataclass(frozen=True)
class Decision:
    """`succeeded` and `stop`: the task's run with this agent is over; `next_agent`: try the next
    fallback; `retry`: another attempt after `delay_s`; `rate_limited`: another attempt once the
    runner's throttle admits it, not counted as an attempt."""

    action: Literal["succeeded", "stop", "next_agent", "retry", "rate_limited"]
    delay_s: float = 0.0


@dataclass
class AttemptCounts:
    """Where one agent's attempts at one task stand."""

    max_attempts: int
    max_rate_limit_retries: int
    used: int = 0
    rate_limited: int = 0


def is_permanent(result: RunResult) -> bool:
    return result.details.get("reason") in PERMANENT_REASONS


def after_attempt(
    result: RunResult, counts: AttemptCounts, *, stopping: bool, backoff_s: float | None, max_backoff_s: float,
    jitter: float | None = None,
) -> Decision:
    """The decision after one attempt; updates `counts`. A rate limit's pause is the runner throttle's to
    set (RunnerThrottle.on_rate_limit); `jitter` in [0.5, 1.5] is drawn when not given."""
    if result.ok:
        return Decision("succeeded")
    if stopping and result.details.get("reason") in ("cancelled", "lost"):
        return Decision("stop")
    if result.rate_limited and counts.rate_limited < counts.max_rate_limit_retries:
        counts.rate_limited += 1
        return Decision("rate_limited")
    counts.used += 1
    if stopping or not result.retryable or is_permanent(result) or counts.used >= counts.max_attempts:
        return Decision("next_agent")
    return Decision("retry", backoff_delay(counts.used, backoff_s, max_backoff_s, jitter))


def backoff_delay(failures: int, base_s: float | None, max_s: float, jitter: float | None = None) -> float:
    """Exponential backoff with jitter before retry number `failures` (1 for the first retry)."""
    base = base_s if base_s is not None else 1.0
    factor = random.uniform(0.5, 1.5) if jitter is None else jitter
    return float(min(max_s, base * 2 ** (failures - 1)) * factor)
