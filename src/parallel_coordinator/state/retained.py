"""What the server keeps in memory once work has ended, and the bounds on it.

Running sessions stay whole (their outputs are heads: outputs.py). An ended session is in the store;
the last few also stay in memory for quick reads, at most `MAX_ENDED_SESSIONS` of them and at most
`MAX_ENDED_CHARS` characters of output heads in all. Results shared across sessions
(`reuse_results: server`) are kept the same way: at most `MAX_SHARED_RESULTS`, `MAX_SHARED_CHARS`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parallel_coordinator.engine.session import Session
    from parallel_coordinator.runners.base import RunResult

MAX_ENDED_SESSIONS = 8
MAX_ENDED_CHARS = 16 * 1024 * 1024
MAX_SHARED_RESULTS = 1000
MAX_SHARED_CHARS = 16 * 1024 * 1024


def _session_chars(session: Session) -> int:
    return sum(len(record.output) for record in session.tasks.values()) + len(session.synthesis or "")


class EndedSessions:
    """The most recently ended sessions, oldest dropped first once over a bound."""

    def __init__(self, max_sessions: int = MAX_ENDED_SESSIONS, max_chars: int = MAX_ENDED_CHARS) -> None:
        self.max_sessions, self.max_chars = max_sessions, max_chars
        self._sizes: OrderedDict[str, int] = OrderedDict()

    def add(self, session: Session) -> list[str]:
        """Remember `session`; returns the ids that must leave memory now (possibly this one)."""
        self._sizes[session.id] = _session_chars(session)
        dropped = []
        while self._sizes and (len(self._sizes) > self.max_sessions or sum(self._sizes.values()) > self.max_chars):
            dropped.append(self._sizes.popitem(last=False)[0])
        return dropped

    def __len__(self) -> int:
        return len(self._sizes)


class ServerResultCache:
    """Results any session may reuse: least recently used dropped first once over a bound."""

    def __init__(self, max_entries: int = MAX_SHARED_RESULTS, max_chars: int = MAX_SHARED_CHARS) -> None:
        self.max_entries, self.max_chars = max_entries, max_chars
        self._entries: OrderedDict[str, tuple[str, RunResult]] = OrderedDict()
        self._chars = 0

    def get(self, key: str) -> tuple[str, RunResult] | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, origin: str, result: RunResult) -> None:
        if key in self._entries:
            self._chars -= len(self._entries.pop(key)[1].output)
        self._entries[key] = (origin, result)
        self._chars += len(result.output)
        while self._entries and (len(self._entries) > self.max_entries or self._chars > self.max_chars):
            _, (_, dropped) = self._entries.popitem(last=False)
            self._chars -= len(dropped.output)

    def __len__(self) -> int:
        return len(self._entries)
