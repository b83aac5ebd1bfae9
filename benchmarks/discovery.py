"""Discovery: what a large agents folder costs coordinate_task, and another client's metrics call meanwhile.

`pcoord serve` runs as a real subprocess driven by the official MCP client, once per agents folder:
1 agent file (the floor), 5,000 agent files, and 1 agent file beside a symlink to /usr. Per folder:
N coordinate_task calls of a one-task plan (`/bin/true`, wait_seconds=0), each timed to its answer
(the first call apart: it is the one that pays a cold scan), then get_performance_metrics calls
timed while N more coordinate_task calls are in flight on the same connection.

Run: .venv/bin/python benchmarks/discovery.py [--agents 5000] [--calls 10] (~1 min on 2 cores)
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path
from typing import Any

import anyio
from _common import header, median, report_leftovers, server_params, table, temp_root, write_agents
from mcp import Client

PLAN: dict[str, Any] = {
    "task_description": "discovery",
    "subtasks": [{"id": "a", "description": "noop", "agent_type": "noop"}],
    "options": {"wait_seconds": 0, "reuse_results": "off", "retry_attempts": 1},
}


async def coordinate(client: Client) -> float:
    started = time.perf_counter()
    result = await client.call_tool("coordinate_task", PLAN)
    assert not result.is_error, result.content
    return time.perf_counter() - started


async def metrics_while_planning(client: Client, calls: int) -> list[float]:
    """get_performance_metrics latencies, sent on the same connection while coordinate_task calls are in flight."""
    latencies: list[float] = []
    done = anyio.Event()

    async def plan_repeatedly() -> None:
        for _ in range(calls):
            await coordinate(client)
        done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(plan_repeatedly)
        while not done.is_set():
            started = time.perf_counter()
            result = await client.call_tool("get_performance_metrics", {})
            assert not result.is_error, result.content
            latencies.append(time.perf_counter() - started)
    return latencies


async def one_folder(label: str, root: Path, agents: Path, calls: int) -> list[object]:
    async with Client(server_params(root, agents)) as client:
        await client.list_tools()
        first = await coordinate(client)
        rest = [await coordinate(client) for _ in range(calls)]
        metrics = await metrics_while_planning(client, calls)
    return [label, first, median(rest), max(rest), median(metrics), max(metrics)]


async def benchmark(agent_files: int, calls: int) -> None:
    rows = []
    small = temp_root("discovery-1")
    rows.append(await one_folder("1 agent file", small, write_agents(small / "agents", {"noop": ["/bin/true"]}), calls))

    large = temp_root("discovery-many")
    many = {"noop": ["/bin/true"], **{f"agent-{i:05d}": ["/bin/true"] for i in range(agent_files - 1)}}
    rows.append(await one_folder(f"{agent_files} agent files", large, write_agents(large / "agents", many), calls))

    linked = temp_root("discovery-usr")
    folder = write_agents(linked / "agents", {"noop": ["/bin/true"]})
    (folder / "usr").symlink_to("/usr", target_is_directory=True)
    rows.append(await one_folder("1 agent file + symlink to /usr", linked, folder, calls))

    for root in (small, large, linked):
        shutil.rmtree(root, ignore_errors=True)
    header("discovery", agent_files=agent_files, calls=calls, transport="stdio")
    table(
        ["agents folder", "1st coordinate s", "then median s", "then max s", "metrics median s", "metrics max s"],
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args()
    anyio.run(benchmark, args.agents, args.calls)
    report_leftovers()


if __name__ == "__main__":
    main()
