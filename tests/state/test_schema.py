"""A state database made by the first release is brought up to date, and what it held stays readable."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from parallel_coordinator.state.schema import SCHEMA_VERSION
from parallel_coordinator.state.store import Store

# The tables as release 1 made them: every column a later version added is missing.
_VERSION_1 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY, task_description TEXT NOT NULL, status TEXT NOT NULL, options TEXT NOT NULL,
    created_at REAL NOT NULL, finished_at REAL, error_summary TEXT, owner_pid INTEGER,
    max_agents INTEGER NOT NULL DEFAULT 64
);
CREATE TABLE tasks (
    session_id TEXT NOT NULL REFERENCES sessions(id), task_id TEXT NOT NULL, position INTEGER NOT NULL,
    agent TEXT NOT NULL, description TEXT NOT NULL, dependencies TEXT NOT NULL, priority INTEGER NOT NULL,
    status TEXT NOT NULL, output TEXT, error TEXT, attempts INTEGER NOT NULL DEFAULT 0, started_at REAL,
    finished_at REAL, input_tokens INTEGER, output_tokens INTEGER, cost_usd REAL,
    PRIMARY KEY (session_id, task_id)
);
CREATE TABLE attempts (
    session_id TEXT NOT NULL, task_id TEXT NOT NULL, number INTEGER NOT NULL, agent TEXT NOT NULL,
    started_at REAL, finished_at REAL, exit_code INTEGER, outcome TEXT NOT NULL, error TEXT, pid INTEGER,
    peak_rss_mb REAL, PRIMARY KEY (session_id, task_id, number)
);
INSERT INTO sessions VALUES ('s1', 'audit the code', 'COMPLETED', '{}', 100.0, 160.0, NULL, 1, 8);
INSERT INTO tasks VALUES ('s1', 't1', 0, 'reviewer', 'review', '[]', 1, 'succeeded', 'looks fine', NULL, 1,
                          101.0, 150.0, 10, 20, 0.5);
INSERT INTO attempts VALUES ('s1', 't1', 1, 'reviewer', 101.0, 150.0, 0, 'exited', NULL, 4321, 12.5);
PRAGMA user_version = 1;
"""


def test_a_first_release_database_is_migrated_and_its_sessions_still_load(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.executescript(_VERSION_1)
    old.close()

    store = Store(path)
    try:
        session = store.load_session("s1")
        assert session is not None
        assert (session.status, session.task_description, session.notes, session.peak_parallelism) == (
            "COMPLETED", "audit the code", (), 0,
        )
        (task,) = session.tasks
        assert (task.task_id, task.output, task.spec, task.worktree, task.kept.chars) == (
            "t1", "looks fine", {}, None, len("looks fine"),
        )
        (attempt,) = session.attempts
        assert (attempt.outcome, attempt.exit_code) == ("exited", 0)
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        store.close()


def test_opening_an_up_to_date_database_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    store = Store(path)  # a second open must not try to add the columns again
    try:
        assert store._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert store.load_session("nope") is None
    finally:
        store.close()
