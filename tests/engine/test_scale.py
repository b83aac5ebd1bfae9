"""Many agents at once: sixty-four run together while the coordinator answers, and 256 command agents
run together and leave nothing behind when cancelled."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import anyio
import psutil
import pytest
from mcp import Client

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory, wait_until
from tests.engine.test_coordinator import BARRIER

pytestmark = pytest.mark.anyio


async def test_sixty_four_agents_overlap_and_status_answers_meanwhile(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("barrier", BARRIER)
    folder = tmp_path / "barrier"
    folder.mkdir()
    # One more than the barrier needs is held back by max_agents: it proves the cap, then runs.
    spec = json.dumps({"folder": str(folder), "expect": 64})
    subtasks = [Subtask(id=f"t{i:02d}", description=f"{spec}\n{i}", agent_type="barrier") for i in range(65)]
    options = CoordinateOptions(max_agents=64, wait_seconds=0)
    session = await coordinator.start("wide", coordinator.plan(subtasks, options), options)

    async with Client(create_server(coordinator=coordinator)) as client:
        await wait_until(session, lambda: len(session.running()) == 64, limit_s=120)
        answer = await client.call_tool("get_progress_status", {"session_id": session.id})
        assert answer.structured_content is not None
        assert answer.structured_content["in_progress"] == 64
        assert answer.structured_content["pending"] == 1

    with anyio.fail_after(120):
        await session.done.wait()
    assert session.status == "SUCCESS", session.error_summary
    assert session.peak_parallelism == 64
    starts = [float(p.read_text()) for p in folder.glob("*.start")]
    ends = [float(p.read_text()) for p in folder.glob("*.end")]
    assert len(starts) == 65
    assert sorted(starts)[63] < min(ends)  # the first 64 all started before any finished


# Reports its pid as progress, then holds: a shell, so 256 of them cost little on a small machine.
HOLD_SH = """printf '{"progress": 1, "message": "%s"}\\n' "$$" >&2; exec sleep 600"""


async def test_two_hundred_fifty_six_command_agents_run_at_once_and_a_cancel_leaves_none(
    settings: Settings, agents: AgentFactory
) -> None:
    (agents.root / "hold.md").write_text(
        f"---\nname: hold\ndescription: holds\nrunner: command\ncommand: {json.dumps(['/bin/sh', '-c', HOLD_SH])}\n"
        "---\nHolds.\n"
    )
    settings = dataclasses.replace(settings, pool_size=256)
    subtasks = [Subtask(id=f"t{i:03d}", description=f"hold {i}", agent_type="hold") for i in range(256)]
    options = CoordinateOptions(max_agents=256, wait_seconds=0, retry_attempts=1)
    async with Coordinator(settings) as coordinator:
        session = await coordinator.start("wide", coordinator.plan(subtasks, options), options)
        await wait_until(session, lambda: all(r.progress is not None for r in session.tasks.values()), limit_s=120)
        assert len(session.running()) == 256
        held = [psutil.Process(int(str(r.message))) for r in session.tasks.values()]
        await coordinator.cancel(session.id)
        with anyio.fail_after(60):
            await session.done.wait()
        assert session.status == "CANCELLED"
        _, still_alive = psutil.wait_procs(held, timeout=20)
        assert still_alive == []
