"""The live view's snapshot of a real session: what runs and why the rest waits, the attempts, the graph, the spend."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.store import StoredSession, StoredTask
from parallel_coordinator.views import MAX_LIVE_TASKS, live_snapshot
from parallel_coordinator.views._live import MAX_LIVE_EDGES
from tests.conftest import AgentFactory, wait_until

pytestmark = pytest.mark.anyio

# Says how far it got, then waits for its gate file: the test decides when it ends.
TALKER = """
    import json, os, sys, time
    request = json.load(sys.stdin)
    gate = json.loads(request["description"])["gate"]
    print(json.dumps({"progress": 40, "message": "reading the files"}), file=sys.stderr, flush=True)
    while not os.path.exists(gate):
        time.sleep(0.02)
    print(request["task_id"], "done")
"""


def by_id(snapshot: dict[str, object], task_id: str) -> dict[str, object]:
    tasks = snapshot["tasks"]
    assert isinstance(tasks, list)
    [task] = [t for t in tasks if t["task_id"] == task_id]
    return task  # type: ignore[no-any-return]


async def test_the_snapshot_shows_the_running_task_its_message_and_why_its_dependent_waits(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("talker", TALKER)
    gate = tmp_path / "gate"
    options = CoordinateOptions.model_validate({"wait_seconds": 0, "budget": {"usd": 5}})
    session = await coordinator.start("follow me", coordinator.plan([
        Subtask(id="a", description=json.dumps({"gate": str(gate)}), agent_type="talker"),
        Subtask(id="b", description="after a", agent_type="echo", dependencies=["a"]),
    ], options), options)
    await wait_until(session, lambda: session.tasks["a"].message is not None)

    running = live_snapshot(coordinator.snapshot(session))
    assert running["status"] == "RUNNING" and running["task_description"] == "follow me"
    assert by_id(running, "a")["status"] == "running"
    assert by_id(running, "a")["message"] == "reading the files"
    assert by_id(running, "b")["waiting"] == "waits for a to finish"
    assert by_id(running, "b")["dependencies"] == ["a"]
    [bar] = running["timeline"]["bars"]  # type: ignore[index]
    assert (bar["task_id"], bar["attempt"], bar["outcome"], bar["lane"]) == ("a", 1, "running", 0)
    nodes = {n["task_id"]: n for n in running["graph"]["nodes"]}  # type: ignore[index]
    assert (nodes["a"]["layer"], nodes["b"]["layer"]) == (0, 1)
    assert nodes["b"]["x"] > nodes["a"]["x"]
    assert [(e["from"], e["to"]) for e in running["graph"]["edges"]] == [("a", "b")]  # type: ignore[index]
    [usd] = [row for row in running["spend"] if row["measure"] == "usd"]  # type: ignore[union-attr]
    assert usd["budget"] == 5 and usd["spent"] == 0

    gate.touch()
    with anyio.fail_after(60):
        await session.done.wait()
    ended = live_snapshot(coordinator.snapshot(session))
    assert ended["status"] == "SUCCESS"
    assert [by_id(ended, t)["status"] for t in ("a", "b")] == ["succeeded", "succeeded"]
    assert by_id(ended, "b")["waiting"] is None
    assert [b["outcome"] for b in ended["timeline"]["bars"]] == ["succeeded", "succeeded"]  # type: ignore[index]
    assert ended["counts"]["succeeded"] == 2  # type: ignore[index]


async def test_a_ready_task_waits_for_the_sessions_agent_slots_and_says_so(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("talker", TALKER)
    gate = tmp_path / "gate"
    options = CoordinateOptions.model_validate({"wait_seconds": 0, "max_agents": 1})
    spec = json.dumps({"gate": str(gate)})
    session = await coordinator.start("one at a time", coordinator.plan([
        Subtask(id="first", description=spec, agent_type="talker", priority=1),
        Subtask(id="second", description=spec, agent_type="talker", priority=2),
    ], options), options)
    await wait_until(session, lambda: session.tasks["first"].status is TaskState.RUNNING)
    snapshot = live_snapshot(coordinator.snapshot(session))
    assert by_id(snapshot, "second")["waiting"] == "all 1 of the session's agent slots are busy (max_agents)"
    await coordinator.cancel(session.id)
    cancelled = live_snapshot(coordinator.get(session.id))
    assert cancelled["status"] == "CANCELLED" and by_id(cancelled, "second")["waiting"] is None


def stored_session(count: int, failed: set[int]) -> StoredSession:
    tasks = [
        StoredTask(task_id=f"t{i}", agent="echo", description="x", dependencies=[f"t{i - 1}"] if i else [],
                   priority=3, status="failed" if i in failed else "succeeded", spec={}, output=None,
                   error="boom" if i in failed else None, attempts=1, started_at=None, finished_at=None,
                   input_tokens=None, output_tokens=None, cost_usd=None)
        for i in range(count)
    ]
    return StoredSession(id="s", task_description="big", status="PARTIAL", options={}, created_at=1.0,
                         finished_at=2.0, error_summary=None, max_agents=4, resumed_from=None, tasks=tasks,
                         attempts=[])


def test_a_large_session_shows_a_bounded_number_of_tasks_those_that_need_attention_first() -> None:
    count = MAX_LIVE_TASKS + 50
    failed = {count - 1, count - 2}  # at the very end of the plan: kept although plan order would cut them
    snapshot = live_snapshot(view_of_stored(stored_session(count, failed)))
    shown = [t["task_id"] for t in snapshot["tasks"]]  # type: ignore[attr-defined]
    assert len(shown) == MAX_LIVE_TASKS and snapshot["tasks_omitted"] == 50
    assert {f"t{i}" for i in failed} <= set(shown)
    assert len(snapshot["graph"]["nodes"]) == MAX_LIVE_TASKS  # type: ignore[index]
    # No edge leads to a task that is not drawn.
    drawn = {n["task_id"] for n in snapshot["graph"]["nodes"]}  # type: ignore[index]
    assert all(e["from"] in drawn and e["to"] in drawn for e in snapshot["graph"]["edges"])  # type: ignore[index]
    assert len(json.dumps(snapshot)) < 400_000


def test_a_densely_linked_plan_draws_a_bounded_number_of_edges_and_says_how_many_it_left_out() -> None:
    # Each task depends on every one before it: the plan allows it (10,000 dependencies a task), and 300 tasks
    # then have 44,850 edges, which the snapshot (sent to each open page several times a second) must not carry.
    count = 300
    tasks = [
        StoredTask(task_id=f"t{i}", agent="echo", description="x", dependencies=[f"t{j}" for j in range(i)],
                   priority=3, status="pending", spec={}, output=None, error=None, attempts=0, started_at=None,
                   finished_at=None, input_tokens=None, output_tokens=None, cost_usd=None)
        for i in range(count)
    ]
    session = StoredSession(id="s", task_description="dense", status="RUNNING", options={}, created_at=1.0,
                            finished_at=None, error_summary=None, max_agents=4, resumed_from=None, tasks=tasks,
                            attempts=[])
    snapshot = live_snapshot(view_of_stored(session))
    graph = snapshot["graph"]
    assert len(graph["edges"]) == MAX_LIVE_EDGES  # type: ignore[index]
    assert graph["edges_omitted"] == count * (count - 1) // 2 - MAX_LIVE_EDGES  # type: ignore[index]
    assert len(json.dumps(snapshot)) < 400_000
