"""Strategy 'burst' with replicas and output schemas: batching must not undo either.

Replicas are N independent runs by design, a merging task runs no agent, and a task with an
output_schema is checked against it; a batched run (several tasks in one claude run, split back by
marker) would give all replicas one run's answers and would hand members their text unchecked.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory
from tests.engine.test_claude_agents import FAKE_CLAUDE, REVIEWER

pytestmark = pytest.mark.anyio


def answers_in_one_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sections: dict[str, str]) -> None:
    """The fake claude's first run answers every section named; later runs give its default answer."""
    answer = tmp_path / "batch.txt"
    answer.write_text("".join(f"=== task: {task} ===\n{text}\n" for task, text in sections.items()))
    sequence = tmp_path / "sequence"
    sequence.write_text(f"answer:{answer}\n" + "success\n" * 8)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))


async def test_burst_never_puts_replicas_of_one_subtask_in_one_run(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    answers_in_one_run(tmp_path, monkeypatch, {"solve#1": "42", "solve#2": "42", "solve#3": "42"})
    options = CoordinateOptions(wait_seconds=0, cache_warmup=False)
    subtasks = [Subtask(id="solve", description="look at item 1", agent_type="reviewer", count=3, merge="vote")]
    session = await coordinator.start("replicas", coordinator.plan(subtasks, options), options, strategy="burst")
    with anyio.fail_after(60):
        await session.done.wait()
    assert not any(note.startswith("batched") for note in session.notes), session.notes


async def test_burst_checks_each_batched_task_against_its_output_schema(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    answers_in_one_run(tmp_path, monkeypatch, {"t0": "not json", "t1": "not json either"})
    options = CoordinateOptions(wait_seconds=0, cache_warmup=False, retry_attempts=1)
    schema = {"type": "object", "required": ["answer"]}
    subtasks = [
        Subtask(id=f"t{i}", description=f"look at item {i}", agent_type="reviewer", output_schema=schema)
        for i in range(2)
    ]
    session = await coordinator.start("checked", coordinator.plan(subtasks, options), options, strategy="burst")
    with anyio.fail_after(60):
        await session.done.wait()
    outputs = {t: (r.status.value, r.output) for t, r in session.tasks.items()}
    assert all(r.output_json is not None or r.status.value == "failed" for r in session.tasks.values()), outputs


async def test_burst_merges_replicas_by_vote_and_never_sends_the_merge_to_an_agent(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    answer = tmp_path / "answer.txt"
    answer.write_text("42")
    sequence = tmp_path / "sequence"
    # One run per replica answers 42; a run past those (a batch, or a merge sent to an agent) answers otherwise.
    sequence.write_text(f"answer:{answer}\n" * 4 + "success\n" * 4)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
    options = CoordinateOptions(wait_seconds=0, cache_warmup=False)
    subtasks = [
        Subtask(id=t, description=f"look at item {t}", agent_type="reviewer", count=2, merge="vote") for t in "ab"
    ]
    session = await coordinator.start("votes", coordinator.plan(subtasks, options), options, strategy="burst")
    with anyio.fail_after(60):
        await session.done.wait()
    assert [session.tasks[t].output.strip() for t in "ab"] == ["42", "42"], session.notes
    assert sequence.read_text().count("\n") == 4  # four claude runs in all: one per replica, none for the merges
