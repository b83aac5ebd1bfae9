"""Responsiveness: get_progress_status round trips over real stdio while 64 agents run, beside an idle server.

A caller polls while agents run: each poll must stay quick however busy the server is. `pcoord serve`
runs as a real subprocess, driven by the official MCP client. Per round: N polls of a finished
one-task session with nothing running (the floor), then 64 agents (`/bin/sleep 600`) started with
wait_seconds=0 and N polls of their session, then cancel_execution and a check that every agent is
gone. The table shows the median over rounds of each round's p50, p99 and max.

Run: .venv/bin/python benchmarks/responsiveness.py [--agents 64] [--calls 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time

import anyio
import psutil
from _common import (
    header,
    median,
    percentile,
    report_leftovers,
    server_params,
    server_process,
    structured,
    table,
    temp_root,
    watch_tree,
    write_agents,
)
from mcp import Client


def agent_processes(server: psutil.Process) -> list[psutil.Process]:
    """The server's descendants running the agent executable (`sleep`), not its pool workers."""
    found = []
    for process in server.children(recursive=True):
        try:
            if process.name() == "sleep" and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


async def all_started(server: psutil.Process, agents: int) -> list[psutil.Process]:
    """Every agent process is up (seen through /proc, not through the server we are measuring)."""
    with anyio.fail_after(120):
        while True:
            running = agent_processes(server)
            if len(running) >= agents:
                return running
            await anyio.sleep(0.05)


async def poll(client: Client, session_id: str, calls: int) -> list[float]:
    latencies = []
    for _ in range(calls):
        started = time.perf_counter()
        status = await client.call_tool("get_progress_status", {"session_id": session_id})
        latencies.append(time.perf_counter() - started)
        assert not status.is_error, status.content
    return latencies


async def benchmark(agents: int, calls: int, rounds: int) -> None:
    root = temp_root("responsiveness")
    agent_dir = write_agents(root / "agents", {"hang": ["/bin/sleep", "600"], "noop": ["/bin/true"]})
    idle: list[list[float]] = []
    busy: list[list[float]] = []
    survivors = 0
    async with Client(server_params(root, agent_dir)) as client:
        server = server_process()
        done = structured(await client.call_tool("coordinate_task", {
            "task_description": "one noop", "subtasks": [{"id": "n", "description": "noop", "agent_type": "noop"}],
            "options": {"wait_seconds": 60},
        }))
        assert done["status"] == "SUCCESS", done
        for _ in range(rounds):
            idle.append(await poll(client, done["session_id"], calls))
            started = structured(await client.call_tool("coordinate_task", {
                "task_description": "hang",
                "subtasks": [{"id": f"h{i}", "description": "hang", "agent_type": "hang"} for i in range(agents)],
                "options": {"max_agents": agents, "wait_seconds": 0, "reuse_results": "off", "retry_attempts": 1},
            }))
            running = await all_started(server, agents)
            busy.append(await poll(client, started["session_id"], calls))
            assert len(agent_processes(server)) == agents, "agents ended while being polled"
            structured(await client.call_tool("cancel_execution", {"session_id": started["session_id"]}))
            _, alive = psutil.wait_procs(running, timeout=10)
            survivors += len(alive)
        watch_tree(server)

    header("responsiveness", agents=agents, calls=calls, rounds=rounds, transport="stdio")
    rows: list[list[object]] = []
    base = median(percentile(r, 0.99) for r in idle)
    for name, samples in (("idle (0 agents running)", idle), (f"{agents} agents running", busy)):
        p99 = median(percentile(r, 0.99) for r in samples)
        rows.append([
            name, median(percentile(r, 0.5) for r in samples) * 1000, p99 * 1000,
            median(max(r) for r in samples) * 1000, p99 / base,
        ])
    table(["get_progress_status", "p50 ms", "p99 ms", "max ms", "p99 vs idle"], rows)
    print(f"agents alive 10 s after cancel_execution: {survivors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--calls", type=int, default=200, help="polls per round and per case")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    anyio.run(benchmark, args.agents, args.calls, args.rounds)
    report_leftovers()


if __name__ == "__main__":
    main()
