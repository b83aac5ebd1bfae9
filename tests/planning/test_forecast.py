"""The forecast of a plan: runs, tokens, dollars and seconds, from history per agent and per model, else the prior."""

from __future__ import annotations

import pytest

from parallel_coordinator.planning.estimates import DurationEstimator
from parallel_coordinator.planning.forecast import (
    PRIOR_INPUT_TOKENS,
    PRIOR_OUTPUT_TOKENS,
    PlannedRun,
    UsageHistory,
    forecast,
    prior_run,
    tier_of,
)
from parallel_coordinator.planning.graph import TaskGraph, TaskNode


def chain(*agents: str) -> TaskGraph:
    """t0 -> t1 -> ...: one task per agent, each depending on the one before."""
    return TaskGraph([
        TaskNode(id=f"t{i}", description="x", agent=agent, dependencies=(f"t{i - 1}",) if i else ())
        for i, agent in enumerate(agents)
    ])


def claude(agent: str, model: str | None = "sonnet", expected_s: float | None = None) -> PlannedRun:
    return PlannedRun(agent, model, costs_tokens=True, expected_s=expected_s)


def test_model_names_fall_into_their_price_tier_and_unknown_ones_into_the_dearest() -> None:
    assert tier_of("claude-sonnet-5-5") == tier_of("sonnet") == "sonnet"
    assert tier_of("claude-haiku-5-5") == "haiku"
    assert tier_of(None) == tier_of("inherit") == tier_of("some-new-model") == "opus"
    sonnet = prior_run("sonnet")
    assert sonnet.tokens == PRIOR_INPUT_TOKENS + PRIOR_OUTPUT_TOKENS
    assert sonnet.usd == pytest.approx((PRIOR_INPUT_TOKENS * 3 + PRIOR_OUTPUT_TOKENS * 15) / 1e6)
    assert prior_run("haiku").usd < sonnet.usd < prior_run(None).usd


def test_an_agent_with_no_history_is_priced_from_the_prior_and_named_as_such() -> None:
    graph = chain("a", "b")
    runs = {"t0": claude("a"), "t1": claude("b", "haiku")}
    result = forecast(graph, runs, UsageHistory(), DurationEstimator(default_s=10), slots=4, token_cap=None)
    assert result.runs == 2
    assert result.tokens == 2 * prior_run("sonnet").tokens
    assert result.usd == pytest.approx(prior_run("sonnet").usd + prior_run("haiku").usd)
    assert result.seconds == pytest.approx(20)  # a chain: one after the other
    assert result.from_prior == ("a", "b")
    assert "default prior for a, b" in result.describe()


def test_an_agents_own_runs_come_first_then_its_model_tiers() -> None:
    history = UsageHistory(alpha=0.5)
    history.observe("a", "claude-sonnet-5-5", 10_000, 0.10)
    history.observe("a", "claude-sonnet-5-5", 20_000, 0.20)
    assert history.per_run("a", "sonnet").tokens == pytest.approx(15_000)  # a moving average
    # Another sonnet agent, never run, is priced from what sonnet runs cost; an opus one from the prior.
    assert history.per_run("b", "sonnet").usd == pytest.approx(0.15)
    assert history.per_run("c", "opus") == prior_run("opus")


def test_runs_read_back_without_a_model_teach_only_their_agent() -> None:
    history = UsageHistory()
    history.seed([("a", None, 5_000, 0.05)])
    assert history.per_run("a", "sonnet").tokens == 5_000
    assert history.per_run("b", "opus") == prior_run("opus")


def test_command_runs_cost_nothing_and_a_run_is_expected_to_stop_at_its_token_budget() -> None:
    graph = chain("cmd", "big")
    history = UsageHistory()
    history.observe("big", "sonnet", 200_000, 2.0)
    runs = {"t0": PlannedRun("cmd", None, costs_tokens=False), "t1": claude("big")}
    result = forecast(graph, runs, history, DurationEstimator(), slots=4, token_cap=50_000)
    assert result.runs == 2
    assert result.tokens == 50_000
    assert result.usd == pytest.approx(0.5)  # the dollars scale down with the tokens
    assert result.from_prior == ()


def test_kept_tasks_are_not_forecast_and_a_synthesizer_runs_after_the_graph() -> None:
    graph = TaskGraph([TaskNode(id=f"t{i}", description="x", agent="a") for i in range(4)])
    runs = {f"t{i}": claude("a", expected_s=10) for i in range(4)}
    result = forecast(
        graph, runs, UsageHistory(), DurationEstimator(default_s=5), slots=2, token_cap=None,
        extra_runs=[claude("merge")], skip={"t0", "t1"}.__contains__,
    )
    assert result.runs == 3
    assert result.seconds == pytest.approx(10 + 5)  # two tasks on two slots at once, then the synthesizer
    assert result.tokens == 3 * prior_run("sonnet").tokens


def test_history_forgets_the_least_recently_seen_agents_past_its_bound() -> None:
    history = UsageHistory()
    for i in range(1_001):
        history.observe(f"agent{i}", None, 1_000, 0.01)
    assert not history.known("agent0")
    assert history.known("agent1") and history.known("agent1000")
