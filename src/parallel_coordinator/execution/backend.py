"""The execution backend seam: somewhere to run supervisors, and the choice of one from the settings.

The backends behind it: the local loky pool (pool.py), a Dask cluster (dask.py), and InlineBackend
(inline.py), an in-process double for engine tests.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from parallel_coordinator.execution.channel import EventHandler
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob

if TYPE_CHECKING:
    from parallel_coordinator.config.settings import Settings


class ExecutionBackend(Protocol):
    """Somewhere to run agents (the pool and Dask backends: on supervisor shards).

    `run` returns once the supervisor has reaped its agent. If the caller is cancelled while
    waiting, the backend stops the attempt and waits (bounded) for its agent to be gone before
    re-raising. `cancel` asks a running attempt to stop; `run` then returns a "cancelled" outcome.
    A backend raises `errors.WorkerLostError` when the worker running an attempt died, and lets
    anything else (a bug of ours) propagate as itself.
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
            settings.dask_scheduler, local_workers=settings.dask_local_workers,
            hub_host=settings.dask_callback_host, idle_timeout_s=settings.pool_idle_timeout_s,
        )
    if settings.backend != "local":
        raise ValueError(f"unknown backend {settings.backend!r}: choose 'local' or 'dask'")
    from parallel_coordinator.execution.pool import LocalPoolBackend

    return LocalPoolBackend(settings.pool_idle_timeout_s, worker_env=settings.environment_policy.worker_environment())
