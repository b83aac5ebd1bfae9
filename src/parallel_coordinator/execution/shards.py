"""What the loky and Dask backends share: a few long-running shards, each running many attempts.

A backend keeps shards as its load asks (never more than `max_shards`, which follows the cores or
the cluster's workers) and sends each job to the least loaded one. An attempt's outcome comes back
on its shard's link and resolves the waiting `run`. A shard that dies (its process killed, its
worker lost) fails every attempt it held with WorkerLostError; its agents die with it (their
parent-death signal and its lifeline keeper). Idle shards are retired after `idle_timeout_s`.
Subclasses say how a shard is launched and awaited, and which exceptions mean its worker died.
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from parallel_coordinator.errors import WorkerLostError
from parallel_coordinator.execution.channel import AttemptHub, EventHandler, ShardConnection
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.supervisor import SupervisorJob

# How long a stopped attempt may take to confirm its agent is dead before we stop waiting for it.
STOP_GRACE_S = 10.0
# After a shard's link closes, how long its pool may take to say why (the worker's death) before we stop waiting.
_WHY_GRACE_S = 5.0
_PLACEMENTS = 3  # how many shards an attempt may be sent to before its agent starts


@dataclass
class _Attempt:
    on_event: EventHandler
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: AttemptOutcome | None = None
    error: BaseException | None = None
    started: bool = False  # its agent was started: a lost shard then costs it a run

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "started":
            self.started = True
        if kind == "outcome":
            self.outcome = event["outcome"]
            self.done.set()
        elif kind == "error":
            self.error = event["exception"]
            self.done.set()
        elif kind == "refused":  # its shard was closing: never started, so placed again
            self.error = WorkerLostError("its shard was closing and did not start it")
            self.done.set()
        else:
            self.on_event(event)


@dataclass
class Shard:
    """One running shard, as the backend sees it."""

    id: str
    connection: ShardConnection
    attempts: dict[str, _Attempt] = field(default_factory=dict)
    retired: bool = False  # told to exit, or lost: takes no new job
    idle_since: float = field(default_factory=time.monotonic)
    handle: Any = None  # the pool's handle on the shard's task (a Future)

    @property
    def load(self) -> int:
        return len(self.attempts)


class ShardBackend(ABC):
    """The shared half of a backend whose shards report to `hub`."""

    name: str
    worker_kind: str  # how the error names a worker: "pool worker", "Dask worker"
    hub: AttemptHub
    # A new shard is started once the least loaded one holds this many attempts (and there is room).
    agents_per_shard: int = 16

    def __init__(self, *, idle_timeout_s: float) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.shards: list[Shard] = []
        self._where: dict[str, Shard] = {}  # attempt id -> its shard
        self._ids = itertools.count(1)
        self._tasks: anyio.abc.TaskGroup | None = None
        self._exit_stack = AsyncExitStack()

    @property
    @abstractmethod
    def max_shards(self) -> int:
        """How many shards may run at once."""

    async def _serve(self, stack: AsyncExitStack) -> None:
        """Serve the hub and keep the shards, in a task group that `stack` cancels on exit."""
        group = await stack.enter_async_context(anyio.create_task_group())
        await group.start(self.hub.serve)
        group.start_soon(self._retire_idle_shards)
        self._tasks = group
        stack.callback(group.cancel_scope.cancel)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        return await self._exit_stack.__aexit__(exc_type, exc, tb)

    async def cancel(self, attempt_id: str) -> None:
        shard = self._where.get(attempt_id)
        if shard is not None:
            shard.connection.post(("cancel", attempt_id))

    async def run(self, job: SupervisorJob, on_event: EventHandler) -> AttemptOutcome:
        # A shard lost before it started the agent (its worker died as it was placed there) cost the
        # attempt nothing: it is placed again, on another shard, a few times at most.
        for _ in range(_PLACEMENTS - 1):
            attempt = await self._run_on_a_shard(job, on_event)
            if attempt.started or not isinstance(attempt.error, WorkerLostError):
                break
        else:
            attempt = await self._run_on_a_shard(job, on_event)
        if attempt.error is not None:
            raise attempt.error
        assert attempt.outcome is not None
        return attempt.outcome

    async def _run_on_a_shard(self, job: SupervisorJob, on_event: EventHandler) -> _Attempt:
        shard = self._pick_shard()
        attempt = _Attempt(on_event)
        shard.attempts[job.attempt_id] = attempt
        self._where[job.attempt_id] = shard
        self.hub.register(job.attempt_id, attempt.handle)
        try:
            shard.connection.post(("start", job))
            try:
                await attempt.done.wait()
            except anyio.get_cancelled_exc_class():
                with anyio.CancelScope(shield=True):
                    shard.connection.post(("cancel", job.attempt_id))
                    with anyio.move_on_after(STOP_GRACE_S):
                        await attempt.done.wait()
                raise
        finally:
            self.hub.unregister(job.attempt_id)
            self._where.pop(job.attempt_id, None)
            shard.attempts.pop(job.attempt_id, None)
            if not shard.attempts:
                shard.idle_since = time.monotonic()
        return attempt

    def _pick_shard(self) -> Shard:
        live = [shard for shard in self.shards if not shard.retired and not shard.connection.closing]
        best = min(live, key=lambda shard: shard.load, default=None)
        if best is None or (best.load >= self.agents_per_shard and len(live) < self.max_shards):
            best = self._start_shard()
        return best

    def _start_shard(self) -> Shard:
        shard_id = f"s{next(self._ids)}"
        shard = Shard(shard_id, self.hub.shard(shard_id))
        self.shards.append(shard)
        if self._tasks is None:
            raise RuntimeError(f"the {self.name} backend is not started: use it as `async with`")
        self._tasks.start_soon(self._keep, shard)
        return shard

    async def _keep(self, shard: Shard) -> None:
        """Launch the shard and wait for its end; then fail whatever it still held."""
        cause: BaseException | None = None
        ended = anyio.Event()

        async def task_ended() -> None:
            nonlocal cause
            try:
                await self._ended(shard.handle)
            except Exception as exc:  # the shard's task failed: its worker died, or a bug of ours in it
                cause = exc
            ended.set()

        async def link_closed() -> None:
            await shard.connection.closed.wait()
            shard.retired = True
            await anyio.sleep(_WHY_GRACE_S)  # the pool's own word on the worker usually comes first
            ended.set()

        try:
            shard.handle = await self._launch(shard.id)
            async with anyio.create_task_group() as group:
                group.start_soon(task_ended)
                group.start_soon(link_closed)
                await ended.wait()
                group.cancel_scope.cancel()
        except Exception as exc:  # the shard could not be launched
            cause = exc
        finally:
            shard.retired = True
            with anyio.CancelScope(shield=True):
                await self._forget(shard.id, shard.handle)
            self.hub.forget_shard(shard.id)
            if shard in self.shards:
                self.shards.remove(shard)
            self._fail_attempts(shard, cause)

    def _fail_attempts(self, shard: Shard, cause: BaseException | None) -> None:
        for attempt in list(shard.attempts.values()):
            if attempt.done.is_set():
                continue
            if cause is None or isinstance(cause, self._worker_losses()):
                why = f"{cause!r}" if cause is not None else "its link closed and the pool said nothing"
                error = WorkerLostError(f"the {self.worker_kind} running it died ({why})")
                error.__cause__ = cause or ConnectionResetError("its shard's link closed")
                attempt.error = error
            else:
                attempt.error = cause
            attempt.done.set()

    async def _retire_idle_shards(self) -> None:
        while True:
            await anyio.sleep(max(0.5, min(self.idle_timeout_s / 2, 30.0)))
            now = time.monotonic()
            for shard in list(self.shards):
                if not shard.retired and not shard.attempts and now - shard.idle_since >= self.idle_timeout_s:
                    shard.retired = True
                    shard.connection.post(("exit", None))

    @abstractmethod
    async def _launch(self, shard_id: str) -> Any:
        """Start shard `shard_id` on a worker (its `run_shard` connects to the hub); returns its handle."""

    @abstractmethod
    async def _ended(self, handle: Any) -> None:
        """Return when the shard's task has ended; raise what it raised."""

    async def _forget(self, shard_id: str, handle: Any) -> None:  # noqa: B027 (a hook: most backends keep nothing)
        """The shard has ended: drop what the backend kept for it."""

    @abstractmethod
    def _worker_losses(self) -> tuple[type[BaseException], ...]:
        """The exceptions `_ended` raises when the worker running the shard died."""


def shards_for(cores: int | None) -> int:
    """Shards for this machine: one per core (a shard is one process on one event loop)."""
    return max(1, cores or 1)

