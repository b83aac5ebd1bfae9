"""Memory: PSS of our own processes (server, fork server, pool workers with their supervisors) while N agents run.

`pcoord serve` runs as a real subprocess, driven by the official MCP client. For each N, N command
agents (`/bin/sleep 3600`, held until cancelled) are started with wait_seconds=0; once all are up,
the script sums PSS and RSS over the server and its descendants in the server's session. Agents
are left out: each starts in a session of its own (setsid), so everything in another session is an
agent or an agent's child. Then cancel_execution, and a check that every agent and, at the end,
every process of ours is gone. PSS (psutil's memory_full_info) shares each page among the processes
that map it, so a fork server's pages shared by 64 workers count once, not 64 times; where the
platform has no PSS the script says so and shows RSS in its place.

Run: .venv/bin/python benchmarks/memory.py [--agents 64 256] [--samples 3] [--before CHECKOUT]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import psutil
from _common import (
    PCOORD,
    header,
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
from pydantic import ValidationError

from parallel_coordinator.schemas.inputs import CoordinateOptions

MB = 2**20
TARGET_MB = 100  # issue 13: our processes with 64 agents running, PSS
SETTLE_S = 2.0  # after the last agent is up: the supervisors' first samples and writes are done


@dataclass
class Sample:
    """One look at the server's tree: our processes by role, and the agents (in sessions of their own)."""

    pss: Counter[str] = field(default_factory=Counter)
    rss: Counter[str] = field(default_factory=Counter)
    count: Counter[str] = field(default_factory=Counter)
    agents: int = 0
    agent_pss: int = 0


PSS_AVAILABLE = hasattr(psutil.Process().memory_full_info(), "pss")


def proportional(process: psutil.Process) -> tuple[int, int]:
    """(PSS, RSS) of one process; PSS is RSS where the platform has none (PSS_AVAILABLE says which)."""
    if PSS_AVAILABLE:
        info = process.memory_full_info()
        return info.pss, info.rss
    rss = process.memory_info().rss
    return rss, rss


def role(process: psutil.Process, server: psutil.Process, fork_servers: set[int]) -> str:
    """What one of our processes is: forked workers keep their fork server's command line, so go by the parent."""
    if process.pid == server.pid:
        return "server (coordinator)"
    command = " ".join(process.cmdline())
    if "resource_tracker" in command:
        return "resource tracker"
    if process.ppid() == server.pid and "forkserver" in command:
        fork_servers.add(process.pid)
        return "fork server"
    if process.ppid() in fork_servers or "loky" in command:
        return "pool worker + supervisor"
    return "other"


def sample(server: psutil.Process) -> Sample:
    seen = Sample()
    session = os.getsid(server.pid)
    fork_servers: set[int] = set()
    members = [server, *server.children(recursive=True)]
    # children() lists a parent before its children, so fork servers are known before their workers.
    for process in members:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            pss, rss = proportional(process)
            if os.getsid(process.pid) != session:
                if process.name() == "sleep":
                    seen.agents += 1
                seen.agent_pss += pss
                continue
            kind = role(process, server, fork_servers)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
        seen.pss[kind] += pss
        seen.rss[kind] += rss
        seen.count[kind] += 1
    return seen


def agent_processes(server: psutil.Process) -> list[psutil.Process]:
    session = os.getsid(server.pid)
    found = []
    for process in server.children(recursive=True):
        try:
            alive = process.status() != psutil.STATUS_ZOMBIE
            if process.name() == "sleep" and alive and os.getsid(process.pid) != session:
                found.append(process)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    return found


async def wait_started(server: psutil.Process, agents: int, bound_s: float) -> list[psutil.Process]:
    """Every agent up (seen through /proc, not through the server being measured), or as many as are after the bound."""
    running = agent_processes(server)
    with anyio.move_on_after(bound_s):
        while len(running) < agents:
            await anyio.sleep(0.05)
            running = agent_processes(server)
    return running


def cap_refusal(agents: int) -> str | None:
    """Why coordinate_task would refuse max_agents=N today, or None when it takes it."""
    try:
        CoordinateOptions(max_agents=agents)
    except ValidationError as exc:
        return exc.errors()[0]["msg"]
    return None


async def benchmark(
    counts: list[int], samples: int, pcoord: str = PCOORD, label: str = "ours", pool_size: int | None = None
) -> None:
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    root = temp_root("memory")
    agent_dir = write_agents(root / "agents", {"hold": ["/bin/sleep", "3600"]})
    measured: list[tuple[str, int, Sample]] = []
    skipped: list[str] = []
    survivors = 0
    # The server-wide cap is 64 unless configured: raised to the most this run asks for.
    pool = {"PCOORD_POOL_SIZE": str(pool_size or max(counts, default=64))}
    async with Client(server_params(root, agent_dir, env=pool, command=(pcoord, "serve"))) as client:
        server = server_process()
        measured.append(("server idle, no run yet", 0, sample(server)))
        for agents in counts:
            refusal = cap_refusal(agents)
            if refusal is not None:
                skipped.append(
                    f"{agents} agents: not measured, CoordinateOptions refuses max_agents={agents}: {refusal}"
                )
                continue
            started = structured(await client.call_tool("coordinate_task", {
                "task_description": "hold",
                "subtasks": [{"id": f"h{i}", "description": "hold", "agent_type": "hold"} for i in range(agents)],
                "options": {"max_agents": agents, "wait_seconds": 0, "reuse_results": "off", "retry_attempts": 1},
            }))
            running = await wait_started(server, agents, bound_s=120)
            await anyio.sleep(SETTLE_S)
            looks = []
            for _ in range(samples):
                looks.append(sample(server))
                await anyio.sleep(1)
            # The look with the median PSS sum: one whole look, so its rows add up.
            look = sorted(looks, key=lambda s: sum(s.pss.values()))[len(looks) // 2]
            measured.append((f"{agents} agents asked", look.agents, look))
            if look.agents < agents:
                skipped.append(f"{agents} agents: only {look.agents} were running after 120 s")
            structured(await client.call_tool("cancel_execution", {"session_id": started["session_id"]}))
            _, alive = psutil.wait_procs(running, timeout=10)
            survivors += len(alive)
        watch_tree(server)

    header("memory", code=label, agents=" ".join(map(str, counts)), samples=samples, transport="stdio",
           load_before=load_before, load_after=" ".join(f"{v:.2f}" for v in os.getloadavg()))
    if not PSS_AVAILABLE:
        print("PSS is not available on this platform: the PSS columns show RSS (shared pages counted in every process)")
    rows: list[list[object]] = []
    for name, running_agents, look in measured:
        pss, rss = sum(look.pss.values()) / MB, sum(look.rss.values()) / MB
        per_pss, per_rss = (pss / running_agents, rss / running_agents) if running_agents else ("-", "-")
        rows.append([name, running_agents, sum(look.count.values()), pss, rss, per_pss, per_rss, look.agent_pss / MB])
    table(["case", "agents running", "our processes", "PSS MB", "RSS MB", "PSS/agent MB", "RSS/agent MB",
           "agents' own PSS MB (excluded)"], rows)
    print()
    breakdown: list[list[object]] = []
    for name, _, look in measured:
        for kind in sorted(look.count):
            breakdown.append([f"{name}: {kind}", look.count[kind], look.pss[kind] / MB, look.rss[kind] / MB])
    table(["our processes by role", "processes", "PSS MB", "RSS MB"], breakdown)
    for line in skipped:
        print(line)
    at_64 = [look for name, n, look in measured if n == 64]
    if at_64:
        pss_64 = statistics.median(sum(look.pss.values()) / MB for look in at_64)
        print(f"issue 13 target: < {TARGET_MB} MB PSS with 64 agents running; measured {pss_64:.0f} MB")
    print(f"agents alive 10 s after cancel_execution: {survivors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[64, 256], help="agents running at once, a case each")
    parser.add_argument("--samples", type=int, default=3, help="looks per case, one second apart; the median is shown")
    parser.add_argument("--before", type=Path, help="also measure this checkout's server (its own .venv), right after")
    args = parser.parse_args()
    anyio.run(benchmark, args.agents, args.samples)
    if args.before is not None:
        # Its configuration and options refuse more than 64 agents: only those cases are measured there.
        anyio.run(benchmark, [n for n in args.agents if n <= 64], args.samples,
                  str(args.before.resolve() / ".venv" / "bin" / "pcoord"), f"before ({args.before})", 64)
    report_leftovers()


if __name__ == "__main__":
    main()
