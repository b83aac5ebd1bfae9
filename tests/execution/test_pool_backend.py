"""The local loky pool backend on its own: a worker that dies is a WorkerLostError, and its agent dies
with it; any other failure inside the pool reaches the caller as itself.
"""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import anyio
import psutil
import pytest

from parallel_coordinator.execution.pool import LocalPoolBackend
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.supervisor import SupervisorJob
from tests.execution.lost_workers import report_and_hold, run_and_kill_its_worker

pytestmark = pytest.mark.anyio

async def test_a_killed_pool_worker_is_a_worker_lost_error_and_takes_its_agent_with_it(tmp_path: Path) -> None:
    # The supervisor runs in the pool worker: the agent's parent.
    lost, agent = await run_and_kill_its_worker(
        LocalPoolBackend(max_workers=1, slice_size=1), report_and_hold("os.getppid()"), tmp_path,
        match="the pool worker running it died",
    )
    assert isinstance(lost.__cause__, BrokenProcessPool)
    # The agent's parent-death signal kills it with its worker.
    _, still_alive = psutil.wait_procs(agent, timeout=20)
    assert still_alive == []


async def test_a_failure_inside_the_pool_that_is_not_a_lost_worker_propagates_as_itself(tmp_path: Path) -> None:
    # stdin must be bytes: the supervisor's write of it fails in the worker, a bug of the caller's.
    job = SupervisorJob("bad", Invocation(["true"], stdin="text"), str(tmp_path / "bad"), "")  # type: ignore[arg-type]
    async with LocalPoolBackend(max_workers=1, slice_size=1) as backend:
        with anyio.fail_after(60), pytest.raises(TypeError):
            await backend.run(job, lambda _event: None)
