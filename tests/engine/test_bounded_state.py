"""A long-lived server stays small and private: bounded outputs in memory, SQLite and on disk; 0700/0600 state."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.policy import SessionPolicy
from parallel_coordinator.engine.session import Session
from parallel_coordinator.report import write_report
from parallel_coordinator.runners.base import RunResult
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.server import create_server
from parallel_coordinator.state.outputs import INLINE_CHARS
from parallel_coordinator.state.retained import MAX_ENDED_SESSIONS, EndedSessions, ServerResultCache
from tests.conftest import AgentFactory, wait_until
from tests.engine.test_failures import BARRIER

# Prints `size` characters of 'o' (from its description) and a line of stderr.
PRINT_SIZE = """
    import json, sys
    request = json.load(sys.stdin)
    size = int(request["description"])
    print("working", file=sys.stderr)
    sys.stdout.write("o" * size)
"""

# Writes `size` bytes to stdout and to stderr.
FLOOD_BOTH = """
    import json, sys
    size = int(json.load(sys.stdin)["description"])
    sys.stdout.buffer.write(b"s" * size)
    sys.stderr.buffer.write(b"e" * size)
"""

# Reports the request it got: each context's length, and the files it was given.
FAN_IN = """
    import json, sys
    request = json.load(sys.stdin)
    files = request["context_files"]
    print(json.dumps({
        "context_lengths": {k: len(v) for k, v in request["context"].items()},
        "files": files,
        "file_lengths": {k: len(open(p, encoding="utf-8").read()) for k, p in files.items()},
    }))
"""

def options(**overrides: Any) -> CoordinateOptions:
    return CoordinateOptions.model_validate({"wait_seconds": 0, "retry_attempts": 1, **overrides})


async def run(coordinator: Coordinator, subtasks: list[Subtask], **overrides: Any) -> Session:
    chosen = options(**overrides)
    session = await coordinator.start("bounded", coordinator.plan(subtasks, chosen), chosen)
    with anyio.fail_after(90):
        await session.done.wait()
    return session


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.anyio
@pytest.mark.usefixtures("umask_022")
async def test_the_state_directory_is_owner_only_whatever_the_umask(settings: Settings, agents: AgentFactory) -> None:
    agents.script("big", PRINT_SIZE)
    settings.performance_logging = True
    async with Coordinator(settings) as coordinator:
        session = await run(coordinator, [Subtask(id="long", description=str(INLINE_CHARS * 2), agent_type="big"),
                                          Subtask(id="short", description="10", agent_type="big")])
        assert session.status == "SUCCESS"
        write_report(coordinator.store, session.id, reports_dir=settings.reports_dir)
    loose = []
    for folder, dirs, files in os.walk(settings.state_dir):
        for name in dirs:
            if stat.S_IMODE(os.stat(Path(folder, name)).st_mode) != 0o700:
                loose.append(Path(folder, name))
        for name in files:
            if stat.S_IMODE(os.stat(Path(folder, name)).st_mode) != 0o600:
                loose.append(Path(folder, name))
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    assert loose == []
    assert (settings.state_dir / "state.db").exists() and (settings.logs_dir / f"{session.id}.jsonl").exists()
    assert (settings.reports_dir / f"{session.id}.html").exists()


@pytest.mark.anyio
async def test_a_long_output_is_held_as_a_head_and_served_whole_from_its_file(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("big", PRINT_SIZE)
    size = 4 * 1024 * 1024
    async with Client(create_server(coordinator=coordinator)) as client:
        result = await client.call_tool("coordinate_task", {
            "task_description": "big", "subtasks": [{"id": "b", "description": str(size), "agent_type": "big"}],
            "options": {"wait_seconds": 60, "result_chars": 200_000, "total_result_chars": 200_000},
        })
        assert result.structured_content is not None
        (task,) = result.structured_content["results"]
        # The answer may show more than the head: it reads the file.
        assert len(task["output"]) == 200_000 and task["output_chars"] == size
        assert task["output_truncated"] is True and task["output_cut_on_disk"] is False
        whole = await client.read_resource(task["output_uri"])
        assert len(whole.contents[0].text) == size  # type: ignore[union-attr]
    record = coordinator.get(result.structured_content["session_id"])
    held = record.tasks["b"] if record.live else None
    assert held is not None and len(held.output) == INLINE_CHARS
    # SQLite keeps the head too, not a second copy of the whole output.
    with coordinator.store._db:  # the one connection: read the row as stored
        (stored,) = coordinator.store._db.execute("SELECT length(output), output_chars FROM tasks").fetchall()
    assert stored == (INLINE_CHARS, size)


@pytest.mark.anyio
async def test_many_large_outputs_do_not_grow_the_database(coordinator: Coordinator, agents: AgentFactory) -> None:
    agents.script("big", PRINT_SIZE)
    session = await run(coordinator, [
        Subtask(id=f"t{i}", description=str(1024 * 1024), agent_type="big") for i in range(12)
    ], reuse_results="off")
    assert session.status == "SUCCESS"
    database = coordinator.settings.database
    size = sum(p.stat().st_size for p in database.parent.glob(database.name + "*"))
    assert size < 4 * 1024 * 1024  # twelve outputs of 1 MiB each, stored as 64 KiB heads


@pytest.mark.anyio
async def test_artefacts_are_capped_on_disk_and_the_cut_is_recorded(
    settings: Settings, agents: AgentFactory
) -> None:
    agents.script("flood", FLOOD_BOTH)
    settings.artefact_cap_bytes = 1 << 20
    settings.output_cap_bytes = 256 << 10
    async with Coordinator(settings) as coordinator:
        session = await run(coordinator, [Subtask(id="f", description=str(3 << 20), agent_type="flood")])
        record = session.tasks["f"]
        assert record.status.value == "succeeded"
        assert record.output_chars == 3 << 20 and record.output_cut is True
        assert record.output_path is not None
        folder = Path(record.output_path).parent
        assert (folder / "stdout").stat().st_size == 1 << 20
        assert (folder / "stderr").stat().st_size == 1 << 20
        (streams,) = coordinator.store._db.execute("SELECT streams FROM attempts").fetchone()
        assert json.loads(streams) == {"stdout_bytes": 3 << 20, "stderr_bytes": 3 << 20,
                                       "stdout_cut_on_disk": True, "stderr_cut_on_disk": True}
        async with Client(create_server(coordinator=coordinator)) as client:
            status = await client.call_tool("get_progress_status", {"session_id": session.id})
        assert status.structured_content is not None
        (task,) = status.structured_content["results"]
        assert task["output_cut_on_disk"] is True and task["output_chars"] == 3 << 20


@pytest.mark.anyio
async def test_large_dependency_outputs_reach_a_dependent_by_file(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("big", PRINT_SIZE)
    agents.script("fan-in", FAN_IN)
    sizes = {"small": 100, "large1": INLINE_CHARS * 3, "large2": INLINE_CHARS + 1}
    session = await run(coordinator, [
        *(Subtask(id=name, description=str(size), agent_type="big") for name, size in sizes.items()),
        Subtask(id="join", description="x", agent_type="fan-in", dependencies=list(sizes)),
    ])
    seen = json.loads(session.tasks["join"].output)
    assert seen["context_lengths"] == {"small": 100, "large1": INLINE_CHARS, "large2": INLINE_CHARS}
    assert set(seen["files"]) == {"large1", "large2"}
    assert seen["file_lengths"] == {"large1": INLINE_CHARS * 3, "large2": INLINE_CHARS + 1}
    stdin = Path(coordinator.settings.runs_dir, session.id, "join", "1", "stdin")
    assert stdin.stat().st_size < 3 * INLINE_CHARS  # bounded, however large the fan-in


@pytest.mark.anyio
async def test_ended_sessions_leave_memory_and_are_read_back_from_the_store(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("big", PRINT_SIZE)
    ids = []
    for _ in range(MAX_ENDED_SESSIONS + 3):
        session = await run(coordinator, [Subtask(id="t", description="1000", agent_type="big")])
        ids.append(session.id)
    assert len(coordinator.sessions) == MAX_ENDED_SESSIONS
    oldest = coordinator.get(ids[0])
    assert not oldest.live  # read back from the store
    snapshot = oldest
    assert snapshot.tasks["t"].output == "o" * 1000 and snapshot.status == "SUCCESS"


@pytest.mark.anyio
async def test_peak_parallelism_is_one_figure_live_stored_and_in_the_report(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("barrier", BARRIER)
    folder = tmp_path / "markers"
    folder.mkdir()
    session = await run(coordinator, [
        Subtask(id=f"b{i}", description=f"{folder} b{i} 4", agent_type="barrier") for i in range(4)
    ], max_agents=4)
    assert session.status == "SUCCESS"
    stored = coordinator.store.load_session(session.id)
    assert stored is not None
    live = coordinator.snapshot(session).peak_parallelism
    assert live == coordinator.snapshot(stored).peak_parallelism == 4
    page = write_report(coordinator.store, session.id, reports_dir=coordinator.settings.reports_dir).read_text()
    assert "4 of 4 slots" in page


# Waits for the release file named in its description, then answers.
GATED = """
    import json, os, sys, time
    release = json.load(sys.stdin)["description"]
    while not os.path.exists(release):
        time.sleep(0.01)
    print("done")
"""


@pytest.mark.anyio
async def test_a_task_waiting_for_its_identical_twin_is_shown_waiting_not_active(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("gated", GATED)
    release = tmp_path / "release"
    chosen = options()
    subtasks = [Subtask(id=f"t{i}", description=str(release), agent_type="gated") for i in range(3)]
    session = await coordinator.start("twins", coordinator.plan(subtasks, chosen), chosen)
    await wait_until(session, lambda: sum(r.waiting_for is not None for r in session.tasks.values()) == 2)
    from parallel_coordinator.views import progress_status

    status = progress_status(coordinator.snapshot(session), 0, 0)
    assert [a.task_id for a in status.agents_active] == ["t0"]
    assert status.waiting_on_twins == {"t1": "t0", "t2": "t0"}
    release.touch()
    with anyio.fail_after(60):
        await session.done.wait()
    assert session.status == "SUCCESS" and session.peak_parallelism == 1


def test_the_ended_sessions_kept_in_memory_are_bounded_by_count_and_by_characters() -> None:
    kept = EndedSessions(max_sessions=3, max_chars=1000)

    def ended(name: str, chars: int) -> Session:
        from parallel_coordinator.planning.graph import TaskGraph, TaskNode

        session = Session(id=name, task_description="x", policy=SessionPolicy.from_options(CoordinateOptions()),
                          graph=TaskGraph([TaskNode(id="t", description="x", agent="a")]))
        session.tasks["t"].output = "z" * chars
        return session

    assert kept.add(ended("a", 100)) == [] and kept.add(ended("b", 100)) == [] and kept.add(ended("c", 100)) == []
    assert kept.add(ended("d", 100)) == ["a"]
    assert kept.add(ended("e", 900)) == ["b", "c"]  # d and e make exactly the bound
    assert kept.add(ended("f", 5000)) == ["d", "e", "f"]  # one too large for memory leaves it at once


def test_the_server_wide_result_cache_is_bounded_by_entries_and_characters() -> None:
    cache = ServerResultCache(max_entries=2, max_chars=100)
    cache.put("a", "s/a", RunResult(ok=True, output="x" * 10))
    cache.put("b", "s/b", RunResult(ok=True, output="x" * 10))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", "s/c", RunResult(ok=True, output="x" * 10))
    assert cache.get("b") is None and cache.get("a") is not None and len(cache) == 2
    cache.put("d", "s/d", RunResult(ok=True, output="x" * 95))
    assert len(cache) == 1 and cache.get("d") is not None
