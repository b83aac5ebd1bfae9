"""Lean launches: a claude agent gets only the MCP servers its file names (never this server), the user's settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.engine.attempts import with_files
from parallel_coordinator.errors import RunnerUnavailableError
from parallel_coordinator.runners.base import TaskRequest
from parallel_coordinator.runners.claude import ClaudeRunner

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
GITHUB = {"type": "stdio", "command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"],
          "env": {"GITHUB_TOKEN": "${GITHUB_TOKEN}"}}
JIRA = {"type": "http", "url": "https://jira.example.com/mcp"}
OURSELVES = {"type": "stdio", "command": "pcoord", "args": ["serve"], "env": {}}


class ClaudeHome:
    """A HOME with Claude Code's configuration (~/.claude.json) and a project directory in it."""

    def __init__(self, root: Path) -> None:
        self.home = root / "home"
        self.project = root / "home" / "work" / "project"
        self.project.mkdir(parents=True)
        self.config: dict[str, Any] = {"numStartups": 3, "projects": {}}

    def user(self, **servers: dict[str, Any]) -> None:
        self.config.setdefault("mcpServers", {}).update(servers)
        self._write()

    def local(self, directory: Path, **servers: dict[str, Any]) -> None:
        self.config["projects"].setdefault(str(directory), {"allowedTools": []}).setdefault("mcpServers", {}).update(
            servers
        )
        self._write()

    def project_file(self, directory: Path, **servers: dict[str, Any]) -> None:
        (directory / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))

    def _write(self) -> None:
        (self.home / ".claude.json").write_text(json.dumps(self.config))

    def argv(self, **extra: Any) -> list[str]:
        runner = ClaudeRunner(str(FAKE_CLAUDE), environ={"HOME": str(self.home), "PATH": "/usr/bin"})
        agent = AgentSpec(name="researcher", body="You research.", extra=extra)
        request = TaskRequest(session_id="s", task_id="t", description="d", task_description="d", context={},
                              working_directory=str(self.project))
        # As the engine starts it: the invocation's files written to the attempt's folder, argv naming them.
        return with_files(runner.invocation(agent, request), self.home / "attempt").argv


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def servers_of(argv: list[str]) -> dict[str, Any]:
    given = option(argv, "--mcp-config")
    return json.loads(Path(given).read_text())["mcpServers"] if given else {}


@pytest.fixture
def claude_home(tmp_path: Path) -> ClaudeHome:
    return ClaudeHome(tmp_path)


def test_an_agent_that_names_no_server_loads_none_and_only_the_users_settings(claude_home: ClaudeHome) -> None:
    claude_home.user(github=GITHUB, pc=OURSELVES)

    argv = claude_home.argv()

    assert "--strict-mcp-config" in argv
    assert "--mcp-config" not in argv
    assert option(argv, "--setting-sources") == "user"
    assert "--exclude-dynamic-system-prompt-sections" in argv


def test_an_agent_gets_the_configured_servers_it_names_and_no_others(claude_home: ClaudeHome) -> None:
    claude_home.user(github=GITHUB, jira=JIRA, pc=OURSELVES)

    argv = claude_home.argv(mcpServers=["github"])

    assert servers_of(argv) == {"github": GITHUB}
    assert "--strict-mcp-config" in argv


def test_an_inline_server_and_a_named_one_are_both_given(claude_home: ClaudeHome) -> None:
    claude_home.user(github=GITHUB)
    inline = {"command": "node", "args": ["tools/lint-server.js"]}

    argv = claude_home.argv(mcpServers=["github", {"lint": inline}])

    assert servers_of(argv) == {"github": GITHUB, "lint": inline}


@pytest.mark.parametrize("value", ["github, jira", {"github": None, "jira": None}])
def test_a_comma_list_or_a_mapping_of_names_is_read_too(claude_home: ClaudeHome, value: object) -> None:
    claude_home.user(github=GITHUB, jira=JIRA)

    assert servers_of(claude_home.argv(mcpServers=value)) == {"github": GITHUB, "jira": JIRA}


def test_local_scope_wins_over_the_projects_file_which_wins_over_user_scope(claude_home: ClaudeHome) -> None:
    project_github = {**GITHUB, "args": ["project"]}
    local_github = {**GITHUB, "args": ["local"]}
    claude_home.user(github=GITHUB, jira=JIRA, docs=JIRA)
    claude_home.project_file(claude_home.project, github=project_github, jira={**JIRA, "url": "https://p/mcp"})
    claude_home.local(claude_home.project, github=local_github)

    servers = servers_of(claude_home.argv(mcpServers=["github", "jira", "docs"]))

    assert servers == {"github": local_github, "jira": {**JIRA, "url": "https://p/mcp"}, "docs": JIRA}


def test_the_nearest_project_directory_counts(claude_home: ClaudeHome) -> None:
    above = claude_home.project.parent
    claude_home.project_file(above, github={**GITHUB, "args": ["above"]})
    claude_home.project_file(claude_home.project, github={**GITHUB, "args": ["here"]})

    assert servers_of(claude_home.argv(mcpServers=["github"]))["github"]["args"] == ["here"]


def test_claude_config_dir_holds_the_configuration_when_set(claude_home: ClaudeHome, tmp_path: Path) -> None:
    elsewhere = tmp_path / "claude-config"
    elsewhere.mkdir()
    (elsewhere / ".claude.json").write_text(json.dumps({"mcpServers": {"github": GITHUB}}))
    environ = {"HOME": str(claude_home.home), "CLAUDE_CONFIG_DIR": str(elsewhere)}
    runner = ClaudeRunner(str(FAKE_CLAUDE), environ=environ)
    agent = AgentSpec(name="researcher", extra={"mcpServers": ["github"]})
    request = TaskRequest(session_id="s", task_id="t", description="d", task_description="d", context={})

    assert servers_of(with_files(runner.invocation(agent, request), tmp_path / "attempt").argv) == {"github": GITHUB}


def test_an_unknown_server_is_an_error_that_names_it_and_the_closest_configured_one(claude_home: ClaudeHome) -> None:
    claude_home.user(github=GITHUB, jira=JIRA)

    with pytest.raises(RunnerUnavailableError) as caught:
        claude_home.argv(mcpServers=["githb"])

    message = str(caught.value)
    assert "agent 'researcher' names MCP server 'githb'" in message
    assert "did you mean 'github'?" in message
    assert str(claude_home.home / ".claude.json") in message


def test_with_no_configuration_at_all_an_unknown_server_says_none_is_configured(claude_home: ClaudeHome) -> None:
    with pytest.raises(RunnerUnavailableError, match=r"'github' in mcpServers.*none is configured"):
        claude_home.argv(mcpServers=["github"])


@pytest.mark.parametrize("config", [
    OURSELVES,
    {"command": "/home/me/.venv/bin/pcoord", "args": ["serve", "--transport", "stdio"]},
    {"command": "uvx", "args": ["parallel-coordinator", "serve"]},
    {"command": "python3", "args": ["-m", "parallel_coordinator", "serve"]},
])
def test_this_server_is_never_given_to_an_agent_even_when_it_names_it(
    claude_home: ClaudeHome, config: dict[str, Any]
) -> None:
    claude_home.user(fanout=config)

    with pytest.raises(RunnerUnavailableError, match=r"'fanout' .* is Parallel Coordinator itself"):
        claude_home.argv(mcpServers=["fanout"])
    with pytest.raises(RunnerUnavailableError, match=r"'again' \(inline in the agent file\)"):
        claude_home.argv(mcpServers=[{"again": config}])


@pytest.mark.parametrize("value", [42, [42], [{"x": "not a config"}], [{"x": {"args": []}}]])
def test_an_unreadable_mcp_servers_entry_is_an_error_saying_how_to_write_it(
    claude_home: ClaudeHome, value: object
) -> None:
    with pytest.raises(RunnerUnavailableError, match=r"agent 'researcher' has (mcpServers entry|MCP server 'x')"):
        claude_home.argv(mcpServers=value)


@pytest.mark.parametrize(("value", "given"), [
    (["user", "project"], "user,project"),
    ("user, project, local", "user,project,local"),
    ([], ""),
])
def test_an_agent_file_chooses_its_setting_sources(claude_home: ClaudeHome, value: object, given: str) -> None:
    assert option(claude_home.argv(settingSources=value), "--setting-sources") == given


def test_an_unknown_setting_source_is_an_error_naming_it_and_the_known_ones(claude_home: ClaudeHome) -> None:
    with pytest.raises(RunnerUnavailableError, match=r"settingSources entry 'policy'.*user, project, local"):
        claude_home.argv(settingSources=["user", "policy"])


def test_a_configured_servers_secrets_never_appear_in_the_agents_argv(claude_home: ClaudeHome) -> None:
    claude_home.user(github={**GITHUB, "env": {"GITHUB_TOKEN": "ghp_literalsecret123"}})
    argv = claude_home.argv(mcpServers=["github"])
    assert "--mcp-config" in argv
    assert not any("ghp_literalsecret123" in part for part in argv)
    config = Path(option(argv, "--mcp-config") or "")
    assert "ghp_literalsecret123" in config.read_text()  # the server still gets its token, from a file
    assert config.stat().st_mode & 0o077 == 0  # that only its owner can read
