"""The QA pipeline (options.qa) through a real MCP client: command agents that write files (at the outside edge),
the checkers installed on this machine, git worktrees, and supervised check processes."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.server import create_server
from parallel_coordinator.views import task_results
from tests.conftest import AgentFactory
from tests.engine.test_isolation import make_repo
from tests.tools.answering import answering_agent, requests_seen

pytestmark = pytest.mark.anyio

# Each run writes the next entry of a list of {file name: text} into its working directory.
WRITER = """
    import fcntl, json, sys
    request = json.load(sys.stdin)
    with open(QUEUE, "r+") as queue:
        fcntl.flock(queue, fcntl.LOCK_EX)
        writes = json.load(queue)
        queue.seek(0)
        queue.truncate()
        json.dump(writes[1:], queue)
    files = writes[0] if writes else {}
    for name, text in files.items():
        with open(name, "w") as out:
            out.write(text)
    with open(LOG, "a") as log:
        log.write(json.dumps(request) + "\\n")
    print("wrote " + ", ".join(files))
"""
AWS_KEY = "AKIA" + "Q3EGRZ7XKJ5PLM2W"  # split so that no scanner flags this test file itself
NO_RETRY_DELAY = {"max_attempts": 3, "backoff_seconds": 0}


def writer(agents: AgentFactory, writes: list[dict[str, str]], name: str = "coder") -> Path:
    queue, log = agents.root / f"{name}.queue.json", agents.root / f"{name}.requests.jsonl"
    queue.write_text(json.dumps(writes))
    agents.script(name, WRITER.replace("QUEUE", repr(str(queue))).replace("LOG", repr(str(log))))
    return log


@asynccontextmanager
async def client_of(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as client:
        yield client


async def coordinate(client: Client, subtasks: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
    answer = await client.call_tool("coordinate_task", {
        "task_description": "checked work", "subtasks": subtasks, "options": {"wait_seconds": 60, **options},
    })
    assert answer.structured_content is not None, answer.content
    return answer.structured_content


def only_result(content: dict[str, Any]) -> dict[str, Any]:
    [result] = content["results"]
    return dict(result)


def checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["check"]: check for check in result["qa"]}


@asynccontextmanager
async def coordinator_with(settings: Settings, **changes: Any) -> AsyncIterator[Coordinator]:
    async with Coordinator(dataclasses.replace(settings, **changes)) as running:
        yield running


async def test_a_syntax_error_in_the_worktree_fails_syntax_check_and_the_retry_that_writes_valid_code_passes(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    broken, fixed = "def parse(text:\n    return text\n", "def parse(text):\n    return text\n"
    log = writer(agents, [{"app.py": broken}, {"app.py": fixed}])
    repo = make_repo(tmp_path / "repo")
    async with client_of(coordinator) as client:
        content = await coordinate(client, [
            {"id": "fix", "description": "Fix parse()", "agent_type": "coder", "retry_policy": NO_RETRY_DELAY},
        ], qa=["syntax_check"], isolation="worktree", working_directory=str(repo))

    fix = only_result(content)
    assert content["status"] == "SUCCESS", content
    assert fix["attempts"] == 2
    first = fix["attempt_log"][0]
    assert first["outcome"] == "rejected"
    assert first["error"].startswith("QA check syntax_check failed:") and "app.py" in first["error"]
    # The retry was told what the checker said.
    retry = requests_seen(log)[1]["description"]
    assert "Your previous attempt was not accepted" in retry and "SyntaxError" in retry
    [syntax] = fix["qa"]
    assert syntax["check"] == "syntax_check" and syntax["verdict"] == "pass" and syntax["findings"] == []
    assert syntax["duration_s"] >= 0
    # Checked in the worktree before its commit, and py_compile left no bytecode behind in it.
    assert fix["worktree"]["files"] == ["app.py"]
    assert not (repo / "app.py").exists()
    # Stored with the task, and read back as the live view showed it.
    stored = coordinator.store.load_session(content["session_id"])
    assert stored is not None
    [read_back] = task_results(view_of_stored(stored), 100, 1000)[0]
    assert [check.model_dump() for check in read_back.qa] == fix["qa"]


async def test_a_file_in_a_language_with_no_checker_is_unchecked_never_passed(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    writer(agents, [{"ok.py": "x = 1\n", "main.zig": "pub fn main() void {}\n", "NOTES.md": "# notes\n"}])
    repo = make_repo(tmp_path / "repo")  # not isolated: the working directory's own changes are checked
    async with client_of(coordinator) as client:
        content = await coordinate(client, [{"id": "w", "description": "Write code", "agent_type": "coder"}],
                                   qa=["syntax_check"], working_directory=str(repo))

    w = only_result(content)
    assert content["status"] == "SUCCESS" and w["attempts"] == 1  # unchecked does not reject
    syntax = checks(w)["syntax_check"]
    assert syntax["verdict"] == "unchecked"
    assert "1 of 2 files passed" in syntax["notes"]
    assert "main.zig: unchecked (no syntax checker for '.zig' files)" in syntax["notes"]
    assert "NOTES.md: skipped (no syntax to check)" in syntax["notes"]


async def test_outside_a_git_repository_the_file_checks_are_unchecked_for_want_of_changed_files(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    writer(agents, [{"app.py": "x = (\n"}])
    plain = tmp_path / "plain"
    plain.mkdir()
    async with client_of(coordinator) as client:
        content = await coordinate(client, [{"id": "w", "description": "Write code", "agent_type": "coder"}],
                                   qa=["syntax_check", "security_scan"], working_directory=str(plain))
    found = checks(only_result(content))
    for name in ("syntax_check", "security_scan"):
        assert found[name]["verdict"] == "unchecked"
        assert found[name]["notes"][0].startswith("no changed files found (") and "not a git repository" in \
            found[name]["notes"][0]


async def test_a_planted_secret_fails_security_scan_and_the_result_never_shows_the_secret(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    writer(agents, [{"settings.py": f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n'}])
    repo = make_repo(tmp_path / "repo")
    async with client_of(coordinator) as client:
        content = await coordinate(client, [
            {"id": "cfg", "description": "Add settings", "agent_type": "coder", "retry_policy": {"max_attempts": 1}},
        ], qa=["security_scan"], isolation="worktree", working_directory=str(repo))

    cfg = only_result(content)
    assert content["status"] == "FAILED" and cfg["status"] == "failed"
    security = checks(cfg)["security_scan"]
    assert security["verdict"] == "fail"
    assert security["findings"][0].startswith("settings.py:1: possible AWS access key id")
    assert "bandit" in " ".join(security["notes"]) and "semgrep" in " ".join(security["notes"])
    assert "QA check security_scan failed" in cfg["error"]
    assert AWS_KEY not in json.dumps(content)


async def test_performance_test_not_configured_is_not_run_and_the_result_says_how_to_configure_it(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    writer(agents, [{"app.py": "x = 1\n"}])
    repo = make_repo(tmp_path / "repo")
    async with client_of(coordinator) as client:
        content = await coordinate(client, [{"id": "w", "description": "Write code", "agent_type": "coder"}],
                                   qa=["performance_test", "documentation_check"], working_directory=str(repo))
    w = only_result(content)
    assert content["status"] == "SUCCESS"
    assert [(c["check"], c["verdict"]) for c in w["qa"]] == [
        ("performance_test", "not_run"), ("documentation_check", "not_run")]
    assert checks(w)["performance_test"]["notes"] == [
        "not configured: set qa.commands.performance_test in the configuration file"]


async def test_a_configured_performance_test_runs_in_the_worktree_and_its_exit_status_is_the_verdict(
    settings: Settings, agents: AgentFactory, tmp_path: Path
) -> None:
    writer(agents, [{"app.py": "x = 1\n"}, {"app.py": "x = 2\n"}])
    repo = make_repo(tmp_path / "repo")
    commands = {
        # Runs where the agent worked: the file it wrote is there (it is not in the main checkout).
        "performance_test": "test -f app.py && echo 'p95 12 ms'",
        "documentation_check": [sys.executable, "-c", "import sys; print('README lacks a usage section'); sys.exit(1)"],
    }
    configured = coordinator_with(settings, qa_commands=commands, qa_default=("performance_test",))
    async with configured as coordinator, client_of(coordinator) as client:
        passing = await coordinate(client, [{"id": "w", "description": "Write code", "agent_type": "coder"}],
                                   isolation="worktree", working_directory=str(repo))
        failing = await coordinate(client, [
            {"id": "w", "description": "Write code", "agent_type": "coder", "retry_policy": {"max_attempts": 1}},
        ], qa=["performance_test", "documentation_check"], isolation="worktree", working_directory=str(repo))

    # The configuration's qa.default applies when a call names no checks.
    perf = checks(only_result(passing))["performance_test"]
    assert passing["status"] == "SUCCESS" and perf["verdict"] == "pass"
    found = checks(only_result(failing))
    assert failing["status"] == "FAILED"
    assert found["performance_test"]["verdict"] == "pass"
    docs = found["documentation_check"]
    assert docs["verdict"] == "fail"
    assert docs["findings"][0].endswith("exited with status 1") and "README lacks a usage section" in docs["findings"]


async def test_an_agent_named_as_a_check_gets_the_output_and_diff_and_its_fail_rejects_with_its_reasons(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    first, second = "def parse(text):\n    return text\n", "def parse(text):\n    return text or ''\n"
    writer(agents, [{"app.py": first}, {"app.py": second}])
    reviews = answering_agent(agents, "reviewer", [
        json.dumps({"verdict": "fail", "reasons": ["parse() still returns None for empty input"]}),
        json.dumps({"verdict": "pass", "reasons": ["empty input is handled"]}),
    ])
    repo = make_repo(tmp_path / "repo")
    async with client_of(coordinator) as client:
        content = await coordinate(client, [
            {"id": "fix", "description": "Fix parse() on empty input", "agent_type": "coder",
             "retry_policy": NO_RETRY_DELAY},
        ], qa=["reviewer"], isolation="worktree", working_directory=str(repo))

    fix = only_result(content)
    assert content["status"] == "SUCCESS" and fix["attempts"] == 2, content
    assert fix["attempt_log"][0]["error"] == (
        "QA check reviewer failed:\n- parse() still returns None for empty input")
    review = checks(fix)["reviewer"]
    assert review["verdict"] == "pass" and review["notes"] == ["empty input is handled"]
    first = requests_seen(reviews)[0]
    assert first["context"]["output"].strip() == "wrote app.py"
    assert "+def parse(text):" in first["context"]["diff"] and "app.py" in first["context"]["diff"]
    assert "Fix parse() on empty input" in first["description"]
    assert '"verdict"' in first["description"]  # a command agent is told the answer's schema


async def test_a_check_that_is_neither_built_in_nor_an_agent_is_refused_naming_it(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    async with client_of(coordinator) as client:
        answer = await client.call_tool("coordinate_task", {
            "task_description": "x", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
            "options": {"qa": ["sytax_check"]},
        })
    assert answer.is_error
    text = answer.content[0].text  # type: ignore[union-attr]
    assert "options.qa names 'sytax_check'" in text and "did you mean 'syntax_check'?" in text
    assert coordinator.sessions == {}


async def test_cancelling_during_a_slow_check_kills_the_check_and_everything_it_started(
    settings: Settings, agents: AgentFactory, tmp_path: Path
) -> None:
    writer(agents, [{"app.py": "x = 1\n"}])
    repo = make_repo(tmp_path / "repo")
    fifo = tmp_path / "pids"
    os.mkfifo(fifo)
    # The check starts a child and tells us both pids, then waits for ever.
    slow = f"sleep 600 & echo $$ $! > {fifo}; wait"
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        async with coordinator_with(settings, qa_commands={"performance_test": slow}) as coordinator:
            async with client_of(coordinator) as client:
                started = await coordinate(client, [{"id": "w", "description": "Write", "agent_type": "coder"}],
                                           qa=["performance_test"], working_directory=str(repo), wait_seconds=0)
                with anyio.fail_after(60):
                    await anyio.wait_readable(reader)
                pids = [int(pid) for pid in os.read(reader, 100).split()]
                procs = [psutil.Process(pid) for pid in pids]
                assert len(procs) == 2
                await client.call_tool("cancel_execution", {"session_id": started["session_id"]})
                session = coordinator.sessions[started["session_id"]]
                with anyio.fail_after(30):
                    await session.done.wait()
            _, left = psutil.wait_procs(procs, timeout=10)
            assert left == []
            assert session.status == "CANCELLED"
            record = session.tasks["w"]
            assert record.status.value == "cancelled"
            assert [c["verdict"] for c in record.qa] == ["unchecked"]
    finally:
        os.close(reader)
