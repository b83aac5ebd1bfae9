"""The local loky pool backend: supervisor shards run in loky workers on this machine.

Stopping an attempt goes through its shard's link, never through the pool: killing a loky worker
would break every task in it (NOTES.md).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from contextlib import AsyncExitStack
from typing import Any

import anyio
import anyio.to_thread

from parallel_coordinator.execution.channel import AttemptHub
from parallel_coordinator.execution.shards import ShardBackend, shards_for
from parallel_coordinator.supervisor import run_shard, worker_init


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


class LocalPoolBackend(ShardBackend):
    """Shards in loky pool workers on this machine, one loky executor of one worker per shard.

    One executor each, because a loky worker that dies breaks its whole executor (NOTES.md): a
    dead shard must take only its own agents with it. A shard's worker exits `idle_timeout_s`
    after its shard retired.
    """

    name = "local"
    worker_kind = "pool worker"
    # The fork server is shared by every pool in this process, and workers watch it as their parent:
    # it is stopped only when the last pool with workers shuts down.
    _pools_with_workers = 0

    def __init__(
        self, idle_timeout_s: float = 300.0, *, max_shards: int | None = None,
        worker_env: dict[str, str] | None = None,
    ) -> None:
        super().__init__(idle_timeout_s=idle_timeout_s)
        self._max_shards = max_shards or shards_for(os.cpu_count())
        # Workers run with this environment (no server credentials: environment.py); None: the server's own.
        self.worker_env = worker_env
        self.hub = AttemptHub()
        self._executors: dict[str, Any] = {}
        self._started_workers = False
        self._closing = False

    @property
    def max_shards(self) -> int:
        return self._max_shards

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
            await self._serve(stack)
            stack.callback(self._begin_closing)  # first on exit: the shards then end on their own
            self._exit_stack = stack.pop_all()
        return self

    def _shutdown_pool(self) -> None:
        # The hub's task group ended first: every shard saw its link close and is killing its agents.
        for executor in self._executors.values():
            executor.shutdown(wait=True)
        if self._started_workers:
            LocalPoolBackend._pools_with_workers -= 1
            if LocalPoolBackend._pools_with_workers == 0:
                _stop_fork_server()
        self._executors.clear()

    def _start_executor(self, shard_id: str, context: Any) -> Future[None]:
        from loky import ProcessPoolExecutor

        # Forked workers inherit the fork server's environment, not ours: hand them theirs.
        environ = dict(os.environ) if self.worker_env is None else self.worker_env
        executor = ProcessPoolExecutor(
            max_workers=1, timeout=int(self.idle_timeout_s), context=context,
            initializer=worker_init, initargs=(os.getpid(), environ),
        )
        if not self._started_workers:
            self._started_workers = True
            LocalPoolBackend._pools_with_workers += 1
        self._executors[shard_id] = executor
        future: Future[None] = executor.submit(run_shard, self.hub.address, self.hub.secret, shard_id)
        return future

    async def _launch(self, shard_id: str) -> Future[None]:
        context = self._context()  # sets the fork server's preload before it starts
        _start_fork_server_deaf_to_ctrl_c()  # on this thread: signal dispositions change only on the main one
        # Starting the executor forks its worker: keep that off the event loop.
        return await anyio.to_thread.run_sync(self._start_executor, shard_id, context)

    async def _ended(self, handle: Future[None]) -> None:
        await asyncio.wrap_future(handle)

    def _begin_closing(self) -> None:
        self._closing = True

    async def _forget(self, shard_id: str, handle: Future[None] | None) -> None:
        if self._closing:
            return  # the hub's links are closing: each shard kills its agents and ends; _shutdown_pool waits
        executor = self._executors.pop(shard_id, None)
        if executor is not None:
            # A shard still running although its link closed is abandoned: its worker goes, and its agents with it.
            executor.shutdown(wait=False, kill_workers=handle is not None and not handle.done())

    def _worker_losses(self) -> tuple[type[BaseException], ...]:
        return (BrokenProcessPool,)  # loky's TerminatedWorkerError is one: the worker died
