"""A cancel through any server on the same state directory stops the session, wherever it runs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.store import Store
from tests.conftest import AgentFactory, alive, wait_until
from tests.engine.test_coordinator import HANG_WITH_CHILD


@pytest.mark.anyio
async def test_a_second_server_cancels_a_session_the_first_one_runs(
    settings: Settings, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    spec = json.dumps({"folder": str(tmp_path)})
    options = CoordinateOptions(wait_seconds=0, retry_attempts=1)
    async with Coordinator(settings) as owner, Coordinator(settings) as other:
        session = await owner.start("hang", owner.plan([
            Subtask(id="h", description=spec, agent_type="hang"),
            Subtask(id="later", description="x", agent_type="echo", dependencies=["h"]),
        ], options), options)
        await wait_until(session, lambda: session.tasks["h"].progress is not None)
        pids = json.loads((tmp_path / "h.pids").read_text())
        assert session.id not in other.sessions
        with anyio.fail_after(30):
            outcome = await other.cancel(session.id)
        assert outcome.status == "CANCELLED"
        assert outcome.cancelled_tasks == 2 and outcome.killed_processes == 2
        assert outcome.note is not None and "by the server running it" in outcome.note
        assert session.status == "CANCELLED"
        assert alive(pids) == []


@pytest.mark.anyio
async def test_cancelling_a_session_whose_server_is_gone_says_it_was_already_interrupted(
    settings: Settings, tmp_path: Path
) -> None:
    # A server that records a running session, and dies once the second server is up.
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from parallel_coordinator.state.store import Store
        store = Store(Path({str(settings.database)!r}))
        store.create_session("deadbeef00000000", "orphan", {{}}, 0.0, 4, [("t", "echo", "x", [], 3, {{}})])
        store.update_task("deadbeef00000000", "t", status="running")
        print("recorded", flush=True)
        sys.stdin.read()
    """)
    with subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # noqa: ASYNC220
                          text=True) as first:
        assert first.stdout is not None and first.stdout.readline() == "recorded\n"
        async with Coordinator(settings) as other:
            first.kill()
            first.wait(timeout=30)
            outcome = await other.cancel("deadbeef00000000")
    assert outcome.status == "FAILED"  # nothing had succeeded
    assert outcome.note is not None and "is gone" in outcome.note
    stored = Store(settings.database).load_session("deadbeef00000000")
    assert stored is not None and stored.tasks[0].status == "interrupted"
