"""What happens after an attempt, decided with no process and no event loop."""

from __future__ import annotations

import pytest

from parallel_coordinator.engine.decisions import AttemptCounts, after_attempt, backoff_delay
from parallel_coordinator.runners.base import RunResult


def decide(result: RunResult, counts: AttemptCounts, *, stopping: bool = False) -> str:
    return after_attempt(result, counts, stopping=stopping, backoff_s=1.0, max_backoff_s=60.0, jitter=1.0).action


def test_a_success_ends_the_agents_attempts() -> None:
    counts = AttemptCounts(max_attempts=3, max_rate_limit_retries=2)
    assert decide(RunResult(ok=True), counts) == "succeeded"
    assert counts.used == 0


def test_a_failure_is_retried_after_an_exponential_backoff_until_attempts_run_out() -> None:
    counts = AttemptCounts(max_attempts=3, max_rate_limit_retries=2)
    first = after_attempt(RunResult(ok=False), counts, stopping=False, backoff_s=2.0, max_backoff_s=60.0, jitter=1.0)
    second = after_attempt(RunResult(ok=False), counts, stopping=False, backoff_s=2.0, max_backoff_s=60.0, jitter=1.0)
    assert (first.action, first.delay_s) == ("retry", 2.0)
    assert (second.action, second.delay_s) == ("retry", 4.0)
    assert decide(RunResult(ok=False), counts) == "next_agent"
    assert counts.used == 3


def test_a_rate_limited_attempt_does_not_use_up_an_attempt_until_its_own_limit() -> None:
    counts = AttemptCounts(max_attempts=1, max_rate_limit_retries=2)
    limited = RunResult(ok=False, rate_limited=True)
    assert [decide(limited, counts) for _ in range(2)] == ["rate_limited", "rate_limited"]
    assert counts.used == 0
    assert decide(limited, counts) == "next_agent"  # past its rate-limit retries it counts as a failure


@pytest.mark.parametrize("result", [
    RunResult(ok=False, retryable=False),
    RunResult(ok=False, details={"reason": "spawn_failed"}),
    RunResult(ok=False, details={"reason": "budget"}),
])
def test_what_running_again_cannot_help_moves_to_the_next_agent_at_once(result: RunResult) -> None:
    counts = AttemptCounts(max_attempts=5, max_rate_limit_retries=2)
    assert decide(result, counts) == "next_agent"
    assert counts.used == 1


def test_an_attempt_cancelled_by_a_stop_ends_the_task_and_a_failure_during_a_stop_is_not_retried() -> None:
    counts = AttemptCounts(max_attempts=5, max_rate_limit_retries=2)
    assert decide(RunResult(ok=False, details={"reason": "cancelled"}), counts, stopping=True) == "stop"
    assert decide(RunResult(ok=False, details={"reason": "lost"}), counts, stopping=True) == "stop"
    assert decide(RunResult(ok=False), counts, stopping=True) == "next_agent"


def test_a_lost_worker_outside_a_stop_is_retried_like_any_failure() -> None:
    counts = AttemptCounts(max_attempts=2, max_rate_limit_retries=2)
    assert decide(RunResult(ok=False, details={"reason": "lost"}), counts) == "retry"


def test_backoff_is_capped_and_jittered_between_half_and_one_and_a_half() -> None:
    assert backoff_delay(10, 1.0, 30.0, jitter=1.0) == 30.0
    assert backoff_delay(1, None, 60.0, jitter=0.5) == 0.5  # no backoff given: one second base
    assert all(0.5 <= backoff_delay(1, 1.0, 60.0) <= 1.5 for _ in range(50))
