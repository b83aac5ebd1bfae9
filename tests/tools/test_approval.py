"""Forecast and approval through a real MCP client: a dry run shows the forecast; a launch forecast over the
threshold asks the user by elicitation where the client can be asked, and otherwise answers with the
forecast and the exact way to approve. Nothing runs unapproved.

Claude agents are the fake `claude`; with no runs seen, a run of a `sonnet` agent is priced from the
documented prior (planning/forecast.py): 30,000 tokens and $0.114.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.forecast import prior_run
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
REVIEWER = """---
name: reviewer
description: Reviews code for bugs
model: sonnet
---
You are a careful code reviewer.
"""
PER_RUN = prior_run("sonnet")


@pytest.fixture
def reviewer(agents: AgentFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))


def call(runs: int, **options: Any) -> dict[str, Any]:
    return {
        "task_description": "review everything",
        "subtasks": [{"id": f"r{i}", "description": f"Review part {i}", "agent_type": "reviewer"} for i in range(runs)],
        "options": {"wait_seconds": 30, **options},
    }


# The two ways a question travels: a request mid-call on the handshake-era protocol (2025-11-25, what
# Claude Code's stdio servers speak), an input-required answer and a second round on 2026-07-28.
ERAS = pytest.mark.parametrize("mode", ["legacy", "auto"])


class Asker:
    """The client's side of elicitation: answers with `action`, and keeps what it was asked."""

    def __init__(self, action: str, approve: bool = True) -> None:
        self.action, self.approve = action, approve
        self.messages: list[str] = []

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.messages.append(params.message)
        content = {"approve": self.approve} if self.action == "accept" else None
        return types.ElicitResult(action=self.action, content=content)  # type: ignore[arg-type]


async def test_a_dry_run_shows_the_forecast_of_runs_tokens_dollars_and_seconds(
    coordinator: Coordinator, reviewer: None
) -> None:
    async with Client(create_server(coordinator=coordinator)) as client:
        answer = await client.call_tool("coordinate_task", call(3, dry_run=True))
    forecast = (answer.structured_content or {})["forecast"]
    assert forecast["runs"] == 3
    assert forecast["tokens"] == 3 * PER_RUN.tokens
    assert forecast["usd"] == pytest.approx(3 * PER_RUN.usd)
    assert forecast["seconds"] > 0
    assert coordinator.sessions == {}


async def test_command_agents_cost_nothing_and_never_need_approval(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    subtasks = [{"id": "a", "description": "hello", "agent_type": "echo"}]
    async with Client(create_server(coordinator=coordinator)) as client:
        answer = await client.call_tool("coordinate_task", {
            "task_description": "x", "subtasks": subtasks, "options": {"approval_threshold_usd": 0},
        })
    result = answer.structured_content or {}
    assert result["status"] == "SUCCESS"
    assert result["forecast"] == {"runs": 1, "tokens": 0, "usd": 0.0, "seconds": result["forecast"]["seconds"]}


@ERAS
async def test_without_elicitation_an_over_threshold_launch_answers_with_the_forecast_and_how_to_approve(
    coordinator: Coordinator, reviewer: None, mode: str
) -> None:
    async with Client(create_server(coordinator=coordinator), mode=mode) as client:
        answer = await client.call_tool("coordinate_task", call(3, approval_threshold_usd=0.2))
        assert coordinator.sessions == {}  # nothing ran
        result = answer.structured_content or {}
        assert not answer.is_error
        assert result["approval_required"] is True
        assert result["forecast"]["usd"] == pytest.approx(3 * PER_RUN.usd)
        assert "over the approval threshold of $0.2" in result["next_step"]
        assert "options.approved=true" in result["next_step"]

        again = await client.call_tool("coordinate_task", call(3, approval_threshold_usd=0.2, approved=True))
    assert (again.structured_content or {})["status"] == "SUCCESS"


async def test_under_the_threshold_a_launch_runs_without_asking(coordinator: Coordinator, reviewer: None) -> None:
    asker = Asker("decline")
    async with Client(create_server(coordinator=coordinator), elicitation_callback=asker) as client:
        answer = await client.call_tool("coordinate_task", call(2, approval_threshold_usd=1))
    assert (answer.structured_content or {})["status"] == "SUCCESS"
    assert asker.messages == []


@ERAS
async def test_a_client_with_elicitation_is_asked_showing_the_forecast_and_accepting_runs_it(
    coordinator: Coordinator, reviewer: None, mode: str
) -> None:
    asker = Asker("accept")
    async with Client(create_server(coordinator=coordinator), elicitation_callback=asker, mode=mode) as client:
        answer = await client.call_tool("coordinate_task", call(3, approval_threshold_usd=0.2))
    result = answer.structured_content or {}
    assert result["status"] == "SUCCESS"
    assert len(asker.messages) == 1
    assert "3 agent run(s)" in asker.messages[0] and f"${3 * PER_RUN.usd:.2f}" in asker.messages[0]
    assert "approval threshold of $0.2" in asker.messages[0]
    assert result["spent"]["tokens"] > 0 and result["forecast"]["runs"] == 3


@ERAS
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_declining_or_cancelling_the_question_ends_the_call_with_nothing_run(
    coordinator: Coordinator, reviewer: None, action: str, mode: str
) -> None:
    asker = Asker(action)
    async with Client(create_server(coordinator=coordinator), elicitation_callback=asker, mode=mode) as client:
        answer = await client.call_tool("coordinate_task", call(3, approval_threshold_usd=0.2))
    result = answer.structured_content or {}
    assert len(asker.messages) == 1
    assert coordinator.sessions == {}
    assert result["status"] == "CANCELLED" and result["approval_required"] is False
    assert "declined: nothing ran and nothing was spent" in result["next_step"]


async def test_accepting_with_approve_false_is_a_no(coordinator: Coordinator, reviewer: None) -> None:
    asker = Asker("accept", approve=False)
    async with Client(create_server(coordinator=coordinator), elicitation_callback=asker) as client:
        answer = await client.call_tool("coordinate_task", call(3, approval_threshold_usd=0.2))
    assert coordinator.sessions == {}
    assert (answer.structured_content or {})["status"] == "CANCELLED"


async def test_the_engine_itself_refuses_an_unapproved_costly_launch(coordinator: Coordinator, reviewer: None) -> None:
    from parallel_coordinator.errors import ApprovalRequiredError
    from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

    options = coordinator.with_defaults(CoordinateOptions(approval_threshold_usd=0.2))
    subtasks = [Subtask(id=f"r{i}", description=f"Review {i}", agent_type="reviewer") for i in range(3)]
    with pytest.raises(ApprovalRequiredError, match=r"options\.approved=true"):
        await coordinator.start("x", coordinator.plan(subtasks, options), options)
    assert coordinator.sessions == {}


async def test_the_default_threshold_comes_from_the_configuration(
    coordinator: Coordinator, reviewer: None
) -> None:
    assert coordinator.with_defaults(None).approval_threshold_usd == coordinator.settings.approval_threshold_usd == 5.0
    # 44 sonnet runs from the prior are $5.02: over the default $5.
    async with Client(create_server(coordinator=coordinator)) as client:
        answer = await client.call_tool("coordinate_task", call(44))
    assert (answer.structured_content or {})["approval_required"] is True


async def test_a_plan_that_failed_is_not_remembered_for_the_next_call(
    coordinator: Coordinator, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    async with Client(create_server(coordinator=coordinator)) as client:
        first = await client.call_tool("coordinate_task", call(1))  # no reviewer agent yet
        assert first.is_error and "unknown agent 'reviewer'" in first.content[0].text  # type: ignore[union-attr]
        (agents.root / "reviewer.md").write_text(REVIEWER)
        second = await client.call_tool("coordinate_task", call(1))
    assert (second.structured_content or {})["status"] == "SUCCESS"
