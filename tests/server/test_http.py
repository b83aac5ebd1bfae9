"""`pcoord serve --transport http` as a real subprocess on loopback: the token, a real client, /metrics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from parallel_coordinator.server.http import resolve_token
from tests.conftest import AgentFactory

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def http_server(tmp_path: Path, agents: AgentFactory) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root),
           "PCOORD_TOKEN": TOKEN}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "serve", "--transport", "http", "--port", str(port),
         "--prometheus"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
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


def get(
    url: str, token: str | None = None, method: str = "GET", host: str | None = None
) -> tuple[int, dict[str, str], str]:
    """(status, headers with lower-case names, body) of one plain HTTP request."""
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if host:
        request.add_header("Host", host)
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


def test_a_foreign_host_header_is_refused(http_server: str) -> None:
    status, _, _ = get(f"{http_server}/mcp", TOKEN, method="POST", host="evil.example:80")
    assert status == 421


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


def test_a_generated_token_is_stored_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCOORD_TOKEN", raising=False)
    token, generated = resolve_token(tmp_path)
    assert generated and len(token) >= 32
    assert (tmp_path / "http-token").stat().st_mode & 0o777 == 0o600
    assert resolve_token(tmp_path) == (token, False)
    monkeypatch.setenv("PCOORD_TOKEN", "from-the-environment")
    assert resolve_token(tmp_path) == ("from-the-environment", False)
