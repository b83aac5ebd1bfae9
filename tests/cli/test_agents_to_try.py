"""A newcomer's first agents: the empty listing's help, the bundled agents by name, `pcoord init`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from parallel_coordinator.agents.discovery import BUNDLED_AGENTS_DIR
from tests.cli.test_cli import pcoord


def fresh(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A fresh HOME and state directory, no PCOORD_AGENT_DIRS, no bundled agents unless asked."""
    (tmp_path / "home").mkdir(exist_ok=True)
    return {"HOME": str(tmp_path / "home"), "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": "",
            "PCOORD_BUNDLED_AGENTS": "", "COLUMNS": "200", **extra}


def test_agents_with_none_found_says_where_it_looked_and_how_to_add_or_try_one(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    done = pcoord("agents", env=fresh(tmp_path), cwd=project)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("No agents found. Looked in these directories, in order")
    assert f"1. {tmp_path / 'home' / '.claude' / 'agents'}  (user: does not exist)" in lines[1]
    assert f"2. {project / '.claude' / 'agents'}  (project: does not exist)" in lines[2]
    assert "name: NAME" in done.stdout and "pcoord init" in done.stdout
    assert "PCOORD_BUNDLED_AGENTS=1 pcoord agents" in done.stdout and "pcoord demo" in done.stdout
    assert "0 agents" not in done.stdout  # no empty table

    listing = json.loads(pcoord("agents", "--json", env=fresh(tmp_path), cwd=project).stdout)
    assert listing["agents"] == []
    assert [entry["source"] for entry in listing["searched"]] == ["user", "project"]
    assert listing["help"].startswith("No agents found")


def test_the_bundled_agents_run_by_name_only_when_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "tree"
    target.mkdir()
    (target / "hello.py").write_text("# TODO: greet\nprint('hi')\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "count",
        "subtasks": [{"id": "loc", "agent_type": "loc-counter", "description": f"Count lines.\npath: {target}"}],
    }))
    refused = pcoord("run", str(plan), env=fresh(tmp_path), cwd=tmp_path)
    assert refused.returncode != 0
    assert "loc-counter" in refused.stderr

    done = pcoord("run", str(plan), "--json", env=fresh(tmp_path, PCOORD_BUNDLED_AGENTS="1"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCESS"
    assert "Python" in result["results"][0]["output"]


def test_a_users_agent_overrides_the_bundled_one_of_the_same_name_and_the_listing_says_so(tmp_path: Path) -> None:
    mine = tmp_path / "home" / ".claude" / "agents"
    mine.mkdir(parents=True)
    (mine / "loc-counter.md").write_text("---\nname: loc-counter\ndescription: my own\n---\nCount my way.\n")
    env = fresh(tmp_path, PCOORD_BUNDLED_AGENTS="1")
    listing = json.loads(pcoord("agents", "--json", env=env, cwd=tmp_path).stdout)
    agents = {agent["name"]: agent for agent in listing["agents"]}
    assert agents["loc-counter"]["source"] == "user" and agents["loc-counter"]["description"] == "my own"
    assert agents["todo-scanner"]["source"] == "bundled"
    assert listing["searched"][0] == {"path": str(BUNDLED_AGENTS_DIR), "source": "bundled"}
    shadowed = [d for d in listing["diagnostics"] if d["path"] == str(BUNDLED_AGENTS_DIR / "loc-counter.md")]
    assert shadowed and "user agents override bundled agents" in shadowed[0]["problem"]

    table = pcoord("agents", env=env, cwd=tmp_path).stdout
    assert "your own agents override the bundled loc-counter" in table


def test_init_writes_a_command_agent_that_is_listed_and_runs_at_once(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    env = fresh(tmp_path)
    written = pcoord("init", "--runner", "command", "--name", "greeter", env=env, cwd=project)
    assert written.returncode == 0, written.stderr
    agent_dir = project / ".claude" / "agents"
    assert f"wrote {agent_dir / 'greeter.md'}" in written.stdout and "no Claude needed" in written.stdout
    assert (agent_dir / "greeter.py").is_file()

    listing = json.loads(pcoord("agents", "--json", env=env, cwd=project).stdout)
    assert [(a["name"], a["runner"], a["source"]) for a in listing["agents"]] == [("greeter", "command", "project")]
    assert listing["diagnostics"] == []

    plan = project / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "greet twice",
        "subtasks": [{"id": "a", "agent_type": "greeter", "description": "say hello"},
                     {"id": "b", "agent_type": "greeter", "description": "answer", "dependencies": ["a"]}],
    }))
    done = pcoord("run", str(plan), "--json", env=env, cwd=project)
    assert done.returncode == 0, done.stderr
    outputs = [r["output"].strip() for r in json.loads(done.stdout)["results"]]
    assert outputs == ["task a: say hello", "task b: answer\nafter a: task a: say hello"]


def test_init_writes_a_claude_agent_and_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    env = fresh(tmp_path)
    assert pcoord("init", env=env, cwd=tmp_path).returncode == 0
    agent_file = tmp_path / ".claude" / "agents" / "first-agent.md"
    listing = json.loads(pcoord("agents", "--json", env=env, cwd=tmp_path).stdout)
    assert [(a["name"], a["runner"], a["tools"]) for a in listing["agents"]] == [
        ("first-agent", "claude", ["Read", "Grep", "Glob"])
    ]
    agent_file.write_text(agent_file.read_text() + "my edits\n")
    again = pcoord("init", env=env, cwd=tmp_path)
    assert again.returncode == 1
    assert str(agent_file) in " ".join(again.stderr.split()) and "already exists" in again.stderr
    assert agent_file.read_text().endswith("my edits\n")

    refused = pcoord("init", "--name", "../escape", env=env, cwd=tmp_path)
    assert refused.returncode == 1 and "'../escape'" in refused.stderr


def test_a_bundled_agents_setting_that_is_neither_on_nor_off_is_refused_naming_it(tmp_path: Path) -> None:
    done = pcoord("agents", env=fresh(tmp_path, PCOORD_BUNDLED_AGENTS="ye"))
    assert done.returncode != 0
    assert "PCOORD_BUNDLED_AGENTS='ye' is neither on nor off" in " ".join(done.stderr.split())
