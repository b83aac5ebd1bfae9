"""Durable state: sessions, tasks and attempts in SQLite, written as they happen.

One connection, used from the event loop's thread only; WAL so another process (`pcoord watch`,
a second server) can read while we write.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from parallel_coordinator.state.outputs import KeptOutput
from parallel_coordinator.state.private_files import make_private, open_private, private_dir
from parallel_coordinator.state.schema import migrate


def process_identity() -> tuple[int, float]:
    """(pid, start time): a pid alone may be reused by another process after a crash."""
    me = psutil.Process()
    return me.pid, me.create_time()


def is_alive(pid: int | None, started_at: float | None) -> bool:
    if pid is None:
        return False
    try:
        return started_at is None or abs(psutil.Process(pid).create_time() - started_at) < 0.01
    except psutil.Error:
        return False


@dataclass(frozen=True)
class StoredTask:
    task_id: str
    agent: str
    description: str
    dependencies: list[str]
    priority: int
    status: str
    spec: dict[str, Any]
    output: str | None
    error: str | None
    attempts: int
    started_at: float | None
    finished_at: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    progress: float | None = None
    message: str | None = None
    output_chars: int | None = None  # None in rows of earlier releases: the output there is whole
    output_path: str | None = None
    output_cut: bool = False
    worktree: dict[str, Any] | None = None
    output_json: Any = None  # the output validated against the subtask's output_schema (JSON in the row)
    flags: list[str] = field(default_factory=list)
    qa: list[dict[str, Any]] = field(default_factory=list)  # the last attempt's QA checks (JSON in the row)

    @property
    def kept(self) -> KeptOutput:
        head = self.output or ""
        chars = self.output_chars if self.output_chars is not None else len(head)
        return KeptOutput(head=head, chars=chars, path=self.output_path, cut=self.output_cut)


@dataclass(frozen=True)
class StoredAttempt:
    session_id: str
    task_id: str
    number: int
    agent: str
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    outcome: str
    error: str | None
    # The agent's process and the most memory its process tree held; as written by add_attempt.
    pid: int | None = None
    peak_rss_mb: float | None = None
    # The first turn's prompt tokens (input_tokens, cache_creation_input_tokens, cache_read_input_tokens),
    # for runners whose stream reports them.
    prefix: dict[str, int] | None = None


@dataclass(frozen=True)
class StoredSession:
    id: str
    task_description: str
    status: str
    options: dict[str, Any]
    created_at: float
    finished_at: float | None
    error_summary: str | None
    max_agents: int
    resumed_from: str | None
    tasks: list[StoredTask]
    attempts: list[StoredAttempt]
    synthesis: str | None = None
    owner: str | None = None
    peak_parallelism: int = 0
    notes: tuple[str, ...] = ()
    forecast: dict[str, Any] | None = None  # planning/forecast.py's, as made at the start
    spend: dict[str, Any] | None = None  # engine/budget.py's, as it ended


class Store:
    def __init__(self, path: Path) -> None:
        # Owner-only from the first byte: SQLite gives its -wal and -shm files the database file's mode.
        private_dir(path.parent)
        make_private(path.parent)
        if not path.exists():
            os.close(open_private(path, os.O_WRONLY))
        for suffix in ("", "-wal", "-shm"):
            make_private(path.with_name(path.name + suffix))
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        # Only takes on a new database, and only before WAL is set: lets cleanup.py give freed pages back in steps.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)

    def close(self) -> None:
        self._db.close()

    def create_session(
        self,
        session_id: str,
        task_description: str,
        options: dict[str, Any],
        created_at: float,
        max_agents: int,
        tasks: Sequence[tuple[str, str, str, Sequence[str], int, dict[str, Any]]],
        resumed_from: str | None = None,
        owner: str | None = None,
        forecast: dict[str, Any] | None = None,
    ) -> None:
        """Record a new session and all its tasks (pending) in one transaction."""
        pid, started_at = process_identity()
        with self._transaction():
            self._db.execute(
                "INSERT INTO sessions (id, task_description, status, options, created_at, owner_pid, max_agents,"
                " owner_started_at, resumed_from, owner, forecast) VALUES (?, ?, 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, task_description, json.dumps(options), created_at, pid, max_agents, started_at,
                 resumed_from, owner, json.dumps(forecast) if forecast is not None else None),
            )
            self._db.executemany(
                "INSERT INTO tasks (session_id, task_id, position, agent, description, dependencies, priority,"
                " status, spec) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                [
                    (session_id, task_id, i, agent, description, json.dumps(list(deps)), priority, json.dumps(spec))
                    for i, (task_id, agent, description, deps, priority, spec) in enumerate(tasks)
                ],
            )

    def update_task(self, session_id: str, task_id: str, **fields: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        self._db.execute(
            f"UPDATE tasks SET {columns} WHERE session_id = ? AND task_id = ?",
            (*fields.values(), session_id, task_id),
        )

    def update_tasks(self, session_id: str, task_ids: Iterable[str], **fields: Any) -> None:
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._transaction():
            self._db.executemany(
                f"UPDATE tasks SET {columns} WHERE session_id = ? AND task_id = ?",
                [(*fields.values(), session_id, task_id) for task_id in task_ids],
            )

    def add_attempt(
        self, attempt: StoredAttempt, pid: int | None, peak_rss_mb: float | None,
        streams: dict[str, Any] | None = None,
    ) -> None:
        """`streams`: how much the agent wrote to stdout and stderr, and whether the artefact files were cut."""
        self._db.execute(
            "INSERT OR REPLACE INTO attempts (session_id, task_id, number, agent, started_at, finished_at,"
            " exit_code, outcome, error, pid, peak_rss_mb, streams, prefix)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                attempt.session_id, attempt.task_id, attempt.number, attempt.agent, attempt.started_at,
                attempt.finished_at, attempt.exit_code, attempt.outcome, attempt.error, pid, peak_rss_mb,
                json.dumps(streams) if streams is not None else None,
                json.dumps(attempt.prefix) if attempt.prefix is not None else None,
            ),
        )

    def finish_session(
        self, session_id: str, status: str, finished_at: float, error_summary: str | None,
        synthesis: str | None = None, *, peak_parallelism: int | None = None, notes: Sequence[str] = (),
        killed_processes: int = 0, spend: dict[str, Any] | None = None,
    ) -> None:
        self._db.execute(
            "UPDATE sessions SET status = ?, finished_at = ?, error_summary = ?, synthesis = ?, peak_parallelism = ?,"
            " notes = ?, killed_processes = ?, spend = ? WHERE id = ?",
            (status, finished_at, error_summary, synthesis, peak_parallelism, json.dumps(list(notes)),
             killed_processes, json.dumps(spend) if spend is not None else None, session_id),
        )

    # Cancel through the state directory: any server may ask, the one running the session acts.

    def request_cancel(self, session_id: str, now: float) -> None:
        self._db.execute(
            "UPDATE sessions SET cancel_requested_at = ? WHERE id = ? AND status = 'RUNNING'", (now, session_id)
        )

    def cancel_requests(self) -> set[str]:
        """Running sessions some server asked to cancel (the owner checks these about once a second)."""
        return {r[0] for r in self._db.execute(
            "SELECT id FROM sessions WHERE status = 'RUNNING' AND cancel_requested_at IS NOT NULL"
        )}

    def owner_of(self, session_id: str) -> tuple[int | None, float | None, str | None, int]:
        """(server pid, its start time, session status, killed processes) of a stored session."""
        row = self._db.execute(
            "SELECT owner_pid, owner_started_at, status, killed_processes FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return (row[0], row[1], row[2], row[3] or 0) if row else (None, None, None, 0)

    def load_session(self, session_id: str) -> StoredSession | None:
        row = self._db.execute(
            "SELECT id, task_description, status, options, created_at, finished_at, error_summary, max_agents,"
            " resumed_from, synthesis, owner, peak_parallelism, notes, forecast, spend FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        tasks = [
            StoredTask(
                task_id=r[0], agent=r[1], description=r[2], dependencies=json.loads(r[3]), priority=r[4],
                status=r[5], output=r[6], error=r[7], attempts=r[8], started_at=r[9], finished_at=r[10],
                input_tokens=r[11], output_tokens=r[12], cost_usd=r[13], spec=json.loads(r[14] or "{}"),
                progress=r[15], message=r[16], output_chars=r[17], output_path=r[18], output_cut=bool(r[19]),
                worktree=json.loads(r[20]) if r[20] else None,
                output_json=json.loads(r[21]) if r[21] is not None else None,
                flags=json.loads(r[22]) if r[22] else [],
                qa=json.loads(r[23]) if r[23] else [],
            )
            for r in self._db.execute(
                "SELECT task_id, agent, description, dependencies, priority, status, output, error, attempts,"
                " started_at, finished_at, input_tokens, output_tokens, cost_usd, spec, progress, message,"
                " output_chars, output_path, output_cut, worktree, output_json, flags, qa FROM tasks"
                " WHERE session_id = ? ORDER BY position",
                (session_id,),
            )
        ]
        attempts = self._attempts("WHERE session_id = ? ORDER BY started_at", (session_id,))
        return StoredSession(
            id=row[0], task_description=row[1], status=row[2], options=json.loads(row[3]), created_at=row[4],
            finished_at=row[5], error_summary=row[6], max_agents=row[7], resumed_from=row[8], synthesis=row[9],
            owner=row[10], tasks=tasks, attempts=attempts, peak_parallelism=row[11] or 0,
            notes=tuple(json.loads(row[12])) if row[12] else (),
            forecast=json.loads(row[13]) if row[13] else None, spend=json.loads(row[14]) if row[14] else None,
        )

    def recover_orphans(self, now: float) -> list[str]:
        """End sessions whose server died mid-run: running tasks become interrupted. Returns their ids."""
        recovered = []
        for session_id, pid, started_at in self._db.execute(
            "SELECT id, owner_pid, owner_started_at FROM sessions WHERE status = 'RUNNING'"
        ).fetchall():
            if is_alive(pid, started_at):
                continue  # another live server (perhaps this one's sibling) still runs it
            with self._transaction():
                interrupted = self._db.execute(
                    "UPDATE tasks SET status = 'interrupted', finished_at = ?,"
                    " error = 'interrupted: the server stopped while this task ran'"
                    " WHERE session_id = ? AND status = 'running'",
                    (now, session_id),
                ).rowcount
                never_started = self._db.execute(
                    "UPDATE tasks SET status = 'cancelled', error = 'cancelled: the server stopped before it ran'"
                    " WHERE session_id = ? AND status = 'pending'",
                    (session_id,),
                ).rowcount
                self._db.execute(
                    "UPDATE attempts SET outcome = 'lost', finished_at = ?,"
                    " error = 'the server stopped while this attempt ran'"
                    " WHERE session_id = ? AND finished_at IS NULL",
                    (now, session_id),
                )
                succeeded = self._db.execute(
                    "SELECT COUNT(*) FROM tasks WHERE session_id = ? AND status = 'succeeded'", (session_id,)
                ).fetchone()[0]
                summary = (
                    f"the server (pid {pid}) stopped while this session ran: {interrupted} task(s) interrupted,"
                    f" {never_started} never started; run it again with options.resume_session={session_id!r}"
                )
                self._db.execute(
                    "UPDATE sessions SET status = ?, finished_at = ?, error_summary = ? WHERE id = ?",
                    ("PARTIAL" if succeeded else "FAILED", now, summary, session_id),
                )
            recovered.append(session_id)
        return recovered

    def recent_attempts(self, limit: int = 1000) -> list[StoredAttempt]:
        """The latest finished attempts across all sessions, newest first (for performance metrics)."""
        return self._attempts("WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?", (limit,))

    def token_totals(self) -> dict[str, tuple[int | None, int | None, float | None]]:
        """Per agent, the tokens and cost its finished tasks reported (None where none did)."""
        return {
            agent: (tokens_in, tokens_out, cost)
            for agent, tokens_in, tokens_out, cost in self._db.execute(
                "SELECT agent, SUM(input_tokens), SUM(output_tokens), SUM(cost_usd) FROM tasks GROUP BY agent"
            )
        }

    def recent_usage(self, limit: int = 1000) -> list[tuple[str, int, float]]:
        """(agent, tokens, dollars) of the newest finished tasks that reported usage, newest first."""
        return [
            (agent, (tokens_in or 0) + (tokens_out or 0), cost or 0.0)
            for agent, tokens_in, tokens_out, cost in self._db.execute(
                "SELECT agent, input_tokens, output_tokens, cost_usd FROM tasks WHERE finished_at IS NOT NULL"
                " AND (input_tokens IS NOT NULL OR cost_usd IS NOT NULL) ORDER BY finished_at DESC LIMIT ?",
                (limit,),
            )
        ]

    def recent_sessions(self, limit: int = 20, owner: str | None = None) -> list[tuple[str, str, str, float]]:
        """(id, status, task description, created_at) of the newest sessions, newest first; with an owner,
        only that owner's."""
        where, params = ("WHERE owner = ?", (owner, limit)) if owner is not None else ("", (limit,))
        return [
            (r[0], r[1], r[2], r[3])
            for r in self._db.execute(
                f"SELECT id, status, task_description, created_at FROM sessions {where}"
                " ORDER BY created_at DESC LIMIT ?",
                params,
            )
        ]

    def running_tasks(self) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM tasks JOIN sessions ON sessions.id = tasks.session_id"
            " WHERE sessions.status = 'RUNNING' AND tasks.status = 'running'"
        ).fetchone()[0])

    def _attempts(self, where: str, params: tuple[Any, ...]) -> list[StoredAttempt]:
        return [
            replace(StoredAttempt(*r[:-1]), prefix=json.loads(r[-1])) if r[-1] else StoredAttempt(*r[:-1])
            for r in self._db.execute(
                "SELECT session_id, task_id, number, agent, started_at, finished_at, exit_code, outcome, error, pid,"
                " peak_rss_mb, prefix"
                f" FROM attempts {where}",
                params,
            )
        ]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def batch(self) -> _Transaction:
        """Writes made inside `with store.batch():` commit together, in one transaction (one WAL sync)."""
        return _Transaction(self._db)


class _Transaction:
    """BEGIN ... COMMIT (ROLLBACK on an error); inside another transaction it joins that one."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._outer = False

    def __enter__(self) -> None:
        self._outer = not self._db.in_transaction
        if self._outer:
            self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._outer:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
