"""The shard loop: many agents at once in one shard process, each with its own outcome; cancels over the
link; the link closing; starts that come too late.

Each shard runs in a process of its own, linked to a hub in the test (shard_hub.py), on this machine's
mechanisms and on the POSIX fallbacks (PCOORD_PORTABLE=1 in the shard's environment).
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import on_both_paths
from tests.supervisor.shard_hub import Desk, LinkedShard, assert_gone, job, running

pytestmark = on_both_paths


def test_many_agents_run_at_once_in_one_shard_process_and_each_gets_its_own_outcome(
    shard: LinkedShard, desk: Desk, tmp_path: Path
) -> None:
    names = [f"a{i}" for i in range(8)]
    shard.send(*(("start", job(tmp_path, name, desk.argv(name, exit=i))) for i, name in enumerate(names)))
    arrived = desk.wait_for(len(names))  # each holds until released: all eight run at once
    assert {arrival.procs[0].ppid() for arrival in arrived.values()} == {shard.proc.pid}
    for name in names:
        desk.release(name, f"hello {name}")
    outcomes = shard.wait_outcomes(*names)
    assert {name: (o.reason, o.exit_code, o.stdout) for name, o in outcomes.items()} == {
        name: ("exited", i, f"hello {name}\n") for i, name in enumerate(names)
    }
    assert shard.started() == {name: arrived[name].pids[0] for name in names}


def test_a_cancel_kills_only_its_own_agents_tree(shard: LinkedShard, desk: Desk, tmp_path: Path) -> None:
    for name in ("a1", "a2"):
        shard.send(("start", job(tmp_path, name, desk.argv(name, children=1, ignore_term=True))))
    arrived = desk.wait_for(2)
    shard.send(("cancel", "a1"))
    cancelled = shard.wait_outcomes("a1")["a1"]
    assert (cancelled.reason, cancelled.error, cancelled.killed_processes) == ("cancelled", "cancelled", 2)
    assert_gone([], arrived["a1"].procs)
    assert all(running(proc) for proc in arrived["a2"].procs)
    desk.release("a2", "still here")
    finished = shard.wait_outcomes("a2")["a2"]
    assert (finished.reason, finished.exit_code, finished.stdout) == ("exited", 0, "still here\n")
    assert_gone([], arrived["a2"].procs)  # its child, which kept no pipe open, was killed at its end


def test_a_cancel_that_arrives_with_its_start_means_the_agent_never_starts(
    shard: LinkedShard, desk: Desk, tmp_path: Path
) -> None:
    shard.send(
        ("start", job(tmp_path, "a1", desk.argv("a1"))), ("cancel", "a1"), ("start", job(tmp_path, "a2", ["true"]))
    )
    outcomes = shard.wait_outcomes("a1", "a2")
    never = outcomes["a1"]
    assert (never.reason, never.error, never.pid) == ("cancelled", "cancelled before it started", None)
    assert (outcomes["a2"].reason, outcomes["a2"].exit_code) == ("exited", 0)
    assert list(shard.started()) == ["a2"]


def test_when_the_coordinator_goes_away_the_shard_says_so_then_kills_every_tree_and_reports_each_agent_lost(
    shard: LinkedShard, desk: Desk, tmp_path: Path
) -> None:
    children = {"a1": 0, "a2": 1, "a3": 3}
    for name, count in children.items():
        shard.send(("start", job(tmp_path, name, desk.argv(name, children=count, ignore_term=name == "a2"))))
    desk.wait_for(len(children))
    shard.close_link()
    assert shard.wait_end() == 0  # the shard ends once every tree is dead
    closing = shard.events.index({"shard_event": "closing"})
    assert closing < min(i for i, event in enumerate(shard.events) if event.get("event") == "outcome")
    outcomes = shard.outcomes()
    assert {name: (o.reason, o.error, o.killed_processes) for name, o in outcomes.items()} == {
        name: ("lost", "the coordinator went away; the agent was killed", count + 1)
        for name, count in children.items()
    }
    assert_gone(list(shard.started().values()), desk.procs())


def test_a_start_sent_after_the_shard_began_closing_is_refused_and_the_shard_ends_with_its_last_agent(
    shard: LinkedShard, desk: Desk, tmp_path: Path
) -> None:
    shard.send(("start", job(tmp_path, "a1", desk.argv("a1"))))
    desk.wait_for(1)
    shard.send(("exit", None), ("start", job(tmp_path, "a2", ["true"])))
    shard.wait_event("a2", "refused")  # the coordinator places it on another shard
    assert "a2" not in shard.outcomes()
    assert shard.proc.poll() is None  # a1 still runs
    desk.release("a1", "last one")
    assert (shard.wait_outcomes("a1")["a1"].reason, shard.wait_end()) == ("exited", 0)
    assert list(shard.started()) == ["a1"]
