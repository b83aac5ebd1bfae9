"""Prompt-cache warm-up through the real engine and the fake `claude`'s model of the API's prompt cache.

With it on, the first run of an agent goes alone until it has answered, so N runs write the cache once;
with it off they all write it. A held run never waits past the bound, nor for a run that died, and the
slot it would take serves other agents meanwhile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.session import Session
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory, wait_until

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
REVIEWER = "---\nname: reviewer\ndescription: Reviews code\ntools: Read, Grep\n---\nYou are a careful code reviewer.\n"
RUNS = 4


@pytest.fixture
def cache(agents: AgentFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_CACHE_DIR", str(tmp_path / "prompt-cache"))
    return tmp_path / "prompt-cache"


@asynccontextmanager
async def started(
    settings: Settings, wait_s: float, subtasks: list[Subtask], **options: object
) -> AsyncIterator[tuple[Coordinator, Session]]:
    async with Coordinator(dataclasses.replace(settings, cache_warmup_wait_s=wait_s)) as coordinator:
        given = CoordinateOptions.model_validate({"wait_seconds": 0, **options})
        session = await coordinator.start("review", coordinator.plan(subtasks, given), given)
        yield coordinator, session


def reviews(n: int = RUNS) -> list[Subtask]:
    return [Subtask(id=f"r{i}", description=f"review part {i}", agent_type="reviewer") for i in range(n)]


def first_turns(session: Session) -> list[dict[str, int]]:
    """Per task, its final run's prefix: the first turn's prompt tokens, uncached, written and read."""
    return [r.attempts[-1].prefix for r in session.tasks.values() if r.attempts and r.attempts[-1].prefix]


def cache_writes(session: Session) -> list[int]:
    return [prefix["cache_creation_input_tokens"] for prefix in first_turns(session)]


async def finished(session: Session) -> None:
    with anyio.fail_after(60):
        await session.done.wait()


async def test_with_warmup_runs_of_one_agent_write_its_prompt_cache_once(
    settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first answer takes a second, as a long prompt's does: runs started together would all miss.
    monkeypatch.setenv("FAKE_CLAUDE_FIRST_RESPONSE_S", "1")
    async with started(settings, 60, reviews()) as (_, session):
        await finished(session)

    assert session.status == "SUCCESS", session.error_summary
    writes = cache_writes(session)
    assert len(writes) == RUNS
    assert sorted(writes) == [0] * (RUNS - 1) + [max(writes)] and max(writes) > 0, f"one run wrote it: {writes}"
    reads = sorted(prefix["cache_read_input_tokens"] for prefix in first_turns(session))
    assert reads == [0] + [max(writes)] * (RUNS - 1), "the others read what it wrote"


async def test_without_warmup_every_run_writes_the_prompt_cache(
    settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # All first answers wait until every run has asked: the moment a fan-out started all at once meets.
    monkeypatch.setenv("FAKE_CLAUDE_RESPOND_TOGETHER", str(RUNS))
    async with started(settings, 60, reviews(), cache_warmup=False) as (_, session):
        await finished(session)

    assert session.status == "SUCCESS", session.error_summary
    writes = cache_writes(session)
    assert len(writes) == RUNS and all(w > 0 for w in writes), writes


def sequence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *scenarios: str) -> None:
    path = tmp_path / "sequence"
    path.write_text("".join(f"{s}\n" for s in scenarios))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(path))


def succeeded(session: Session, *task_ids: str) -> Callable[[], bool]:
    return lambda: all(session.tasks[t].status is TaskState.SUCCEEDED for t in task_ids)


async def test_held_runs_start_once_the_first_run_has_answered_while_it_still_works(
    settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sequence(tmp_path, monkeypatch, "hang", "success", "success")  # hang: answers with a tool call, then sleeps
    async with started(settings, 600, reviews(3)) as (coordinator, session):
        await wait_until(session, lambda: len(session.running()) == 1 and session.queue_reason is not None)
        first = session.running()[0].task_id
        await wait_until(session, succeeded(session, *(t for t in session.tasks if t != first)))
        assert session.tasks[first].status is TaskState.RUNNING
        await coordinator.cancel(session.id)
        await finished(session)


async def test_held_runs_start_when_the_bound_passes_though_the_first_never_answers(
    settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sequence(tmp_path, monkeypatch, "no_response", "success", "success")
    async with started(settings, 2, reviews(3)) as (coordinator, session):
        await wait_until(session, lambda: "warming the prompt cache" in (session.queue_reason or ""))
        assert "'reviewer'" in (session.queue_reason or "")
        running = [r.task_id for r in session.running()]
        await wait_until(session, succeeded(session, *(t for t in session.tasks if t not in running)))
        assert [r.task_id for r in session.running()] == running, "the first run is still silent"
        await coordinator.cancel(session.id)
        await finished(session)


async def test_held_runs_start_as_soon_as_the_first_run_dies_unanswered(
    settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sequence(tmp_path, monkeypatch, "crash", "success", "success", "success")
    # Far past the test's own bound: the held runs can only have started because the first run ended.
    async with started(settings, 600, reviews(3)) as (_, session):
        with anyio.fail_after(30):
            await session.done.wait()

    assert session.status == "SUCCESS", session.error_summary


async def test_while_runs_are_held_their_slot_serves_other_agents(
    settings: Settings, cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sequence(tmp_path, monkeypatch, "no_response")
    echoes = [Subtask(id=f"e{i}", description=f"echo {i}", agent_type="echo", priority=5) for i in range(3)]
    async with started(settings, 600, [*reviews(2), *echoes], max_agents=2) as (coordinator, session):
        await wait_until(session, succeeded(session, "e0", "e1", "e2"))
        held = [t for t in ("r0", "r1") if session.tasks[t].status is TaskState.PENDING]
        assert len(held) == 1, "one review runs silent, the other waits for its answer"
        await coordinator.cancel(session.id)
        await finished(session)
