"""Killing the worker that runs an attempt, mid-run, for the backends' worker-lost tests."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from parallel_coordinator.errors import WorkerLostError
from parallel_coordinator.execution.backend import ExecutionBackend
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.supervisor import SupervisorJob


def report_and_hold(worker_pid: str, *, with_child: bool = False) -> str:
    """An agent that reports its own pid and its worker's (`worker_pid`, a Python expression), then holds;
    `with_child`: it first starts a child that ignores SIGTERM, and reports that one's pid too."""
    return f"""
import json, os, subprocess, sys, time, psutil
worker = {worker_pid}
pids = {{"agent": os.getpid(), "worker": worker}}
if {with_child}:
    pids["child"] = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"]).pid
print(json.dumps({{"progress": 1, "message": json.dumps(pids)}}), file=sys.stderr, flush=True)
time.sleep(600)
"""


async def run_and_kill_its_worker(
    backend: ExecutionBackend, agent_code: str, tmp_path: Path, match: str
) -> tuple[WorkerLostError, list[psutil.Process]]:
    """Run an attempt on `backend`, SIGKILL its worker once the agent reports, and return the error raised
    and the agent's processes (itself, and its child if it reported one; held: a pid may be reused after)."""
    where: dict[str, int] = {}
    reported = anyio.Event()

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            where.update(json.loads(str(event["message"])))
            reported.set()

    agent: list[psutil.Process] = []

    async def kill_the_worker() -> None:
        await reported.wait()
        agent.extend(psutil.Process(where[name]) for name in ("agent", "child") if name in where)
        os.kill(where["worker"], signal.SIGKILL)

    job = SupervisorJob("lost", Invocation([sys.executable, "-c", agent_code]), str(tmp_path / "lost"))
    async with backend, anyio.create_task_group() as group:
        group.start_soon(kill_the_worker)
        with anyio.fail_after(60), pytest.raises(WorkerLostError, match=match) as lost:
            await backend.run(job, on_event)
    return lost.value, agent
