"""`pcoord run` honours a plan file's dry_run and resume_session as coordinate_task does."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import selectors
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.cli.test_cli import environment, pcoord
from tests.conftest import AgentFactory
from tests.engine.test_failures import FLAKY

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"


def flaky(counter: Path, succeed_on: int) -> str:
    """A task description for the flaky agent: it fails until its run number reaches `succeed_on`."""
    return json.dumps({"counter": str(counter), "succeed_on": succeed_on})


def runs(counter: Path) -> int:
    return len(counter.read_text()) if counter.exists() else 0


def test_a_dry_run_plan_file_prints_the_plan_and_runs_nothing(tmp_path: Path, agents: AgentFactory) -> None:
    agents.script("flaky", FLAKY)
    counter = tmp_path / "runs"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "look first",
        "subtasks": [{"id": "a", "description": flaky(counter, 1), "agent_type": "flaky"},
                     {"id": "b", "description": "y", "agent_type": "echo", "dependencies": ["a"]}],
        "options": {"dry_run": True},
    }))
    env = environment(tmp_path, agents)

    done = pcoord("run", str(plan), env=env)
    assert done.returncode == 0, done.stderr
    printed = yaml.safe_load(done.stdout)
    assert printed["task_description"] == "look first"
    assert [(s["id"], s["agent_type"], s["dependencies"]) for s in printed["subtasks"]] == [
        ("a", "flaky", []), ("b", "echo", ["a"]),
    ]
    assert "dry run: nothing ran" in done.stderr

    done = pcoord("run", str(plan), "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["session_id"] == "" and [t["task_id"] for t in result["plan"]] == ["a", "b"]
    assert result["next_step"].startswith("dry run: nothing ran")

    assert runs(counter) == 0
    listed = pcoord("status", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == []  # no session was started


def test_a_plan_file_naming_resume_session_reruns_what_failed_and_keeps_what_succeeded(
    tmp_path: Path, agents: AgentFactory
) -> None:
    agents.script("flaky", FLAKY)
    steady, shaky = tmp_path / "steady-runs", tmp_path / "shaky-runs"
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "first go",
        "subtasks": [{"id": "steady", "description": flaky(steady, 1), "agent_type": "flaky"},
                     {"id": "shaky", "description": flaky(shaky, 2), "agent_type": "flaky"}],
        "options": {"retry_attempts": 1},
    }))
    env = environment(tmp_path, agents)
    first = pcoord("run", str(plan), "--json", env=env)
    assert first.returncode == 1, first.stderr
    ended = json.loads(first.stdout)
    assert ended["status"] == "PARTIAL"
    assert (runs(steady), runs(shaky)) == (1, 1)

    resume = tmp_path / "resume.yaml"
    resume.write_text(yaml.safe_dump({
        "task_description": "again", "options": {"resume_session": ended["session_id"], "dry_run": True},
    }))
    looked = pcoord("run", str(resume), env=env)
    assert looked.returncode == 0, looked.stderr
    assert [s["id"] for s in yaml.safe_load(looked.stdout)["subtasks"]] == ["steady", "shaky"]
    assert (runs(steady), runs(shaky)) == (1, 1)  # a dry run of a resume runs nothing either

    resume.write_text(yaml.safe_dump({"task_description": "again", "options": {"resume_session": ended["session_id"]}}))
    second = pcoord("run", str(resume), "--json", env=env)
    assert second.returncode == 0, second.stderr
    result = json.loads(second.stdout)
    assert result["status"] == "SUCCESS"
    assert result["resumed_from"] == ended["session_id"] and result["session_id"] != ended["session_id"]
    outputs = {r["task_id"]: r["output"].strip() for r in result["results"]}
    assert outputs == {"steady": "succeeded on run 1", "shaky": "succeeded on run 2"}
    assert (runs(steady), runs(shaky)) == (1, 2)  # the task that had succeeded was kept, not run again


def test_resume_session_naming_no_session_is_an_error_that_names_it(tmp_path: Path, agents: AgentFactory) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"task_description": "again", "options": {"resume_session": "no-such-session"}}))
    done = pcoord("run", str(plan), env=environment(tmp_path, agents))
    assert done.returncode == 1
    assert "no-such-session" in done.stderr


REVIEWER = """---
name: reviewer
description: Reviews code for bugs
model: sonnet
---
You are a careful code reviewer.
"""


def test_a_plan_over_the_approval_threshold_runs_only_once_approved_in_the_file(
    tmp_path: Path, agents: AgentFactory
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    env = {**environment(tmp_path, agents), "PCOORD_CLAUDE_BIN": str(FAKE_CLAUDE)}
    plan = tmp_path / "plan.yaml"
    content = {
        "task_description": "review",
        "subtasks": [{"id": f"r{i}", "description": f"Review part {i}", "agent_type": "reviewer"} for i in range(3)],
        "options": {"approval_threshold_usd": 0.2, "dry_run": True},
    }
    plan.write_text(yaml.safe_dump(content))
    dry = pcoord("run", str(plan), env=env)
    assert dry.returncode == 0, dry.stderr
    assert "forecast: 3 agent run(s), about 90,000 tokens, $0.34" in " ".join(dry.stderr.split())

    content["options"] = {"approval_threshold_usd": 0.2}
    plan.write_text(yaml.safe_dump(content))
    refused = pcoord("run", str(plan), env=env)  # no terminal to ask on
    assert refused.returncode != 0
    said = " ".join(refused.stderr.split())  # as one line: the console wraps it to the terminal's width
    assert "over the approval threshold of $0.2" in said
    assert "`approved: true` under options" in said
    assert json.loads(pcoord("status", "--json", env=env).stdout) == []  # nothing ran

    content["options"] = {"approval_threshold_usd": 0.2, "approved": True}
    plan.write_text(yaml.safe_dump(content))
    done = pcoord("run", str(plan), "--json", env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "SUCCESS" and result["forecast"]["runs"] == 3 and result["spent"]["tokens"] > 0


def test_the_approval_question_on_a_terminal_shows_its_y_n_choice(tmp_path: Path, agents: AgentFactory) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({
        "task_description": "review", "subtasks": [{"id": "r", "description": "Review", "agent_type": "reviewer"}],
        "options": {"approval_threshold_usd": 0.01},
    }))
    controller, terminal = pty.openpty()  # the question is asked only on a terminal
    env = {**os.environ, **environment(tmp_path, agents), "PCOORD_CLAUDE_BIN": str(FAKE_CLAUDE), "COLUMNS": "200",
           "TERM": "xterm"}
    with subprocess.Popen([sys.executable, "-m", "parallel_coordinator", "run", str(plan)], env=env,
                          stdin=terminal, stdout=subprocess.PIPE, stderr=terminal) as run:
        os.close(terminal)
        screen, deadline = "", time.monotonic() + 60
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(controller, selectors.EVENT_READ)
                while "Run it?" not in screen and run.poll() is None:
                    assert time.monotonic() < deadline, screen[-2000:]
                    if selector.select(timeout=0.5):
                        with contextlib.suppress(OSError):  # EIO: the run closed its end
                            screen += os.read(controller, 65536).decode(errors="replace")
                os.write(controller, b"n\n")
                run.wait(timeout=60)
        finally:
            os.close(controller)
    assert "Run it? [y/N]" in screen, screen[-2000:]
    assert run.returncode != 0  # refused: nothing ran
