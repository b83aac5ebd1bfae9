"""The Dask distributed backend: the same supervisors, run on a Dask cluster's workers.

Each attempt is one Dask task that starts a supervisor process of its own on whichever worker
runs it (`supervise_in_subprocess`): Dask workers run several tasks at once in threads, and a
supervisor must own its process. The supervisor reaches the coordinator's hub over TCP, so
progress, cancellation and "the coordinator is gone" work across machines exactly as they do
locally. `Future.cancel()` cannot stop a running task (NOTES.md): cancelling goes through the hub.

`distributed` is imported only here, and this module only when the Dask backend is chosen:
importing it slows the local loky pool (NOTES.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import socket
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio

from parallel_coordinator.errors import CoordinatorError, WorkerLostError
from parallel_coordinator.execution.channel import AttemptHub, EventHandler
from parallel_coordinator.execution.pool import STOP_GRACE_S, HubBackend
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob, split_address, supervise_in_subprocess

log = logging.getLogger(__name__)

# A cluster's HTTP endpoints (the dashboard) would otherwise take the fixed port 8787, even with
# `dashboard_address=None`: any free loopback port instead.
DASHBOARD_ADDRESS = "127.0.0.1:0"


def callback_host(scheduler: str | None) -> str:
    """The address Dask workers can reach this process on: the interface that routes to the scheduler.

    A connected UDP socket sends nothing; it only asks the kernel which local address it would use.
    """
    if not scheduler:
        return "127.0.0.1"
    host, _ = split_address(scheduler)
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 8786))
            return str(probe.getsockname()[0])
    except OSError:
        return "127.0.0.1"


def _worker_losses() -> tuple[type[BaseException], ...]:
    """What Dask raises when the worker (or its connection) running a task is gone."""
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return (KilledWorker, CommClosedError)


class DaskBackend(HubBackend):
    """Runs supervisors on a Dask cluster: an existing scheduler, or a LocalCluster started here.

    Without a scheduler address, a LocalCluster of `local_workers` worker processes is started and
    closed with the backend; it tells its scheduler to fail an attempt whose worker died at once
    (allowed-failures 0) so the coordinator retries it, on another worker, under its own policy.
    An external scheduler keeps its own setting: Dask may rerun such an attempt itself first.
    """

    name = "dask"

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        max_workers: int = 64,
        local_workers: int = 2,
        hub_host: str | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.scheduler = scheduler
        self.max_workers = max_workers
        self.local_workers = local_workers
        self.connect_timeout_s = connect_timeout_s
        self.hub = AttemptHub(tcp_host=hub_host or callback_host(scheduler))
        self.client: Any = None
        self.cluster: Any = None
        self._exit_stack = AsyncExitStack()

    async def __aenter__(self) -> DaskBackend:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise CoordinatorError(
                "the Dask backend needs the `distributed` package: pip install 'parallel-coordinator[dask]'"
            ) from None
        async with AsyncExitStack() as stack:
            if self.scheduler is None:
                threads = math.ceil(self.max_workers / self.local_workers)
                # Dask's routine INFO lines (a dozen per start) would drown our own log on stderr; its
                # worker processes read the same setting from the environment they inherit.
                if not log.isEnabledFor(logging.DEBUG):
                    logging.getLogger("distributed").setLevel(logging.WARNING)
                    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = await stack.enter_async_context(LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=self.local_workers, threads_per_worker=threads, processes=True,
                        asynchronous=True, host="127.0.0.1", dashboard_address=DASHBOARD_ADDRESS,
                    ))
                target: Any = self.cluster
            else:
                target = self.scheduler
            try:
                self.client = await stack.enter_async_context(
                    Client(target, asynchronous=True, timeout=self.connect_timeout_s)  # type: ignore[no-untyped-call]
                )
            except (OSError, TimeoutError) as exc:
                raise CoordinatorError(f"cannot reach the Dask scheduler at {self.scheduler!r}: {exc}") from None
            # Closed before the cluster: supervisors still running then see their channel close.
            stack.callback(self.hub.close)
            task_group = await stack.enter_async_context(anyio.create_task_group())
            await task_group.start(self.hub.serve)
            stack.callback(task_group.cancel_scope.cancel)
            self._exit_stack = stack.pop_all()
        log.info("Dask backend ready: scheduler %s, supervisors report to %s",
                 self.client.scheduler.address, self.hub.address)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._exit_stack.__aexit__(exc_type, exc, tb)

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome:
        self.hub.register(job.attempt_id, on_event)
        try:
            job = dataclasses.replace(job, channel=self.hub.address, channel_secret=self.hub.secret)
            # pure=False: two attempts are never the same computation, whatever their arguments.
            future = self.client.submit(supervise_in_subprocess, job, key=f"pcoord-{job.attempt_id}", pure=False)
            try:
                outcome: AttemptOutcome = await future
                return outcome
            except _worker_losses() as exc:
                raise WorkerLostError(f"the Dask worker running it died ({exc!r})") from exc
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    await self.hub.cancel(job.attempt_id)
                    with anyio.move_on_after(STOP_GRACE_S), contextlib.suppress(Exception):
                        await future
                    await self.client.cancel([future])
                raise
        finally:
            self.hub.unregister(job.attempt_id)
