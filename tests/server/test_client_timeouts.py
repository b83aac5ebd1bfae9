"""What keeps long calls alive in real clients: a progress heartbeat, and waits under a minute by default.

Claude Code resets an MCP call's idle timer on each progress notification, and an agent may be silent
for minutes: the heartbeat is the server's `progress_update_interval_s` (configuration file:
parallel_config.progress_update_interval; a call may override it). Claude Desktop drops a call after
about a minute: what the server tells a model to wait stays under it.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

HEARTBEAT_S = 0.5
# "At least every few seconds", generously: a busy test machine may delay a beat, never skip ten.
LONGEST_GAP_S = 10 * HEARTBEAT_S
QUIET = "0/2 done, 2 running"
CLAUDE_DESKTOP_CUT_S = 60


@pytest.mark.parametrize("mode", ["legacy", "auto"])  # the handshake era (Claude Code's stdio) and 2026-07-28
async def test_a_waited_call_hears_progress_every_interval_while_its_agents_run_silently(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, mode: str
) -> None:
    gate = tmp_path / "gate"
    agents.script("silent", f"""
        import json, os, sys, time
        json.load(sys.stdin)
        while not os.path.exists({str(gate)!r}):  # no output, no progress, nearly no CPU
            time.sleep(0.05)
        print("done")
    """)
    coordinator.settings.progress_update_interval_s = HEARTBEAT_S  # the call leaves the interval to the server
    heard: list[tuple[float, str]] = []
    quiet_beats = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        heard.append((anyio.current_time(), message or ""))
        # Both agents started (one notification each), then three beats with nothing else happening.
        if sum(text.startswith(QUIET) for _, text in heard) >= 4:
            quiet_beats.set()

    outcome: list[CallToolResult] = []
    async with Client(create_server(coordinator=coordinator), mode=mode) as client:

        async def call() -> None:
            outcome.append(await client.call_tool("coordinate_task", {
                "task_description": "quiet work",
                "subtasks": [{"id": task, "description": "x", "agent_type": "silent"} for task in ("a", "b")],
                "options": {"wait_seconds": 120},
            }, progress_callback=on_progress))

        async with anyio.create_task_group() as group:
            group.start_soon(call)
            with anyio.fail_after(30):
                await quiet_beats.wait()
            gate.touch()

    assert outcome and outcome[0].structured_content is not None
    assert outcome[0].structured_content["status"] == "SUCCESS"
    quiet = [moment for moment, text in heard if text.startswith(QUIET)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(quiet)]
    assert max(gaps) <= LONGEST_GAP_S, f"a silent stretch of {max(gaps):.1f} s without a progress notification"


async def test_the_default_wait_and_every_wait_the_server_advises_stay_under_claude_desktops_minute(
    coordinator: Coordinator,
) -> None:
    async with Client(create_server(coordinator=coordinator)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        options = tools["coordinate_task"].input_schema["$defs"]["CoordinateOptions"]["properties"]
        assert options["wait_seconds"]["default"] < CLAUDE_DESKTOP_CUT_S
        prompt = await client.get_prompt("parallelize", {"task": "anything"})
        advice = prompt.messages[0].content.text  # type: ignore[union-attr]
    advised = [float(seconds) for seconds in re.findall(r"wait_seconds=(\d+(?:\.\d+)?)", advice)]
    assert advised and max(advised) < CLAUDE_DESKTOP_CUT_S
