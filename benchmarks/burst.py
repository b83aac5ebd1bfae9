"""Burst: N trivial command agents at 64 slots, Parallel Coordinator beside `xargs -P 64`, GNU
parallel and raw loky with a supervisor per task (the floor of our own design).

Each alternative runs the same executable (`/bin/true`) N times; rounds are interleaved and the
table shows medians. Run: .venv/bin/python benchmarks/burst.py [agents] [rounds]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import psutil

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.supervisor import SupervisorJob

SLOTS = 64


def xargs(count: int) -> None:
    subprocess.run(
        ["xargs", "-P", str(SLOTS), "-n", "1", "/bin/true"], input="\n".join(["x"] * count), text=True, check=True
    )


def gnu_parallel(count: int) -> None:
    subprocess.run(
        ["parallel", "-j", str(SLOTS), "-N0", "/bin/true"], input="\n".join(["x"] * count), text=True, check=True,
    )


def coordinator_run(root: Path) -> Callable[[int], None]:
    (root / "agents").mkdir(exist_ok=True)
    (root / "agents" / "noop.md").write_text("---\nname: noop\nrunner: command\ncommand: [/bin/true]\n---\nx\n")
    settings = Settings(
        state_dir=root / "state", agent_dirs=[(root / "agents", "env")], max_cpu_usage=100,
        performance_logging=False,
    )

    def run(count: int) -> None:
        async def main() -> None:
            async with Coordinator(settings) as coordinator:
                options = CoordinateOptions(max_agents=SLOTS, wait_seconds=0, retry_attempts=1, reuse_results="off")
                subtasks = [Subtask(id=f"t{i}", description="noop", agent_type="noop") for i in range(count)]
                session = await coordinator.start("burst", coordinator.plan(subtasks, options), options)
                await session.done.wait()
                assert session.status == "SUCCESS", session.error_summary

        anyio.run(main)

    return run


def raw_loky(root: Path) -> Callable[[int], None]:
    """The floor of our design: loky plus one supervisor per task, no scheduler, no store."""
    from parallel_coordinator.execution.pool import LocalPoolBackend

    def run(count: int) -> None:
        async def main() -> None:
            async with LocalPoolBackend(SLOTS) as backend, anyio.create_task_group() as group:
                limiter = anyio.CapacityLimiter(SLOTS)

                async def one(i: int) -> None:
                    async with limiter:
                        job = SupervisorJob(f"a{i}", Invocation(["/bin/true"]), str(root / "raw" / str(i)), "")
                        await backend.run(job, lambda _event: None)

                for i in range(count):
                    group.start_soon(one, i)

        anyio.run(main)

    return run


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    root = Path(tempfile.mkdtemp())
    alternatives: dict[str, Callable[[int], None]] = {"xargs -P 64": xargs}
    if shutil.which("parallel"):
        alternatives["GNU parallel -j 64"] = gnu_parallel
    else:
        print("GNU parallel is not installed (scripts/install-bench-tools.sh): its row is left out", file=sys.stderr)
    alternatives |= {"raw loky + supervisor": raw_loky(root), "parallel coordinator": coordinator_run(root)}
    times: dict[str, list[float]] = {name: [] for name in alternatives}
    for _ in range(rounds):
        for name, run in alternatives.items():  # interleaved, so drift hits everyone alike
            started = time.perf_counter()
            run(count)
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["xargs -P 64"])
    print(f"burst: {count} agents of /bin/true at {SLOTS} slots, {rounds} rounds, {psutil.cpu_count()} cores")
    print(f"{'alternative':<24} {'median s':>9} {'agents/s':>9} {'vs xargs':>9}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<24} {median:>9.2f} {count / median:>9.0f} {base / median:>8.2f}x")


if __name__ == "__main__":
    main()
