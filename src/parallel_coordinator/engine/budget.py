"""A session's spend (tokens, dollars, seconds) and its budget: when a budget is reached, the session stops.

Spend counts every attempt, retries and failed runs included, once each has ended, plus the tokens that
running claude agents have used so far (their streams report usage as they go; dollars only arrive with
a run's result). Reaching a budget stops the session as a cancel does, keeps what finished, and ends it
PARTIAL with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parallel_coordinator.engine.session import Session
    from parallel_coordinator.runners.base import RunResult
    from parallel_coordinator.schemas.inputs import SessionBudget


@dataclass
class Spend:
    tokens: int = 0  # of ended attempts
    usd: float = 0.0
    # Running attempts' tokens so far, by attempt id: at most one entry per running attempt.
    live_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int:
        return self.tokens + sum(self.live_tokens.values())

    def as_dict(self, seconds: float) -> dict[str, float | int]:
        return {"tokens": self.total_tokens, "usd": round(self.usd, 6), "seconds": round(seconds, 1)}


def run_tokens(result: RunResult) -> int:
    return (result.input_tokens or 0) + (result.output_tokens or 0)


def reached(budget: SessionBudget | None, spend: Spend, elapsed_s: float) -> str | None:
    """Why the budget is spent, in words, or None while it is not."""
    if budget is None:
        return None
    if budget.tokens is not None and spend.total_tokens >= budget.tokens:
        return f"session budget reached: {spend.total_tokens:,} tokens used of budget.tokens={budget.tokens:,}"
    if budget.usd is not None and spend.usd >= budget.usd:
        return f"session budget reached: ${spend.usd:.4f} spent of budget.usd={budget.usd:g}"
    if budget.seconds is not None and elapsed_s >= budget.seconds:
        return f"session budget reached: {elapsed_s:.1f} s of budget.seconds={budget.seconds:g}"
    return None


class BudgetGuard:
    """Adds each run's usage to its session's spend and stops the session the moment a budget is reached."""

    def __init__(self, request_stop: Callable[[Session, str], None]) -> None:
        self._request_stop = request_stop

    def on_tokens_so_far(self, session: Session, attempt_id: str, tokens: int) -> None:
        session.spend.live_tokens[attempt_id] = tokens
        self.check(session)

    def on_attempt_ended(self, session: Session, result: RunResult, streamed_tokens: int | None = None) -> None:
        """A run's usage from its result; a run killed before its result counts what its stream reported."""
        session.spend.tokens += run_tokens(result) or streamed_tokens or 0
        session.spend.usd += result.cost_usd or 0.0
        self.check(session)

    def tokens_left(self, session: Session) -> int | None:
        """What one more run may use before the session's token budget is spent (a cap for its supervisor)."""
        cap = session.policy.budget.tokens if session.policy.budget is not None else None
        return None if cap is None else max(cap - session.spend.total_tokens, 1)

    def check(self, session: Session) -> None:
        if session.budget_reason is not None or session.stop_reason is not None:
            return
        reason = reached(session.policy.budget, session.spend, time.time() - session.created_at)
        if reason is not None:
            # Set at once, not when the stop task runs: a retry about to start must see it.
            session.budget_reason = session.stop_reason = reason
            session.stopped.set()
            self._request_stop(session, reason)
