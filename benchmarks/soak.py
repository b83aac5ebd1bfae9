"""Soak: does a long-lived server stay small? Many sessions whose agents print large outputs, one server.

`pcoord serve` over stdio runs `--sessions` sessions one after another, each of `--tasks` command agents
that print `--mb` MB each; the server's own RSS (not its pool) is sampled after every session. Pass
`--pcoord` to measure another install (an older release) the same way, for a before/after in one run.

    python benchmarks/soak.py --sessions 20 --tasks 60 --mb 4
    python benchmarks/soak.py --sessions 20 --tasks 60 --mb 4 --pcoord /path/to/old/.venv/bin/pcoord
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import anyio
import psutil
from _common import PCOORD, header, report_leftovers, server_params, server_process, table, temp_root, watch_tree
from mcp import Client


async def soak(pcoord: str, sessions: int, tasks: int, megabytes: int) -> list[tuple[int, float, float]]:
    root = temp_root("soak")
    agents = root / "agents"
    agents.mkdir()
    size = megabytes * 1024 * 1024
    (agents / "print.md").write_text(
        "---\nname: print\ndescription: prints a large output\nrunner: command\n"
        f'command: ["{sys.executable}", "-c", "import sys; sys.stdin.read(); sys.stdout.write(\'x\' * {size})"]\n'
        "---\nPrints.\n"
    )
    samples: list[tuple[int, float, float]] = []
    try:
        async with Client(server_params(root, agents, command=(pcoord, "serve"))) as client:
            server = server_process()
            start_mb = server.memory_info().rss / 2**20
            samples.append((0, start_mb, 0.0))
            for number in range(1, sessions + 1):
                result = await client.call_tool("coordinate_task", {
                    "task_description": f"soak {number}",
                    "subtasks": [{"id": f"t{i}", "description": f"print {number}/{i}", "agent_type": "print"}
                                 for i in range(tasks)],
                    "options": {"wait_seconds": 600, "reuse_results": "off"},
                })
                status = (result.structured_content or {}).get("status")
                if status != "SUCCESS":
                    raise RuntimeError(f"session {number} ended {status}: {result.content}")
                disk = sum(p.stat().st_size for p in (root / "state").rglob("*") if p.is_file()) / 2**20
                samples.append((number, server.memory_info().rss / 2**20, disk))
            watch_tree(server)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=60)
    parser.add_argument("--mb", type=int, default=4)
    parser.add_argument("--pcoord", default=PCOORD, help="the pcoord executable to measure (default: this venv's)")
    args = parser.parse_args()
    header("soak", sessions=args.sessions, tasks=args.tasks, mb_per_output=args.mb, pcoord=Path(args.pcoord))
    samples = anyio.run(soak, args.pcoord, args.sessions, args.tasks, args.mb)
    shown = [s for s in samples if s[0] in (0, 1, 2, 3) or s[0] % 5 == 0 or s[0] == args.sessions]
    table(["after session", "server RSS MB", "state dir MB"], [(n, rss, disk) for n, rss, disk in shown])
    print(f"peak server RSS {max(rss for _, rss, _ in samples):.0f} MB, after the last session"
          f" {samples[-1][1]:.0f} MB (target: under 250 MB after 20 sessions); machine has"
          f" {psutil.virtual_memory().total / 2**30:.0f} GiB")
    report_leftovers()


if __name__ == "__main__":
    main()
