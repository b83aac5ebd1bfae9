"""Scale: a 10,000-task plan, from the caller's send to the server's "accepted", and the server's memory while it runs.

A planner (or a caller) may hand over the largest graph the tool allows: validating and accepting it must
stay well under a second, and the server must not grow with it. `pcoord serve` runs as a real
subprocess driven by the official MCP client. Per round: coordinate_task with N trivial tasks
(`/bin/true`, each depending on up to 2 of the previous 100) and wait_seconds=0, timed to its answer;
then the server's RSS (and its whole process tree's, pool workers and agents included) sampled for a
while as it runs; then cancel_execution. The in-process rows time the same validation without the
wire: pydantic Subtask models, then Coordinator.plan (agent catalogue, routing, TaskGraph).

Run: .venv/bin/python benchmarks/scale.py [--tasks 10000] [--rounds 2] [--sample-seconds 6] (~35 s on 2 cores)
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

import anyio
import anyio.to_thread
import psutil
from _common import (
    header,
    median,
    report_leftovers,
    server_params,
    server_process,
    table,
    temp_root,
    tree_rss_mb,
    watch_tree,
    write_agents,
)
from mcp import Client


def plan(tasks: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "id": f"t{i}", "description": f"noop {i}", "agent_type": "noop",
            "dependencies": [f"t{d}" for d in sorted(rng.sample(range(max(0, i - 100), i), min(i, rng.randint(0, 2))))],
        }
        for i in range(tasks)
    ]


def in_process(root_agents: Any, state: Any, subtasks: list[dict[str, Any]]) -> tuple[float, float]:
    """Seconds to validate the subtasks as pydantic models, then to plan them (no wire, no session)."""
    from parallel_coordinator.config.settings import Settings
    from parallel_coordinator.engine.coordinator import Coordinator
    from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

    coordinator = Coordinator(Settings(state_dir=state, agent_dirs=[(root_agents, "env")], performance_logging=False))
    try:
        started = time.perf_counter()
        models = [Subtask.model_validate(s) for s in subtasks]
        validated = time.perf_counter()
        coordinator.plan(models, CoordinateOptions(wait_seconds=0, reuse_results="off"))
        return validated - started, time.perf_counter() - validated
    finally:
        coordinator.store.close()


async def sample_rss(server: psutil.Process, seconds: float) -> tuple[float, float]:
    """Max RSS of the server process itself and of its whole tree, in MB, sampled every 0.2 s."""
    own = tree = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        own = max(own, server.memory_info().rss / 2**20)
        tree = max(tree, await anyio.to_thread.run_sync(tree_rss_mb, server))
        await anyio.sleep(0.2)
    return own, tree


async def benchmark(tasks: int, rounds: int, sample_seconds: float) -> None:
    root = temp_root("scale")
    agents = write_agents(root / "agents", {"noop": ["/bin/true"]})
    subtasks = plan(tasks)
    accept, models, planned, own_rss, tree_rss, done, cancel = [], [], [], [], [], [], []
    async with Client(server_params(root, agents)) as client:
        await client.list_tools()
        server = server_process()
        idle_rss = server.memory_info().rss / 2**20
        for _ in range(rounds):
            validate_s, plan_s = in_process(agents, root / "inproc-state", subtasks)  # interleaved with the wire
            models.append(validate_s)
            planned.append(plan_s)
            started = time.perf_counter()
            result = await client.call_tool("coordinate_task", {
                "task_description": "scale", "subtasks": subtasks,
                "options": {"wait_seconds": 0, "reuse_results": "off", "retry_attempts": 1},
            })
            accept.append(time.perf_counter() - started)
            assert not result.is_error and result.structured_content is not None, result.content
            session_id = result.structured_content["session_id"]
            own, tree = await sample_rss(server, sample_seconds)
            own_rss.append(own)
            tree_rss.append(tree)
            started = time.perf_counter()
            cancelled = await client.call_tool("cancel_execution", {"session_id": session_id})
            cancel.append(time.perf_counter() - started)
            assert not cancelled.is_error, cancelled.content
            status = await client.call_tool("get_progress_status", {"session_id": session_id})
            assert status.structured_content is not None
            done.append(status.structured_content["completed"])
        watch_tree(server)

    header("scale", tasks=tasks, rounds=rounds, sample_seconds=sample_seconds, agent="/bin/true", transport="stdio")
    wire = median(accept)
    table(["step", "median s", "max s", "vs wire"], [
        ["coordinate_task accepted (stdio, wait 0)", wire, max(accept), 1.0],
        ["  in-process: pydantic Subtask models", median(models), max(models), median(models) / wire],
        ["  in-process: Coordinator.plan", median(planned), max(planned), median(planned) / wire],
        ["cancel_execution of the rest (stdio)", median(cancel), max(cancel), median(cancel) / wire],
    ])
    table(["memory", "median MB", "max MB", "vs idle"], [
        ["server RSS, idle after tools/list", idle_rss, idle_rss, 1.0],
        [f"server RSS while {tasks} tasks run", median(own_rss), max(own_rss), max(own_rss) / idle_rss],
        ["tree RSS (server+workers+agents, summed)", median(tree_rss), max(tree_rss), max(tree_rss) / idle_rss],
    ])
    print(f"tasks completed before cancel, per round: {done}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=6.0, help="how long RSS is sampled per round")
    args = parser.parse_args()
    anyio.run(benchmark, args.tasks, args.rounds, args.sample_seconds)
    report_leftovers()


if __name__ == "__main__":
    main()
