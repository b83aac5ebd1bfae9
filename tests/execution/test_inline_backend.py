"""InlineBackend, the in-process double of an execution backend: what its handler returns and emits
reaches the caller, a cancel ends a running handler as a real backend's would, errors pass through.
"""

from __future__ import annotations

from typing import Any

import anyio
import psutil
import pytest

from parallel_coordinator.errors import WorkerLostError
from parallel_coordinator.execution.inline import Emit, InlineBackend
from parallel_coordinator.runners.base import AttemptOutcome, Invocation
from parallel_coordinator.supervisor import SupervisorJob

pytestmark = pytest.mark.anyio


def job(attempt_id: str = "a1") -> SupervisorJob:
    return SupervisorJob(attempt_id, Invocation(["agent"]), "/nonexistent/artefacts")


async def test_a_sync_handlers_outcome_is_returned_with_the_times_of_the_call() -> None:
    def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        return AttemptOutcome(reason="exited", exit_code=0, stdout=f"ran {job.invocation.argv[0]}")

    async with InlineBackend(handler) as backend:
        outcome = await backend.run(job(), lambda _event: None)
    assert (outcome.reason, outcome.exit_code, outcome.stdout) == ("exited", 0, "ran agent")
    assert 0 < outcome.started_at <= outcome.finished_at


async def test_events_a_handler_emits_reach_the_caller_marked_with_their_attempt() -> None:
    async def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        emit({"event": "started", "pid": None})
        await anyio.lowlevel.checkpoint()
        emit({"event": "progress", "percent": 50.0, "message": "halfway"})
        return AttemptOutcome(reason="exited", exit_code=0, started_at=1.0, finished_at=2.0)

    seen: list[dict[str, Any]] = []
    async with InlineBackend(handler) as backend:
        outcome = await backend.run(job("a7"), seen.append)
    assert seen == [
        {"attempt": "a7", "event": "started", "pid": None},
        {"attempt": "a7", "event": "progress", "percent": 50.0, "message": "halfway"},
    ]
    assert (outcome.started_at, outcome.finished_at) == (1.0, 2.0)  # the handler's own times are kept


async def test_cancel_ends_a_running_async_handler_with_a_cancelled_outcome() -> None:
    running = anyio.Event()
    ended: list[str] = []

    async def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        running.set()
        try:
            await anyio.sleep_forever()
        finally:
            ended.append(job.attempt_id)
        raise AssertionError("unreachable")

    outcomes: list[AttemptOutcome] = []
    with anyio.fail_after(10):
        async with InlineBackend(handler) as backend, anyio.create_task_group() as group:

            async def run() -> None:
                outcomes.append(await backend.run(job("c1"), lambda _event: None))

            group.start_soon(run)
            await running.wait()
            await backend.cancel("c1")
    assert ended == ["c1"]
    assert [(o.reason, o.error) for o in outcomes] == [("cancelled", "cancelled")]


async def test_cancelling_the_caller_cancels_the_handler_and_is_re_raised() -> None:
    running = anyio.Event()
    ended = anyio.Event()

    async def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        running.set()
        try:
            await anyio.sleep_forever()
        finally:
            ended.set()
        raise AssertionError("unreachable")

    returned: list[AttemptOutcome] = []
    with anyio.fail_after(10):
        async with InlineBackend(handler) as backend, anyio.create_task_group() as group:

            async def run() -> None:
                returned.append(await backend.run(job(), lambda _event: None))

            group.start_soon(run)
            await running.wait()
            group.cancel_scope.cancel()
    assert ended.is_set()
    assert returned == []  # the cancellation went up, not a "cancelled" outcome


async def test_cancel_of_an_attempt_that_is_not_running_changes_nothing() -> None:
    async def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        return AttemptOutcome(reason="exited", exit_code=0)

    async with InlineBackend(handler) as backend:
        await backend.cancel("never-ran")
        outcome = await backend.run(job("never-ran"), lambda _event: None)
    assert outcome.reason == "exited"


@pytest.mark.parametrize("error", [WorkerLostError("the worker died"), KeyError("a bug")])
async def test_what_a_handler_raises_reaches_the_caller_as_itself(error: Exception) -> None:
    def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        raise error

    async with InlineBackend(handler) as backend:
        with pytest.raises(type(error)) as raised:
            await backend.run(job(), lambda _event: None)
    assert raised.value is error


async def test_a_handler_that_returns_no_outcome_is_named_in_the_error() -> None:
    def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        return "done"  # type: ignore[return-value]

    async with InlineBackend(handler) as backend:
        with pytest.raises(TypeError, match=r"returned 'done' for attempt 'a1'; it must return an AttemptOutcome"):
            await backend.run(job(), lambda _event: None)


async def test_it_starts_no_process() -> None:
    children: list[list[psutil.Process]] = []

    def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        children.append(psutil.Process().children(recursive=True))
        return AttemptOutcome(reason="exited", exit_code=0)

    before = psutil.Process().children(recursive=True)
    async with InlineBackend(handler) as backend:
        await backend.run(job(), lambda _event: None)
    assert children == [before]
