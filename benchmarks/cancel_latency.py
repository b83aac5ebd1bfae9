"""How long cancel_execution takes to kill 64 running agents (each with a child), and that none survive.

Run: .venv/bin/python benchmarks/cancel_latency.py [rounds]
"""

from __future__ import annotations

import json
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import anyio
import psutil

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

AGENT = textwrap.dedent("""
    import json, os, subprocess, sys, time
    request = json.load(sys.stdin)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print(json.dumps({"progress": 1, "message": json.dumps([os.getpid(), child.pid])}), file=sys.stderr, flush=True)
    time.sleep(600)
""")


async def main(rounds: int) -> None:
    root = Path(tempfile.mkdtemp())
    (root / "agents").mkdir()
    (root / "agents" / "hang.py").write_text(AGENT)
    (root / "agents" / "hang.md").write_text(
        f'---\nname: hang\nrunner: command\ncommand: ["{{python}}", "{root}/agents/hang.py"]\n---\nhangs\n'
    )
    settings = Settings(state_dir=root / "state", agent_dirs=[(root / "agents", "env")], max_cpu_usage=100)
    print(f"{psutil.cpu_count()} cores; 64 agents, each with one child")
    async with Coordinator(settings) as coordinator:
        for number in range(rounds):
            options = CoordinateOptions(max_agents=64, wait_seconds=0, reuse_results="off")
            subtasks = [Subtask(id=f"t{i}", description="hang", agent_type="hang") for i in range(64)]
            session = await coordinator.start("hang", coordinator.plan(subtasks, options), options)
            with anyio.fail_after(180):
                while sum(r.progress is not None for r in session.tasks.values()) < 64:
                    await session.changed.wait()
            pids = [p for r in session.tasks.values() for p in json.loads(r.message or "[]")]
            started = time.perf_counter()
            outcome = await coordinator.cancel(session.id)
            elapsed = time.perf_counter() - started
            alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
            print(f"round {number}: cancel took {elapsed * 1000:.0f} ms, killed {outcome.killed_processes}"
                  f" of {len(pids)} processes, {len(alive)} left alive")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 3)
