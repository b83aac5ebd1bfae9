"""The MCP Inspector's CLI (npm, pinned by scripts/install-peers.sh) as a real client, over stdio and HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parallel_coordinator.cli.demo import BUNDLED_AGENTS, demo_plan
from tests.server.test_http import running_http_server

PEERS = Path(os.environ.get("PCOORD_PEERS_DIR", Path.home() / ".cache" / "parallel-coordinator" / "peers"))
INSPECTOR = PEERS / "node_modules" / ".bin" / "mcp-inspector"
TOKEN = "inspector-token-0123456789"
TOOLS = {"coordinate_task", "get_progress_status", "cancel_execution", "get_performance_metrics", "list_agents"}

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node not found: the MCP Inspector CLI needs Node.js"),
    pytest.mark.skipif(
        not INSPECTOR.exists(), reason=f"the MCP Inspector CLI is not at {INSPECTOR}: run scripts/install-peers.sh"
    ),
]


def inspector(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """One non-interactive Inspector CLI run; its catalog and client storage go under `home`, not ours."""
    return subprocess.run(
        [str(INSPECTOR), "--cli", *args, "--format", "json", "-q"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90,
        env={**os.environ, "HOME": str(home)},
    )


def result_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, f"the Inspector exited {run.returncode}: {run.stderr}"
    answer: dict[str, Any] = json.loads(run.stdout)["result"]
    return answer


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


@pytest.fixture
def demo_call(tmp_path: Path) -> tuple[list[str], Path]:
    """Inspector arguments that run the bundled demo graph on a small tree, and the report it must write."""
    target = tmp_path / "target"
    target.mkdir()
    (target / "small.py").write_text("def double(x):\n    # TODO: check the type\n    return 2 * x\n")
    report = tmp_path / "report.md"
    plan = demo_plan(target, report)
    plan["options"]["wait_seconds"] = 60
    args = ["--method", "tools/call", "--tool-name", "coordinate_task", "--tool-args-json", json.dumps(plan)]
    return args, report


def assert_the_demo_succeeded(result: dict[str, Any], report: Path) -> None:
    assert result["isError"] is False, result["content"]
    assert result["structuredContent"]["status"] == "SUCCESS"
    assert {task["task_id"] for task in result["structuredContent"]["results"]} == {
        "loc", "todos", "complexity", "secrets", "report"
    }
    assert report.exists()


@pytest.fixture
def stdio_server(tmp_path: Path, home: Path) -> list[str]:
    """The server command line for the Inspector, with the server's environment passed by `-e`."""
    return [
        sys.executable, "-m", "parallel_coordinator", "serve",
        "-e", f"PCOORD_STATE_DIR={tmp_path / 'state'}",
        "-e", f"PCOORD_AGENT_DIRS={BUNDLED_AGENTS}",
        "-e", f"HOME={home}",
    ]


@pytest.fixture
def http_server(tmp_path: Path, home: Path) -> Iterator[str]:
    env = {"PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(BUNDLED_AGENTS),
           "PCOORD_TOKEN": TOKEN, "HOME": str(home)}
    with running_http_server(env) as url:
        yield f"{url}/mcp"


def test_the_inspector_lists_the_five_tools_over_stdio(home: Path, stdio_server: list[str]) -> None:
    listed = result_of(inspector(home, *stdio_server, "--method", "tools/list"))
    assert {tool["name"] for tool in listed["tools"]} >= TOOLS


def test_the_inspector_runs_the_bundled_demo_graph_over_stdio(
    home: Path, stdio_server: list[str], demo_call: tuple[list[str], Path]
) -> None:
    args, report = demo_call
    assert_the_demo_succeeded(result_of(inspector(home, *stdio_server, *args)), report)


def test_the_inspector_with_the_token_lists_the_tools_and_runs_the_demo_over_http(
    home: Path, http_server: str, demo_call: tuple[list[str], Path]
) -> None:
    # --stored-auth-only: never start an interactive OAuth flow, fail instead.
    client = [http_server, "--transport", "http", "--stored-auth-only", "--header", f"Authorization: Bearer {TOKEN}"]
    listed = result_of(inspector(home, *client, "--method", "tools/list"))
    assert {tool["name"] for tool in listed["tools"]} >= TOOLS
    args, report = demo_call
    assert_the_demo_succeeded(result_of(inspector(home, *client, *args)), report)


@pytest.mark.parametrize("header", [[], ["--header", "Authorization: Bearer wrong-token"]], ids=["none", "wrong"])
def test_the_inspector_without_the_right_token_is_refused_over_http(
    home: Path, http_server: str, header: list[str]
) -> None:
    run = inspector(home, http_server, "--transport", "http", "--stored-auth-only", *header, "--method", "tools/list")
    assert run.returncode != 0
    assert run.stdout == ""
    assert json.loads(run.stderr)["error"]["code"] == "auth_required"
