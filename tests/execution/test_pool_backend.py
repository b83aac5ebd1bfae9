"""The local loky pool backend on its own: a worker that dies is a WorkerLostError, and its agent dies
with it; any other failure inside the pool reaches the caller as itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import anyio
import anyio.lowlevel
import psutil
import pytest

from parallel_coordinator.execution.pool import LocalPoolBackend
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.supervisor import SupervisorJob
from tests.conftest import on_both_paths
from tests.execution.lost_workers import report_and_hold, run_and_kill_its_worker

pytestmark = pytest.mark.anyio

async def test_a_killed_pool_worker_is_a_worker_lost_error_and_takes_its_agent_with_it(tmp_path: Path) -> None:
    # The supervisor runs in the pool worker: the agent's parent.
    lost, agent = await run_and_kill_its_worker(
        LocalPoolBackend(max_shards=1), report_and_hold("os.getppid()"), tmp_path,
        match="the pool worker running it died",
    )
    assert isinstance(lost.__cause__, BrokenProcessPool)
    # The agent's parent-death signal kills it with its worker.
    _, still_alive = psutil.wait_procs(agent, timeout=20)
    assert still_alive == []


@on_both_paths
async def test_a_killed_pool_worker_takes_its_agent_and_the_agents_stubborn_child(
    tmp_path: Path, mechanisms: str
) -> None:
    """The shard's lifeline keeper kills the agent's whole session when the worker dies, on every path
    (PR_SET_PDEATHSIG, where there is one, reaches the agent alone)."""
    lost, tree = await run_and_kill_its_worker(
        LocalPoolBackend(max_shards=1), report_and_hold("os.getppid()", with_child=True), tmp_path,
        match="the pool worker running it died",
    )
    assert isinstance(lost.__cause__, BrokenProcessPool)
    assert len(tree) == 2
    _, still_alive = psutil.wait_procs(tree, timeout=20)
    assert still_alive == []


async def test_a_failure_inside_the_pool_that_is_not_a_lost_worker_propagates_as_itself(tmp_path: Path) -> None:
    # stdin must be bytes: the supervisor's write of it fails in the worker, a bug of the caller's.
    job = SupervisorJob("bad", Invocation(["true"], stdin="text"), str(tmp_path / "bad"))  # type: ignore[arg-type]
    async with LocalPoolBackend(max_shards=1) as backend:
        with anyio.fail_after(60), pytest.raises(TypeError):
            await backend.run(job, lambda _event: None)


def _of_the_pool(proc: psutil.Process) -> bool:
    return any(word in " ".join(proc.cmdline()) for word in ("forkserver", "loky"))


async def test_ctrl_c_while_the_pool_grows_kills_no_worker(tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches the pool's processes too; a worker must ignore it from its first instant,
    not only once its initializer has run, or loky fails every attempt running beside it."""
    me = psutil.Process()
    stop = anyio.Event()

    async def keep_pressing_ctrl_c() -> None:
        while not stop.is_set():
            for proc in me.children(recursive=True):
                with contextlib.suppress(psutil.Error, OSError):  # gone meanwhile
                    # Not the agents (sessions of their own), nor the run's shared Dask cluster: only the pool.
                    if os.getpgid(proc.pid) == os.getpgid(0) and _of_the_pool(proc):
                        os.kill(proc.pid, signal.SIGINT)
            await anyio.lowlevel.checkpoint()

    async with LocalPoolBackend(max_shards=2) as backend, anyio.create_task_group() as group:
        group.start_soon(keep_pressing_ctrl_c)
        outcomes = []

        async def one(i: int) -> None:
            job = SupervisorJob(f"c{i}", Invocation(["/bin/sleep", "0.2"]), str(tmp_path / str(i)))
            outcomes.append(await backend.run(job, lambda _event: None))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as runs:
                for i in range(32):
                    runs.start_soon(one, i)
        stop.set()
    assert [o.reason for o in outcomes] == ["exited"] * 32
