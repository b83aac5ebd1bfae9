"""The Dask distributed backend: the same supervisors, run on a Dask cluster's workers.

Each shard is one long-running Dask task that starts a shard process of its own on its worker
(`run_shard_in_subprocess`): Dask workers run several tasks at once in threads, and a shard must
own its process. The backend keeps about one shard per Dask worker and spreads attempts over them.
Shards reach the coordinator's hub over TCP, so progress, cancellation and "the coordinator is
gone" work across machines exactly as they do locally. `Future.cancel()` cannot stop a running
task (NOTES.md): cancelling goes through the hub.

`distributed` is imported only here, and this module only when the Dask backend is chosen:
importing it slows the local loky pool (NOTES.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from contextlib import AsyncExitStack
from typing import Any

from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.execution.channel import AttemptHub
from parallel_coordinator.execution.shards import ShardBackend
from parallel_coordinator.supervisor import run_shard_in_subprocess, split_address

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


class DaskBackend(ShardBackend):
    """Runs supervisors on a Dask cluster: an existing scheduler, or a LocalCluster started here.

    Without a scheduler address, a LocalCluster of `local_workers` worker processes is started and
    closed with the backend; it tells its scheduler to fail an attempt whose worker died at once
    (allowed-failures 0) so the coordinator retries it, on another worker, under its own policy.
    An external scheduler keeps its own setting: Dask may rerun such an attempt itself first.
    """

    name = "dask"
    worker_kind = "Dask worker"
    agents_per_shard = 1  # spread attempts over the cluster: a new shard while a worker has none

    def __init__(
        self,
        scheduler: str | None = None,
        *,
        local_workers: int = 2,
        hub_host: str | None = None,
        connect_timeout_s: float = 10.0,
        idle_timeout_s: float = 300.0,
    ) -> None:
        super().__init__(idle_timeout_s=idle_timeout_s)
        self.scheduler = scheduler
        self.local_workers = local_workers
        self.connect_timeout_s = connect_timeout_s
        self.hub = AttemptHub(tcp_host=hub_host or callback_host(scheduler))
        self.client: Any = None
        self.cluster: Any = None
        self._placed: dict[str, str] = {}  # shard id -> the worker address it was sent to
        self._workers: list[str] = []  # the cluster's worker addresses, as last asked
        self._lost: set[str] = set()  # workers a shard died on: not chosen again (a restarted one has a new address)

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
                # Dask's routine INFO lines (a dozen per start) would drown our own log on stderr; its
                # worker processes read the same setting from the environment they inherit.
                if not log.isEnabledFor(logging.DEBUG):
                    logging.getLogger("distributed").setLevel(logging.WARNING)
                    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self.cluster = await stack.enter_async_context(LocalCluster(  # type: ignore[no-untyped-call]
                        n_workers=self.local_workers, threads_per_worker=2, processes=True,
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
            await self._refresh_workers()
            # Closed before the cluster: supervisors still running then see their channel close.
            stack.callback(self.hub.close)
            await self._serve(stack)
            self._exit_stack = stack.pop_all()
        log.info("Dask backend ready: scheduler %s, supervisors report to %s",
                 self.client.scheduler.address, self.hub.address)
        return self

    @property
    def max_shards(self) -> int:
        """One shard per Dask worker process the cluster had when a shard was last launched."""
        return max(1, len(self._workers))

    async def _refresh_workers(self) -> None:
        identity = await self.client.scheduler.identity()
        self._workers = list(identity.get("workers", {}))

    async def _launch(self, shard_id: str) -> Any:
        """A shard task on the worker with the fewest of ours (a preference: a worker gone meanwhile is skipped)."""
        await self._refresh_workers()
        workers = [worker for worker in self._workers if worker not in self._lost] or self._workers
        counts = {worker: 0 for worker in workers}
        for worker in self._placed.values():
            counts[worker] = counts.get(worker, 0) + 1
        target = min(workers, key=lambda worker: counts.get(worker, 0), default=None)
        if target is not None:
            self._placed[shard_id] = target
        # pure=False: two shards are never the same computation, whatever their arguments.
        placement: dict[str, Any] = {"workers": [target], "allow_other_workers": True} if target else {}
        return self.client.submit(
            run_shard_in_subprocess, self.hub.address, self.hub.secret, shard_id, key=f"pcoord-shard-{shard_id}",
            pure=False, **placement,
        )

    async def _ended(self, handle: Any) -> None:
        await handle

    def _worker_losses(self) -> tuple[type[BaseException], ...]:
        """What Dask raises when the worker (or its connection) running a shard is gone."""
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        from parallel_coordinator.supervisor.worker import ShardEnded

        return (KilledWorker, CommClosedError, ShardEnded)

    async def _forget(self, shard_id: str, handle: Any) -> None:
        worker = self._placed.pop(shard_id, None)
        if worker is not None and handle is not None and handle.done() and handle.status == "error":
            if len(self._lost) >= 1024:  # bounded: a long-lived server on a churning cluster
                self._lost.clear()
            self._lost.add(worker)
        if handle is not None and not handle.done():
            with contextlib.suppress(Exception):  # the cluster may be closing
                await self.client.cancel([handle])
