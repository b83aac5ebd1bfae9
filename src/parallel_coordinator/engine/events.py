"""Session events: what happened, when, fanned out to whoever listens.

The bus's writer (the store recorder) runs first and its errors propagate: a change the store could
not record must not pass for done. Listeners after it (the JSON-lines log, MCP notifiers) are plain
callables run synchronously, so they must be quick; one that raises is logged, and the others still run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, TextIO

from parallel_coordinator.state.private_files import open_private, private_dir

log = logging.getLogger(__name__)

EventKind = Literal[
    "session_started", "task_started", "attempt_started", "progress", "attempt_ended", "task_ended",
    "session_ended",
    # Changes with no moment of their own for a listener: a result kept from a resumed session, tasks
    # cancelled before they started, the summary of an isolated task's worktree.
    "task_kept", "tasks_cancelled", "task_changed",
]


@dataclass(frozen=True)
class SessionEvent:
    kind: EventKind
    session_id: str
    task_id: str | None = None
    agent: str | None = None
    attempt: int | None = None
    status: str | None = None
    progress: float | None = None
    message: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    ts: float = field(default_factory=time.time)
    # What the store records of this change (recorder.py writes it; nothing else writes session state).
    state: dict[str, Any] | None = field(default=None, repr=False, compare=False)


Listener = Callable[[SessionEvent], None]

# The performance log keeps the moments of a session; the bookkeeping-only kinds are the store's.
_LOGGED = frozenset({
    "session_started", "task_started", "attempt_started", "progress", "attempt_ended", "task_ended", "session_ended",
})


class EventBus:
    def __init__(self, writer: Listener | None = None) -> None:
        self._writer = writer
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: SessionEvent) -> None:
        if self._writer is not None:
            self._writer(event)
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not break a session
                log.exception("event listener %r failed on %s", listener, event.kind)


class PerformanceLog:
    """Appends every event of a session to `<dir>/<session_id>.jsonl`, for analysis after the run.

    Progress events are kept to one a second per task: an agent may report far more often.
    """

    def __init__(self, directory: Path, progress_interval_s: float = 1.0) -> None:
        self.directory = directory
        self.progress_interval_s = progress_interval_s
        self._files: dict[str, TextIO] = {}
        self._last_progress: dict[tuple[str, str | None], float] = {}

    def path(self, session_id: str) -> Path:
        return self.directory / f"{session_id}.jsonl"

    def __call__(self, event: SessionEvent) -> None:
        if event.kind not in _LOGGED:
            return
        if event.kind == "progress":
            key = (event.session_id, event.task_id)
            if event.ts - self._last_progress.get(key, 0.0) < self.progress_interval_s:
                return
            self._last_progress[key] = event.ts
        handle = self._files.get(event.session_id)
        if handle is None:
            private_dir(self.directory)
            fd = open_private(self.path(event.session_id), os.O_WRONLY | os.O_APPEND)
            handle = self._files[event.session_id] = os.fdopen(fd, "a", encoding="utf-8")
        record = {f.name: getattr(event, f.name) for f in fields(event) if f.name != "state"}
        record = {k: v for k, v in record.items() if v not in (None, {})}
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        if event.kind == "session_ended":
            handle.close()
            del self._files[event.session_id]
            self._last_progress = {k: v for k, v in self._last_progress.items() if k[0] != event.session_id}

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
