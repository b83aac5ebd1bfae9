"""The execution backend seam and the local loky pool behind it.

A backend runs a SupervisorJob somewhere and returns its AttemptOutcome. Stopping an attempt goes
through the supervisor's channel, never through the pool: killing a loky worker would break every
task in it (NOTES.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Protocol

import anyio

from parallel_coordinator.channel import AttemptHub, EventHandler
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob, supervise, worker_init

# How long a stopped attempt may take to confirm its agent is dead before we stop waiting for it.
_STOP_GRACE_S = 10.0


class ExecutionBackend(Protocol):
    """Somewhere to run supervisors.

    `run` returns once the supervisor has reaped its agent. If the caller is cancelled while
    waiting, the backend stops the attempt and waits (bounded) for its agent to be gone before
    re-raising. `cancel` asks a running attempt to stop; `run` then returns a "cancelled" outcome.
    """

    name: str

    async def __aenter__(self) -> ExecutionBackend: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None: ...

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome: ...

    async def cancel(self, attempt_id: str) -> None: ...


class LocalPoolBackend:
    """A loky process pool, grown on demand up to `max_workers`.

    Workers are spawned in steps as concurrency grows, because starting 64 interpreters up front
    costs seconds of CPU on a small machine; idle workers exit after `idle_timeout_s`.
    """

    name = "local"

    def __init__(self, max_workers: int = 64, idle_timeout_s: float = 300.0) -> None:
        self.max_workers = max_workers
        self.idle_timeout_s = idle_timeout_s
        self.hub = AttemptHub()
        self._size = 0
        self._executor: object | None = None
        self._running = 0
        self._exit_stack = AsyncExitStack()

    async def __aenter__(self) -> LocalPoolBackend:
        async with AsyncExitStack() as stack:
            stack.callback(self.hub.close)
            stack.callback(self._shutdown_pool)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            await task_group.start(self.hub.serve)
            stack.callback(task_group.cancel_scope.cancel)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._exit_stack.__aexit__(exc_type, exc, tb)

    def _shutdown_pool(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)  # type: ignore[attr-defined]
            self._executor = None

    def _ensure_capacity(self, wanted: int) -> object:
        from loky import get_reusable_executor

        wanted = min(self.max_workers, max(wanted, 1))
        if self._executor is None or wanted > self._size:
            size = min(self.max_workers, max(wanted, self._size * 2, 4))
            # One executor per process, resized in place; always called from the event loop's thread.
            self._executor = get_reusable_executor(
                max_workers=size, timeout=int(self.idle_timeout_s), initializer=worker_init
            )
            self._size = size
        return self._executor

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome:
        self.hub.register(job.attempt_id, on_event)
        self._running += 1
        try:
            executor = self._ensure_capacity(self._running)
            future = executor.submit(supervise, dataclasses.replace(job, channel=self.hub.path))  # type: ignore[attr-defined]
            try:
                return await asyncio.wrap_future(future)
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self.hub.cancel(job.attempt_id)
                    if not future.cancel() and not future.done():
                        with anyio.move_on_after(_STOP_GRACE_S):
                            await asyncio.wrap_future(future)
                raise
        finally:
            self._running -= 1
            self.hub.unregister(job.attempt_id)

    async def cancel(self, attempt_id: str) -> None:
        await self.hub.cancel(attempt_id)
