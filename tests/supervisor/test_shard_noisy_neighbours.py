"""A misbehaving agent does not hold up its shard-mates: one flooding stdout, one forking 200 children, one
ignoring SIGTERM, each beside quiet agents in the same shard process (issue 13).

The order is proved by events, not time: a misbehaving agent holds until the test releases or cancels it,
which happens only after every quiet agent's outcome arrived. How much a flood delays the quiet agents is
measured in benchmarks/flood.py, not here.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import on_both_paths
from tests.supervisor.shard_hub import Desk, LinkedShard, assert_gone, job, running

pytestmark = on_both_paths

OUTPUT_CAP = 64 * 1024
DISK_CAP = 256 * 1024
FLOOD_BEFORE_QUIET = 4 * 1024 * 1024  # what the flooder writes before the quiet agents start: past both caps
CAPS = {"output_cap_bytes": OUTPUT_CAP, "disk_cap_bytes": DISK_CAP}


def start_quiet(shard: LinkedShard, tmp_path: Path, count: int) -> list[str]:
    names = [f"quiet{i}" for i in range(count)]
    shard.send(*(
        ("start", job(tmp_path, name, ["sh", "-c", f"echo {name}; exit {i}"], **CAPS)) for i, name in enumerate(names)
    ))
    return names


def assert_quiet_outcomes(shard: LinkedShard, names: list[str]) -> None:
    outcomes = shard.wait_outcomes(*names)
    assert {name: (o.reason, o.exit_code, o.stdout, o.stdout_truncated) for name, o in outcomes.items()} == {
        name: ("exited", i, f"{name}\n", False) for i, name in enumerate(names)
    }


def test_quiet_agents_finish_while_a_shard_mate_floods_stdout_and_the_flood_is_held_to_the_caps(
    shard: LinkedShard, desk: Desk, tmp_path: Path
) -> None:
    shard.send(("start", job(tmp_path, "flood", desk.argv("flood", flood=FLOOD_BEFORE_QUIET), **CAPS)))
    flooder = desk.wait_for(1)["flood"]  # it has written 4 MiB and floods on until released
    quiet = start_quiet(shard, tmp_path, 6)
    assert_quiet_outcomes(shard, quiet)
    assert "flood" not in shard.outcomes() and running(flooder.procs[0])
    desk.release("flood", "enough")
    flooded = shard.wait_outcomes("flood")["flood"]
    assert (flooded.reason, flooded.exit_code, flooded.stdout_truncated, flooded.stdout_cut_on_disk) == (
        "exited", 0, True, True
    )
    assert flooded.stdout_bytes > FLOOD_BEFORE_QUIET
    assert flooded.stdout == "x" * (OUTPUT_CAP - 1) + "\n"  # its first line, which is the first 64 KiB
    assert (tmp_path / "artefacts" / "flood" / "stdout").stat().st_size == DISK_CAP


def test_quiet_agents_finish_beside_a_fork_bomb_and_a_sigterm_ignorer_whose_whole_trees_a_cancel_kills(
    shard: LinkedShard, desk: Desk, tmp_path: Path
) -> None:
    shard.send(
        ("start", job(tmp_path, "forker", desk.argv("forker", children=200))),
        ("start", job(tmp_path, "stubborn", desk.argv("stubborn", children=1, ignore_term=True))),
    )
    arrived = desk.wait_for(2)
    quiet = start_quiet(shard, tmp_path, 6)
    assert_quiet_outcomes(shard, quiet)
    misbehaving = [proc for arrival in arrived.values() for proc in arrival.procs]
    assert len(misbehaving) == 203 and all(running(proc) for proc in misbehaving)
    shard.send(("cancel", "forker"), ("cancel", "stubborn"))
    outcomes = shard.wait_outcomes("forker", "stubborn")
    assert {name: (o.reason, o.killed_processes) for name, o in outcomes.items()} == {
        "forker": ("cancelled", 201), "stubborn": ("cancelled", 2)
    }
    assert_gone([arrived["forker"].pids[0], arrived["stubborn"].pids[0]], misbehaving)
