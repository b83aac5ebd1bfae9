"""Decomposition of a plain task by the planner (a fake `claude` answering recorded plans)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory
from tests.engine.test_claude_agents import FAKE_CLAUDE
from tests.tools.test_approval import REVIEWER, Asker

pytestmark = pytest.mark.anyio

GOOD = {"subtasks": [
    {"id": "gather", "description": "collect the facts", "agent_type": "echo"},
    {"id": "write", "description": "write it up", "agent_type": "echo", "dependencies": ["gather"]},
]}
UNKNOWN_AGENT = {"subtasks": [
    {"id": "audit", "description": "test agent echo, please", "agent_type": "security-wizard"},
]}
CYCLE = {"subtasks": [
    {"id": "a", "description": "x", "agent_type": "echo", "dependencies": ["b"]},
    {"id": "b", "description": "y", "agent_type": "echo", "dependencies": ["a"]},
]}


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as connected:
        yield connected


@pytest.fixture
def planner_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Queue the fake claude's answers (plans as JSON, or raw text), one per planner run."""
    record = tmp_path / "planner-run.json"
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))

    def queue(*answers: object) -> Path:
        lines = []
        for i, answer in enumerate(answers):
            path = tmp_path / f"answer-{i}.txt"
            path.write_text(answer if isinstance(answer, str) else "```json\n" + json.dumps(answer) + "\n```")
            lines.append(f"answer:{path}")
        sequence = tmp_path / "sequence"
        sequence.write_text("\n".join(lines) + "\n")
        monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
        return record

    return queue


async def plan_and_run(client: Client, **options: object) -> Any:
    result = await client.call_tool("coordinate_task", {
        "task_description": "Write a short report on the facts", "options": {"wait_seconds": 60, **options},
    })
    return result


async def test_a_plain_task_is_planned_into_a_graph_and_run(client: Client, planner_answers: Any) -> None:
    record = planner_answers(GOOD)
    result = await plan_and_run(client)
    content = result.structured_content
    assert content is not None and content["status"] == "SUCCESS", result.content
    assert [r["task_id"] for r in content["results"]] == ["gather", "write"]
    assert content["results"][1]["output"].strip() == "write done gather<gather done>"
    assert "planned by pcoord-planner into 2 subtasks" in content["notes"]
    run = json.loads(record.read_text())
    assert "--json-schema" in run["argv"]
    assert "Write a short report on the facts" in run["stdin"] and "- echo: test agent echo" in run["stdin"]


async def test_a_dry_run_returns_the_planned_graph_without_running_it(
    client: Client, coordinator: Coordinator, planner_answers: Any
) -> None:
    planner_answers(GOOD)
    content = (await plan_and_run(client, dry_run=True)).structured_content
    assert content is not None
    assert [(t["task_id"], t["dependencies"]) for t in content["plan"]] == [("gather", []), ("write", ["gather"])]
    assert coordinator.sessions == {}


async def test_an_unknown_agent_in_a_plan_is_repaired_by_routing(client: Client, planner_answers: Any) -> None:
    planner_answers(UNKNOWN_AGENT)
    content = (await plan_and_run(client)).structured_content
    assert content is not None and content["status"] == "SUCCESS"
    assert content["results"][0]["agent"] == "echo"
    assert any("unknown agent 'security-wizard'" in note for note in content["notes"])
    assert any(note.startswith("routed to echo: matched") for note in content["notes"])


async def test_a_plan_with_a_cycle_is_sent_back_once_with_the_error(client: Client, planner_answers: Any) -> None:
    record = planner_answers(CYCLE, GOOD)
    content = (await plan_and_run(client)).structured_content
    assert content is not None and content["status"] == "SUCCESS"
    second_prompt = json.loads(record.read_text())["stdin"]
    assert "Your previous plan was rejected: the dependencies form a cycle" in second_prompt


async def test_a_plan_with_a_cycle_twice_is_refused_naming_the_cycle(client: Client, planner_answers: Any) -> None:
    planner_answers(CYCLE, CYCLE)
    result = await plan_and_run(client)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert ("rejected twice" in text and "a -> b -> a" in text) or "b -> a -> b" in text


async def test_a_garbage_answer_sends_the_whole_task_to_the_best_agent(client: Client, planner_answers: Any) -> None:
    planner_answers("I would rather not plan today.")
    content = (await plan_and_run(client)).structured_content
    assert content is not None and content["status"] == "SUCCESS"
    assert [r["task_id"] for r in content["results"]] == ["task"]
    assert any("the planner answered without a plan" in note for note in content["notes"])


async def test_without_claude_the_whole_task_goes_to_the_best_agent_and_says_so(
    client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PCOORD_CLAUDE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-claude-here"))
    content = (await plan_and_run(client)).structured_content
    assert content is not None and content["status"] == "SUCCESS"
    assert any(note.startswith("no planner available") for note in content["notes"])
    assert any(note.startswith("routed to ") for note in content["notes"])


REVIEW_PLAN = {"subtasks": [{"id": "review", "description": "review the facts", "agent_type": "reviewer"}]}
OTHER_PLAN = {"subtasks": [{"id": "other", "description": "something else", "agent_type": "echo"}]}


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_plan_shown_for_approval_is_the_plan_that_runs(
    coordinator: Coordinator, agents: AgentFactory, planner_answers: Any, mode: str
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    planner_answers(REVIEW_PLAN, OTHER_PLAN)  # a second planner run would plan something else
    asker = Asker("accept")
    async with Client(create_server(coordinator=coordinator), elicitation_callback=asker, mode=mode) as client:
        result = await plan_and_run(client, approval_threshold_usd=0)
    content = result.structured_content
    assert content is not None and content["status"] == "SUCCESS", result.content
    assert [r["task_id"] for r in content["results"]] == ["review"]
    assert len(asker.messages) == 1 and "1 agent run(s)" in asker.messages[0]


async def test_without_elicitation_the_plan_approved_by_a_second_call_is_the_plan_that_was_shown(
    coordinator: Coordinator, agents: AgentFactory, planner_answers: Any
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    planner_answers(REVIEW_PLAN, OTHER_PLAN)  # a second planner run would plan something else
    async with Client(create_server(coordinator=coordinator)) as client:  # no elicitation: the answer asks
        shown = (await plan_and_run(client, approval_threshold_usd=0)).structured_content
        assert shown is not None and shown["approval_required"] is True
        assert [t["task_id"] for t in shown["plan"]] == ["review"]
        ran = (await plan_and_run(client, approval_threshold_usd=0, approved=True)).structured_content
    assert ran is not None
    assert [r["task_id"] for r in ran["results"]] == ["review"], ran["notes"]


async def test_a_dry_run_shows_the_plan_with_the_planners_re_rank_of_its_routed_subtasks(
    client: Client, coordinator: Coordinator, planner_answers: Any
) -> None:
    # The decomposition names an unknown agent, so 'audit' is routed (to echo, by its words), then re-ranked.
    record = planner_answers(UNKNOWN_AGENT, {"choices": [{"id": "audit", "agent": "failer", "reason": "it fits"}]})
    content = (await plan_and_run(client, dry_run=True)).structured_content
    assert content is not None
    assert [(t["task_id"], t["agent"]) for t in content["plan"]] == [("audit", "failer")]
    expected = "routed to failer by the planner from echo, failer: it fits"
    assert any(note.startswith(expected) for note in content["notes"]), content["notes"]
    assert "## Subtask 'audit'" in json.loads(record.read_text())["stdin"]
    assert coordinator.sessions == {}
