"""A session with replicas or an output_schema, read back from the store and resumed (resume_session).

What the store keeps of each task (planning/plans.py node_spec) must be enough for plan_from_stored to
build the same graph again, and for the stored view to show what the live one showed.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.read_model import view_of_live, view_of_stored
from parallel_coordinator.server import create_server
from parallel_coordinator.views import task_results
from tests.conftest import AgentFactory
from tests.tools.answering import answering_agent, requests_seen

pytestmark = pytest.mark.anyio


async def coordinate(client: Client, subtasks: list[dict[str, Any]] | None, **options: Any) -> dict[str, Any]:
    answer = await client.call_tool("coordinate_task", {
        "task_description": "replicas", "subtasks": subtasks, "options": {"wait_seconds": 60, **options},
    })
    assert answer.structured_content is not None, answer.content
    return answer.structured_content


def result_of(content: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(r for r in content["results"] if r["task_id"] == task_id)


async def test_a_resumed_vote_merges_its_kept_replicas_again_and_runs_no_agent_for_the_merge(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    log = answering_agent(agents, "coder", ["red", "green", "blue", "(a fourth run)"])
    async with Client(create_server(coordinator=coordinator)) as client:
        first = await coordinate(client, [
            {"id": "pick", "description": "Pick a colour", "agent_type": "coder", "count": 3, "merge": "vote"},
        ])
        assert result_of(first, "pick")["status"] == "failed"  # a three-way tie
        resumed = await coordinate(client, None, resume_session=first["session_id"])

    pick = result_of(resumed, "pick")
    assert len(requests_seen(log)) == 3, "the merge of a resumed vote ran the agent"
    assert pick["status"] == "failed" and pick["error"].startswith("vote: a tie")
    assert [r["task_id"] for r in resumed["results"]] == ["pick"]  # replicas inside their subtask, as before


async def test_a_resumed_task_is_still_checked_against_its_output_schema(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    answering_agent(agents, "coder", ["not json", "still not json"])
    schema = {"type": "object", "required": ["answer"]}
    async with Client(create_server(coordinator=coordinator)) as client:
        first = await coordinate(client, [
            {"id": "solve", "description": "Solve it", "agent_type": "coder", "output_schema": schema,
             "retry_policy": {"max_attempts": 1, "backoff_seconds": 0}},
        ])
        assert result_of(first, "solve")["status"] == "failed"
        resumed = await coordinate(client, None, resume_session=first["session_id"])

    solve = result_of(resumed, "solve")
    assert solve["status"] == "failed", solve
    assert "output_schema" in (solve["error"] or "")


async def test_the_stored_answer_of_a_session_with_replicas_nests_them_as_the_live_one_does(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    answering_agent(agents, "coder", ["42", "42"])
    async with Client(create_server(coordinator=coordinator)) as client:
        content = await coordinate(client, [
            {"id": "solve", "description": "Solve it", "agent_type": "coder", "count": 2, "merge": "vote"},
        ])
    session = coordinator.sessions[content["session_id"]]
    stored = coordinator.store.load_session(session.id)
    assert stored is not None
    live_results, _ = task_results(view_of_live(session), 10_000, 100_000)
    stored_results, _ = task_results(view_of_stored(stored), 10_000, 100_000)
    assert [r.task_id for r in live_results] == ["solve"]
    assert [r.task_id for r in stored_results] == ["solve"]
    assert stored_results[0].replicas is not None and len(stored_results[0].replicas) == 2
