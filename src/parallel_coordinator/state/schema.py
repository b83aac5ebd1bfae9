"""The state database's tables, and the migrations that bring a database made by an earlier release up to date.

`SCHEMA_VERSION` is kept in SQLite's `user_version`; each version's statements only add columns.
"""

from __future__ import annotations

import sqlite3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    task_description TEXT NOT NULL,
    status TEXT NOT NULL,
    options TEXT NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    error_summary TEXT,
    owner_pid INTEGER,
    max_agents INTEGER NOT NULL DEFAULT 64,
    owner_started_at REAL,
    resumed_from TEXT,
    synthesis TEXT,
    owner TEXT,
    peak_parallelism INTEGER,
    notes TEXT,
    cancel_requested_at REAL,
    killed_processes INTEGER,
    forecast TEXT,
    spend TEXT
);
CREATE TABLE IF NOT EXISTS tasks (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    task_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    agent TEXT NOT NULL,
    description TEXT NOT NULL,
    dependencies TEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    output TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    finished_at REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cost_usd REAL,
    spec TEXT,
    progress REAL,
    message TEXT,
    output_chars INTEGER,
    output_path TEXT,
    output_cut INTEGER,
    worktree TEXT,
    output_json TEXT,
    flags TEXT,
    qa TEXT,
    PRIMARY KEY (session_id, task_id)
);
CREATE TABLE IF NOT EXISTS attempts (
    session_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    agent TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    exit_code INTEGER,
    outcome TEXT NOT NULL,
    error TEXT,
    pid INTEGER,
    peak_rss_mb REAL,
    streams TEXT,
    prefix TEXT,
    PRIMARY KEY (session_id, task_id, number)
);
CREATE INDEX IF NOT EXISTS attempts_finished ON attempts(finished_at);
"""
SCHEMA_VERSION = 10
# Columns added after version 1, for state directories made by an earlier release.
_MIGRATIONS = {
    2: [
        "ALTER TABLE sessions ADD COLUMN owner_started_at REAL",
        "ALTER TABLE sessions ADD COLUMN resumed_from TEXT",
        "ALTER TABLE tasks ADD COLUMN spec TEXT",
    ],
    3: [
        "ALTER TABLE tasks ADD COLUMN progress REAL",
        "ALTER TABLE tasks ADD COLUMN message TEXT",
    ],
    4: ["ALTER TABLE sessions ADD COLUMN synthesis TEXT"],
    5: ["ALTER TABLE sessions ADD COLUMN owner TEXT"],
    6: [
        "ALTER TABLE sessions ADD COLUMN peak_parallelism INTEGER",
        "ALTER TABLE sessions ADD COLUMN notes TEXT",
        "ALTER TABLE sessions ADD COLUMN cancel_requested_at REAL",
        "ALTER TABLE sessions ADD COLUMN killed_processes INTEGER",
        "ALTER TABLE tasks ADD COLUMN output_chars INTEGER",
        "ALTER TABLE tasks ADD COLUMN output_path TEXT",
        "ALTER TABLE tasks ADD COLUMN output_cut INTEGER",
        "ALTER TABLE tasks ADD COLUMN worktree TEXT",
        "ALTER TABLE attempts ADD COLUMN streams TEXT",
    ],
    7: [
        "ALTER TABLE sessions ADD COLUMN forecast TEXT",
        "ALTER TABLE sessions ADD COLUMN spend TEXT",
    ],
    8: ["ALTER TABLE attempts ADD COLUMN prefix TEXT"],
    9: [
        "ALTER TABLE tasks ADD COLUMN output_json TEXT",
        "ALTER TABLE tasks ADD COLUMN flags TEXT",
    ],
    10: ["ALTER TABLE tasks ADD COLUMN qa TEXT"],
}


def migrate(db: sqlite3.Connection) -> None:
    """Bring `db` to SCHEMA_VERSION: add the columns an older database lacks, then create what is missing."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    existing = db.execute("SELECT name FROM sqlite_master WHERE name = 'sessions'").fetchone()
    if existing and version < SCHEMA_VERSION:
        for target in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target]:
                db.execute(statement)
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
