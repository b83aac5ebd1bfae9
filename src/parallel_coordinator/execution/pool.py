"""The local loky pool backend: supervisors run in a process pool on this machine.

Stopping an attempt goes through the supervisor's channel, never through the pool: killing a loky
worker would break every task in it (NOTES.md).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from parallel_coordinator.execution.channel import AttemptHub
from parallel_coordinator.execution.hub_backend import STOP_GRACE_S, HubBackend
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob, supervise, worker_init


def _stop_fork_server() -> None:
    """End multiprocessing's fork server, so a closed pool leaves no process of ours behind.

    `_stop` is the standard library's own way to do it (its tests use it); if a later Python drops
    it, the server still exits with this process, as before.
    """
    import multiprocessing.forkserver

    stop = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_stop", None)
    if callable(stop):
        stop()


def _start_fork_server_deaf_to_ctrl_c() -> None:
    """Start the fork server with SIGINT ignored, on the main thread, before it forks any worker.

    A terminal's Ctrl-C reaches the whole foreground group. The fork server and each worker forked
    from it inherit the ignored SIGINT (the fork server restores, in every child, the dispositions it
    started with), so one can die neither while the server imports its modules nor while a worker
    starts, before worker_init ignores it too (a dead worker fails every attempt of its slice). A
    Ctrl-C in the few milliseconds this takes is lost; dispositions can only change on the main thread.
    """
    import multiprocessing.forkserver
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


@dataclass
class _Slice:
    """One fixed-size loky executor and how many of our jobs it holds."""

    executor: Any
    size: int
    jobs: int = 0


class LocalPoolBackend(HubBackend):
    """A loky process pool of up to `max_workers`, grown in slices of `slice_size` workers.

    loky starts every worker of an executor at once, and resizing an executor waits for its
    running jobs to finish: so instead of one executor of 64, we add fixed-size executors as
    concurrency grows. Idle workers exit after `idle_timeout_s` and return on the next job.
    """

    name = "local"
    worker_kind = "pool worker"
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
            await self._serve_hub(stack)
            self._exit_stack = stack.pop_all()
        return self

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
            context = self._context()
            _start_fork_server_deaf_to_ctrl_c()
            # Forked workers inherit the fork server's environment, not ours: hand them theirs.
            environ = dict(os.environ) if self.worker_env is None else self.worker_env
            executor = ProcessPoolExecutor(
                max_workers=size, timeout=int(self.idle_timeout_s), context=context,
                initializer=worker_init, initargs=(os.getpid(), environ),
            )
            if not self._slices:
                LocalPoolBackend._pools_with_workers += 1
            self._slices.append(_Slice(executor, size))
            return self._slices[-1]
        # Every worker is busy: queue behind the least busy slice.
        return min(self._slices, key=lambda piece: piece.jobs)

    @asynccontextmanager
    async def _submitted(self, job: SupervisorJob) -> AsyncIterator[Future[AttemptOutcome]]:
        piece = self._pick_slice()
        piece.jobs += 1
        try:
            # Submitting may start the slice's worker processes: keep that off the event loop.
            yield await anyio.to_thread.run_sync(piece.executor.submit, supervise, job)
        finally:
            piece.jobs -= 1

    async def _result(self, handle: Future[AttemptOutcome]) -> AttemptOutcome:
        return await asyncio.wrap_future(handle)

    def _worker_losses(self) -> tuple[type[BaseException], ...]:
        return (BrokenProcessPool,)  # loky's TerminatedWorkerError is one: the worker died

    async def _abandon(self, handle: Future[AttemptOutcome]) -> None:
        if not handle.cancel() and not handle.done():
            with anyio.move_on_after(STOP_GRACE_S):
                await asyncio.wrap_future(handle)
