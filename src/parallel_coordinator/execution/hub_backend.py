"""What the loky and Dask backends share: supervisors report to a hub, a cancel reaches them through it,
and one `run` that each backend fills in with how it submits a job, awaits it, and loses a worker.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import Any

import anyio

from parallel_coordinator.errors import WorkerLostError
from parallel_coordinator.execution.channel import AttemptHub, EventHandler
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob

# How long a stopped attempt may take to confirm its agent is dead before we stop waiting for it.
STOP_GRACE_S = 10.0


class HubBackend(ABC):
    """A backend whose supervisors report to `hub`. Subclasses say only what differs:

    `_submitted(job)` places the job on a worker and yields a handle to it, `_result(handle)` awaits
    its outcome, `_worker_losses()` names the exceptions that mean its worker died, and
    `_abandon(handle)` waits (bounded) for an attempt that was told to stop.
    """

    name: str
    hub: AttemptHub
    worker_kind: str  # how the error names a worker: "pool worker", "Dask worker"
    _exit_stack: AsyncExitStack

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._exit_stack.__aexit__(exc_type, exc, tb)

    async def _serve_hub(self, stack: AsyncExitStack) -> None:
        """Serve the hub in a task group that `stack` cancels on exit."""
        task_group = await stack.enter_async_context(anyio.create_task_group())
        await task_group.start(self.hub.serve)
        stack.callback(task_group.cancel_scope.cancel)

    async def cancel(self, attempt_id: str) -> None:
        await self.hub.cancel(attempt_id)

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome:
        self.hub.register(job.attempt_id, on_event)
        try:
            job = dataclasses.replace(job, channel=self.hub.address, channel_secret=self.hub.secret)
            async with self._submitted(job) as handle:
                try:
                    return await self._result(handle)
                except self._worker_losses() as exc:
                    raise WorkerLostError(f"the {self.worker_kind} running it died ({exc!r})") from exc
                except anyio.get_cancelled_exc_class():
                    with anyio.CancelScope(shield=True):
                        await self.hub.cancel(job.attempt_id)
                        await self._abandon(handle)
                    raise
        finally:
            self.hub.unregister(job.attempt_id)

    @abstractmethod
    def _submitted(self, job: SupervisorJob) -> AbstractAsyncContextManager[Any]:
        """Place `job` on a worker; yields its handle, and gives the worker back on exit."""

    @abstractmethod
    async def _result(self, handle: Any) -> AttemptOutcome:
        """The placed job's outcome, once its supervisor has reaped the agent."""

    @abstractmethod
    def _worker_losses(self) -> tuple[type[BaseException], ...]:
        """The exceptions `_result` raises when the worker running the job died."""

    @abstractmethod
    async def _abandon(self, handle: Any) -> None:
        """Runs shielded after the hub told the attempt to stop: wait, bounded by STOP_GRACE_S, for it to end."""
