"""The one writer of a session's own state: records each session event's `state` in the store.

The engine's parts never write sessions, tasks or attempts themselves; they emit events (events.py),
and this, the bus's writer, is how those become durable. (Cross-server requests, cancel and the
recovery of a dead server's sessions, are the store's own operations: engine/cancel.py, startup.py.)
Progress is persisted at most once a second per task, for `pcoord watch` in another process.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

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


class StoreRecorder:
    def __init__(self, store: SessionWrites) -> None:
        self.store = store
        # (session, task) -> when its progress was last written; an entry goes when its task ends.
        self._progress_written: dict[tuple[str, str], float] = {}

    def __call__(self, event: SessionEvent) -> None:
        state = event.state
        if state is None:
            return
        sid, kind = event.session_id, event.kind
        if kind == "session_started":
            self.store.create_session(sid, **state)
        elif kind == "session_ended":
            self.store.finish_session(sid, **state)
            self._progress_written = {k: v for k, v in self._progress_written.items() if k[0] != sid}
        elif kind in ("attempt_started", "attempt_ended"):
            self.store.add_attempt(
                StoredAttempt(**state["attempt"]), pid=state.get("pid"), peak_rss_mb=state.get("peak_rss_mb"),
                streams=state.get("streams"),
            )
        elif kind == "tasks_cancelled":
            fields = dict(state)
            self.store.update_tasks(sid, fields.pop("task_ids"), **fields)
        elif event.task_id is not None:
            key = (sid, event.task_id)
            if kind == "progress":
                now = time.monotonic()
                if now - self._progress_written.get(key, 0.0) < _PROGRESS_PERSIST_S:
                    return
                self._progress_written[key] = now
            elif kind == "task_ended":
                self._progress_written.pop(key, None)
            self.store.update_task(sid, event.task_id, **state)


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
        },
    )
