"""Start and cancel at scale: how long N command agents (each with a child) take to be all running, how long
cancel_execution takes to kill them, and how long until none is left (psutil).

The agent is a shell that starts a `sleep` child, reports both pids as progress and becomes a `sleep`
itself: its own start-up costs little, so the times are ours. The server-wide cap is raised to N.
Run: .venv/bin/python benchmarks/cancel_latency.py [rounds] [agents ...]   (default: 3 rounds, 64 and 256)
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

AGENT = """sleep 600 & printf '{"progress": 1, "message": "[%s, %s]"}\\n' "$$" "$!" >&2; exec sleep 600"""


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    left = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc)
        except psutil.Error:
            continue
    return left


async def main(rounds: int, counts: list[int]) -> None:
    root = Path(tempfile.mkdtemp())
    (root / "agents").mkdir()
    (root / "agents" / "hang.md").write_text(
        f"---\nname: hang\nrunner: command\ncommand: {json.dumps(['/bin/sh', '-c', AGENT])}\n---\nhangs\n"
    )
    settings = Settings(
        state_dir=root / "state", agent_dirs=[(root / "agents", "env")], max_cpu_usage=100, pool_size=max(counts)
    )
    print(f"{psutil.cpu_count()} cores; agents {counts}, each with one child; {rounds} rounds")
    columns = ("agents", "round", "all running s", "cancel ms", "none left ms", "killed", "left")
    print(" ".join(f"{name:>{width}}" for name, width in zip(columns, (6, 5, 14, 10, 13, 7, 5), strict=True)))
    async with Coordinator(settings) as coordinator:
        for count in counts:
            for number in range(rounds):
                options = CoordinateOptions(max_agents=count, wait_seconds=0, reuse_results="off", retry_attempts=1)
                subtasks = [Subtask(id=f"t{i}", description=f"hang {i}", agent_type="hang") for i in range(count)]
                started = time.perf_counter()
                session = await coordinator.start("hang", coordinator.plan(subtasks, options), options)
                with anyio.fail_after(180):
                    while sum(r.progress is not None for r in session.tasks.values()) < count:
                        await session.changed.wait()
                all_running = time.perf_counter() - started
                procs = [psutil.Process(p) for r in session.tasks.values() for p in json.loads(r.message or "[]")]
                cancelling = time.perf_counter()
                outcome = await coordinator.cancel(session.id)
                cancel_s = time.perf_counter() - cancelling
                left = alive(procs)
                while left and time.perf_counter() - cancelling < 10:
                    await anyio.sleep(0.005)  # a benchmark polls the process table; tests never do
                    left = alive(procs)
                gone_s = time.perf_counter() - cancelling
                with anyio.fail_after(60):
                    await session.done.wait()
                print(f"{count:>6} {number:>5} {all_running:>14.2f} {cancel_s * 1000:>10.0f} {gone_s * 1000:>13.0f}"
                      f" {outcome.killed_processes:>7} {len(left):>5}")


if __name__ == "__main__":
    arguments = [int(word) for word in sys.argv[1:]]
    anyio.run(main, arguments[0] if arguments else 3, arguments[1:] or [64, 256])
