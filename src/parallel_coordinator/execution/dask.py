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
import logging
import math
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio

from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.execution.channel import AttemptHub
from parallel_coordinator.execution.hub_backend import STOP_GRACE_S, HubBackend
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


class DaskBackend(HubBackend):
    """Runs supervisors on a Dask cluster: an existing scheduler, or a LocalCluster started here.

    Without a scheduler address, a LocalCluster of `local_workers` worker processes is started and
    closed with the backend; it tells its scheduler to fail an attempt whose worker died at once
    (allowed-failures 0) so the coordinator retries it, on another worker, under its own policy.
    An external scheduler keeps its own setting: Dask may rerun such an attempt itself first.
    """

    name = "dask"
    worker_kind = "Dask worker"

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
            await self._serve_hub(stack)
            self._exit_stack = stack.pop_all()
        log.info("Dask backend ready: scheduler %s, supervisors report to %s",
                 self.client.scheduler.address, self.hub.address)
        return self

    @asynccontextmanager
    async def _submitted(self, job: SupervisorJob) -> AsyncIterator[Any]:
        # pure=False: two attempts are never the same computation, whatever their arguments.
        yield self.client.submit(supervise_in_subprocess, job, key=f"pcoord-{job.attempt_id}", pure=False)

    async def _result(self, handle: Any) -> AttemptOutcome:
        outcome: AttemptOutcome = await handle
        return outcome

    def _worker_losses(self) -> tuple[type[BaseException], ...]:
        """What Dask raises when the worker (or its connection) running a task is gone."""
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        return (KilledWorker, CommClosedError)

    async def _abandon(self, handle: Any) -> None:
        # Future.cancel() cannot stop a running task: the hub's cancel does; this only drops the future.
        with anyio.move_on_after(STOP_GRACE_S), contextlib.suppress(Exception):
            await handle
        await self.client.cancel([handle])
