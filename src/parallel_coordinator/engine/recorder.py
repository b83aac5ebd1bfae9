"""The one writer of a session's own state: records each session event's `state` in the store.

The engine's parts never write sessions, tasks or attempts themselves; they emit events (events.py),
and this, the bus's writer, is how those become durable. (Cross-server requests, cancel and the
recovery of a dead server's sessions, are the store's own operations: engine/cancel.py, startup.py.)
Progress is persisted at most once a second per task, for `pcoord watch` in another process.

While `run()` runs (the coordinator starts it), writes are grouped: each is queued and the lot is
committed in one transaction at the event loop's next turn, one WAL sync instead of one per write.
A session's first and last events are written at once, flushing what is queued: a session the store
cannot record does not start, and an ended session is whole in the store before it leaves memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

import anyio

from parallel_coordinator.engine.events import SessionEvent
from parallel_coordinator.engine.session import Session
from parallel_coordinator.planning.plans import node_spec
from parallel_coordinator.schemas.inputs import CoordinateOptions
from parallel_coordinator.state.store import StoredAttempt

_PROGRESS_PERSIST_S = 1.0


class SessionWrites(Protocol):
    """The store as the recorder writes it (state.store.Store is the real one)."""

    def create_session(
        self, session_id: str, task_description: str, options: dict[str, Any], created_at: float, max_agents: int,
        tasks: Sequence[tuple[str, str, str, Sequence[str], int, dict[str, Any]]], resumed_from: str | None = None,
        owner: str | None = None,
    ) -> None: ...

    def update_task(self, session_id: str, task_id: str, **fields: Any) -> None: ...

    def update_tasks(self, session_id: str, task_ids: Iterable[str], **fields: Any) -> None: ...

    def add_attempt(
        self, attempt: StoredAttempt, pid: int | None, peak_rss_mb: float | None,
        streams: dict[str, Any] | None = None,
    ) -> None: ...

    def finish_session(
        self, session_id: str, status: str, finished_at: float, error_summary: str | None,
        synthesis: str | None = None, *, peak_parallelism: int | None = None, notes: Sequence[str] = (),
        killed_processes: int = 0,
    ) -> None: ...

    def batch(self) -> AbstractContextManager[None]: ...


class StoreRecorder:
    def __init__(self, store: SessionWrites) -> None:
        self.store = store
        # (session, task) -> when its progress was last written; an entry goes when its task ends.
        self._progress_written: dict[tuple[str, str], float] = {}
        # Writes waiting for the next turn of the loop: bounded by what one turn emits, and flushed then.
        self._pending: list[Callable[[], None]] = []
        self._queued: anyio.Event | None = None  # set while run() groups writes

    def __call__(self, event: SessionEvent) -> None:
        write = self._write_for(event)
        if write is None:
            return
        if self._queued is None or event.kind in ("session_started", "session_ended"):
            self.flush()
            write()
            return
        self._pending.append(write)
        self._queued.set()

    async def run(self) -> None:
        """Group writes until cancelled, committing them at the loop's next turn; what is left is flushed."""
        try:
            while True:
                self._queued = anyio.Event()
                await self._queued.wait()
                self.flush()
        finally:
            self._queued = None
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.store.batch():
            for write in pending:
                write()

    def _write_for(self, event: SessionEvent) -> Callable[[], None] | None:
        state = event.state
        if state is None:
            return None
        store, sid, kind = self.store, event.session_id, event.kind
        if kind == "session_started":
            return lambda: store.create_session(sid, **state)
        if kind == "session_ended":
            self._progress_written = {k: v for k, v in self._progress_written.items() if k[0] != sid}
            return lambda: store.finish_session(sid, **state)
        if kind in ("attempt_started", "attempt_ended"):
            attempt = StoredAttempt(**state["attempt"])
            return lambda: store.add_attempt(
                attempt, pid=state.get("pid"), peak_rss_mb=state.get("peak_rss_mb"), streams=state.get("streams"),
            )
        if kind == "tasks_cancelled":
            fields = dict(state)
            task_ids = fields.pop("task_ids")
            return lambda: store.update_tasks(sid, task_ids, **fields)
        task_id = event.task_id
        if task_id is None:
            return None
        key = (sid, task_id)
        if kind == "progress":
            now = time.monotonic()
            if now - self._progress_written.get(key, 0.0) < _PROGRESS_PERSIST_S:
                return None
            self._progress_written[key] = now
        elif kind == "task_ended":
            self._progress_written.pop(key, None)
        return lambda: store.update_task(sid, task_id, **state)


def session_started(session: Session, options: CoordinateOptions) -> SessionEvent:
    """The event that records a new session and every task of it (pending); options are kept as given."""
    graph = session.graph
    return SessionEvent(
        "session_started", session.id, details={"tasks": len(graph), "resumed_from": session.resumed_from},
        state={
            "task_description": session.task_description, "options": options.model_dump(mode="json"),
            "created_at": session.created_at, "max_agents": options.max_agents,
            "tasks": [(n.id, n.agent, n.description, n.dependencies, n.priority, node_spec(n))
                      for n in graph.nodes.values()],
            "resumed_from": session.resumed_from, "owner": session.owner,
            "forecast": session.forecast.as_dict() if session.forecast is not None else None,
        },
    )
