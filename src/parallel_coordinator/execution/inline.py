"""InlineBackend: the execution backend as an in-process test double, as httpx ships MockTransport.

No pool, no process, no socket: each attempt is a call to a handler that returns its outcome. Engine
tests drive the real Coordinator on it, `Coordinator(settings, backend=InlineBackend(handler))`.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import anyio

from parallel_coordinator.execution.channel import EventHandler
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob

Emit = Callable[[dict[str, Any]], None]
Handler = Callable[[SupervisorJob, Emit], AttemptOutcome | Awaitable[AttemptOutcome]]


class InlineBackend:
    """Runs each attempt as `handler(job, emit)` in the caller's task, and returns what it returns.

    The handler plays the supervisor and its agent: it may be sync or async, reports as a supervisor
    would through `emit` (`emit({"event": "progress", "percent": 50, "message": "halfway"})`;
    `{"event": "started", "pid": ...}`), and returns the AttemptOutcome. An outcome that leaves
    `started_at` / `finished_at` at 0 gets the times of the call. To play a worker that died, raise
    `errors.WorkerLostError`; anything else it raises reaches the caller as itself, as a bug would.

    `cancel(attempt_id)` ends a running async handler at its next await, and its `run` returns a
    "cancelled" outcome, as the real backends do when their supervisor has killed the agent. A sync
    handler cannot be interrupted: it should return at once. Cancelling the caller of `run`
    cancels the handler and re-raises.
    """

    name = "inline"

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        # The attempts running now, each with the scope that `cancel` ends; removed when they end.
        self._running: dict[str, anyio.CancelScope] = {}

    async def __aenter__(self) -> InlineBackend:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        for scope in self._running.values():
            scope.cancel()
        return None

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome:
        def emit(event: dict[str, Any]) -> None:
            on_event({"attempt": job.attempt_id, **event})

        started_at = time.time()
        with anyio.CancelScope() as scope:
            self._running[job.attempt_id] = scope
            try:
                result = self.handler(job, emit)
                outcome = await result if inspect.isawaitable(result) else result
            finally:
                self._running.pop(job.attempt_id, None)
        if scope.cancelled_caught:
            return AttemptOutcome(reason="cancelled", started_at=started_at, finished_at=time.time(), error="cancelled")
        if not isinstance(outcome, AttemptOutcome):
            raise TypeError(
                f"the InlineBackend handler returned {outcome!r:.200} for attempt {job.attempt_id!r}; "
                "it must return an AttemptOutcome"
            )
        return dataclasses.replace(
            outcome, started_at=outcome.started_at or started_at, finished_at=outcome.finished_at or time.time()
        )

    async def cancel(self, attempt_id: str) -> None:
        """Ask a running attempt to stop; an attempt that is not running is left alone, as the hub does."""
        scope = self._running.get(attempt_id)
        if scope is not None:
            scope.cancel()
