"""The model an agent that leaves it open runs with: by task priority and agent priority, one tier up for quality."""

from __future__ import annotations

import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.runners.base import RunChoices
from parallel_coordinator.runners.claude import ClaudeRunner
from parallel_coordinator.runners.command import CommandRunner
from parallel_coordinator.runners.models import DEFAULT_MODELS, choose_model


def agent(**fields: object) -> AgentSpec:
    return AgentSpec.model_validate({"name": "a", "description": "d", "prompt": "p", **fields})


@pytest.mark.parametrize(("priority", "speed", "quality"), [
    (1, "opus", "opus"), (2, "sonnet", "opus"), (3, "sonnet", "opus"), (4, "haiku", "sonnet"), (5, "haiku", "sonnet"),
])
def test_the_tier_follows_the_tasks_priority_and_quality_moves_it_up_one(
    priority: int, speed: str, quality: str
) -> None:
    assert choose_model(agent(), priority, DEFAULT_MODELS, "speed") == speed
    assert choose_model(agent(), priority, DEFAULT_MODELS, "quality") == quality


def test_an_agent_that_names_its_model_keeps_it_in_either_mode() -> None:
    named = agent(model="claude-sonnet-4-5")
    assert choose_model(named, 5, DEFAULT_MODELS, "quality") == "claude-sonnet-4-5"
    assert choose_model(agent(model="inherit"), 5, DEFAULT_MODELS) == "haiku"


def test_the_agents_own_priority_counts_too() -> None:
    assert choose_model(agent(priority="critical"), 3, DEFAULT_MODELS) == "opus"
    assert choose_model(agent(priority="low"), 3, DEFAULT_MODELS) == "haiku"


def test_the_claude_runner_applies_the_choice_and_the_dollar_budget_and_the_command_runner_changes_nothing() -> None:
    choices = RunChoices(task_priority=4, priority_mode="quality", cost_budget_usd=0.5, models=DEFAULT_MODELS)
    run = ClaudeRunner().for_run(agent(), choices)
    assert run.model == "sonnet" and run.extra["maxBudgetUsd"] == 0.5
    plain = agent(runner="command", command=["true"])
    assert CommandRunner().for_run(plain, choices) is plain
