"""list_agents through a real MCP client when the server finds no agent: the same help as `pcoord agents`."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio


async def test_an_empty_listing_carries_where_the_server_looked_and_how_to_add_an_agent(tmp_path: Path) -> None:
    nowhere = tmp_path / "no-agents-here"
    settings = Settings(state_dir=tmp_path / "state", agent_dirs=[(nowhere, "env")], max_cpu_usage=100)
    async with Coordinator(settings) as coordinator, Client(create_server(coordinator=coordinator)) as client:
        listing = (await client.call_tool("list_agents", {})).structured_content
    assert listing is not None
    assert listing["agents"] == [] and listing["diagnostics"] == []
    assert f"1. {nowhere}  (env, from PCOORD_AGENT_DIRS: does not exist)" in listing["help"]
    assert "pcoord init" in listing["help"] and "PCOORD_BUNDLED_AGENTS=1" in listing["help"]


async def test_a_listing_with_agents_carries_no_help(tmp_path: Path, agents: AgentFactory) -> None:
    settings = Settings(state_dir=tmp_path / "state", agent_dirs=[(agents.root, "env")], max_cpu_usage=100)
    async with Coordinator(settings) as coordinator, Client(create_server(coordinator=coordinator)) as client:
        listing = (await client.call_tool("list_agents", {})).structured_content
    assert listing is not None
    assert {agent["name"] for agent in listing["agents"]} == {"echo", "failer"}
    assert listing["help"] is None
