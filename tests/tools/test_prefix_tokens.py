"""Every claude run reports its prefix (its first turn's prompt tokens): results and metrics show it, to a client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.server import create_server
from parallel_coordinator.views import task_results
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
# What the fake's first turn reports without a cache model: 1,200 uncached, 300 written, 4,000 read.
FIRST_TURN = {"input_tokens": 1200, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 4000}


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    answer = await client.call_tool(tool, arguments or {})
    assert not answer.is_error, answer.content
    assert answer.structured_content is not None
    return answer.structured_content


async def test_task_results_and_metrics_show_the_prefix_of_claude_runs(
    coordinator: Coordinator, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text("---\nname: reviewer\ndescription: Reviews\n---\nYou review.\n")
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    async with Client(create_server(coordinator=coordinator)) as client:
        result = await call(client, "coordinate_task", {
            "task_description": "review twice",
            "subtasks": [{"id": "a", "description": "review a", "agent_type": "reviewer"},
                         {"id": "b", "description": "review b", "agent_type": "reviewer"},
                         {"id": "c", "description": "echo c", "agent_type": "echo"}],
            "options": {"wait_seconds": 60},
        })
        metrics = await call(client, "get_performance_metrics")

    assert result["status"] == "SUCCESS", result
    by_task = {r["task_id"]: r for r in result["results"]}
    assert by_task["a"]["prefix"] == {**FIRST_TURN, "total_tokens": 5500}
    assert by_task["a"]["attempt_log"][0]["prefix"] == by_task["a"]["prefix"]
    assert by_task["c"]["prefix"] is None, "a command agent reports no prefix"
    session_figures = result["performance_metrics"]["agents"]["reviewer"]["prefix"]
    assert session_figures == {"runs": 2, "avg_tokens": 5500.0, "avg_input_tokens": 1200.0,
                               "avg_cache_creation_input_tokens": 300.0, "avg_cache_read_input_tokens": 4000.0}
    assert metrics["agents"]["reviewer"]["prefix"] == session_figures
    assert metrics["agents"]["echo"]["prefix"] is None
    assert metrics["prefix"] == session_figures

    stored = coordinator.store.load_session(result["session_id"])
    assert stored is not None
    read_back = {r.task_id: r for r in task_results(view_of_stored(stored), 100, 1000)[0]}
    assert read_back["a"].prefix is not None and read_back["a"].prefix.model_dump() == by_task["a"]["prefix"]
