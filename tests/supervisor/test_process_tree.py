"""Family and ProcessTree in a process that runs several agents, each in its own session, as a shard does.

Each scene runs in a process of its own (tree_scenes.py): it becomes a child subreaper and reaps orphans,
which must not happen to the test process. On the POSIX fallbacks (PCOORD_PORTABLE=1) there is no
subreaper: orphans reparent elsewhere and are found by their session instead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from parallel_coordinator.supervisor.platform import MECHANISMS
from tests.conftest import on_both_paths
from tests.supervisor.shard_hub import assert_gone

pytestmark = on_both_paths
ROOT = Path(__file__).resolve().parents[2]


def has_subreaper(mechanisms: str) -> bool:
    """Whether the scene's process can be a subreaper: Linux's own mechanisms only."""
    return mechanisms == "native" and MECHANISMS.prctl


def scene(name: str) -> dict[str, Any]:
    """What the scene saw, once it ended and nothing it knew of runs any more."""
    done = subprocess.run([sys.executable, "-m", "tests.supervisor.tree_scenes", name], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    seen: dict[str, Any] = json.loads(done.stdout)
    assert_gone([], [proc for pid, created in seen.pop("known") if (proc := _same(pid, created))])
    return seen


def _same(pid: int, created: float) -> psutil.Process | None:
    """The process `pid` if it is still the one created at `created`."""
    try:
        proc = psutil.Process(pid)
        return proc if proc.create_time() == created else None
    except psutil.NoSuchProcess:
        return None


def test_each_agents_tree_holds_only_its_own_members_including_an_orphan_it_left(mechanisms: str) -> None:
    seen = scene("trees_hold_their_own")
    # With a subreaper the orphan is the shard's child; without one, its session still names it.
    assert (seen["subreaper"], seen["orphan_is_the_shards"]) == ((has_subreaper(mechanisms),) * 2)
    del seen["subreaper"], seen["orphan_is_the_shards"]
    assert seen == {
        "killed_a": 2, "a_running_after_its_kill": [], "b_running_then": True,
        "killed_b": 2, "b_running_after_its_kill": [],
    }


def test_a_member_that_left_the_agents_session_after_being_seen_stays_a_member(mechanisms: str) -> None:
    seen = scene("a_member_that_left_its_session_stays_one")
    assert seen == {"in_a_session_of_its_own": True, "killed": 2, "running_after_the_kill": []}


def test_with_no_agent_running_kill_orphans_kills_a_leftover_that_no_tree_names(mechanisms: str) -> None:
    if not has_subreaper(mechanisms):
        pytest.skip("without a subreaper a child that left its session before its agent exited is out of reach")
    seen = scene("a_stray_is_killed_once_no_agent_runs")
    stray = seen.pop("running_before")
    assert len(stray) == 1
    assert seen == {"exit_code": 0, "stray_is_the_shards": True, "killed_by_its_tree": 0, "running_after": []}


def test_an_orphan_born_since_the_trees_last_look_dies_with_the_tree_after_its_leader_exited(
    mechanisms: str,
) -> None:
    """Out of the leader's process group, so only the tree's own search can find it (the session map it
    looked at before the orphan was born is stale)."""
    seen = scene("an_orphan_born_since_the_last_look_dies_with_its_tree")
    assert seen == {"killed": 1, "running_after_the_kill": []}


def test_reaping_orphans_never_takes_a_leaders_exit_status(mechanisms: str) -> None:
    seen = scene("reaping_orphans_leaves_the_leaders")
    # The leader's Popen still gets its code 7 (a stolen status would read as 0); the dead orphan was reaped.
    assert seen == {"exit_code": 7, "orphans": int(has_subreaper(mechanisms)), "left_unreaped": []}
