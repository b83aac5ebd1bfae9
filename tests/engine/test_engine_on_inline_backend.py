"""The real Coordinator on InlineBackend: attempts are handler calls, so the engine's own decisions
(retry, fallback, rate-limit backoff, cancel, progress) are tested with no pool and no process.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import anyio
import psutil
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.session import Session
from parallel_coordinator.execution.inline import Emit, InlineBackend
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.supervisor import SupervisorJob
from tests.conftest import AgentFactory, wait_until
from tests.engine.test_claude_agents import FAKE_CLAUDE, REVIEWER

pytestmark = pytest.mark.anyio

OPTIONS = CoordinateOptions.model_validate({"wait_seconds": 0, "retry_attempts": 1})


def request_of(job: SupervisorJob) -> dict[str, Any]:
    """The command agent protocol's request, as the agent would read it from stdin."""
    request: dict[str, Any] = json.loads(job.invocation.stdin)
    return request


def exited(code: int, stdout: str = "", stderr: str = "") -> AttemptOutcome:
    return AttemptOutcome(reason="exited", exit_code=code, stdout=stdout, stderr_tail=stderr)


def echo(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
    """Plays the echo agent: succeeds with `<task> done by <agent>`; the failer agent always fails."""
    request = request_of(job)
    if request["agent"] == "failer":
        return exited(3, stderr="something went wrong: disk on fire")
    return exited(0, f"{request['task_id']} done by {request['agent']}\n")


async def run(settings: Settings, handler: Callable[[SupervisorJob, Emit], Any], *subtasks: Subtask) -> Session:
    async with Coordinator(settings, backend=InlineBackend(handler)) as coordinator:
        session = await coordinator.start("inline", coordinator.plan(list(subtasks), OPTIONS), OPTIONS)
        with anyio.fail_after(30):
            await session.done.wait()
    return session


def with_retries(task_id: str, agent: str, max_attempts: int, **extra: object) -> Subtask:
    return Subtask.model_validate({
        "id": task_id, "description": "x", "agent_type": agent,
        "retry_policy": {"max_attempts": max_attempts, "backoff_seconds": 0.01}, **extra,
    })


async def test_a_task_succeeds_with_the_outcome_the_handler_returns_and_no_process_is_started(
    settings: Settings,
) -> None:
    jobs: list[SupervisorJob] = []
    children: list[list[psutil.Process]] = []

    def handler(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        jobs.append(job)
        children.append(psutil.Process().children(recursive=True))
        return echo(job, emit)

    before = psutil.Process().children(recursive=True)
    session = await run(settings, handler, Subtask(id="a", description="root", agent_type="echo"))
    assert session.status == "SUCCESS", session.error_summary
    record = session.tasks["a"]
    assert record.output.strip() == "a done by echo"
    assert [(a.number, a.outcome, a.exit_code) for a in record.attempts] == [(1, "exited", 0)]
    # The job is the one a supervisor would get: the agent's command and the task's request.
    (job,) = jobs
    assert job.invocation.argv[0] == sys.executable
    assert request_of(job)["description"] == "root"
    assert children == [before]


async def test_a_failed_attempt_is_retried_and_the_retry_succeeds(settings: Settings) -> None:
    calls: list[int] = []

    def flaky(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        calls.append(1)
        return exited(1, stderr="flaky failure number 1") if len(calls) == 1 else exited(0, "succeeded on run 2\n")

    session = await run(settings, flaky, with_retries("f", "echo", 2))
    record = session.tasks["f"]
    assert session.status == "SUCCESS", session.error_summary
    assert record.output.strip() == "succeeded on run 2"
    assert [(a.number, a.exit_code) for a in record.attempts] == [(1, 1), (2, 0)]
    assert "flaky failure number 1" in (record.attempts[0].error or "")


async def test_a_task_that_keeps_failing_moves_to_its_fallback_agent(settings: Settings) -> None:
    session = await run(settings, echo, with_retries("t", "failer", 2, fallback_agents=["echo"]))
    record = session.tasks["t"]
    assert session.status == "SUCCESS", session.error_summary
    assert [a.agent for a in record.attempts] == ["failer", "failer", "echo"]
    assert record.output.strip() == "t done by echo"


# What Claude Code's stream-json ends with: a run rejected by the API's rate limit, and a good run.
RATE_LIMITED = {"type": "result", "subtype": "success", "is_error": True, "api_error_status": 429,
                "result": "API Error: Request rejected (429) · This request would exceed the rate limit"}
ANSWERED = {"type": "result", "subtype": "success", "is_error": False, "result": "looks good",
            "usage": {"input_tokens": 10, "output_tokens": 5}}


async def test_a_rate_limited_attempt_backs_off_and_does_not_use_up_an_attempt(
    settings: Settings, agents: AgentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))  # found, never run
    finals = [RATE_LIMITED, ANSWERED]

    def claude(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        final = finals.pop(0)
        return AttemptOutcome(reason="exited", exit_code=1 if final["is_error"] else 0, final_event=final)

    async with Coordinator(settings, backend=InlineBackend(claude)) as coordinator:
        subtask = with_retries("r", "reviewer", 1)
        session = await coordinator.start("inline", coordinator.plan([subtask], OPTIONS), OPTIONS)
        with anyio.fail_after(30):
            await session.done.wait()
        throttle = coordinator.throttles["claude"]
    record = session.tasks["r"]
    assert session.status == "SUCCESS", session.error_summary
    assert [a.outcome for a in record.attempts] == ["rate_limited", "exited"]  # one attempt allowed, two run
    assert record.output == "looks good"
    assert throttle.rate_limits == 1
    assert throttle.limit < throttle.max_limit


async def test_progress_a_running_attempt_reports_shows_in_the_sessions_snapshot(settings: Settings) -> None:
    release = anyio.Event()

    async def reporting(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        emit({"event": "started", "pid": 4242})
        emit({"event": "progress", "percent": 50.0, "message": "halfway"})
        await release.wait()
        return exited(0, "finished\n")

    async with Coordinator(settings, backend=InlineBackend(reporting)) as coordinator:
        session = await coordinator.start(
            "inline", coordinator.plan([Subtask(id="p", description="x", agent_type="echo")], OPTIONS), OPTIONS
        )
        await wait_until(session, lambda: session.tasks["p"].progress is not None)
        snapshot = coordinator.get(session.id)
        live = snapshot.tasks["p"]
        assert (snapshot.status, live.status) == ("RUNNING", TaskState.RUNNING)
        assert (live.progress, live.message, live.pid) == (50.0, "halfway", 4242)
        release.set()
        with anyio.fail_after(30):
            await session.done.wait()
        ended = coordinator.get(session.id)
    assert ended.status == "SUCCESS"
    assert ended.tasks["p"].progress == 100.0


async def test_cancelling_a_running_session_ends_its_attempt_as_cancelled(settings: Settings) -> None:
    ended: list[str] = []

    async def hanging(job: SupervisorJob, emit: Emit) -> AttemptOutcome:
        emit({"event": "progress", "percent": 10.0, "message": "hanging"})
        try:
            await anyio.sleep_forever()
        finally:
            ended.append(request_of(job)["task_id"])
        raise AssertionError("unreachable")

    async with Coordinator(settings, backend=InlineBackend(hanging)) as coordinator:
        session = await coordinator.start("inline", coordinator.plan([
            Subtask(id="hang", description="x", agent_type="echo"),
            Subtask(id="later", description="x", agent_type="echo", dependencies=["hang"]),
        ], OPTIONS), OPTIONS)
        await wait_until(session, lambda: session.tasks["hang"].progress is not None)
        with anyio.fail_after(30):
            outcome = await coordinator.cancel(session.id)
            await session.done.wait()
    assert outcome.status == "CANCELLED"
    assert ended == ["hang"]
    assert session.tasks["hang"].status is TaskState.CANCELLED
    assert session.tasks["later"].status is TaskState.CANCELLED
    assert [a.outcome for a in session.tasks["hang"].attempts] == ["cancelled"]
