"""The tools' annotations, pinned as a client sees them: Claude Code runs MCP tools in parallel only when
they are marked read-only (claude-code #14353), so the status, metrics and listing tools must stay so,
and `coordinate_task`, which starts agents, must not claim it."""

from __future__ import annotations

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server

pytestmark = pytest.mark.anyio


async def test_the_tool_annotations_a_client_sees_are_pinned(coordinator: Coordinator) -> None:
    async with Client(create_server(coordinator=coordinator)) as client:
        tools = (await client.list_tools()).tools
    seen = {
        tool.name: (
            None if tool.annotations is None else
            (tool.annotations.read_only_hint, tool.annotations.destructive_hint, tool.annotations.idempotent_hint)
        )
        for tool in tools
    }
    assert seen == {
        "coordinate_task": None,
        "get_progress_status": (True, None, None),
        "cancel_execution": (None, True, True),
        "get_performance_metrics": (True, None, None),
        "list_agents": (True, None, None),
        "list_sessions": (True, None, None),
        "get_session_view": (True, None, None),
    }
