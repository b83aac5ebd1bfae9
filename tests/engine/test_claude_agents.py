"""Claude Code agents through the whole engine, against the fake `claude` and with none installed."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"

REVIEWER = """---
name: reviewer
description: Reviews code for bugs
tools: Read, Grep
model: sonnet
---
You are a careful code reviewer.
"""


@pytest.fixture
def reviewer(agents: AgentFactory) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)


async def run(coordinator: Coordinator, *subtasks: Subtask):  # type: ignore[no-untyped-def]
    options = CoordinateOptions(wait_seconds=0)
    session = await coordinator.start("review", coordinator.plan(list(subtasks), options), options)
    with anyio.fail_after(60):
        await session.done.wait()
    return session


async def test_a_claude_agent_gets_its_dependencies_and_reports_tokens_and_cost(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    session = await run(
        coordinator,
        Subtask(id="find", description="list the files", agent_type="echo"),
        Subtask(id="review", description="Review the listed files", agent_type="reviewer", dependencies=["find"]),
    )
    assert session.status == "SUCCESS", session.error_summary
    record = session.tasks["review"]
    assert "Review the listed files" in record.output
    assert record.input_tokens and record.input_tokens > 0
    assert record.output_tokens and record.output_tokens > 0
    assert record.cost_usd is not None and record.cost_usd > 0


async def test_a_logged_out_claude_fails_the_task_with_its_own_words(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", "logged_out")
    session = await run(coordinator, Subtask(id="review", description="x", agent_type="reviewer"))
    assert session.tasks["review"].status is TaskState.FAILED
    assert "Not logged in" in (session.tasks["review"].error or "")


async def test_without_claude_the_task_fails_saying_how_to_install_it(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PCOORD_CLAUDE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    session = await run(coordinator, Subtask(id="review", description="x", agent_type="reviewer"))
    error = session.tasks["review"].error or ""
    assert session.tasks["review"].status is TaskState.FAILED
    assert "npm install -g @anthropic-ai/claude-code" in error
    assert "PCOORD_CLAUDE_BIN" in error


async def test_an_agent_directorys_protocol_is_appended_to_every_claude_system_prompt(
    coordinator: Coordinator, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    (agents.root / "system").mkdir()
    (agents.root / "system" / "PROTOCOL.md").write_text("Always report findings as a numbered list.\n")
    record = tmp_path / "argv.json"
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))
    session = await run(coordinator, Subtask(id="review", description="x", agent_type="reviewer"))
    assert session.status == "SUCCESS"
    argv = json.loads(record.read_text())["argv"]
    system_prompt = argv[argv.index("--append-system-prompt") + 1]
    assert system_prompt.startswith("You are a careful code reviewer.")
    assert system_prompt.endswith("Always report findings as a numbered list.")


async def test_a_claude_synthesizer_merges_the_results(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    options = CoordinateOptions(wait_seconds=0, synthesizer="reviewer")
    plan = coordinator.plan([Subtask(id="a", description="part one", agent_type="echo"),
                             Subtask(id="b", description="part two", agent_type="echo")], options)
    session = await coordinator.start("two parts", plan, options)
    with anyio.fail_after(60):
        await session.done.wait()
    assert session.synthesis is not None
    assert session.synthesis.startswith("fake claude done: Merge the results of the subtasks")
    assert "synthesized by reviewer" in session.notes


async def test_a_claude_agent_naming_an_unknown_mcp_server_fails_its_task_once_saying_which(
    coordinator: Coordinator, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    misspelt = REVIEWER.replace("model: sonnet\n", "model: sonnet\nmcpServers: [githb]\n")
    (agents.root / "reviewer.md").write_text(misspelt)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / ".claude.json").write_text(json.dumps({"mcpServers": {"github": {"command": "npx"}}}))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR", raising=False)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    session = await run(coordinator, Subtask(id="review", description="x", agent_type="reviewer"))
    record = session.tasks["review"]
    assert record.status is TaskState.FAILED
    assert "names MCP server 'githb'" in (record.error or "")
    assert "did you mean 'github'?" in (record.error or "")
    assert len(record.attempts) == 1, "an agent file that cannot run is not retried"
