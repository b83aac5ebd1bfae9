"""An output_schema whose $ref leads nowhere: refused, or at worst the task's error, never the server's end."""

from __future__ import annotations

import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio


async def test_an_output_schema_with_a_dangling_ref_is_refused_naming_it_and_the_server_keeps_serving(
    settings: Settings, agents: AgentFactory
) -> None:
    agents.script("jsoner", "print('{}')")
    answers: list[tuple[bool, str]] = []
    crashed: list[BaseException] = []
    try:
        async with Coordinator(settings) as coordinator, Client(create_server(coordinator=coordinator)) as client:
            for _ in range(2):  # the second call finds the server still there
                answer = await client.call_tool("coordinate_task", {"task_description": "x", "subtasks": [
                    {"id": "a", "description": "x", "agent_type": "jsoner",
                     "output_schema": {"$ref": "#/$defs/Verdikt"}}], "options": {"wait_seconds": 30}})
                answers.append((answer.is_error, answer.content[0].text))  # type: ignore[union-attr]
    except Exception as exc:  # the crash this test is about, kept to assert on
        crashed.append(exc)
    assert crashed == []
    assert len(answers) == 2 and all("#/$defs/Verdikt" in text for _, text in answers), answers
