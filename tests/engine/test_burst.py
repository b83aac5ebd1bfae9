"""Strategy 'burst': small tasks of one claude agent share a run, and the answer is split back per task."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory
from tests.engine.test_claude_agents import FAKE_CLAUDE, REVIEWER

pytestmark = pytest.mark.anyio


async def test_burst_runs_small_tasks_together_and_reruns_what_the_answer_missed(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    batch_answer = tmp_path / "batch.txt"
    batch_answer.write_text("=== task: t0 ===\nzero\n=== task: t1 ===\none\n=== task: t2 ===\ntwo\n")
    sequence = tmp_path / "sequence"
    sequence.write_text(f"answer:{batch_answer}\nsuccess\n")
    record = tmp_path / "record.json"
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))
    options = CoordinateOptions(wait_seconds=0)
    subtasks = [Subtask(id=f"t{i}", description=f"look at item {i}", agent_type="reviewer") for i in range(4)]
    session = await coordinator.start("many small", coordinator.plan(subtasks, options), options, strategy="burst")
    with anyio.fail_after(60):
        await session.done.wait()
    assert session.status == "SUCCESS", session.error_summary
    assert [session.tasks[f"t{i}"].output for i in range(3)] == ["zero", "one", "two"]
    assert session.tasks["t3"].output.startswith("fake claude done: look at item 3")  # ran on its own
    assert session.tasks["t0"].input_tokens and session.tasks["t1"].input_tokens is None
    assert all(session.tasks[f"t{i}"].status is TaskState.SUCCEEDED for i in range(4))
    assert any(note.startswith("batched 4 tasks of reviewer in one run") for note in session.notes)
    assert json.loads(record.read_text())["stdin"].startswith("look at item 3")  # the last run was t3 alone


async def test_burst_leaves_command_agents_to_run_one_by_one(coordinator: Coordinator) -> None:
    options = CoordinateOptions(wait_seconds=0)
    subtasks = [Subtask(id=f"e{i}", description=f"echo {i}", agent_type="echo") for i in range(3)]
    session = await coordinator.start("echoes", coordinator.plan(subtasks, options), options, strategy="burst")
    with anyio.fail_after(60):
        await session.done.wait()
    assert [session.tasks[f"e{i}"].output.strip() for i in range(3)] == ["e0 done", "e1 done", "e2 done"]


OPEN_MODEL = """---
name: generalist
description: Does small jobs
tools: Read
---
You do small jobs well.
"""


async def test_quality_mode_gives_each_task_its_own_run_on_the_larger_model(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "generalist.md").write_text(OPEN_MODEL)
    record = tmp_path / "record.json"
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))
    options = CoordinateOptions(wait_seconds=0, priority_mode="quality", max_agents=1)
    subtasks = [Subtask(id=f"t{i}", description=f"look at item {i}", agent_type="generalist") for i in range(2)]
    session = await coordinator.start("careful", coordinator.plan(subtasks, options), options, strategy="burst")
    with anyio.fail_after(60):
        await session.done.wait()
    assert session.status == "SUCCESS", session.error_summary
    assert not any(note.startswith("batched") for note in session.notes)
    assert all(session.tasks[f"t{i}"].output.startswith(f"fake claude done: look at item {i}") for i in range(2))
    argv = json.loads(record.read_text())["argv"]
    assert argv[argv.index("--model") + 1] == "opus"  # priority 3 is "default" in speed mode: one tier up
