"""Engine CPU: the coordinator process's own CPU time per agent, for a burst of trivial agents.

Wall time on two cores mixes the coordinator, the pool's supervisors and the agents; the CPU time
of the coordinator's process alone is the steadiest measure of what the engine itself costs per
agent (scheduling, events, the store, the hub). One warm Coordinator runs the burst `rounds` times.
Run: .venv/bin/python benchmarks/engine_cpu.py [agents] [rounds]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import header, table

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask


async def measure(root: Path, agents: int, rounds: int) -> list[tuple[float, float]]:
    (root / "agents").mkdir()
    (root / "agents" / "noop.md").write_text("---\nname: noop\nrunner: command\ncommand: [/bin/true]\n---\nx\n")
    settings = Settings(
        state_dir=root / "state", agent_dirs=[(root / "agents", "env")], max_cpu_usage=100,
        performance_logging=False,
    )
    runs = []
    async with Coordinator(settings) as coordinator:
        options = CoordinateOptions(max_agents=64, wait_seconds=0, retry_attempts=1, reuse_results="off")
        for _ in range(rounds):
            subtasks = [Subtask(id=f"t{i}", description="noop", agent_type="noop") for i in range(agents)]
            cpu, wall = time.process_time(), time.perf_counter()
            session = await coordinator.start("burst", coordinator.plan(subtasks, options), options)
            await session.done.wait()
            if session.status != "SUCCESS":
                raise SystemExit(f"the burst failed: {session.error_summary}")
            runs.append((time.perf_counter() - wall, (time.process_time() - cpu) / agents * 1000))
    return runs


def main() -> None:
    agents = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    header("engine_cpu", agents=agents, rounds=rounds, agent="/bin/true", slots=64)
    with tempfile.TemporaryDirectory() as folder:
        runs = anyio.run(measure, Path(folder), agents, rounds)
    table(["round", "wall s", "coordinator CPU ms/agent"], [(i, wall, cpu) for i, (wall, cpu) in enumerate(runs)])
    print(f"median coordinator CPU: {statistics.median(cpu for _, cpu in runs):.2f} ms per agent")


if __name__ == "__main__":
    main()
