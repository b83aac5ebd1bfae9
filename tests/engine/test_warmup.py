"""PromptWarmup, the pure state behind the warm-up: which agent's runs are held, and until when."""

from __future__ import annotations

from parallel_coordinator.engine.warmup import PromptWarmup


def test_the_first_run_holds_the_agents_others_until_it_answers() -> None:
    warmup = PromptWarmup(wait_s=5)
    warmup.started("reviewer", now=100)

    assert not warmup.may_start("reviewer", now=101)
    assert warmup.may_start("writer", now=101), "another agent is not held"
    warmup.answered("reviewer")
    assert warmup.may_start("reviewer", now=101)


def test_held_runs_go_when_the_wait_is_over_or_the_first_run_ends() -> None:
    waited, ended = PromptWarmup(wait_s=5), PromptWarmup(wait_s=5)
    for warmup in (waited, ended):
        warmup.started("reviewer", now=100)

    assert waited.next_release() == 105
    assert not waited.may_start("reviewer", now=104.9)
    assert waited.may_start("reviewer", now=105)
    assert waited.next_release() is None
    ended.ended("reviewer")
    assert ended.may_start("reviewer", now=100)


def test_once_warm_an_agent_is_never_held_again_in_the_session() -> None:
    warmup = PromptWarmup(wait_s=5)
    warmup.started("reviewer", now=100)
    warmup.answered("reviewer")
    warmup.started("reviewer", now=200)  # a later run, a retry

    assert warmup.may_start("reviewer", now=200)
    assert warmup.reason(now=200) is None


def test_the_reason_names_the_agent_and_the_time_left() -> None:
    warmup = PromptWarmup(wait_s=5)
    warmup.started("reviewer", now=100)

    reason = warmup.reason(now=102)
    assert reason is not None
    assert "'reviewer'" in reason and "at most 3.0 s more" in reason and "cache_warmup" in reason
