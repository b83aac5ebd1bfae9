"""`pcoord serve` as a real subprocess over stdio: a real client, a clean wire, agents gone on exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import AgentFactory
from tests.server.test_subscriptions import Updates, gated_agent, next_uri

pytestmark = pytest.mark.anyio


def server_params(state: Path, agents: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "parallel_coordinator", "serve"],
        env={"PCOORD_STATE_DIR": str(state), "PCOORD_AGENT_DIRS": str(agents), "HOME": str(state / "home")},
    )


async def test_a_stdio_client_runs_a_graph_through_the_server_process(tmp_path: Path, agents: AgentFactory) -> None:
    async with Client(server_params(tmp_path / "state", agents.root)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "coordinate_task" in names
        result = await client.call_tool("coordinate_task", {
            "task_description": "diamond over stdio",
            "subtasks": [
                {"id": "a", "description": "root", "agent_type": "echo"},
                {"id": "b", "description": "left", "agent_type": "echo", "dependencies": ["a"]},
                {"id": "c", "description": "right", "agent_type": "echo", "dependencies": ["a"]},
                {"id": "d", "description": "join", "agent_type": "echo", "dependencies": ["b", "c"]},
            ],
            "options": {"wait_seconds": 60},
        })
        assert not result.is_error, result.content
        assert result.structured_content is not None
        assert result.structured_content["status"] == "SUCCESS"
        session_id = result.structured_content["session_id"]

    # A new server process on the same state directory still knows the finished session.
    async with Client(server_params(tmp_path / "state", agents.root)) as client:
        status = await client.call_tool("get_progress_status", {"session_id": session_id})
        assert status.structured_content is not None
        assert status.structured_content["status"] == "SUCCESS"
        assert status.structured_content["completed"] == 4


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # resources/subscribe's era
async def test_a_handshake_era_stdio_client_is_told_when_its_session_changes(
    tmp_path: Path, agents: AgentFactory
) -> None:
    gated_agent(agents, tmp_path / "gate")
    with Updates() as updates:
        params = server_params(tmp_path / "state", agents.root)
        async with Client(params, mode="legacy", message_handler=updates.handler) as client:
            started = await client.call_tool("coordinate_task", {
                "task_description": "followed", "subtasks": [{"id": "a", "description": "x", "agent_type": "gated"}],
                "options": {"wait_seconds": 0},
            })
            assert started.structured_content is not None
            session_id = started.structured_content["session_id"]
            task_uri = f"pcoord://sessions/{session_id}/tasks/a"
            await client.subscribe_resource(task_uri)
            (tmp_path / "gate").touch()
            assert await next_uri(updates.received, lambda uri: uri == task_uri) == [task_uri]


async def test_a_running_answer_over_stdio_says_a_one_shot_client_ends_the_session_and_how_to_follow_it(
    tmp_path: Path, agents: AgentFactory
) -> None:
    gated_agent(agents, tmp_path / "gate")
    async with Client(server_params(tmp_path / "state", agents.root)) as client:
        started = await client.call_tool("coordinate_task", {
            "task_description": "left running", "subtasks": [{"id": "a", "description": "x", "agent_type": "gated"}],
            "options": {"wait_seconds": 0},
        })
        assert started.structured_content is not None and started.structured_content["status"] == "RUNNING"
        step = started.structured_content["next_step"]
        assert "get_progress_status" in step and "the MCP Inspector's CLI" in step
        assert "pcoord serve --transport http" in step
        (tmp_path / "gate").touch()


def test_stdout_carries_nothing_but_protocol_messages(tmp_path: Path, agents: AgentFactory) -> None:
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "wire-check", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "coordinate_task", "arguments": {
                "task_description": "wire", "subtasks": [{"id": "a", "description": "x", "agent_type": "nope"}]}}},
        {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "coordinate_task", "arguments": {
                "task_description": "wire", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
                "options": {"wait_seconds": 60}}}},
    ]
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root)}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        server.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        server.stdin.flush()
        replies: list[dict[str, object]] = []
        while not any(reply.get("id") == 4 for reply in replies):
            line = server.stdout.readline()
            assert line, "the server closed stdout before answering"
            replies.append(json.loads(line))  # every line must be a JSON message
        server.stdin.close()
        assert server.wait(timeout=30) == 0
        assert server.stdout.read() == ""
    assert all(reply.get("jsonrpc") == "2.0" for reply in replies)
    by_id: dict[object, Any] = {reply["id"]: reply for reply in replies if "id" in reply}
    assert by_id[3]["result"]["isError"] is True
    assert "unknown agent 'nope'" in by_id[3]["result"]["content"][0]["text"]
    assert by_id[4]["result"]["structuredContent"]["status"] == "SUCCESS"


def raw(message: dict[str, Any]) -> bytes:
    return (json.dumps(message) + "\n").encode()


HANDSHAKE = raw({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}) + raw(
    {"jsonrpc": "2.0", "method": "notifications/initialized"})

DEEP = "[" * 250 + "]" * 250
UNREADABLE = [
    # (raw line, the id the answer must carry, the error code)
    ('{"jsonrpc": "2.0", "id": 10, "method": "tools/call", "params": {"name": "list_agents", "arguments": {"x": '
     + DEEP + "}}}", 10, -32700),
    ('{"jsonrpc": "2.0", "id": "eleven", "method": "tools/list", "params": {"cursor": "\\ud800"}}', "eleven", -32700),
    ('{"jsonrpc": "2.0", "id": 12, "method": "ping", "params": ' + "[" * 5_000 + "]" * 5_000 + "}", None, -32700),
    ("this is not JSON at all", None, -32700),
    ('{"jsonrpc": "2.0", "id": 13, "method": 5}', 13, -32600),
]


async def test_an_unreadable_line_gets_a_json_rpc_error_and_the_server_serves_on(tmp_path: Path) -> None:
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(tmp_path / "none")}
    async with await anyio.open_process(
        [sys.executable, "-m", "parallel_coordinator", "serve"], env=env, stderr=subprocess.DEVNULL
    ) as server:
        assert server.stdin is not None and server.stdout is not None
        lines = BufferedByteReceiveStream(server.stdout)

        async def reply() -> dict[str, Any]:
            answer: dict[str, Any] = json.loads(await lines.receive_until(b"\n", 1 << 24))
            return answer

        with anyio.fail_after(60):
            await server.stdin.send(HANDSHAKE)
            assert (await reply())["id"] == 1
            for line, request_id, code in UNREADABLE:
                await server.stdin.send(line.encode() + b"\n")
                answer = await reply()
                assert answer["jsonrpc"] == "2.0" and answer["id"] == request_id, (line[:80], answer)
                assert answer["error"]["code"] == code, answer
                assert answer["error"]["message"].startswith("Parse error: Invalid JSON" if code == -32700 else
                                                             "Invalid Request"), answer
            await server.stdin.send(raw({"jsonrpc": "2.0", "id": 14, "method": "tools/list"}))
            listed = await reply()
            assert listed["id"] == 14 and {t["name"] for t in listed["result"]["tools"]} >= {"coordinate_task"}
            await server.stdin.aclose()
            assert await server.wait() == 0


HANG_AND_REPORT = """
    import json, os, subprocess, sys, time
    request = json.load(sys.stdin)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(request["description"], "w") as fifo:
        json.dump([os.getpid(), child.pid], fifo)
    time.sleep(600)
"""


@pytest.mark.parametrize("backend", ["local", "dask"])
def test_killing_the_server_kills_its_agents_and_workers(tmp_path: Path, agents: AgentFactory, backend: str) -> None:
    if backend == "dask":
        pytest.importorskip("distributed")
    agents.script("hang", HANG_AND_REPORT)
    fifos = [tmp_path / f"pids-{i}.fifo" for i in range(2)]
    for fifo in fifos:
        os.mkfifo(fifo)
    messages = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "crash", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "coordinate_task", "arguments": {
                "task_description": "hang", "options": {"wait_seconds": 0},
                "subtasks": [{"id": f"h{i}", "description": str(f), "agent_type": "hang"}
                             for i, f in enumerate(fifos)]}}},
    ]
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root)}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "serve", "--backend", backend],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env,
    ) as server:
        assert server.stdin is not None
        server.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        server.stdin.flush()
        # Opening a FIFO blocks until the agent opens it: an event, not a sleep.
        agent_pids = [pid for fifo in fifos for pid in json.loads(fifo.read_text())]
        descendants = psutil.Process(server.pid).children(recursive=True)
        assert {p.pid for p in descendants} >= set(agent_pids)

        server.kill()
        server.wait()
        _, still_alive = psutil.wait_procs(descendants, timeout=20)
        assert still_alive == []
        server.stdin.close()


async def test_a_server_on_its_own_dask_cluster_runs_a_graph_and_leaves_nothing_behind(
    tmp_path: Path, agents: AgentFactory
) -> None:
    pytest.importorskip("distributed")
    params = server_params(tmp_path / "state", agents.root)
    params.env = {**(params.env or {}), "PCOORD_BACKEND": "dask", "PCOORD_DASK_WORKERS": "2"}
    family: list[psutil.Process] = []
    async with Client(params) as client:
        result = await client.call_tool("coordinate_task", {
            "task_description": "diamond on dask",
            "subtasks": [
                {"id": "a", "description": "root", "agent_type": "echo"},
                {"id": "b", "description": "left", "agent_type": "echo", "dependencies": ["a"]},
                {"id": "d", "description": "join", "agent_type": "echo", "dependencies": ["a", "b"]},
            ],
            "options": {"wait_seconds": 60},
        })
        assert result.structured_content is not None
        assert result.structured_content["status"] == "SUCCESS", result.structured_content
        server = next(p for p in psutil.Process().children() if "serve" in " ".join(p.cmdline()))
        family = [server, *server.children(recursive=True)]
        assert len(family) >= 3  # the server and its cluster's two worker processes (with their helpers)
    _, still_alive = psutil.wait_procs(family, timeout=30)
    assert still_alive == []
