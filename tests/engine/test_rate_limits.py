"""Rate limits: the wait a 429's stream asks for is honoured, and one server's sessions share the back-off.

The throttle's own rules on a given clock, then the real engine with the fake `claude`.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.engine.throttle import RunnerThrottle
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory, wait_until
from tests.engine.test_claude_agents import FAKE_CLAUDE, REVIEWER

OPTIONS = CoordinateOptions(wait_seconds=0)


def limited(throttle: RunnerThrottle, runs: int, now: float, wait_s: float | None) -> float:
    """`runs` runs in flight, each refused at `now`: returns the last pause."""
    for _ in range(runs):
        throttle.try_start(now)
    pause = 0.0
    for _ in range(runs):
        pause = throttle.on_rate_limit(now, wait_s=wait_s)
        throttle.ended()
    return pause


def test_the_pause_is_the_wait_the_stream_asked_for_not_a_guess() -> None:
    throttle = RunnerThrottle(max_limit=8)

    pause = limited(throttle, 1, now=100.0, wait_s=7.25)

    assert pause == 7.25
    assert throttle.asked_s == 7.25
    assert not throttle.admits(now=107.2)
    assert throttle.admits(now=107.25)


def test_a_wait_past_the_cap_is_cut_to_max_wait_s() -> None:
    throttle = RunnerThrottle(max_limit=8)

    pause = limited(throttle, 1, now=0.0, wait_s=4 * 3600.0)  # a subscription window four hours away

    assert pause == throttle.max_wait_s == 300.0
    assert throttle.admits(now=300.0)


@pytest.mark.parametrize("wait_s", [None, 0.0])
def test_without_a_wait_from_the_stream_the_pause_is_a_guess_of_our_own_that_doubles_each_round(
    wait_s: float | None,
) -> None:
    throttle = RunnerThrottle(max_limit=8)

    first = limited(throttle, 8, now=0.0, wait_s=wait_s)  # eight refused at once: one round, not eight
    second = limited(throttle, 1, now=throttle.resume_at, wait_s=wait_s)  # the first run after the pause

    assert throttle.asked_s is None
    assert throttle.base_pause_s / 2 <= first <= throttle.base_pause_s
    assert throttle.base_pause_s <= second <= 2 * throttle.base_pause_s


def test_when_a_pause_ends_only_as_many_runs_start_as_the_limit_allows() -> None:
    throttle = RunnerThrottle(max_limit=8)
    limited(throttle, 8, now=0.0, wait_s=1.0)  # eight refused at once: the limit halves down to one

    assert [throttle.try_start(now=1.0) for _ in range(8)] == [True] + [False] * 7
    throttle.on_success()
    throttle.ended()
    assert [throttle.try_start(now=1.5) for _ in range(3)] == [True, True, False]  # one more per success


@pytest.mark.anyio
async def test_slots_count_each_run_they_admit_against_the_runners_throttle() -> None:
    slots = Slots(runner_limit=2, on_freed=lambda: None)
    agent = AgentSpec(name="reviewer", body="Review.")

    assert [slots.admit(agent) for _ in range(3)] == [True, True, False]
    assert slots.throttle("claude").running == 2


@pytest.mark.anyio
async def test_a_429_in_one_session_holds_back_the_other_sessions_starts_of_that_runner(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    sequence = tmp_path / "sequence"
    sequence.write_text("rate_limit\n")  # the first claude run is refused; any after it would succeed
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "1")
    monkeypatch.setenv("FAKE_CLAUDE_RETRY_AFTER_MS", "120000")  # the API: come back in two minutes

    first = await coordinator.start("first", coordinator.plan(
        [Subtask(id="a", description="review a", agent_type="reviewer")], OPTIONS), OPTIONS)
    await wait_until(first, lambda: [x.outcome for x in first.tasks["a"].attempts] == ["rate_limited"])
    second = await coordinator.start("second", coordinator.plan([
        Subtask(id="b", description="review b", agent_type="reviewer"),
        Subtask(id="e", description="echo e", agent_type="echo"),
    ], OPTIONS), OPTIONS)
    await wait_until(second, lambda: second.tasks["e"].status is TaskState.SUCCEEDED and bool(second.queue_reason))

    reason = second.queue_reason or ""
    assert reason.startswith("backing off 'claude' after 1 rate limit(s): at most 1 at once, next start in ")
    assert reason.endswith("(the API asked for 120.0 s)")
    assert second.tasks["b"].status is TaskState.PENDING  # not started: its runner is paused for everyone
    assert second.tasks["b"].attempts == []
    assert len(first.tasks["a"].attempts) == 1  # the refused task waits too, not counting an attempt
    assert first.tasks["a"].message == "rate limited: the next try waits 120.0 s (as the API asked)"
    assert sequence.read_text() == ""  # one claude process ran in all

    # A stop does not wait out the pause.
    for session in (first, second):
        await coordinator.cancel(session.id)
    with anyio.fail_after(30):
        await first.done.wait()
        await second.done.wait()
    assert first.tasks["a"].status is TaskState.CANCELLED
    assert second.tasks["b"].status is TaskState.CANCELLED
