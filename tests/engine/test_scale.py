"""Sixty-four agents at once: they all run together, and the coordinator answers while they do."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

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
