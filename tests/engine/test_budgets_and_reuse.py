"""Models chosen for agents that leave it open, token budgets enforced on claude runs, results reused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory
from tests.engine.test_claude_agents import FAKE_CLAUDE
from tests.engine.test_failures import finish

pytestmark = pytest.mark.anyio

OPEN_MODEL = """---
name: helper
description: Helps with anything
model: inherit
---
You help.
"""

COUNTER = """
    import json, sys
    request = json.load(sys.stdin)
    with open(request["description"].split()[0], "a") as runs:
        runs.write(request["task_id"] + "\\n")
    print("the same answer")
"""


@pytest.fixture
def fake_claude(agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (agents.root / "helper.md").write_text(OPEN_MODEL)
    record = tmp_path / "record.json"
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))
    return record


@pytest.mark.parametrize(("priority", "model"), [(1, "opus"), (3, "sonnet"), (5, "haiku")])
async def test_an_agent_that_leaves_the_model_open_gets_one_by_the_tasks_priority(
    coordinator: Coordinator, fake_claude: Path, priority: int, model: str
) -> None:
    session = await finish(coordinator, [Subtask(id="t", description="x", agent_type="helper", priority=priority)],
                           CoordinateOptions(wait_seconds=0))
    assert session.status == "SUCCESS"
    argv = json.loads(fake_claude.read_text())["argv"]
    assert argv[argv.index("--model") + 1] == model


async def test_a_claude_run_past_its_token_budget_is_stopped_and_not_retried(
    coordinator: Coordinator, fake_claude: Path
) -> None:
    session = await finish(coordinator, [Subtask(id="t", description="x", agent_type="helper")],
                           CoordinateOptions(wait_seconds=0, token_budget_per_agent=1000))
    record = session.tasks["t"]
    assert record.status is TaskState.FAILED
    assert re.match(r"token budget exceeded: [\d,]+ tokens > 1,000; the run was stopped", record.error or "")
    assert len(record.attempts) == 1 and record.attempts[0].outcome == "budget"


async def test_a_cost_budget_is_passed_to_claude(coordinator: Coordinator, fake_claude: Path) -> None:
    await finish(coordinator, [Subtask(id="t", description="x", agent_type="helper")],
                 CoordinateOptions(wait_seconds=0, cost_budget_per_agent_usd=0.25))
    argv = json.loads(fake_claude.read_text())["argv"]
    assert argv[argv.index("--max-budget-usd") + 1] == "0.25"


async def test_identical_tasks_run_once_and_share_the_result(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("counter", COUNTER)
    runs = tmp_path / "runs.txt"
    session = await finish(coordinator, [
        Subtask(id=f"same{i}", description=f"{runs} do the thing", agent_type="counter") for i in range(3)
    ] + [Subtask(id="other", description=f"{runs} do another thing", agent_type="counter")],
        CoordinateOptions(wait_seconds=0))
    assert session.status == "SUCCESS"
    assert sorted(runs.read_text().split()) == ["other", "same0"]
    assert all(session.tasks[f"same{i}"].output.strip() == "the same answer" for i in range(3))
    assert "task 'same1' reused the result of 'same0' (same agent, description and context)" in session.notes


async def test_reuse_can_be_switched_off(coordinator: Coordinator, agents: AgentFactory, tmp_path: Path) -> None:
    agents.script("counter", COUNTER)
    runs = tmp_path / "runs.txt"
    await finish(coordinator, [
        Subtask(id=f"same{i}", description=f"{runs} do the thing", agent_type="counter") for i in range(3)
    ], CoordinateOptions(wait_seconds=0, reuse_results="off"))
    assert sorted(runs.read_text().split()) == ["same0", "same1", "same2"]


async def test_server_wide_reuse_serves_a_later_session(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("counter", COUNTER)
    runs = tmp_path / "runs.txt"
    options = CoordinateOptions(wait_seconds=0, reuse_results="server")
    await finish(coordinator, [Subtask(id="first", description=f"{runs} x", agent_type="counter")], options)
    later = await finish(coordinator, [Subtask(id="again", description=f"{runs} x", agent_type="counter")], options)
    assert runs.read_text().split() == ["first"]
    assert later.tasks["again"].output.strip() == "the same answer"
