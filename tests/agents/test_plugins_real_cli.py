"""Plugin agents as the real Claude Code CLI installs them: a local marketplace, a temporary HOME, offline.

Skipped when the CLI is not installed: `scripts/install-peers.sh` installs it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli.test_agents_to_try import fresh
from tests.cli.test_cli import pcoord
from tests.runners.test_real_claude_cli import clean_env, real_claude


def marketplace(root: Path) -> Path:
    """A marketplace directory `local-mkt` with one plugin, `demo-tools` 1.2.0, holding one agent."""
    (root / ".claude-plugin").mkdir(parents=True)
    (root / ".claude-plugin" / "marketplace.json").write_text(json.dumps({
        "name": "local-mkt", "owner": {"name": "Tests"},
        "plugins": [{"name": "demo-tools", "source": "./plugins/demo-tools", "description": "demo"}],
    }))
    plugin = root / "plugins" / "demo-tools"
    (plugin / ".claude-plugin").mkdir(parents=True)
    (plugin / ".claude-plugin" / "plugin.json").write_text(json.dumps({"name": "demo-tools", "version": "1.2.0"}))
    (plugin / "agents").mkdir()
    (plugin / "agents" / "code-reviewer.md").write_text(
        "---\nname: code-reviewer\ndescription: Reviews code for bugs\ntools: Read, Grep\n---\nYou review code.\n"
    )
    return root


def test_a_plugin_installed_by_the_real_cli_lists_its_agents_until_it_is_disabled(tmp_path: Path) -> None:
    claude = real_claude()
    project = tmp_path / "project"
    project.mkdir()
    env = clean_env(tmp_path / "home")

    def cli(*args: str) -> None:
        done = subprocess.run([str(claude), "plugin", *args], cwd=project, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"claude plugin {' '.join(args)}: {done.stdout}{done.stderr}"

    def listing() -> dict[str, dict[str, object]]:
        done = pcoord("agents", "--json", env=fresh(tmp_path), cwd=project)
        assert done.returncode == 0, done.stderr
        return {agent["name"]: agent for agent in json.loads(done.stdout)["agents"]}

    cli("marketplace", "add", str(marketplace(tmp_path / "mkt")))
    cli("install", "demo-tools@local-mkt")

    agent = listing()["demo-tools:code-reviewer"]
    assert (agent["source"], agent["plugin"], agent["tools"]) == ("plugin", "demo-tools@local-mkt", ["Read", "Grep"])
    cached = tmp_path / "home" / ".claude" / "plugins" / "cache" / "local-mkt" / "demo-tools" / "1.2.0"
    assert agent["path"] == str(cached / "agents" / "code-reviewer.md")
    table = pcoord("agents", env=fresh(tmp_path), cwd=project).stdout
    assert "plugin demo-tools@local-mkt" in table

    cli("disable", "demo-tools@local-mkt")
    assert "demo-tools:code-reviewer" not in listing()

    cli("enable", "demo-tools@local-mkt")
    assert "demo-tools:code-reviewer" in listing()
    cli("uninstall", "demo-tools@local-mkt")
    assert listing() == {}


def test_a_project_scope_install_by_the_real_cli_is_seen_from_that_project_only(tmp_path: Path) -> None:
    claude = real_claude()
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    env = clean_env(tmp_path / "home")
    for args in (("marketplace", "add", str(marketplace(tmp_path / "mkt"))),
                 ("install", "demo-tools@local-mkt", "--scope", "project")):
        done = subprocess.run([str(claude), "plugin", *args], cwd=project, env=env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr

    def names(cwd: Path) -> list[str]:
        done = pcoord("agents", "--json", env=fresh(tmp_path), cwd=cwd)
        assert done.returncode == 0, done.stderr
        return [agent["name"] for agent in json.loads(done.stdout)["agents"]]

    assert names(project) == ["demo-tools:code-reviewer"]
    assert names(elsewhere) == []

