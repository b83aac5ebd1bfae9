"""The report's per-attempt detail: the agent's pid and peak memory, as the store recorded them."""

from __future__ import annotations

import re
from pathlib import Path

import anyio

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.report import write_report
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.store import Store
from tests.conftest import AgentFactory
from tests.report.test_report import Page

# Says its own pid, then holds 64 MB long enough for the supervisor (sampling every 0.1 s) to see it.
HOLD_MEMORY = """
    import os, sys, time
    ballast = bytearray(64 * 1024 * 1024)
    for i in range(0, len(ballast), 4096):
        ballast[i] = 1
    print(f"pid {os.getpid()}", flush=True)
    time.sleep(1.0)
"""


async def _run(settings: Settings) -> str:
    options = CoordinateOptions.model_validate({"wait_seconds": 0, "retry_attempts": 1})
    async with Coordinator(settings) as coordinator:
        plan = coordinator.plan([Subtask(id="hold", description="hold memory", agent_type="holder")], options)
        session = await coordinator.start("hold some memory", plan, options)
        with anyio.fail_after(60):
            await session.done.wait()
        return session.id


def test_an_attempts_tooltip_shows_the_agents_pid_and_its_peak_memory(tmp_path: Path) -> None:
    agents = AgentFactory(tmp_path / "agents")
    agents.script("holder", HOLD_MEMORY)
    settings = Settings(state_dir=tmp_path / "state", agent_dirs=[(agents.root, "env")], max_cpu_usage=100)
    session_id = anyio.run(_run, settings, backend="asyncio")
    store = Store(settings.database)
    try:
        path = write_report(store, session_id, reports_dir=tmp_path / "reports")
        stored = store.load_session(session_id)
    finally:
        store.close()
    assert stored is not None
    [task] = stored.tasks
    [attempt] = stored.attempts
    assert task.output is not None
    agent_pid = int(task.output.split()[1])
    assert attempt.pid == agent_pid
    assert attempt.peak_rss_mb is not None and attempt.peak_rss_mb >= 64

    [title] = Page(path.read_text(encoding="utf-8")).find("title", svg="timeline")
    assert f"pid: {agent_pid}" in title.text.splitlines()
    [memory] = [line for line in title.text.splitlines() if line.startswith("peak RSS: ")]
    shown = re.fullmatch(r"peak RSS: ([\d,.]+) MB", memory)
    assert shown is not None and float(shown.group(1).replace(",", "")) == round(attempt.peak_rss_mb, 1)
