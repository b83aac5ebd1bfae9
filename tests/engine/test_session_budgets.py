"""Session budgets (options.budget): tokens, dollars and wall seconds for the whole session.

When one is reached no new agent starts, running agents are stopped, finished results are kept, and the
session ends PARTIAL with the reason; the status shows spend against budget all along. Claude agents are
the fake `claude`, which reports usage as the real one does: a successful run uses 11,084 tokens
(5,501 in its first turn) and costs $0.00794; the `hang` scenario reports 901 tokens, then hangs.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import psutil
import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.session import Session
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, SessionBudget, Subtask
from parallel_coordinator.views import progress_status
from tests.conftest import AgentFactory, alive, wait_until

pytestmark = pytest.mark.anyio

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
ONE_RUN_TOKENS = 11_084
FIRST_TURN_TOKENS = 5_501
HANG_TOKENS = 901

REVIEWER = """---
name: reviewer
description: Reviews code for bugs
tools: Read, Grep
model: sonnet
---
You are a careful code reviewer.
"""

SILENT = """
    import time
    time.sleep(600)
"""


@pytest.fixture
def reviewer(agents: AgentFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))


def reviews(count: int) -> list[Subtask]:
    # Distinct descriptions: identical tasks would reuse one result and never spend.
    return [Subtask(id=f"r{i}", description=f"Review part {i}", agent_type="reviewer") for i in range(count)]


async def run(coordinator: Coordinator, subtasks: list[Subtask], **options: object) -> Session:
    chosen = CoordinateOptions.model_validate({"wait_seconds": 0, "approved": True, **options})
    session = await coordinator.start("budgets", coordinator.plan(subtasks, chosen), chosen)
    with anyio.fail_after(60):
        await session.done.wait()
    return session


def attempts_made(session: Session) -> int:
    return sum(len(record.attempts) for record in session.tasks.values())


async def test_a_token_budget_stops_the_session_partial_keeping_what_finished(
    coordinator: Coordinator, reviewer: None
) -> None:
    session = await run(coordinator, reviews(5), max_agents=1, budget={"tokens": 15_000})

    assert session.status == "PARTIAL"
    assert "session budget reached" in (session.error_summary or "")
    assert "budget.tokens=15,000" in (session.error_summary or "")
    first = session.tasks["r0"]
    assert first.status is TaskState.SUCCEEDED and "Review part 0" in first.output
    # The second run crossed the budget (whole, or stopped by its supervisor at what the budget had left);
    # nothing started after it.
    assert attempts_made(session) == 2
    never_started = [r for r in session.tasks.values() if not r.attempts]
    assert len(never_started) == 3 and all(r.status is TaskState.CANCELLED for r in never_started)
    assert session.spend.total_tokens in (ONE_RUN_TOKENS + FIRST_TURN_TOKENS, 2 * ONE_RUN_TOKENS)


async def test_a_dollar_budget_stops_the_session_once_runs_have_spent_it(
    coordinator: Coordinator, reviewer: None
) -> None:
    session = await run(coordinator, reviews(5), max_agents=1, budget={"usd": 0.01})

    assert session.status == "PARTIAL"
    assert "budget.usd=0.01" in (session.error_summary or "")
    succeeded = [r for r in session.tasks.values() if r.status is TaskState.SUCCEEDED]
    assert len(succeeded) == 2  # $0.00794 each: the second run crosses the budget
    assert attempts_made(session) == 2
    assert session.spend.usd == pytest.approx(2 * 0.00794)


async def test_running_agents_are_stopped_when_their_tokens_so_far_reach_the_budget(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", "hang")
    # Both runs start at once (no prompt-cache warm-up, which would start the second after the first's answer).
    options = CoordinateOptions(wait_seconds=0, approved=True, budget=SessionBudget(tokens=1_500), cache_warmup=False)
    session = await coordinator.start("budgets", coordinator.plan(reviews(2), options), options)
    records = list(session.tasks.values())
    await wait_until(session, lambda: all(r.pid is not None for r in records) or session.status != "RUNNING")
    pids = [r.pid for r in records if r.pid is not None]
    with anyio.fail_after(60):
        await session.done.wait()

    # Each run alone stays under the budget (901 tokens); together they reach it while both still run.
    assert session.status == "PARTIAL"
    assert "1,802 tokens used of budget.tokens=1,500" in (session.error_summary or "")
    assert all(r.status is TaskState.CANCELLED for r in records)
    gone = psutil.wait_procs([psutil.Process(pid) for pid in alive(pids)], timeout=20)[1]
    assert gone == []


async def test_a_seconds_budget_stops_agents_that_would_run_on(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("silent", SILENT)
    subtasks = [Subtask(id=f"s{i}", description=f"wait {i}", agent_type="silent") for i in range(2)]
    options = CoordinateOptions(wait_seconds=0, budget=SessionBudget(seconds=1))
    session = await coordinator.start("budgets", coordinator.plan(subtasks, options), options)
    records = list(session.tasks.values())
    await wait_until(session, lambda: all(r.pid is not None for r in records))
    pids = [r.pid for r in records if r.pid is not None]
    with anyio.fail_after(60):
        await session.done.wait()

    assert session.status == "PARTIAL"
    assert "of budget.seconds=1" in (session.error_summary or "")
    assert alive(pids) == [] or psutil.wait_procs([psutil.Process(p) for p in alive(pids)], timeout=20)[1] == []


async def test_the_status_shows_spend_against_budget_and_forecast_while_it_runs(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", "hang")
    options = CoordinateOptions(wait_seconds=0, approved=True, budget=SessionBudget(tokens=100_000, usd=5))
    session = await coordinator.start("budgets", coordinator.plan(reviews(1), options), options)
    await wait_until(session, lambda: session.spend.total_tokens == HANG_TOKENS)

    status = progress_status(coordinator.snapshot(session), 1000, 1000)
    assert status.status == "RUNNING"
    assert status.spent is not None and status.spent.tokens == HANG_TOKENS and status.spent.usd == 0
    assert status.budget is not None and (status.budget.tokens, status.budget.usd) == (100_000, 5)
    assert status.forecast is not None and status.forecast.runs == 1 and status.forecast.usd > 0
    await coordinator.cancel(session.id)
    assert session.status == "CANCELLED"


async def test_the_stored_session_keeps_its_forecast_and_what_it_spent(
    coordinator: Coordinator, reviewer: None
) -> None:
    session = await run(coordinator, reviews(1))
    coordinator.recorder.flush()
    stored = coordinator.store.load_session(session.id)

    assert stored is not None and stored.forecast is not None and stored.spend is not None
    assert stored.forecast["runs"] == 1
    assert stored.spend["tokens"] == ONE_RUN_TOKENS
    status = progress_status(coordinator.snapshot(stored), 1000, 1000)
    assert status.spent is not None and status.spent.usd == pytest.approx(0.00794)


async def test_the_next_forecast_learns_from_what_runs_used_and_so_does_a_restarted_server(
    coordinator: Coordinator, reviewer: None
) -> None:
    await run(coordinator, reviews(1))
    options = CoordinateOptions(approved=True)
    learned = coordinator.forecast(coordinator.plan(reviews(2), options), options)
    assert learned.tokens == 2 * ONE_RUN_TOKENS and learned.usd == pytest.approx(2 * 0.00794)
    assert learned.from_prior == ()
    coordinator.recorder.flush()

    async with Coordinator(coordinator.settings) as restarted:
        again = restarted.forecast(restarted.plan(reviews(2), options), options)
    assert again.tokens == 2 * ONE_RUN_TOKENS and again.usd == pytest.approx(2 * 0.00794)


async def test_a_run_is_given_no_more_tokens_than_the_session_has_left(
    coordinator: Coordinator, reviewer: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_SCENARIO", "hang")
    session = await run(coordinator, reviews(1), budget={"tokens": 500})  # below the per-agent 50,000

    attempt = session.tasks["r0"].attempts[0]
    # Its own supervisor stopped it at the session's 500, not at the per-agent budget.
    assert attempt.outcome == "budget"
    assert "token budget exceeded: 901 tokens > 500" in (attempt.error or "")
    assert session.status == "PARTIAL" and session.spend.total_tokens == HANG_TOKENS
    assert session.tasks["r0"].status is TaskState.CANCELLED  # stopped by the session's budget, not failed
