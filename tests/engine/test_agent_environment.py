"""What an agent inherits: the server's environment less its credentials and obvious secrets (environment.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.execution.environment import EnvironmentPolicy
from parallel_coordinator.runners.claude import ClaudeRunner
from parallel_coordinator.runners.command import CommandRunner
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory

# Prints the names (and a few values) of its environment, and whether its parent's holds a secret.
SHOW_ENV = """
    import json, os, sys
    json.load(sys.stdin)
    try:
        with open(f"/proc/{os.getppid()}/environ", "rb") as f:
            parent = f.read().decode(errors="replace")
    except OSError:
        parent = ""
    print(json.dumps({
        "names": sorted(os.environ),
        "depth": os.environ.get("PCOORD_DEPTH"),
        "parent_has_secret": "s3cret-server-token" in parent or "bobs-token-0123456789" in parent,
    }))
"""

SECRETS = {
    "PCOORD_TOKEN": "s3cret-server-token-0123",
    "PCOORD_TOKENS": "bob=bobs-token-0123456789",
    "GITHUB_TOKEN": "ghp_x",
    "MY_SERVICE_API_KEY": "k",
    "DB_PASSWORD": "p",
    "ANTHROPIC_API_KEY": "sk-ant",
    "PLAIN_SETTING": "kept",
}


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's environment holds credentials, secrets and a plain setting."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


async def run_show_env(settings: Settings) -> dict[str, object]:
    async with Coordinator(settings) as coordinator:
        options = coordinator.with_defaults(CoordinateOptions())
        planned, _ = await coordinator.prepare(
            "show env", [Subtask(id="env", description="x", agent_type="show-env")], "auto", options
        )
        session = await coordinator.start("show env", planned, options)
        await session.done.wait()
        record = session.tasks["env"]
        assert record.status.value == "succeeded", record.error
        result: dict[str, object] = json.loads(record.output)
        return result


@pytest.mark.anyio
async def test_an_agent_gets_neither_the_servers_credentials_nor_obvious_secrets(
    settings: Settings, agents: AgentFactory, secrets: None
) -> None:
    agents.script("show-env", SHOW_ENV)
    seen = await run_show_env(settings)
    names = set(seen["names"])  # type: ignore[arg-type]
    assert not names & {"PCOORD_TOKEN", "PCOORD_TOKENS", "GITHUB_TOKEN", "MY_SERVICE_API_KEY", "DB_PASSWORD",
                        "ANTHROPIC_API_KEY"}
    assert {"PLAIN_SETTING", "PATH", "PCOORD_SESSION_ID", "PCOORD_TASK_ID", "PCOORD_DEPTH"} <= names
    assert seen["depth"] == "1"


@pytest.mark.anyio
async def test_an_agent_file_or_the_configuration_lets_a_named_secret_through_but_never_a_credential(
    settings: Settings, agents: AgentFactory, secrets: None
) -> None:
    agents.script("show-env", SHOW_ENV, pass_env=["GITHUB_TOKEN", "PCOORD_TOKEN*"])
    settings.agent_env_pass = ("MY_SERVICE_*",)
    seen = await run_show_env(settings)
    names = set(seen["names"])  # type: ignore[arg-type]
    assert {"GITHUB_TOKEN", "MY_SERVICE_API_KEY"} <= names
    assert not names & {"PCOORD_TOKEN", "PCOORD_TOKENS", "DB_PASSWORD"}


@pytest.mark.anyio
async def test_an_agent_nested_in_an_agent_knows_its_depth(
    settings: Settings, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_DEPTH", "2")
    agents.script("show-env", SHOW_ENV)
    allowed = dataclasses.replace(settings, max_depth=2)  # the depth guard would refuse a server at depth 2
    assert (await run_show_env(allowed))["depth"] == "3"


def test_a_claude_agent_keeps_what_claude_code_logs_in_with_and_nothing_else_secret() -> None:
    policy = Settings().environment_policy
    claude = policy.agent_environment(ClaudeRunner.env_passthrough, environ=SECRETS)
    assert claude["ANTHROPIC_API_KEY"] == "sk-ant"
    assert "GITHUB_TOKEN" not in claude and "PCOORD_TOKEN" not in claude
    command = policy.agent_environment(CommandRunner.env_passthrough, environ=SECRETS)
    assert "ANTHROPIC_API_KEY" not in command and command["PLAIN_SETTING"] == "kept"


def test_the_policy_says_why_each_variable_is_kept_from_agents() -> None:
    described = EnvironmentPolicy(deny=("*TOKEN*",), pass_through=("GITHUB_TOKEN",)).describe(SECRETS)
    removed = described["removed_now"]
    assert removed == {"PCOORD_TOKEN": "server credential", "PCOORD_TOKENS": "server credential"}


def test_pcoord_config_shows_the_agent_environment_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from parallel_coordinator.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_x")
    assert main(["config", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    policy = shown["agent_environment"]
    assert policy["removed_now"]["GITHUB_TOKEN"].startswith("looks like a secret")
    assert "ghp_x" not in json.dumps(shown)


@pytest.mark.anyio
async def test_over_http_one_clients_agent_cannot_read_any_clients_token(tmp_path: Path, agents: AgentFactory) -> None:
    """The trial's reproduction: bob's agent printed PCOORD_TOKEN and all of PCOORD_TOKENS."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from tests.server.test_http import running_http_server

    agents.script("show-env", SHOW_ENV)
    token, bobs = SECRETS["PCOORD_TOKEN"], SECRETS["PCOORD_TOKENS"].split("=", 1)[1]
    env = {"PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root),
           "PCOORD_TOKEN": token, "PCOORD_TOKENS": SECRETS["PCOORD_TOKENS"]}
    with running_http_server(env) as url:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {bobs}"}, timeout=60) as http, Client(
            streamable_http_client(f"{url}/mcp", http_client=http)
        ) as client:
            result = await client.call_tool("coordinate_task", {
                "task_description": "show env",
                "subtasks": [{"id": "env", "description": "x", "agent_type": "show-env"}],
                "options": {"wait_seconds": 60},
            })
    assert result.structured_content is not None
    (task,) = result.structured_content["results"]
    assert task["status"] == "succeeded", task["error"]
    seen = json.loads(task["output"])
    assert "PCOORD_TOKEN" not in seen["names"] and "PCOORD_TOKENS" not in seen["names"]
    # Nor through the environment of the pool worker that started it.
    assert seen["parent_has_secret"] is False
    assert token not in task["output"] and bobs not in task["output"]
