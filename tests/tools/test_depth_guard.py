"""The depth guard: a coordinator started inside an agent of a coordinator knows its depth (PCOORD_DEPTH)
and refuses to start sessions past the configured maximum, with a clear error; within it, it runs."""

from __future__ import annotations

import dataclasses

import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

CALL = {
    "task_description": "nested",
    "subtasks": [{"id": "a", "description": "hello", "agent_type": "echo"}],
    "options": {"wait_seconds": 30},
}


async def test_a_server_past_the_maximum_depth_refuses_to_start_a_session_and_says_why(
    settings: Settings, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_DEPTH", "2")
    async with Coordinator(dataclasses.replace(settings, max_depth=1)) as coordinator:
        async with Client(create_server(coordinator=coordinator)) as client:
            answer = await client.call_tool("coordinate_task", CALL)
        assert coordinator.sessions == {}
    assert answer.is_error
    text = answer.content[0].text  # type: ignore[union-attr]
    assert "runs at depth 2 (PCOORD_DEPTH=2" in text
    assert "past the maximum depth 1" in text and "PCOORD_MAX_DEPTH" in text


async def test_within_the_maximum_depth_a_nested_server_runs_its_session(
    settings: Settings, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_DEPTH", "1")
    async with (
        Coordinator(dataclasses.replace(settings, max_depth=1)) as coordinator,
        Client(create_server(coordinator=coordinator)) as client,
    ):
        answer = await client.call_tool("coordinate_task", CALL)
    assert answer.structured_content is not None
    assert answer.structured_content["status"] == "SUCCESS"
