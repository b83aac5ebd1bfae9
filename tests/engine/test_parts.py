"""The engine's small parts on their own: the recorder on a real SQLite store, the slots, and the one read model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.events import EventBus, SessionEvent
from parallel_coordinator.engine.policy import SessionPolicy
from parallel_coordinator.engine.read_model import view_of_live, view_of_stored
from parallel_coordinator.engine.recorder import StoreRecorder, session_started
from parallel_coordinator.engine.session import AttemptInfo, Session
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.planning.graph import TaskGraph, TaskNode
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.store import Store


def a_session(options: CoordinateOptions | None = None) -> Session:
    options = options or CoordinateOptions()
    graph = TaskGraph([TaskNode("a", "first", "echo"), TaskNode("b", "second", "echo", dependencies=("a",))])
    return Session(id="s1", task_description="two steps", policy=SessionPolicy.from_options(options), graph=graph)


def test_the_recorder_writes_what_the_events_say_and_the_stored_view_matches_the_live_one(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    bus = EventBus()
    bus.subscribe(StoreRecorder(store))
    session = a_session()
    bus.emit(session_started(session, CoordinateOptions()))
    record = session.tasks["a"]
    record.status, record.started_at, record.finished_at, record.output = TaskState.SUCCEEDED, 1.0, 2.0, "done"
    record.attempts.append(AttemptInfo(number=1, agent="echo", started_at=1.0, finished_at=2.0, exit_code=0,
                                       outcome="exited"))
    bus.emit(SessionEvent("attempt_ended", "s1", "a", "echo", state={"attempt": {
        "session_id": "s1", "task_id": "a", "number": 1, "agent": "echo", "started_at": 1.0, "finished_at": 2.0,
        "exit_code": 0, "outcome": "exited", "error": None}, "pid": 4242, "peak_rss_mb": 12.5}))
    bus.emit(SessionEvent("task_ended", "s1", "a", "echo", state={
        "status": "succeeded", "output": "done", "output_chars": 4, "started_at": 1.0, "finished_at": 2.0}))
    bus.emit(SessionEvent("tasks_cancelled", "s1", state={"task_ids": ["b"], "status": "cancelled", "error": "x"}))
    session.tasks["b"].status, session.tasks["b"].error = TaskState.CANCELLED, "x"
    stored = store.load_session("s1")
    store.close()
    assert stored is not None
    live, read_back = view_of_live(session), view_of_stored(stored)
    assert read_back.tasks["a"].output == live.tasks["a"].output == "done"
    assert [r.status for r in read_back.tasks.values()] == [r.status for r in live.tasks.values()]
    assert read_back.tasks["b"].error == "x"
    assert [(a.number, a.outcome) for a in read_back.tasks["a"].attempts] == [(1, "exited")]
    assert stored.attempts[0].pid == 4242 and stored.attempts[0].peak_rss_mb == 12.5
    assert not read_back.live and live.live


def test_an_event_without_state_writes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    StoreRecorder(store)(SessionEvent("task_ended", "nobody", "t", "echo", status="cancelled"))
    assert store.load_session("nobody") is None
    store.close()


def test_the_views_result_caps_come_from_the_sessions_policy() -> None:
    view = view_of_live(a_session(CoordinateOptions(result_chars=10, progress_update_interval=2.5)))
    assert (view.result_chars, view.total_result_chars) == (10, None)


def agent(name: str, max_concurrent: int | None = None) -> AgentSpec:
    return AgentSpec.model_validate({"name": name, "description": "d", "prompt": "p", "max_concurrent": max_concurrent})


def test_an_agents_slots_stop_at_its_max_concurrent_and_come_back_when_given_back() -> None:
    woken: list[int] = []
    slots = Slots(runner_limit=64, on_freed=lambda: woken.append(1))
    one = agent("one", max_concurrent=1)
    assert slots.admit(one)
    slots.take("one")
    assert not slots.admit(one) and slots.active == 1
    slots.give_back("one")
    assert slots.admit(one) and woken == [1]
    assert slots.throttle(one.runner).running == 2  # what was admitted counts until it ends


@pytest.mark.anyio
async def test_moving_to_a_full_fallback_waits_for_its_slot_and_a_stop_keeps_the_slot_held() -> None:
    slots = Slots(runner_limit=64, on_freed=lambda: None)
    fallback = agent("fallback", max_concurrent=1)
    slots.take("first")
    slots.take("fallback")  # the fallback's only slot is busy
    stopping = False
    async with anyio.create_task_group() as group:
        moved: list[str] = []

        async def move() -> None:
            moved.append(await slots.move("first", fallback, lambda: stopping))

        group.start_soon(move)
        await anyio.wait_all_tasks_blocked()
        assert moved == [] and slots.running["first"] == 0
        slots.give_back("fallback")
    assert moved == ["fallback"] and slots.running["fallback"] == 1
    slots.take("first")
    stopping = True
    assert await slots.move("first", fallback, lambda: stopping) == "first"  # full and stopping: keeps its own
    assert slots.running["first"] == 1


@pytest.mark.anyio
async def test_a_session_the_store_cannot_record_does_not_start(coordinator: Coordinator) -> None:
    options = CoordinateOptions(wait_seconds=0)
    planned = coordinator.plan([Subtask(id="a", description="x", agent_type="echo")], options)
    with coordinator.store._db:  # the one connection: break the table the session's tasks go in
        coordinator.store._db.execute("ALTER TABLE tasks RENAME TO tasks_gone")
    with pytest.raises(sqlite3.OperationalError):
        await coordinator.start("unrecordable", planned, options)
    assert coordinator.active_sessions == []


@pytest.mark.anyio
async def test_while_running_the_recorder_commits_a_turns_writes_together_and_a_sessions_end_at_once(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db")
    recorder = StoreRecorder(store)
    session = a_session()
    recorder(session_started(session, CoordinateOptions()))  # written at once, running or not

    def status(task_id: str) -> str | None:
        stored = store.load_session("s1")
        return {t.task_id: t.status for t in stored.tasks}[task_id] if stored else None

    async with anyio.create_task_group() as group:
        group.start_soon(recorder.run)
        await anyio.wait_all_tasks_blocked()
        recorder(SessionEvent("task_started", "s1", "a", "echo", state={"status": "running", "started_at": 1.0}))
        recorder(SessionEvent("task_started", "s1", "b", "echo", state={"status": "running", "started_at": 1.0}))
        assert (status("a"), status("b")) == ("pending", "pending")  # queued for the loop's next turn
        await anyio.wait_all_tasks_blocked()
        assert (status("a"), status("b")) == ("running", "running")  # both, in one transaction
        recorder(SessionEvent("task_ended", "s1", "a", "echo", state={"status": "succeeded"}))
        recorder(SessionEvent("session_ended", "s1", state={
            "status": "PARTIAL", "finished_at": 2.0, "error_summary": None}))
        assert status("a") == "succeeded"  # flushed by the session's end, before its own write
        assert store.load_session("s1").status == "PARTIAL"  # type: ignore[union-attr]
        group.cancel_scope.cancel()
    store.close()


def test_every_agent_held_by_its_max_concurrent_is_named_in_the_wait_reason() -> None:
    slots = Slots(runner_limit=64, on_freed=lambda: None)
    one, two, free = agent("one", 1), agent("two", 2), agent("free")
    for spec in (one, two, two, free):
        slots.take(spec.name)
    assert slots.busy_reason([free]) is None
    assert slots.busy_reason([one, free]) == "agent 'one' runs 1 at once, its max_concurrent"
    assert slots.busy_reason([two, one, free]) == (
        "agents 'one' (1), 'two' (2) run as many at once as their max_concurrent allows"
    )
