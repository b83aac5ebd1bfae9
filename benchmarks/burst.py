"""Burst: N trivial command agents at 64 slots, Parallel Coordinator beside `xargs -P 64`, GNU
parallel and raw loky with a supervisor per task (the floor of our own design).

Each alternative runs the same executable (`/bin/true`) N times; rounds are interleaved and the
table shows medians. `--before DIR` adds the same runs of another checkout with its own venv (the
code before a change), side by side in the same rounds.
Run: .venv/bin/python benchmarks/burst.py [agents] [rounds] [--before DIR]
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import psutil
from _common import PCOORD

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.supervisor import SupervisorJob

SLOTS = 64


def xargs_seq(count: int) -> None:
    """Issue 13's comparison, word for word: one /bin/true per line of `seq`, 64 at a time."""
    subprocess.run(f"seq {count} | xargs -P {SLOTS} -I{{}} /bin/true", shell=True, check=True)


def xargs(count: int) -> None:
    subprocess.run(
        ["xargs", "-P", str(SLOTS), "-n", "1", "/bin/true"], input="\n".join(["x"] * count), text=True, check=True
    )


def gnu_parallel(count: int) -> None:
    subprocess.run(
        ["parallel", "-j", str(SLOTS), "-N0", "/bin/true"], input="\n".join(["x"] * count), text=True, check=True,
    )


def coordinator_run(root: Path) -> Callable[[int], None]:
    (root / "agents").mkdir(parents=True, exist_ok=True)
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


# The in-process run, for another checkout's interpreter: it times itself, so its start-up is left out.
IN_PROCESS = """
import sys, time, anyio
from pathlib import Path
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
root, count, slots = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
settings = Settings(state_dir=root / "state", agent_dirs=[(root / "agents", "env")], max_cpu_usage=100,
                    performance_logging=False)
async def main():
    async with Coordinator(settings) as coordinator:
        options = CoordinateOptions(max_agents=slots, wait_seconds=0, retry_attempts=1, reuse_results="off")
        subtasks = [Subtask(id=f"t{i}", description="noop", agent_type="noop") for i in range(count)]
        started = time.perf_counter()
        session = await coordinator.start("burst", coordinator.plan(subtasks, options), options)
        await session.done.wait()
        assert session.status == "SUCCESS", session.error_summary
        print(time.perf_counter() - started)
anyio.run(main)
"""


def other_checkout_in_process(root: Path, checkout: Path) -> Callable[[int], float]:
    """The in-process burst on another checkout's code and venv; returns the time it measured itself."""
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "agents" / "noop.md").write_text("---\nname: noop\nrunner: command\ncommand: [/bin/true]\n---\nx\n")

    def run(count: int) -> float:
        done = subprocess.run(
            [str(checkout / ".venv" / "bin" / "python"), "-c", IN_PROCESS, str(root), str(count), str(SLOTS)],
            capture_output=True, text=True, check=True, cwd=checkout,
        )
        return float(done.stdout.strip().splitlines()[-1])

    return run


def cli_run(root: Path, *, terminal: bool, pcoord: str = PCOORD) -> Callable[[int], None]:
    """`pcoord run PLAN --json` as a subprocess: the plan file of N noop tasks is written before the clock starts."""
    (root / "agents").mkdir(parents=True, exist_ok=True)
    (root / "agents" / "noop.md").write_text("---\nname: noop\nrunner: command\ncommand: [/bin/true]\n---\nx\n")
    (root / "home").mkdir(exist_ok=True)
    env = {
        **os.environ, "PCOORD_STATE_DIR": str(root / "cli-state"), "PCOORD_AGENT_DIRS": str(root / "agents"),
        "HOME": str(root / "home"), "PCOORD_MAX_CPU_USAGE": "100", "PCOORD_PERFORMANCE_LOGGING": "0",
    }
    if terminal:
        env |= {"TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    plans: dict[int, Path] = {}

    def plan(count: int) -> Path:
        if count not in plans:
            plans[count] = root / f"burst-{count}.json"
            plans[count].write_text(json.dumps({
                "task_description": "burst",
                "subtasks": [{"id": f"t{i}", "description": "noop", "agent_type": "noop"} for i in range(count)],
                "options": {"max_agents": SLOTS, "retry_attempts": 1, "reuse_results": "off"},
            }))
        return plans[count]

    def run(count: int) -> None:
        argv = [pcoord, "run", str(plan(count)), "--json"]
        if terminal:
            code, stdout, stderr = run_on_terminal(argv)
        else:
            done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
            code, stdout, stderr = done.returncode, done.stdout, done.stderr
        if code != 0 or json.loads(stdout)["status"] != "SUCCESS":
            raise RuntimeError(f"pcoord run failed ({code}): {stderr[-2000:]}")

    def run_on_terminal(argv: list[str]) -> tuple[int, str, str]:
        """stderr on a pseudo-terminal of 120x40 (drained by a thread, as a terminal would); stdout to a file."""
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        seen = bytearray()

        def drain() -> None:
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO once the last writer has closed the terminal
                    return
                if not chunk:
                    return
                seen.extend(chunk[-4096:])
                del seen[:-4096]  # bound: keep only the tail, for an error message

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        with (root / "cli-stdout").open("w") as stdout:
            code = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=follower).returncode
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
        return code, (root / "cli-stdout").read_text(), seen.decode(errors="replace")

    return run


def shards_alone(root: Path) -> Callable[[int], None]:
    """The floor of our design: the shard backend (loky workers running shards), no scheduler, no store."""
    from parallel_coordinator.execution.pool import LocalPoolBackend

    def run(count: int) -> None:
        async def main() -> None:
            async with LocalPoolBackend() as backend, anyio.create_task_group() as group:
                limiter = anyio.CapacityLimiter(SLOTS)

                async def one(i: int) -> None:
                    async with limiter:
                        job = SupervisorJob(f"a{i}", Invocation(["/bin/true"]), str(root / "raw" / str(i)))
                        await backend.run(job, lambda _event: None)

                for i in range(count):
                    group.start_soon(one, i)

        anyio.run(main)

    return run


def main() -> None:
    args = sys.argv[1:]
    before: Path | None = None
    if "--before" in args:
        at = args.index("--before")
        before = Path(args[at + 1]).resolve()
        del args[at:at + 2]
    count = int(args[0]) if args else 2000
    rounds = int(args[1]) if len(args) > 1 else 3
    root = Path(tempfile.mkdtemp())
    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    base_name = "seq | xargs -P 64 -I{}"
    alternatives: dict[str, Callable[[int], None]] = {base_name: xargs_seq, "xargs -P 64 -n 1": xargs}
    if shutil.which("parallel"):
        alternatives["GNU parallel -j 64"] = gnu_parallel
    else:
        print("GNU parallel is not installed (scripts/install-bench-tools.sh): its row is left out", file=sys.stderr)
    alternatives |= {
        "shards alone, no engine": shards_alone(root), "ours, in-process": coordinator_run(root),
        "ours, pcoord run (pipe)": cli_run(root, terminal=False),
        "ours, pcoord run (tty)": cli_run(root, terminal=True),
    }
    timed_by_itself: dict[str, Callable[[int], float]] = {}
    if before is not None:
        old_pcoord = str(before / ".venv" / "bin" / "pcoord")
        timed_by_itself["before, in-process"] = other_checkout_in_process(root / "before", before)
        alternatives |= {
            "before, pcoord run (pipe)": cli_run(root / "before", terminal=False, pcoord=old_pcoord),
            "before, pcoord run (tty)": cli_run(root / "before", terminal=True, pcoord=old_pcoord),
        }
    times: dict[str, list[float]] = {name: [] for name in [*alternatives, *timed_by_itself]}
    for _ in range(rounds):
        for name, run in alternatives.items():  # interleaved, so drift hits everyone alike
            started = time.perf_counter()
            run(count)
            times[name].append(time.perf_counter() - started)
        for name, timed in timed_by_itself.items():
            times[name].append(timed(count))
    base = statistics.median(times[base_name])
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"burst: {count} agents of /bin/true at {SLOTS} slots, {rounds} rounds, {psutil.cpu_count()} cores, "
          f"load average before {load_before}, after {load}" + (f"; before = {before}" if before else ""))
    print(f"{'alternative':<24} {'median s':>9} {'agents/s':>9} {'vs xargs':>9}   (vs `{base_name}`)")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:<24} {median:>9.2f} {count / median:>9.0f} {base / median:>8.2f}x")


if __name__ == "__main__":
    main()
