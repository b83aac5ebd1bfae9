"""Replicas (`count: N`) and how they merge (`all`, `vote`, `judge`), through a real MCP client.

The agents answer from a list, one answer per run (tests/tools/answering.py): what each replica says is
known, whichever of them runs first.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory
from tests.tools.answering import answering_agent, requests_seen

pytestmark = pytest.mark.anyio


async def coordinate(coordinator: Coordinator, subtasks: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    async with Client(create_server(coordinator=coordinator)) as client:
        answer = await client.call_tool("coordinate_task", {
            "task_description": "replicas", "subtasks": subtasks, "options": {"wait_seconds": 60, **options},
        })
    assert answer.structured_content is not None, answer.content
    return answer.structured_content


def result_of(content: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(r for r in content["results"] if r["task_id"] == task_id)


async def test_a_vote_takes_the_majority_answer_and_dependents_receive_it(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    log = answering_agent(agents, "coder", ["Answer: 42", "answer:   42", "Answer: 41"])
    content = await coordinate(coordinator, [
        {"id": "solve", "description": "Solve it", "agent_type": "coder", "count": 3, "merge": "vote"},
        {"id": "use", "description": "use it", "agent_type": "echo", "dependencies": ["solve"]},
    ])

    assert content["status"] == "SUCCESS", content
    solve = result_of(content, "solve")
    assert solve["output"].strip().casefold().replace(" ", "") == "answer:42"
    assert sorted(r["task_id"] for r in solve["replicas"]) == ["solve#1", "solve#2", "solve#3"]
    assert sorted(r["output"].strip() for r in solve["replicas"]) == ["Answer: 41", "Answer: 42", "answer:   42"]
    assert any("vote: 2 of 3 replicas gave this answer" in note for note in content["notes"])
    assert "42" in result_of(content, "use")["output"]
    assert [r["task_id"] for r in content["results"]] == ["solve", "use"]  # replicas are inside, not beside
    assert len(requests_seen(log)) == 3  # three runs: identical replicas are never one reused result


async def test_a_vote_without_a_majority_fails_the_task_saying_how_the_votes_fell(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    answering_agent(agents, "coder", ["red", "green", "blue"])
    content = await coordinate(coordinator, [
        {"id": "pick", "description": "Pick a colour", "agent_type": "coder", "count": 3, "merge": "vote"},
        {"id": "after", "description": "x", "agent_type": "echo", "dependencies": ["pick"]},
    ])

    pick = result_of(content, "pick")
    assert pick["status"] == "failed"
    assert pick["error"].startswith("vote: a tie among 3 replicas (1 x ")
    assert "no answer was picked" in pick["error"]
    assert result_of(content, "after")["status"] == "skipped"
    assert all(r["status"] == "succeeded" for r in pick["replicas"])


async def test_all_keeps_every_answer_labelled_and_counts_a_failed_replica_without_failing(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("sometimes", """
        import json, sys, os
        request = json.load(sys.stdin)
        if os.environ["PCOORD_TASK_ID"].endswith("#2"):
            sys.exit("replica two breaks")
        print("answer from " + os.environ["PCOORD_TASK_ID"])
    """)
    content = await coordinate(coordinator, [
        {"id": "draft", "description": "Draft it", "agent_type": "sometimes", "count": 3, "merge": "all",
         "retry_policy": {"max_attempts": 1, "backoff_seconds": 0}},
    ])

    draft = result_of(content, "draft")
    assert draft["status"] == "succeeded"
    assert "### Replica 1 (sometimes)\n\nanswer from draft#1" in draft["output"]
    assert "### Replica 3 (sometimes)\n\nanswer from draft#3" in draft["output"]
    assert "draft#2" not in draft["output"]
    assert [r["status"] for r in sorted(draft["replicas"], key=lambda r: r["task_id"])] == [
        "succeeded", "failed", "succeeded",
    ]
    assert content["status"] == "PARTIAL"  # a replica failed: said, not hidden


async def test_a_judge_gets_every_answer_and_its_pick_is_the_result(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    answering_agent(agents, "coder", ["version A", "version B"])
    judge_log = answering_agent(agents, "chief", ["version B, because it handles the empty case"])
    content = await coordinate(coordinator, [
        {"id": "write", "description": "Write parse()", "agent_type": "coder", "count": 2,
         "merge": {"judge": "chief"}},
    ])

    write = result_of(content, "write")
    assert write["status"] == "succeeded" and write["agent"] == "chief"
    assert write["output"].strip() == "version B, because it handles the empty case"
    (asked,) = requests_seen(judge_log)
    assert sorted(asked["context"].values()) == ["version A\n", "version B\n"]
    assert "Pick the best answer, or merge them" in asked["description"] and "Write parse()" in asked["description"]


async def test_replicas_count_against_the_sessions_agent_limit(coordinator: Coordinator, agents: AgentFactory) -> None:
    answering_agent(agents, "coder", ["a", "a", "a", "a"])
    content = await coordinate(coordinator, [
        {"id": "solve", "description": "Solve it", "agent_type": "coder", "count": 4, "merge": "vote"},
    ], max_agents=2)
    assert content["status"] == "SUCCESS"
    assert content["performance_metrics"]["peak_parallelism"] <= 2


async def test_merge_without_replicas_and_an_unknown_judge_are_refused_naming_the_value(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    async with Client(create_server(coordinator=coordinator)) as client:
        lonely = await client.call_tool("coordinate_task", {"task_description": "x", "subtasks": [
            {"id": "a", "description": "x", "agent_type": "echo", "merge": "vote"}]})
        unknown = await client.call_tool("coordinate_task", {"task_description": "x", "subtasks": [
            {"id": "a", "description": "x", "agent_type": "echo", "count": 2, "merge": {"judge": "cheif"}}]})
    assert lonely.is_error and "sets merge but count is 1" in lonely.content[0].text  # type: ignore[union-attr]
    assert unknown.is_error and "unknown agent 'cheif' in task 'a'" in unknown.content[0].text  # type: ignore[union-attr]
    assert coordinator.sessions == {}


async def test_a_dry_run_shows_every_replica_and_the_forecast_counts_their_runs(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    content = await coordinate(coordinator, [
        {"id": "solve", "description": "Solve it", "agent_type": "echo", "count": 3, "merge": "vote"},
    ], dry_run=True)
    assert [t["task_id"] for t in content["plan"]] == ["solve#1", "solve#2", "solve#3", "solve"]
    assert content["forecast"]["runs"] == 3
