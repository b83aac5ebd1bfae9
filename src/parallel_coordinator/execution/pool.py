"""The execution backend seam and the local loky pool behind it.

A backend runs a SupervisorJob somewhere and returns its AttemptOutcome. Stopping an attempt goes
through the supervisor's channel, never through the pool: killing a loky worker would break every
task in it (NOTES.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from concurrent.futures.process import BrokenProcessPool
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import anyio
import anyio.to_thread

from parallel_coordinator.errors import WorkerLostError
from parallel_coordinator.execution.channel import AttemptHub, EventHandler
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob, supervise, worker_init

if TYPE_CHECKING:
    from parallel_coordinator.config.settings import Settings

# How long a stopped attempt may take to confirm its agent is dead before we stop waiting for it.
STOP_GRACE_S = 10.0


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


def make_backend(settings: Settings) -> ExecutionBackend:
    """The backend the settings choose. The Dask one is imported only when chosen (NOTES.md)."""
    if settings.backend == "dask":
        from parallel_coordinator.execution.dask import DaskBackend

        return DaskBackend(
            settings.dask_scheduler, max_workers=settings.pool_size, local_workers=settings.dask_local_workers,
            hub_host=settings.dask_callback_host,
        )
    if settings.backend != "local":
        raise ValueError(f"unknown backend {settings.backend!r}: choose 'local' or 'dask'")
    return LocalPoolBackend(
        settings.pool_size, settings.pool_idle_timeout_s,
        worker_env=settings.environment_policy.worker_environment(),
    )


def _stop_fork_server() -> None:
    """End multiprocessing's fork server, so a closed pool leaves no process of ours behind.

    `_stop` is the standard library's own way to do it (its tests use it); if a later Python drops
    it, the server still exits with this process, as before.
    """
    import multiprocessing.forkserver

    stop = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_stop", None)
    if callable(stop):
        stop()


@dataclass
class _Slice:
    """One fixed-size loky executor and how many of our jobs it holds."""

    executor: Any
    size: int
    jobs: int = 0


class HubBackend:
    """What both backends share: supervisors report to `hub`, and a cancel goes to them through it."""

    hub: AttemptHub

    async def cancel(self, attempt_id: str) -> None:
        await self.hub.cancel(attempt_id)


class LocalPoolBackend(HubBackend):
    """A loky process pool of up to `max_workers`, grown in slices of `slice_size` workers.

    loky starts every worker of an executor at once, and resizing an executor waits for its
    running jobs to finish: so instead of one executor of 64, we add fixed-size executors as
    concurrency grows. Idle workers exit after `idle_timeout_s` and return on the next job.
    """

    name = "local"
    # The fork server is shared by every pool in this process, and workers watch it as their parent:
    # it is stopped only when the last pool with workers shuts down.
    _pools_with_workers = 0

    def __init__(
        self, max_workers: int = 64, idle_timeout_s: float = 300.0, slice_size: int = 8,
        *, worker_env: dict[str, str] | None = None,
    ) -> None:
        self.max_workers = max_workers
        # Workers run with this environment (no server credentials: environment.py); None: the server's own.
        self.worker_env = worker_env
        self.idle_timeout_s = idle_timeout_s
        self.slice_size = slice_size
        self.hub = AttemptHub()
        self._slices: list[_Slice] = []
        self._exit_stack = AsyncExitStack()

    @staticmethod
    def _context() -> Any:
        """Workers fork from a fork server that has our modules imported (see forkserver_preload)."""
        import multiprocessing.forkserver

        from loky.backend.context import get_context

        # Only takes effect if the fork server is not running yet; it then serves us for the
        # coordinator's lifetime and exits when the coordinator does.
        multiprocessing.forkserver.set_forkserver_preload(["parallel_coordinator.execution.forkserver_preload"])
        return get_context("forkserver")

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
        for piece in self._slices:
            piece.executor.shutdown(wait=True)
        if self._slices:
            LocalPoolBackend._pools_with_workers -= 1
            if LocalPoolBackend._pools_with_workers == 0:
                _stop_fork_server()
        self._slices.clear()

    @property
    def workers(self) -> int:
        return sum(piece.size for piece in self._slices)

    def _pick_slice(self) -> _Slice:
        """The least busy slice with a free worker; a new slice if none has one and there is room."""
        free = [piece for piece in self._slices if piece.jobs < piece.size]
        if free:
            return min(free, key=lambda piece: piece.jobs)
        room = self.max_workers - self.workers
        if room > 0:
            from loky import ProcessPoolExecutor

            size = min(self.slice_size, room)
            # Forked workers inherit the fork server's environment, not ours: hand them theirs.
            environ = dict(os.environ) if self.worker_env is None else self.worker_env
            executor = ProcessPoolExecutor(
                max_workers=size, timeout=int(self.idle_timeout_s), context=self._context(),
                initializer=worker_init, initargs=(os.getpid(), environ),
            )
            if not self._slices:
                LocalPoolBackend._pools_with_workers += 1
            self._slices.append(_Slice(executor, size))
            return self._slices[-1]
        # Every worker is busy: queue behind the least busy slice.
        return min(self._slices, key=lambda piece: piece.jobs)

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome:
        self.hub.register(job.attempt_id, on_event)
        piece = self._pick_slice()
        piece.jobs += 1
        try:
            # Submitting may start the slice's worker processes: keep that off the event loop.
            job = dataclasses.replace(job, channel=self.hub.address, channel_secret=self.hub.secret)
            future = await anyio.to_thread.run_sync(piece.executor.submit, supervise, job)
            try:
                outcome: AttemptOutcome = await asyncio.wrap_future(future)
                return outcome
            except BrokenProcessPool as exc:  # loky's TerminatedWorkerError is one: the worker died
                raise WorkerLostError(f"the pool worker running it died ({exc!r})") from exc
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self.hub.cancel(job.attempt_id)
                    if not future.cancel() and not future.done():
                        with anyio.move_on_after(STOP_GRACE_S):
                            await asyncio.wrap_future(future)
                raise
        finally:
            piece.jobs -= 1
            self.hub.unregister(job.attempt_id)
