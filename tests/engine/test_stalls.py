"""The stall watchdog: an agent with no output and an idle process tree for its stall window is killed as
`stalled` and retried; one whose child burns CPU is working, however silent; the status says when an
agent has been quiet for a while.
"""

from __future__ import annotations

import anyio
import psutil
import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory, wait_until

pytestmark = pytest.mark.anyio

# Says nothing and does nothing: a hung agent.
SILENT = """
    import time
    time.sleep(600)
"""

# Says nothing while its child burns CPU for longer than the stall window (a test run), then answers.
BUSY_CHILD = """
    import subprocess, sys
    subprocess.run([sys.executable, "-c", "import time\\nt = time.time()\\nwhile time.time() - t < 3: pass"])
    print("tests passed")
"""


async def test_a_silent_idle_agent_is_told_quiet_then_killed_as_stalled_and_retried(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("silent", SILENT, stall_timeout=2)  # the agent file's own window
    options = CoordinateOptions(wait_seconds=0, retry_attempts=2)
    subtasks = [Subtask(id="hung", description="wait", agent_type="silent")]
    session = await coordinator.start("stalls", coordinator.plan(subtasks, options), options)
    record = session.tasks["hung"]
    await wait_until(session, lambda: (record.message or "").startswith("quiet for"))
    assert record.message is not None and "counts as stalled at 2 s" in record.message
    pids = []
    await wait_until(session, lambda: record.pid is not None)
    pids.append(psutil.Process(record.pid))
    with anyio.fail_after(60):
        await session.done.wait()
    assert record.status is TaskState.FAILED
    assert [attempt.outcome for attempt in record.attempts] == ["stalled", "stalled"]
    assert "stalled: no output and its process tree idle on CPU" in (record.attempts[0].error or "")
    _, still_alive = psutil.wait_procs(pids, timeout=20)
    assert still_alive == []


async def test_a_silent_agent_whose_child_burns_cpu_is_working_not_stalled(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("tester", BUSY_CHILD)
    options = CoordinateOptions(wait_seconds=0, retry_attempts=1, stall_timeout=1)  # the option's window
    session = await coordinator.start(
        "busy", coordinator.plan([Subtask(id="tests", description="run", agent_type="tester")], options), options
    )
    with anyio.fail_after(60):
        await session.done.wait()
    record = session.tasks["tests"]
    assert (record.status, record.output.strip()) == (TaskState.SUCCEEDED, "tests passed"), record.error
