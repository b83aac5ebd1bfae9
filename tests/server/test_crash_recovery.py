"""A server killed mid-session: its agents die, its finished results survive, the rest can be resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import anyio
import psutil
import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory
from tests.server.test_stdio import HANG_AND_REPORT

pytestmark = pytest.mark.anyio

# Hangs on its first run (reporting its pids through a FIFO), succeeds on any later run.
HANG_ONCE = """
    import json, os, subprocess, sys, time
    request = json.load(sys.stdin)
    marker = request["description"] + ".ran"
    if os.path.exists(marker):
        print("finished on the second try")
        sys.exit(0)
    open(marker, "w").close()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(request["description"], "w") as fifo:
        json.dump([os.getpid(), child.pid], fifo)
    time.sleep(600)
"""


def start_server(tmp_path: Path, agents: AgentFactory) -> subprocess.Popen[str]:
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root)}
    return subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )


def request(server: subprocess.Popen[str], message: dict[str, object]) -> None:
    assert server.stdin is not None
    server.stdin.write(json.dumps(message) + "\n")
    server.stdin.flush()


def reply(server: subprocess.Popen[str], message_id: int) -> dict[str, object]:
    assert server.stdout is not None
    while True:
        line = server.stdout.readline()
        assert line, "the server closed stdout"
        message: dict[str, object] = json.loads(line)
        if message.get("id") == message_id:
            return message


async def test_after_a_kill_9_finished_results_survive_and_resume_reruns_only_the_rest(
    tmp_path: Path, agents: AgentFactory
) -> None:
    agents.script("hang-once", HANG_ONCE)
    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    with start_server(tmp_path, agents) as server:
        request(server, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}})
        reply(server, 1)
        request(server, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        request(server, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "coordinate_task", "arguments": {
                "task_description": "survive a crash", "options": {"wait_seconds": 0},
                "subtasks": [
                    {"id": "done", "description": "x", "agent_type": "echo"},
                    {"id": "stuck", "description": str(fifo), "agent_type": "hang-once",
                     "dependencies": ["done"]},
                    {"id": "after", "description": "y", "agent_type": "echo", "dependencies": ["stuck"]},
                ]}}})
        session_id = reply(server, 2)["result"]["structuredContent"]["session_id"]  # type: ignore[index]
        pids = json.loads(fifo.read_text())  # "stuck" runs only once "done" has succeeded
        agent_tree = [psutil.Process(pid) for pid in pids]
        server.kill()
        server.wait()
        assert server.stdin is not None
        server.stdin.close()
    _, left = psutil.wait_procs(agent_tree, timeout=20)
    assert left == []

    settings = Settings(state_dir=tmp_path / "state", agent_dirs=[(agents.root, "env")], max_cpu_usage=100)
    async with Coordinator(settings) as coordinator, Client(create_server(coordinator=coordinator)) as client:
        status = (await client.call_tool("get_progress_status", {"session_id": session_id})).structured_content
        assert status is not None
        assert status["status"] == "PARTIAL"
        by_id = {r["task_id"]: r for r in status["results"]}
        assert by_id["done"]["status"] == "succeeded" and by_id["done"]["output"].strip() == "done done"
        assert by_id["stuck"]["status"] == "interrupted"
        assert by_id["after"]["status"] == "cancelled"

        resumed = (await client.call_tool("coordinate_task", {
            "task_description": "ignored when resuming",
            "options": {"resume_session": session_id, "wait_seconds": 60},
        })).structured_content
        assert resumed is not None
        assert resumed["status"] == "SUCCESS"
        assert resumed["resumed_from"] == session_id
        by_id = {r["task_id"]: r for r in resumed["results"]}
        assert by_id["done"]["attempts"] == 0  # kept, not run again
        assert by_id["stuck"]["output"].strip() == "finished on the second try"
        assert by_id["after"]["output"].strip() == "after done stuck<finished on the second try>"


async def test_a_cancelled_request_stops_waiting_but_not_the_session(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_AND_REPORT)
    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    async with Client(create_server(coordinator=coordinator)) as client:
        with anyio.CancelScope() as scope:

            async def cancel_once_running() -> None:
                await anyio.to_thread.run_sync(fifo.read_text)  # the agent is up
                scope.cancel()

            async with anyio.create_task_group() as group:
                group.start_soon(cancel_once_running)
                await client.call_tool("coordinate_task", {
                    "task_description": "long", "options": {"wait_seconds": 600},
                    "subtasks": [{"id": "h", "description": str(fifo), "agent_type": "hang"}],
                })
        assert scope.cancelled_caught
        (session,) = coordinator.sessions.values()
        assert session.status == "RUNNING"
        listing = await client.call_tool("get_progress_status", {"session_id": session.id})
        assert listing.structured_content is not None
        assert listing.structured_content["in_progress"] == 1
        await coordinator.cancel(session.id)
