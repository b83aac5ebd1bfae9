"""What only the Dask backend has to prove: attempts run on the cluster's workers, a dying worker
takes only its own attempts, a cluster of separate `dask scheduler` / `dask worker` processes
works, and the local pool never imports `distributed`.

The shared scenarios (diamond, cancel, timeout, memory guard, retries...) run on both backends in
test_coordinator.py and test_failures.py (`on_both_backends`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import psutil
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import Subtask
from tests.conftest import AgentFactory, alive, wait_until
from tests.engine.test_coordinator import options
from tests.execution.lost_workers import report_and_hold, run_and_kill_its_worker

pytestmark = [pytest.mark.anyio]
distributed = pytest.importorskip("distributed")

# Reports where it runs: its own pid, its supervisor's, and the Dask worker's above that.
WHERE = """
    import json, os, psutil, sys
    request = json.load(sys.stdin)
    supervisor = psutil.Process().parent()
    print(json.dumps({"agent": os.getpid(), "supervisor": supervisor.pid, "worker": supervisor.ppid()}))
"""

# First attempt of each task: report pids, then wait for a release file. Later attempts succeed at once.
HOLD_ONCE = """
    import json, os, pathlib, psutil, sys, time
    request = json.load(sys.stdin)
    folder = pathlib.Path(request["description"])
    mine = folder / request["task_id"]
    if mine.exists():
        print("second attempt")
        sys.exit(0)
    supervisor = psutil.Process().parent()
    mine.write_text(json.dumps({"agent": os.getpid(), "worker": supervisor.ppid()}))
    print(json.dumps({"progress": 10, "message": "holding"}), file=sys.stderr, flush=True)
    while not (folder / "release").exists():
        time.sleep(0.05)
    print("first attempt")
"""


def on_dask(settings: Settings, scheduler: str) -> Settings:
    """The test's settings, with the Dask backend on the cluster at `scheduler`."""
    return dataclasses.replace(settings, backend="dask", dask_scheduler=scheduler)


@pytest.fixture
def hold(tmp_path: Path, agents: AgentFactory) -> Path:
    """The "hold" agent, and the folder its tasks take as their description."""
    agents.script("hold", HOLD_ONCE)
    folder = tmp_path / "hold"
    folder.mkdir()
    return folder


async def worker_pids(coordinator: Coordinator) -> set[int]:
    client = coordinator.backend.client  # type: ignore[attr-defined]
    return set((await client.run(os.getpid)).values())


async def test_attempts_run_on_the_clusters_workers(
    settings: Settings, agents: AgentFactory, dask_cluster: str
) -> None:
    agents.script("where", WHERE)
    async with Coordinator(on_dask(settings, dask_cluster)) as coordinator:
        workers = await worker_pids(coordinator)
        session = await coordinator.start("where", coordinator.plan(
            [Subtask(id=f"w{i}", description="x", agent_type="where") for i in range(4)], options()), options())
        with anyio.fail_after(60):
            await session.done.wait()
    assert session.status == "SUCCESS", session.error_summary
    for record in session.tasks.values():
        where = json.loads(record.output)
        assert where["worker"] in workers
        assert where["supervisor"] not in workers  # each attempt has a supervisor process of its own


async def test_a_dying_worker_takes_only_its_own_attempts_which_are_retried(
    settings: Settings, hold: Path, dask_cluster: str
) -> None:
    folder = hold
    subtasks = [
        Subtask.model_validate({"id": f"h{i}", "description": str(folder), "agent_type": "hold",
                                "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}})
        for i in range(4)
    ]
    async with Coordinator(on_dask(settings, dask_cluster)) as coordinator:
        session = await coordinator.start(
            "hold", coordinator.plan(subtasks, options()), options(reuse_results="off")
        )
        await wait_until(session, lambda: all(r.progress is not None for r in session.tasks.values()))
        first = {task: json.loads((folder / task).read_text()) for task in session.tasks}
        victim = first["h0"]["worker"]
        on_victim = {task for task, where in first.items() if where["worker"] == victim}

        doomed = [psutil.Process(first[task]["agent"]) for task in on_victim]
        os.kill(victim, signal.SIGKILL)
        # The agents on the dead worker die with it (its supervisors get SIGTERM and kill their trees).
        _, still_alive = psutil.wait_procs(doomed, timeout=20)
        assert still_alive == []
        await wait_until(session, lambda: all(
            len(session.tasks[task].attempts) == 2 and session.tasks[task].status is TaskState.SUCCEEDED
            for task in on_victim
        ))
        (folder / "release").touch()
        with anyio.fail_after(60):
            await session.done.wait()

    assert session.status == "SUCCESS", session.error_summary
    for task, record in session.tasks.items():
        if task in on_victim:
            assert record.output.strip() == "second attempt"
            assert "died" in (record.attempts[0].error or ""), record.attempts[0].error
        else:  # a worker that did not die: its attempts ran once, undisturbed
            assert len(record.attempts) == 1
            assert record.output.strip() == "first attempt"


async def test_a_killed_dask_worker_is_a_worker_lost_error_and_takes_its_agent_with_it(
    tmp_path: Path, dask_cluster: str
) -> None:
    from distributed.scheduler import KilledWorker

    from parallel_coordinator.execution.dask import DaskBackend

    # The supervisor is a process of its own, a child of the Dask worker.
    lost, agent = await run_and_kill_its_worker(
        DaskBackend(dask_cluster), report_and_hold("psutil.Process().parent().ppid()"), tmp_path,
        match="the Dask worker running it died",
    )
    assert isinstance(lost.__cause__, KilledWorker)
    _, still_alive = psutil.wait_procs(agent, timeout=20)
    assert still_alive == []


@pytest.fixture
def separate_cluster(tmp_path: Path) -> Iterator[str]:
    """A scheduler and a worker started as their own processes, as on separate machines, on loopback."""
    bin_dir = Path(sys.executable).parent
    scheduler_file = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = subprocess.Popen(
        [bin_dir / "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", scheduler_file], **quiet,  # type: ignore[call-overload]
    )
    worker = subprocess.Popen(
        [bin_dir / "dask", "worker", "--scheduler-file", scheduler_file, "--nthreads", "4", "--no-dashboard",
         "--host", "127.0.0.1"], **quiet,  # type: ignore[call-overload]
    )
    try:
        # The scheduler writes its address once it listens; the Client then waits for the worker.
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(1, timeout=60)
            yield str(client.scheduler.address)
    finally:
        processes = [psutil.Process(p.pid) for p in (worker, scheduler)]
        family = processes + [child for p in processes for child in p.children(recursive=True)]
        for proc in (worker, scheduler):
            proc.terminate()
        _, left = psutil.wait_procs(family, timeout=20)
        for proc in left:
            proc.kill()
        worker.wait()
        scheduler.wait()
        assert left == []


async def test_a_scheduler_and_worker_in_processes_of_their_own_run_a_graph_and_a_cancel(
    settings: Settings, hold: Path, separate_cluster: str
) -> None:
    folder = hold
    async with Coordinator(on_dask(settings, separate_cluster)) as coordinator:
        session = await coordinator.start("diamond", coordinator.plan([
            Subtask(id="a", description="root", agent_type="echo"),
            Subtask(id="b", description="left", agent_type="echo", dependencies=["a"]),
            Subtask(id="c", description="right", agent_type="echo", dependencies=["a"]),
            Subtask(id="d", description="join", agent_type="echo", dependencies=["b", "c"]),
        ], options()), options())
        with anyio.fail_after(60):
            await session.done.wait()
        assert session.status == "SUCCESS", session.error_summary
        assert session.tasks["d"].output.strip() == "d done b<b done a<a done>> c<c done a<a done>>"

        held = await coordinator.start("held", coordinator.plan(
            [Subtask(id="h", description=str(folder), agent_type="hold")], options()), options())
        await wait_until(held, lambda: held.tasks["h"].progress is not None)
        agent = json.loads((folder / "h").read_text())["agent"]
        outcome = await coordinator.cancel(held.id)
        assert outcome.status == "CANCELLED"
        assert alive([agent]) == []


async def test_an_unreachable_scheduler_is_named_in_a_clear_error(settings: Settings) -> None:
    with socket_bound_but_not_listening() as address:
        from parallel_coordinator.execution.dask import DaskBackend

        backend = DaskBackend(address, connect_timeout_s=1)
        with pytest.raises(CoordinatorError, match=r"cannot reach the Dask scheduler at 'tcp://127\.0\.0\.1:"):
            async with Coordinator(on_dask(settings, address), backend=backend):
                pass


@contextlib.contextmanager
def socket_bound_but_not_listening() -> Iterator[str]:
    """A loopback port that refuses connections, held so nothing else takes it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def test_the_local_pool_never_imports_distributed(tmp_path: Path, agents: AgentFactory) -> None:
    script = f"""
import sys, anyio
from pathlib import Path
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

async def main():
    settings = Settings(state_dir=Path({str(tmp_path / 'state')!r}), agent_dirs=[(Path({str(agents.root)!r}), "env")],
                        max_cpu_usage=100)
    async with Coordinator(settings) as coordinator:
        options = CoordinateOptions(wait_seconds=0)
        session = await coordinator.start("x", coordinator.plan([Subtask(id="a", description="x", agent_type="echo")],
                                          options), options)
        await session.done.wait()
        assert session.status == "SUCCESS"
    print("distributed" in sys.modules, "dask" in sys.modules)

if __name__ == "__main__":
    anyio.run(main)
"""
    (tmp_path / "local_only.py").write_text(script)
    result = subprocess.run([sys.executable, tmp_path / "local_only.py"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]
