"""Retention policy: which ended sessions and leftover files to remove, and why, said in plain words.

Pure: entries in, removals with their reasons out (`plan_removals`). cleanup.py scans the state directory and
carries the plan out.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from parallel_coordinator.config.settings import Settings

MB = 1024 * 1024
DAY_S = 86_400.0

# session: a stored session, its rows and its files. orphan: a file or folder named for a session the store no
# longer has. loose: a one-off run's folder (the planner's), a report not named for a session; kept by age and size.
EntryKind = Literal["session", "orphan", "loose"]


@dataclass(frozen=True)
class RetentionPolicy:
    """None means no limit of that kind."""

    max_age_days: float | None = 30.0
    max_total_mb: float | None = 2048.0

    @classmethod
    def of(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.retention_days or None, settings.retention_mb or None)


@dataclass(frozen=True)
class Entry:
    """Something retention may remove."""

    key: str  # the session id, or the path relative to the state directory
    kind: EntryKind
    ended_at: float  # a session's end (its start while it runs); a file's last change
    files: int = 0
    file_bytes: int = 0
    row_bytes: int = 0  # a session's rows in state.db, estimated from the lengths of their values
    protected: bool = False  # a running session, or a file changed within the last hour (cleanup.py): never removed

    @property
    def bytes(self) -> int:
        return self.file_bytes + self.row_bytes


@dataclass(frozen=True)
class Removal:
    entry: Entry
    reason: str


def plan_removals(entries: Iterable[Entry], policy: RetentionPolicy, now: float) -> list[Removal]:
    """What to remove and why, oldest first: what belongs to no stored session; whatever ended more than
    max_age_days ago; then the oldest of the rest while everything kept passes max_total_mb. Protected entries,
    running sessions among them, always stay (and still count towards the total)."""
    ordered = sorted(entries, key=lambda e: (e.ended_at, e.key))
    chosen: dict[str, Removal] = {}
    for entry in ordered:
        if entry.protected:
            continue
        if entry.kind == "orphan":
            chosen[entry.key] = Removal(entry, "left behind by a session no longer stored")
        elif policy.max_age_days is not None and now - entry.ended_at > policy.max_age_days * DAY_S:
            chosen[entry.key] = Removal(
                entry, f"{_when(entry, now)}, over the {_number(policy.max_age_days)}-day limit"
            )
    if policy.max_total_mb is not None:
        total = sum(e.bytes for e in ordered if e.key not in chosen)
        for entry in ordered:
            if total <= policy.max_total_mb * MB:
                break
            if entry.protected or entry.key in chosen:
                continue
            chosen[entry.key] = Removal(
                entry, f"{_when(entry, now)}, the oldest while all kept ({size_text(total)}) was over the"
                f" {_number(policy.max_total_mb)} MB limit",
            )
            total -= entry.bytes
    return sorted(chosen.values(), key=lambda r: (r.entry.ended_at, r.entry.key))


@dataclass(frozen=True)
class Collected:
    """What one pass removed (in a dry run: would remove) and what it kept."""

    dry_run: bool
    policy: RetentionPolicy
    removals: list[Removal]
    files: int
    file_bytes: int
    database_bytes: int  # how much smaller state.db and its WAL became; in a dry run, the removed rows' size
    reclaim: str  # how the database's freed pages went back to the file system
    kept_sessions: int
    kept_running: int
    kept_bytes: int

    @property
    def sessions(self) -> int:
        return sum(1 for r in self.removals if r.entry.kind == "session")

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "dry_run": self.dry_run, "sessions": self.sessions, "other_entries": len(self.removals) - self.sessions,
            "files": self.files, "file_bytes": self.file_bytes, "database_bytes": self.database_bytes,
            "reclaim": self.reclaim,
            "removed": [
                {"kind": r.entry.kind, "key": r.entry.key, "age_days": round((now - r.entry.ended_at) / DAY_S, 2),
                 "bytes": r.entry.bytes, "reason": r.reason}
                for r in self.removals
            ],
            "kept": {"sessions": self.kept_sessions, "running": self.kept_running, "bytes": self.kept_bytes},
            "policy": {"max_age_days": self.policy.max_age_days, "max_total_mb": self.policy.max_total_mb},
        }


def describe(result: Collected) -> list[str]:
    """The result in plain words: a summary line, one line per removal, then what was kept and the limits."""
    verb = "would remove" if result.dry_run else "removed"
    others = len(result.removals) - result.sessions
    if result.removals:
        what = " and ".join(
            part for part in (_count(result.sessions, "session"), _count(others, "other entry", "other entries"))
            if not part.startswith("0 ")
        )
        shrink = "would shrink by about" if result.dry_run else "shrank by"
        lines = [
            f"{verb} {what}: {_count(result.files, 'file')}, {size_text(result.file_bytes)};"
            f" the database {shrink} {size_text(result.database_bytes)}"
            + ("" if result.dry_run else f" ({result.reclaim})")
        ]
    else:
        lines = ["nothing to remove"]
    lines += [f"  {r.entry.key}  {r.reason}" for r in result.removals]
    policy = result.policy
    limits = [f"{_number(policy.max_age_days)} days" if policy.max_age_days else "no age limit",
              f"{_number(policy.max_total_mb)} MB in all" if policy.max_total_mb else "no size limit"]
    lines.append(
        f"kept {_count(result.kept_sessions, 'session')} ({result.kept_running} running, never removed),"
        f" {size_text(result.kept_bytes)}; limits: {', '.join(limits)}"
    )
    return lines


def size_text(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _number(value: float) -> str:
    return f"{value:g}"


def _when(entry: Entry, now: float) -> str:
    ago = max(0.0, now - entry.ended_at)
    for unit, seconds in (("day", DAY_S), ("hour", 3600.0), ("minute", 60.0)):
        if ago >= seconds:
            amount = _count(int(ago // seconds), unit)
            break
    else:
        amount = "less than a minute"
    return f"{'ended' if entry.kind == 'session' else 'last changed'} {amount} ago"
