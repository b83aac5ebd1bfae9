"""The local loky pool backend on its own: a worker that dies is a WorkerLostError, and its agent dies
with it; any other failure inside the pool reaches the caller as itself.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from parallel_coordinator.errors import WorkerLostError
from parallel_coordinator.execution.pool import LocalPoolBackend
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.supervisor import SupervisorJob

pytestmark = pytest.mark.anyio

# Reports its own pid and its supervisor's (the pool worker's: the supervisor runs in it), then holds.
REPORT_AND_HOLD = """
import json, os, sys, time
print(json.dumps({"progress": 1, "message": json.dumps({"agent": os.getpid(), "worker": os.getppid()})}),
      file=sys.stderr, flush=True)
time.sleep(600)
"""


async def test_a_killed_pool_worker_is_a_worker_lost_error_and_takes_its_agent_with_it(tmp_path: Path) -> None:
    where: dict[str, int] = {}
    reported = anyio.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            where.update(json.loads(event["message"]))
            reported.set()

    agent: list[psutil.Process] = []

    async def kill_the_worker() -> None:
        await reported.wait()
        agent.append(psutil.Process(where["agent"]))  # held: the pid may be reaped and reused after
        os.kill(where["worker"], signal.SIGKILL)

    job = SupervisorJob("lost", Invocation([sys.executable, "-c", REPORT_AND_HOLD]), str(tmp_path / "lost"), "")
    async with LocalPoolBackend(max_workers=1, slice_size=1) as backend, anyio.create_task_group() as group:
        group.start_soon(kill_the_worker)
        with anyio.fail_after(60), pytest.raises(WorkerLostError, match="the pool worker running it died") as lost:
            await backend.run(job, on_event)
    assert isinstance(lost.value.__cause__, BrokenProcessPool)
    # The agent's parent-death signal kills it with its worker.
    _, still_alive = psutil.wait_procs(agent, timeout=20)
    assert still_alive == []


async def test_a_failure_inside_the_pool_that_is_not_a_lost_worker_propagates_as_itself(tmp_path: Path) -> None:
    # stdin must be bytes: the supervisor's write of it fails in the worker, a bug of the caller's.
    job = SupervisorJob("bad", Invocation(["true"], stdin="text"), str(tmp_path / "bad"), "")  # type: ignore[arg-type]
    async with LocalPoolBackend(max_workers=1, slice_size=1) as backend:
        with anyio.fail_after(60), pytest.raises(TypeError):
            await backend.run(job, lambda _event: None)
