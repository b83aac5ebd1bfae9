"""Carrying out retention: scan the state directory, delete sessions' rows and files, give the database's pages back.

`collect` is one blocking pass (the CLI's `pcoord gc`); `Retention` runs passes in a server, off the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import anyio.from_thread
import anyio.to_thread

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.state.retention import (
    Collected,
    Entry,
    EntryKind,
    Removal,
    RetentionPolicy,
    describe,
    plan_removals,
)

log = logging.getLogger(__name__)

# A file or folder of no stored session changed this recently may belong to a run that is starting: kept.
RECENT_S = 3600.0
# Pages given back per PRAGMA incremental_vacuum step (4 MB at the default page size). Each step is its own short
# write transaction, so a server writing to the same database never waits long for one.
_VACUUM_STEP_PAGES = 1024
_SESSION_ID = re.compile(r"[0-9a-f]{16}")  # secrets.token_hex(8): how engine/coordinator.py names sessions


def collect(
    settings: Settings,
    *,
    dry_run: bool = False,
    compact: bool = False,
    now: float | None = None,
    checkpoint: Callable[[], None] = lambda: None,
) -> Collected:
    """Apply the settings' retention policy to their state directory (blocking: run it off the event loop).

    Uses a connection of its own. Each session's rows go in one transaction, then its files. `compact` allows a
    full VACUUM of a database made before incremental vacuum once a quarter of it is free (it holds the database
    for its whole run, so a server never does it). `checkpoint` is called between steps (a cancellation check).
    """
    now = time.time() if now is None else now
    policy = RetentionPolicy.of(settings)
    if not settings.database.exists():
        return Collected(dry_run, policy, [], 0, 0, 0, "nothing stored yet", 0, 0, 0)
    found = _scan(settings)  # files before rows: a session's row is written before any file of it
    db = sqlite3.connect(f"{settings.database.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None,
                         timeout=10)
    try:
        entries, paths = _entries(_stored_sessions(db), found, settings.state_dir, now)
        removals = plan_removals(entries, policy, now)
        if dry_run:
            return Collected(
                True, policy, removals, sum(r.entry.files for r in removals),
                sum(r.entry.file_bytes for r in removals), sum(r.entry.row_bytes for r in removals),
                "nothing done (dry run)", *_kept(entries, removals),
            )
        before = _database_size(settings.database)
        tables = _session_tables(db)
        done: list[Removal] = []
        files = file_bytes = 0
        for removal in removals:
            checkpoint()
            if removal.entry.kind == "session" and not _delete_session(db, tables, removal.entry.key):
                continue  # it is running again, or another pass took it
            for path in paths[removal.entry.key]:
                count, size = _remove(path)
                files, file_bytes = files + count, file_bytes + size
            done.append(removal)
        rows_deleted = any(r.entry.kind == "session" for r in done)
        reclaim = _reclaim(db, compact, checkpoint) if rows_deleted else "no rows deleted"
    finally:
        db.close()
    freed = max(0, before - _database_size(settings.database))
    return Collected(False, policy, done, files, file_bytes, freed, reclaim, *_kept(entries, done))


def _kept(entries: list[Entry], removals: list[Removal]) -> tuple[int, int, int]:
    """(sessions kept, of them running, bytes of everything kept)."""
    removed = {r.entry.key for r in removals}
    kept = [e for e in entries if e.key not in removed]
    sessions = [e for e in kept if e.kind == "session"]
    return len(sessions), sum(1 for e in sessions if e.protected), sum(e.bytes for e in kept)


class Retention:
    """A server's retention: one pass at start, then one every `retention_interval_s`, each in a worker thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.last: Collected | None = None
        self.first_pass = anyio.Event()

    async def run(self) -> None:
        while True:
            try:
                self.last = await anyio.to_thread.run_sync(
                    partial(collect, self.settings, checkpoint=anyio.from_thread.check_cancelled)
                )
            except (OSError, sqlite3.Error) as exc:
                log.warning("retention pass failed (tried again in %.0f s): %s", self.settings.retention_interval_s,
                            exc)
            else:
                if self.last.removals:
                    log.info("retention: %s", describe(self.last)[0])
            self.first_pass.set()
            await anyio.sleep(self.settings.retention_interval_s)


# -- the state directory ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """A file or folder under runs/, logs/ or reports/, the session it is named for, and what it holds."""

    path: Path
    name: str | None
    files: int
    bytes: int
    changed_at: float


def _scan(settings: Settings) -> list[_Found]:
    found = []
    for child in _children(settings.runs_dir):
        if child.name == "one-off":
            found += [_measure(run, None) for run in _children(child)]
        else:
            found.append(_measure(child, child.name))
    for child in _children(settings.logs_dir):
        found.append(_measure(child, child.name.removesuffix(".jsonl") if child.suffix == ".jsonl" else None))
    for child in _children(settings.reports_dir):
        found.append(_measure(child, child.name.split(".")[0]))
    return found


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _measure(path: Path, name: str | None) -> _Found:
    """The files under `path` (or `path` itself), their bytes, and the latest change to any of them."""
    try:
        top = path.lstat()
    except FileNotFoundError:
        return _Found(path, name, 0, 0, 0.0)
    if not stat.S_ISDIR(top.st_mode):
        return _Found(path, name, 1, top.st_size, top.st_mtime)
    files = size = 0
    changed = top.st_mtime
    for root, dirs, names in os.walk(path):
        for entry in (*names, *dirs):
            try:
                info = os.lstat(os.path.join(root, entry))
            except FileNotFoundError:
                continue
            changed = max(changed, info.st_mtime)
            if not stat.S_ISDIR(info.st_mode):  # os.walk lists a link to a folder with the folders
                files, size = files + 1, size + info.st_size
    return _Found(path, name, files, size, changed)


def _entries(
    stored: dict[str, tuple[str, float, int]], found: list[_Found], state_dir: Path, now: float
) -> tuple[list[Entry], dict[str, list[Path]]]:
    """Group what is on disk by session; what belongs to none becomes an entry of its own."""
    paths: dict[str, list[Path]] = {sid: [] for sid in stored}
    sizes = {sid: [0, 0] for sid in stored}
    entries: list[Entry] = []
    for item in found:
        if item.name in stored:
            paths[item.name].append(item.path)
            sizes[item.name][0] += item.files
            sizes[item.name][1] += item.bytes
            continue
        key = item.path.relative_to(state_dir).as_posix()
        kind: EntryKind = "orphan" if item.name and _SESSION_ID.fullmatch(item.name) else "loose"
        paths[key] = [item.path]
        entries.append(Entry(key, kind, item.changed_at, item.files, item.bytes,
                             protected=now - item.changed_at < RECENT_S))
    for sid, (status, ended_at, row_bytes) in stored.items():
        entries.append(Entry(sid, "session", ended_at, sizes[sid][0], sizes[sid][1], row_bytes,
                             protected=status == "RUNNING"))
    return entries, paths


def _remove(path: Path) -> tuple[int, int]:
    """Delete a file, or a folder and everything in it (links are removed, never followed); (files, bytes)."""
    removed = [0, 0]

    def unlink(target: str) -> None:
        try:
            size = os.lstat(target).st_size
            os.unlink(target)
        except FileNotFoundError:
            return
        except OSError as exc:
            log.warning("retention: cannot remove %s: %s", target, exc.strerror)
            return
        removed[0] += 1
        removed[1] += size

    def rmdir(target: str) -> None:
        try:
            os.rmdir(target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("retention: cannot remove folder %s: %s", target, exc.strerror)

    if path.is_symlink() or not path.is_dir():
        unlink(str(path))
        return removed[0], removed[1]
    for root, dirs, names in os.walk(path, topdown=False):
        for name in names:
            unlink(os.path.join(root, name))
        for name in dirs:
            full = os.path.join(root, name)
            unlink(full) if os.path.islink(full) else rmdir(full)
    rmdir(str(path))
    return removed[0], removed[1]


# -- the database -----------------------------------------------------------------------------------------------


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _session_tables(db: sqlite3.Connection) -> list[str]:
    """Every table with a session_id column: a session's rows are there (and in sessions, by id)."""
    names = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [name for name in names
            if any(column[1] == "session_id" for column in db.execute(f"PRAGMA table_info({_quoted(name)})"))]


def _stored_sessions(db: sqlite3.Connection) -> dict[str, tuple[str, float, int]]:
    """Session id -> (status, end time or, while running, start time, estimated bytes of its rows)."""
    sessions = {
        sid: [status, finished_at if finished_at is not None else created_at, 0]
        for sid, status, created_at, finished_at in db.execute(
            "SELECT id, status, created_at, finished_at FROM sessions"
        )
    }
    for table, key in [*((t, "session_id") for t in _session_tables(db)), ("sessions", "id")]:
        columns = [column[1] for column in db.execute(f"PRAGMA table_info({_quoted(table)})")]
        length = " + ".join(f"IFNULL(LENGTH(CAST({_quoted(c)} AS BLOB)), 0)" for c in columns)
        for sid, size in db.execute(f"SELECT {key}, SUM({length}) FROM {_quoted(table)} GROUP BY {key}"):
            if sid in sessions:
                sessions[sid][2] += int(size or 0)
    return {sid: (str(s), float(t), int(b)) for sid, (s, t, b) in sessions.items()}


def _delete_session(db: sqlite3.Connection, tables: list[str], session_id: str) -> bool:
    """One ended session's rows out of every table, in one transaction; False if it is running or already gone."""
    db.execute("BEGIN IMMEDIATE")
    try:
        if not db.execute("DELETE FROM sessions WHERE id = ? AND status != 'RUNNING'", (session_id,)).rowcount:
            db.execute("ROLLBACK")
            return False
        for table in tables:
            db.execute(f"DELETE FROM {_quoted(table)} WHERE session_id = ?", (session_id,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return True


def _reclaim(db: sqlite3.Connection, compact: bool, checkpoint: Callable[[], None]) -> str:
    """Give the pages deleted rows left free back to the file system; says how it was done."""
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    if not free:
        return "no free pages"
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:  # incremental: made by this release or compacted
        for _ in range(free // _VACUUM_STEP_PAGES + 1):  # bounded even if other writers free pages meanwhile
            checkpoint()
            # executescript steps the pragma to its end; execute() would step it once, which frees one page.
            db.executescript(f"PRAGMA incremental_vacuum({_VACUUM_STEP_PAGES});")
        how = "incremental vacuum"
    elif compact and free * 4 >= db.execute("PRAGMA page_count").fetchone()[0]:
        try:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect with the VACUUM: incremental from now on
            db.execute("VACUUM")
        except sqlite3.OperationalError as exc:
            return f"not compacted: {exc}; free pages kept for reuse"
        how = "compacted with VACUUM"
    else:
        return "free pages kept for reuse; `pcoord gc` compacts this older database once a quarter of it is free"
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return how


def _database_size(path: Path) -> int:
    total = 0
    for part in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            total += part.stat().st_size
    return total
