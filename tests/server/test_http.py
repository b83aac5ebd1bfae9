"""`pcoord serve --transport http` as a real subprocess on loopback: the token, a real client, /metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceTemplateReference

from parallel_coordinator.server.http import resolve_token
from tests.conftest import AgentFactory
from tests.server.test_subscriptions import Updates, gated_agent, next_uri

TOKEN = "test-token-0123456789"
OTHER = "another-token-9876543210"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SERVE_HTTP = (sys.executable, "-m", "parallel_coordinator", "serve", "--transport", "http")


@contextmanager
def running_http_server(env: dict[str, str], *extra: str, command: tuple[str, ...] = SERVE_HTTP) -> Iterator[str]:
    """`pcoord serve --transport http` (or `command`, given `--port N`) on a free loopback port; yields its base
    URL once it listens."""
    port = free_port()
    with subprocess.Popen(
        [*command, "--port", str(port), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **env},
    ) as server:
        assert server.stderr is not None
        # uvicorn says when it listens: wait for that line, not for a clock.
        for line in server.stderr:
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("the HTTP server exited before it listened")
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def http_server(tmp_path: Path, agents: AgentFactory) -> Iterator[str]:
    gated_agent(agents, tmp_path / "gate")
    env = {"PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root),
           "PCOORD_TOKEN": TOKEN, "PCOORD_TOKENS": f"bob={OTHER}"}
    with running_http_server(env, "--prometheus") as url:
        yield url


def get(
    url: str, token: str | None = None, method: str = "GET", host: str | None = None, origin: str | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers with lower-case names, body) of one plain HTTP request."""
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if host:
        request.add_header("Host", host)
    if origin:
        request.add_header("Origin", origin)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read().decode()


def test_requests_without_the_right_token_get_401_with_www_authenticate(http_server: str) -> None:
    for token in (None, "wrong-token"):
        status, headers, _ = get(f"{http_server}/mcp", token, method="POST")
        assert status == 401
        assert headers.get("www-authenticate", "").startswith("Bearer")


def test_an_oversized_request_body_is_refused_with_413(http_server: str) -> None:
    # Declared larger than the cap: refused from the headers, before any of the body is read.
    host, port = http_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as raw:
        raw.sendall(
            f"POST /mcp HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Length: {5 * 1024 * 1024}\r\n\r\n".encode()
        )
        status_line = raw.makefile("rb").readline().decode()
    assert status_line.split()[1] == "413"


def test_a_foreign_host_or_origin_is_refused(http_server: str) -> None:
    status, _, _ = get(f"{http_server}/mcp", TOKEN, method="POST", host="evil.example:80")
    assert status == 421
    status, _, _ = get(f"{http_server}/mcp", TOKEN, method="POST", origin="http://evil.example")
    assert status == 403


def connect(url: str, token: str) -> tuple[httpx2.AsyncClient, Client]:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return http, Client(streamable_http_client(f"{url}/mcp", http_client=http))


@pytest.mark.anyio
async def test_a_second_token_cannot_see_or_cancel_the_first_tokens_sessions(http_server: str) -> None:
    http_a, client_a = connect(http_server, TOKEN)
    http_b, client_b = connect(http_server, OTHER)
    async with http_a, client_a, http_b, client_b:
        started = await client_a.call_tool("coordinate_task", {
            "task_description": "mine", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
            "options": {"wait_seconds": 60},
        })
        assert started.structured_content is not None
        session_id = started.structured_content["session_id"]
        for tool in ("get_progress_status", "cancel_execution"):
            foreign = await client_b.call_tool(tool, {"session_id": session_id})
            missing = await client_b.call_tool(tool, {"session_id": "0000000000000000"})
            assert foreign.is_error and missing.is_error
            # The same words for someone else's session as for none at all: no way to probe ids.
            assert foreign.content[0].text.replace(session_id, "X") == (  # type: ignore[union-attr]
                missing.content[0].text.replace("0000000000000000", "X")  # type: ignore[union-attr]
            )
        mine = (await client_a.call_tool("list_sessions", {})).structured_content
        theirs = (await client_b.call_tool("list_sessions", {})).structured_content
        assert mine is not None and [s["session_id"] for s in mine["sessions"]] == [session_id]
        assert theirs == {"sessions": []}
        own = await client_a.call_tool("get_progress_status", {"session_id": session_id})
        assert own.structured_content is not None and own.structured_content["status"] == "SUCCESS"


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")  # resources/subscribe's era
async def test_a_handshake_era_client_follows_its_session_over_http_and_no_other_token_can(
    http_server: str, tmp_path: Path
) -> None:
    def legacy(token: str, updates: Updates) -> tuple[httpx2.AsyncClient, Client]:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
        transport = streamable_http_client(f"{http_server}/mcp", http_client=http)
        return http, Client(transport, mode="legacy", message_handler=updates.handler)

    with Updates() as updates, Updates() as elsewhere:
        http_a, client_a = legacy(TOKEN, updates)
        http_b, client_b = legacy(OTHER, elsewhere)
        async with http_a, client_a, http_b, client_b:
            started = await client_a.call_tool("coordinate_task", {
                "task_description": "followed", "subtasks": [{"id": "a", "description": "x", "agent_type": "gated"}],
                "options": {"wait_seconds": 0},
            })
            assert started.structured_content is not None and started.structured_content["status"] == "RUNNING"
            session_id = started.structured_content["session_id"]
            uri = f"pcoord://sessions/{session_id}"
            await client_a.subscribe_resource(uri)
            with pytest.raises(MCPError, match=f"unknown session '{session_id}'"):
                await client_b.subscribe_resource(uri)
            template = ResourceTemplateReference(uri="pcoord://sessions/{session_id}")
            theirs = await client_b.complete(template, {"name": "session_id", "value": ""})
            mine = await client_a.complete(template, {"name": "session_id", "value": ""})
            assert theirs.completion.values == [] and mine.completion.values == [session_id]
            (tmp_path / "gate").touch()
            await next_uri(updates.received, lambda seen: seen == uri)
            ended = await client_a.call_tool("get_progress_status", {"session_id": session_id, "wait_seconds": 60})
            assert ended.structured_content is not None and ended.structured_content["status"] == "SUCCESS"


@pytest.mark.anyio
async def test_a_client_with_the_token_runs_a_graph_over_http(http_server: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, Client(
        streamable_http_client(f"{http_server}/mcp", http_client=http)
    ) as client:
        result = await client.call_tool("coordinate_task", {
            "task_description": "over http",
            "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"},
                         {"id": "b", "description": "y", "agent_type": "echo", "dependencies": ["a"]}],
            "options": {"wait_seconds": 60},
        })
        assert result.structured_content is not None
        assert result.structured_content["status"] == "SUCCESS"


def test_prometheus_metrics_need_the_token_and_expose_the_figures(http_server: str) -> None:
    status, _, _ = get(f"{http_server}/metrics")
    assert status == 401
    status, headers, body = get(f"{http_server}/metrics", TOKEN)
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert "# TYPE pcoord_active_agents gauge" in body
    assert "pcoord_success_rate" in body


def test_binding_beyond_loopback_needs_a_flag_and_a_token(tmp_path: Path) -> None:
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state")}
    env.pop("PCOORD_TOKEN", None)
    base = [sys.executable, "-m", "parallel_coordinator", "serve", "--transport", "http", "--host", "0.0.0.0"]
    refused = subprocess.run(base, capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    refused = subprocess.run([*base, "--allow-remote"], capture_output=True, text=True, env=env, timeout=60)
    assert refused.returncode == 2 and "PCOORD_TOKEN" in refused.stderr


def test_a_short_pcoord_token_stops_the_start_with_a_clear_message_that_does_not_show_it(tmp_path: Path) -> None:
    short = "hunter2-secret"  # 14 characters, under the 16 that PCOORD_TOKENS entries need too
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_TOKEN": short}
    env.pop("PCOORD_TOKENS", None)
    refused = subprocess.run(
        [sys.executable, "-m", "parallel_coordinator", "serve", "--transport", "http", "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert refused.returncode == 2, refused.stderr
    assert "PCOORD_TOKEN has 14 characters" in refused.stderr and "at least 16" in refused.stderr
    assert short not in refused.stderr and "Uvicorn running" not in refused.stderr


def test_a_generated_token_is_stored_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCOORD_TOKEN", raising=False)
    token, generated = resolve_token(tmp_path)
    assert generated and len(token) >= 32
    assert (tmp_path / "http-token").stat().st_mode & 0o777 == 0o600
    assert resolve_token(tmp_path) == (token, False)
    monkeypatch.setenv("PCOORD_TOKEN", "from-the-environment")
    assert resolve_token(tmp_path) == ("from-the-environment", False)


GATE = """
    import json, sys
    request = json.load(sys.stdin)
    started, release = request["description"].split()
    with open(started, "w") as fifo:
        fifo.write("running")
    with open(release) as fifo:
        fifo.read()
    print("released")
"""


@pytest.mark.anyio
async def test_a_client_that_disconnects_mid_call_finds_its_finished_session_on_reconnecting(
    http_server: str, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("gate", GATE)
    started, release = tmp_path / "started.fifo", tmp_path / "release.fifo"
    os.mkfifo(started)
    os.mkfifo(release)
    http_a, client_a = connect(http_server, TOKEN)
    async with anyio.create_task_group() as group:

        async def call_and_vanish() -> None:
            async with http_a, client_a:
                await client_a.call_tool("coordinate_task", {
                    "task_description": "outlives its caller", "options": {"wait_seconds": 600},
                    "subtasks": [{"id": "g", "description": f"{started} {release}", "agent_type": "gate"}],
                })

        group.start_soon(call_and_vanish)
        await anyio.to_thread.run_sync(started.read_text)  # the agent runs: the call is waiting on it
        group.cancel_scope.cancel()  # the client goes away mid-call

    http_b, client_b = connect(http_server, TOKEN)
    async with http_b, client_b:
        listed = (await client_b.call_tool("list_sessions", {})).structured_content
        assert listed is not None
        session_id = listed["sessions"][0]["session_id"]
        await anyio.to_thread.run_sync(release.write_text, "go")
        status = (await client_b.call_tool(
            "get_progress_status", {"session_id": session_id, "wait_seconds": 60}
        )).structured_content
    assert status is not None and status["status"] == "SUCCESS"
    assert status["results"][0]["output"].strip() == "released"


def test_a_generated_token_is_printed_once_with_the_client_configuration(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PCOORD_TOKEN", "PCOORD_TOKENS")}
    env["PCOORD_STATE_DIR"] = str(tmp_path / "state")

    def first_start() -> str:
        with subprocess.Popen(
            [sys.executable, "-m", "parallel_coordinator", "serve", "--transport", "http", "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        ) as server:
            assert server.stderr is not None
            said = ""
            for line in server.stderr:
                if "Uvicorn running on" in line:
                    break
                said += line
            server.terminate()
            server.wait(timeout=30)
        return said

    said = first_start()
    token = (tmp_path / "state" / "http-token").read_text().strip()
    assert f'"Authorization": "Bearer {token}"' in said
    assert "Warning" not in said, said  # a newcomer's first start shows no library deprecation warnings
    assert f'"url": "http://127.0.0.1:{port}/mcp"' in said
    assert token not in first_start()  # printed on the first start only


@contextmanager
def serving_on_a_free_port(env: dict[str, str], *extra: str) -> Iterator[tuple[str, str]]:
    """`pcoord serve --transport http --port 0`: the base URL it says it listens on, and all it said until then."""
    with subprocess.Popen(
        [*SERVE_HTTP, "--port", "0", *extra], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
    ) as server:
        assert server.stderr is not None
        said = ""
        try:
            for line in server.stderr:
                said += line
                if "Application startup complete" in line:
                    break
            assert "listening on " in said, said
            yield said.split("listening on ")[1].split()[0].removesuffix("/mcp"), said
        finally:
            server.terminate()
            server.wait(timeout=30)


def test_port_zero_serves_on_a_free_port_and_prints_the_address_it_really_has(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PCOORD_TOKEN", "PCOORD_TOKENS")}
    env["PCOORD_STATE_DIR"] = str(tmp_path / "state")
    with serving_on_a_free_port(env) as (base, said):
        url = f"{base}/mcp"
        assert url.startswith("http://127.0.0.1:") and not url.startswith("http://127.0.0.1:0/")
        assert f'"url": "{url}"' in said  # the generated client configuration names the same address
        token = (tmp_path / "state" / "http-token").read_text().strip()
        assert get(url, token)[0] != 401 and get(url)[0] == 401  # it is that server, and it checks tokens


@pytest.mark.anyio
async def test_an_ipv6_loopback_host_is_served_and_named_in_brackets(tmp_path: Path) -> None:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    env = {**{k: v for k, v in os.environ.items() if k != "PCOORD_TOKENS"}, "PCOORD_TOKEN": TOKEN,
           "PCOORD_STATE_DIR": str(tmp_path / "state")}
    with serving_on_a_free_port(env, "--host", "::1") as (url, said):
        assert url.startswith("http://[::1]:"), said
        http, client = connect(url, TOKEN)
        async with http, client:  # a real MCP client: the Host header [::1]:PORT is this server's own
            assert "coordinate_task" in {tool.name for tool in (await client.list_tools()).tools}
