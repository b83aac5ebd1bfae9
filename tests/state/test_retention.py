"""Retention: old and oversized history leaves the state directory (rows, artefacts, logs, reports), running
sessions never do; through the real Store and SQLite, `pcoord gc` and a real Coordinator."""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from pathlib import Path

import anyio
import pytest

from parallel_coordinator import cli
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.state.cleanup import collect
from parallel_coordinator.state.retention import DAY_S, MB, Entry, RetentionPolicy, plan_removals
from parallel_coordinator.state.store import Store, StoredAttempt

NOW = time.time()


@pytest.fixture
def state(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state", retention_days=30, retention_mb=2048)


def stored_session(
    settings: Settings, session_id: str, *, ended_days_ago: float, status: str = "SUCCESS",
    artefact_bytes: int = 1000, output: str = "result",
) -> int:
    """A session that ended that many days ago (or, RUNNING, started then), written through the Store, with an
    attempt's artefacts, a performance log and a report on disk. Returns the bytes of those files."""
    ended = NOW - ended_days_ago * DAY_S
    store = Store(settings.database)
    try:
        store.create_session(session_id, "old work", {}, ended - 60, 1, [("t1", "echo", "step one", [], 3, {})])
        store.update_task(session_id, "t1", status="succeeded", output=output, attempts=1, started_at=ended - 50,
                          finished_at=ended)
        store.add_attempt(StoredAttempt(session_id, "t1", 1, "echo", ended - 50, ended, 0, "exited", None), None, 12.0)
        if status != "RUNNING":
            store.finish_session(session_id, status, ended, None)
    finally:
        store.close()
    attempt = settings.runs_dir / session_id / "t1" / "1"
    attempt.mkdir(parents=True)
    files = {
        attempt / "stdin": b"{}",
        attempt / "stdout": b"o" * artefact_bytes,
        attempt / "stderr": b"e" * 10,
        settings.logs_dir / f"{session_id}.jsonl": b'{"kind": "session_started"}\n',
        settings.reports_dir / f"{session_id}.html": b"<html></html>",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return sum(len(data) for data in files.values())


def on_disk(settings: Settings, session_id: str) -> list[Path]:
    candidates = [settings.runs_dir / session_id, settings.logs_dir / f"{session_id}.jsonl",
                  settings.reports_dir / f"{session_id}.html"]
    return [path for path in candidates if path.exists()]


def rows(settings: Settings, session_id: str) -> dict[str, int]:
    with sqlite3.connect(settings.database) as db:
        counts = {
            "sessions": db.execute("SELECT COUNT(*) FROM sessions WHERE id = ?", (session_id,)).fetchone()[0],
            "tasks": db.execute("SELECT COUNT(*) FROM tasks WHERE session_id = ?", (session_id,)).fetchone()[0],
            "attempts": db.execute("SELECT COUNT(*) FROM attempts WHERE session_id = ?", (session_id,)).fetchone()[0],
        }
    db.close()
    return counts


def old_file(path: Path, days_ago: float, data: bytes = b"x" * 100, *, under: Path | None = None) -> Path:
    """A file last written that many days ago; with `under`, the folders from there down to it are as old."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    stamp = NOW - days_ago * DAY_S
    aged = [path]
    if under is not None:
        aged += [folder for folder in path.parents if folder.is_relative_to(under)]
    for item in aged:
        os.utime(item, (stamp, stamp))
    return path


OLD, YOUNG, RUNNING = "0123456789abcdef", "fedcba9876543210", "00112233445566aa"


def test_sessions_older_than_the_limit_go_with_their_rows_artefacts_log_and_report(state: Settings) -> None:
    stored_session(state, OLD, ended_days_ago=45)
    stored_session(state, YOUNG, ended_days_ago=2)
    result = collect(state, now=NOW)
    assert [r.entry.key for r in result.removals] == [OLD]
    assert result.removals[0].reason == "ended 45 days ago, over the 30-day limit"
    assert rows(state, OLD) == {"sessions": 0, "tasks": 0, "attempts": 0}
    assert on_disk(state, OLD) == []
    assert rows(state, YOUNG) == {"sessions": 1, "tasks": 1, "attempts": 1}
    assert len(on_disk(state, YOUNG)) == 3
    store = Store(state.database)
    assert store.load_session(OLD) is None
    assert store.load_session(YOUNG) is not None
    store.close()
    assert (result.kept_sessions, result.kept_running) == (1, 0)


def test_a_running_session_is_never_removed_even_when_old_and_over_the_size_limit(state: Settings) -> None:
    state.retention_mb = 1  # the running session alone is over it
    stored_session(state, RUNNING, ended_days_ago=90, status="RUNNING", artefact_bytes=2 * MB)
    stored_session(state, OLD, ended_days_ago=60)
    stored_session(state, YOUNG, ended_days_ago=0.5)
    result = collect(state, now=NOW)
    assert {r.entry.key for r in result.removals} == {OLD, YOUNG}
    assert rows(state, RUNNING) == {"sessions": 1, "tasks": 1, "attempts": 1}
    assert len(on_disk(state, RUNNING)) == 3
    assert (result.kept_sessions, result.kept_running) == (1, 1)


def test_over_the_size_limit_the_oldest_ended_sessions_go_first_until_under_it(state: Settings) -> None:
    state.retention_days = None
    ids = [f"{n:016x}" for n in range(1, 6)]  # ids[0] ended 5 days ago ... ids[4] 1 day ago
    for age, session_id in zip(range(5, 0, -1), ids, strict=True):
        stored_session(state, session_id, ended_days_ago=age, artefact_bytes=MB)
    state.retention_mb = 2.5  # five sessions of a little over 1 MB each: two may stay
    result = collect(state, now=NOW)
    assert [r.entry.key for r in result.removals] == ids[:3]
    first = result.removals[0].reason
    assert first == "ended 5 days ago, the oldest while all kept (5.0 MB) was over the 2.5 MB limit"
    assert [session_id for session_id in ids if rows(state, session_id)["sessions"]] == ids[3:]
    assert result.kept_bytes <= 2.5 * MB


def test_the_figures_freed_are_the_files_removed_and_the_shrinking_of_the_database(state: Settings) -> None:
    written = stored_session(state, OLD, ended_days_ago=40, artefact_bytes=300_000, output="r" * 3 * MB)
    written += stored_session(state, "0123456789abcde0", ended_days_ago=35, artefact_bytes=5_000, output="s" * MB)
    stored_session(state, YOUNG, ended_days_ago=1, output="t" * 1000)
    stray = old_file(state.runs_dir / "aaaaaaaaaaaaaaaa" / "t" / "1" / "stdout", days_ago=3, data=b"z" * 777,
                     under=state.runs_dir / "aaaaaaaaaaaaaaaa")
    database_before = sum(p.stat().st_size for p in state.state_dir.glob("state.db*") if p.name != "state.db-shm")
    result = collect(state, now=NOW)
    database_after = sum(p.stat().st_size for p in state.state_dir.glob("state.db*") if p.name != "state.db-shm")
    assert result.sessions == 2
    assert (result.files, result.file_bytes) == (5 + 5 + 1, written + 777)
    assert not stray.parent.parent.parent.exists()
    assert result.database_bytes == database_before - database_after
    assert result.database_bytes > 3 * MB  # the outputs' pages went back to the file system
    assert result.reclaim == "incremental vacuum"


def test_an_older_database_is_compacted_by_pcoord_gc_and_never_by_a_server_pass(state: Settings) -> None:
    state.state_dir.mkdir()
    with sqlite3.connect(state.database) as legacy:  # WAL set first: the file is fixed at auto_vacuum NONE
        legacy.execute("PRAGMA journal_mode=WAL")
    legacy.close()
    stored_session(state, OLD, ended_days_ago=40, output="r" * MB)
    stored_session(state, "0123456789abcde0", ended_days_ago=35, output="s" * MB)
    size = state.database.stat().st_size
    state.retention_days = 38
    server_pass = collect(state, now=NOW)
    assert server_pass.sessions == 1 and server_pass.database_bytes == 0
    assert server_pass.reclaim.startswith("free pages kept for reuse")
    assert state.database.stat().st_size == size
    state.retention_days = 30
    on_demand = collect(state, now=NOW, compact=True)
    assert on_demand.sessions == 1 and on_demand.reclaim == "compacted with VACUUM"
    assert on_demand.database_bytes > 1.5 * MB and state.database.stat().st_size < size / 10
    with sqlite3.connect(state.database) as db:
        assert db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental from now on
    db.close()


def test_files_of_no_stored_session_go_and_old_one_off_runs_and_reports_go_by_age(state: Settings) -> None:
    stored_session(state, YOUNG, ended_days_ago=1)
    leftovers = [
        old_file(state.logs_dir / "aaaaaaaaaaaaaaaa.jsonl", days_ago=0.5),
        old_file(state.reports_dir / "bbbbbbbbbbbbbbbb.html", days_ago=2),
        old_file(state.runs_dir / "one-off" / "planner-0a0b0c0d" / "stdout", days_ago=31,
                 under=state.runs_dir / "one-off" / "planner-0a0b0c0d").parent,
        old_file(state.reports_dir / "demo-20260101-101010.md", days_ago=40),
    ]
    kept = [
        old_file(state.logs_dir / "cccccccccccccccc.jsonl", days_ago=0.01),  # may be a session starting now
        old_file(state.runs_dir / "one-off" / "planner-1a1b1c1d" / "stdout", days_ago=3).parent,
        old_file(state.reports_dir / "demo-20261130-101010.md", days_ago=3),
    ]
    result = collect(state, now=NOW)
    assert sorted(r.entry.key for r in result.removals) == sorted(
        p.relative_to(state.state_dir).as_posix() for p in leftovers
    )
    assert not any(p.exists() for p in leftovers)
    assert all(p.exists() for p in kept)
    assert result.sessions == 0 and len(on_disk(state, YOUNG)) == 3
    reasons = {r.entry.key: r.reason for r in result.removals}
    assert reasons["logs/aaaaaaaaaaaaaaaa.jsonl"] == "left behind by a session no longer stored"
    assert reasons["runs/one-off/planner-0a0b0c0d"] == "last changed 31 days ago, over the 30-day limit"


def test_a_zero_or_null_limit_is_no_limit(state: Settings) -> None:
    stored_session(state, OLD, ended_days_ago=400, artefact_bytes=MB)
    state.retention_days, state.retention_mb = 0, None
    assert RetentionPolicy.of(state) == RetentionPolicy(None, None)
    result = collect(state, now=NOW)
    assert result.removals == [] and rows(state, OLD)["sessions"] == 1


def gc(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli.main(["gc", *args]) == 0
    return capsys.readouterr().out


@pytest.fixture
def environment(state: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`pcoord gc` pointed at the state directory, with no configuration file and the default limits."""
    for variable in ("PCOORD_CONFIG", "PCOORD_RETENTION_DAYS", "PCOORD_RETENTION_MB"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PCOORD_STATE_DIR", str(state.state_dir))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    return state


def test_pcoord_gc_dry_run_removes_nothing_and_reports_what_gc_then_removes(
    environment: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    stored_session(environment, OLD, ended_days_ago=45, artefact_bytes=4096)
    stored_session(environment, YOUNG, ended_days_ago=3)
    old_file(environment.runs_dir / "one-off" / "planner-0a0b0c0d" / "stdout", days_ago=50,
             under=environment.runs_dir / "one-off" / "planner-0a0b0c0d")

    dry = json.loads(gc(capsys, "--dry-run", "--json"))
    assert dry["dry_run"] is True
    assert rows(environment, OLD)["sessions"] == 1 and len(on_disk(environment, OLD)) == 3
    assert (environment.runs_dir / "one-off" / "planner-0a0b0c0d").exists()

    real = json.loads(gc(capsys, "--json"))
    assert real["dry_run"] is False
    for figure in ("sessions", "other_entries", "files", "file_bytes", "kept"):
        assert dry[figure] == real[figure], figure
    assert [(r["key"], r["reason"]) for r in dry["removed"]] == [(r["key"], r["reason"]) for r in real["removed"]]
    assert [r["key"] for r in real["removed"]] == ["runs/one-off/planner-0a0b0c0d", OLD]
    assert (real["sessions"], real["files"]) == (1, 6)
    assert rows(environment, OLD)["sessions"] == 0 and on_disk(environment, OLD) == []
    assert real["policy"] == {"max_age_days": 30.0, "max_total_mb": 2048.0}


def test_pcoord_gc_says_in_plain_words_what_it_removed_and_kept(
    environment: Settings, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stored_session(environment, OLD, ended_days_ago=12, artefact_bytes=2000)
    stored_session(environment, RUNNING, ended_days_ago=20, status="RUNNING")
    monkeypatch.setenv("PCOORD_RETENTION_DAYS", "7")
    preview = gc(capsys, "--dry-run").splitlines()
    assert preview[0].startswith("would remove 1 session: 5 files, 2.0 KB; the database would shrink by about")
    assert preview[1] == f"  {OLD}  ended 12 days ago, over the 7-day limit"
    assert preview[2].startswith("kept 1 session (1 running, never removed), ")
    assert preview[2].endswith("; limits: 7 days, 2048 MB in all")
    done = gc(capsys).splitlines()
    assert done[0].startswith("removed 1 session: 5 files, 2.0 KB; the database shrank by")
    assert done[1:] == preview[1:]
    assert gc(capsys).splitlines()[0] == "nothing to remove"


def test_pcoord_gc_with_no_state_yet_says_so_and_creates_nothing(
    environment: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gc(capsys).splitlines()[0] == "nothing to remove"
    assert not environment.state_dir.exists()


@pytest.mark.anyio
async def test_a_coordinator_applies_retention_as_it_starts(settings: Settings) -> None:
    stored_session(settings, OLD, ended_days_ago=31)
    stored_session(settings, YOUNG, ended_days_ago=29)
    async with Coordinator(settings) as coordinator:
        with anyio.fail_after(30):
            await coordinator.retention.first_pass.wait()
        assert coordinator.store.load_session(OLD) is None
        assert coordinator.store.load_session(YOUNG) is not None
        assert on_disk(settings, OLD) == []
        assert coordinator.retention.last is not None
        assert [r.entry.key for r in coordinator.retention.last.removals] == [OLD]


def test_the_plan_removes_nothing_protected_and_lists_removals_oldest_first() -> None:
    entries = [
        Entry("c", "session", NOW - 10 * DAY_S, file_bytes=3 * MB),
        Entry("a", "session", NOW - 50 * DAY_S, file_bytes=MB),
        Entry("r", "session", NOW - 99 * DAY_S, file_bytes=9 * MB, protected=True),
        Entry("runs/dddddddddddddddd", "orphan", NOW - 99 * DAY_S, protected=True),
        Entry("b", "session", NOW - 20 * DAY_S, file_bytes=MB, row_bytes=MB),
    ]
    policy = RetentionPolicy(max_age_days=30, max_total_mb=12)
    plan = plan_removals(entries, policy, NOW)
    # a by age (15 MB -> 14); then b, the oldest one left that may go, gets it to the 12 MB limit.
    assert [r.entry.key for r in plan] == ["a", "b"]
    assert plan_removals(entries, RetentionPolicy(None, None), NOW) == []
    shuffled = plan_removals(list(reversed(entries)), policy, NOW)
    assert [dataclasses.astuple(r) for r in shuffled] == [dataclasses.astuple(r) for r in plan]
