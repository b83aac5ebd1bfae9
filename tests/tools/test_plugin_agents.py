"""A Claude Code plugin's agent through a real MCP client: listed with its plugin, run by its PLUGIN:AGENT name."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.agents.test_plugins import Layout

pytestmark = pytest.mark.anyio

ECHO = "import json, sys; print('echoed ' + json.load(sys.stdin)['task_id'])"


async def test_a_plugin_agent_is_listed_with_its_plugin_and_runs_by_its_namespaced_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = Layout(tmp_path)
    monkeypatch.setenv("HOME", str(layout.home))
    monkeypatch.setenv("PCOORD_AGENT_DIRS", "")
    monkeypatch.setenv("PCOORD_BUNDLED_AGENTS", "")
    monkeypatch.chdir(layout.project)
    script = tmp_path / "echo.py"
    script.write_text(ECHO)
    command = json.dumps([sys.executable, str(script)])
    path = layout.install("kit@tools", agents={
        "echo.md": f"---\nname: echo\ndescription: echoes\nrunner: command\ncommand: {command}\n---\nEcho.\n",
    })
    settings = Settings(state_dir=tmp_path / "state", max_cpu_usage=100)  # the standard search path
    async with Coordinator(settings) as coordinator, Client(create_server(coordinator=coordinator)) as client:
        listing = (await client.call_tool("list_agents", {})).structured_content
        answer = await client.call_tool("coordinate_task", {
            "task_description": "echo", "subtasks": [{"id": "t1", "description": "echo", "agent_type": "kit:echo"}],
            "options": {"wait_seconds": 60},
        })
        wrong = await client.call_tool("coordinate_task", {
            "task_description": "echo", "subtasks": [{"id": "t1", "description": "echo", "agent_type": "echo"}],
        })

    assert listing is not None
    [agent] = listing["agents"]
    assert (agent["name"], agent["source"], agent["plugin"]) == ("kit:echo", "plugin", "kit@tools")
    assert agent["path"] == str(path / "agents" / "echo.md")
    result = answer.structured_content
    assert result is not None and result["status"] == "SUCCESS", result
    assert result["results"][0]["agent"] == "kit:echo"
    assert result["results"][0]["output"].strip() == "echoed t1"
    assert wrong.is_error and "did you mean 'kit:echo'?" in json.dumps([c.model_dump() for c in wrong.content])
