"""Overhead: server start to its first tools/list answer, and a one-task coordinate_task round trip, beside the floors.

A client (Claude Code, an IDE) starts the server when a session opens and waits for tools/list: that is
the user's wait. The floors, measured in the same rounds: starting `python -c pass`, and a bare MCP SDK
server (one tool that runs the same executable) started and called the same way. Everything goes
through the official MCP client over real stdio; each round starts fresh servers. The first call
of a server (its pool starts) and later calls ("warm") are shown apart.

Run: .venv/bin/python benchmarks/overhead.py [--rounds 5] [--warm-calls 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from _common import (
    header,
    median,
    report_leftovers,
    server_params,
    server_process,
    table,
    temp_root,
    watch_tree,
    write_agents,
)
from mcp import Client

BARE_SERVER = '''
import subprocess
from mcp.server.mcpserver import MCPServer

server = MCPServer("bare")


@server.tool()
def run_true() -> str:
    """Run /bin/true once."""
    subprocess.run(["/bin/true"], check=True)
    return "ok"


server.run()
'''

ONE_TASK = {
    "task_description": "one task", "subtasks": [{"id": "t", "description": "noop", "agent_type": "noop"}],
    "options": {"wait_seconds": 60, "reuse_results": "off", "retry_attempts": 1},
}


def python_pass() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.perf_counter() - started


async def serve_and_call(
    params: Any, marker: str, call: Callable[[Client], Awaitable[None]], warm_calls: int
) -> tuple[float, float, float]:
    """Seconds from starting the server process to its tools/list answer; first call; median warm call."""
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        listed = time.perf_counter() - started
        started = time.perf_counter()
        await call(client)
        first = time.perf_counter() - started
        warm = []
        for _ in range(warm_calls):
            started = time.perf_counter()
            await call(client)
            warm.append(time.perf_counter() - started)
        watch_tree(server_process(marker))
    return listed, first, median(warm)


async def coordinate(client: Client) -> None:
    result = await client.call_tool("coordinate_task", ONE_TASK)
    assert not result.is_error and result.structured_content is not None, result.content
    assert result.structured_content["status"] == "SUCCESS", result.structured_content


async def run_true(client: Client) -> None:
    result = await client.call_tool("run_true", {})
    assert not result.is_error, result.content


async def benchmark(rounds: int, warm_calls: int) -> None:
    root = temp_root("overhead")
    agents = write_agents(root / "agents", {"noop": ["/bin/true"]})
    bare = root / "bare_server.py"
    bare.write_text(BARE_SERVER)
    times: dict[str, list[tuple[float, float, float]]] = {"bare MCP SDK server": [], "pcoord serve": []}
    spawn: list[float] = []
    for number in range(rounds):  # interleaved, so drift hits everyone alike
        spawn.append(python_pass())
        bare_params = server_params(root / f"bare-{number}", agents, command=(sys.executable, str(bare)))
        times["bare MCP SDK server"].append(await serve_and_call(bare_params, "bare_server.py", run_true, warm_calls))
        pcoord_params = server_params(root / f"pcoord-{number}", agents)
        times["pcoord serve"].append(await serve_and_call(pcoord_params, "pcoord serve", coordinate, warm_calls))

    header("overhead", rounds=rounds, warm_calls=warm_calls, transport="stdio", executable="/bin/true")
    floor = median(spawn)
    rows: list[list[object]] = [["python -c pass (process start)", floor * 1000, "", "", 1.0]]
    for name, samples in times.items():
        listed = median(s[0] for s in samples)
        rows.append([
            name, listed * 1000, median(s[1] for s in samples) * 1000, median(s[2] for s in samples) * 1000,
            listed / floor,
        ])
    table(["server", "start->tools/list ms", "1st call ms", "warm call ms", "start vs python"], rows)
    print("calls: pcoord serve runs coordinate_task with one /bin/true task to the end; the bare server runs"
          " /bin/true in its tool")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warm-calls", type=int, default=5, help="calls after the first, per server")
    args = parser.parse_args()
    anyio.run(benchmark, args.rounds, args.warm_calls)
    report_leftovers()


if __name__ == "__main__":
    main()
