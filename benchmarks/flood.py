"""Noisy neighbours: how much one agent flooding stdout, or one with 200 children, delays quiet agents in
the same shard (issue 13).

One shard (the local pool backend with one shard at most) runs waves of quiet agents (`sh -c 'echo
quiet'`, each timed from `run()` to its outcome) for a few seconds in each condition: alone, beside a
flooder that writes to stdout as fast as it can (past its caps before the first quiet agent starts), and
beside a forker holding 200 children (the shard samples its tree's memory every second). The neighbour
is cancelled after the waves. Conditions are interleaved round by round; the table shows medians and p90s
over every quiet agent. PCOORD_PORTABLE=1 measures the POSIX paths (macOS's).

Run: .venv/bin/python benchmarks/flood.py [rounds] [seconds-per-condition] [agents-per-wave]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import anyio
from _common import header, median, percentile, report_leftovers, table, temp_root

from parallel_coordinator.execution.pool import LocalPoolBackend
from parallel_coordinator.runners.base import AttemptOutcome, Invocation
from parallel_coordinator.supervisor import SupervisorJob

READY = "import os\nos.write(2, b'{\"progress\": 1, \"message\": \"ready\"}\\n')\n"
# Writes past its caps first, says it is ready on stderr, then floods on until cancelled.
FLOODER = [sys.executable, "-c", f"""
import os
chunk, written = b"x" * 65535 + b"\\n", 0
while written < 16 << 20:
    written += os.write(1, chunk)
{READY}
while True:
    os.write(1, chunk)
"""]
FLOOD_CAPS = {"output_cap_bytes": 1 << 20, "disk_cap_bytes": 8 << 20}
FORKER = [sys.executable, "-c", f"""
import os, signal
for _ in range(200):
    if os.fork() == 0:
        while True:
            signal.pause()
{READY}
while True:
    signal.pause()
"""]
QUIET = ["sh", "-c", "echo quiet"]


async def quiet_waves(backend: LocalPoolBackend, root: Path, tag: str, seconds: float, per_wave: int) -> list[float]:
    """Waves of `per_wave` quiet agents started at once, one after the other for `seconds` (several of the
    shard's memory samples); returns every agent's time to its outcome, in ms."""
    latencies: list[float] = []

    async def one(name: str) -> None:
        started = time.perf_counter()
        outcome = await backend.run(SupervisorJob(name, Invocation(QUIET), str(root / name)), lambda _event: None)
        latencies.append((time.perf_counter() - started) * 1000)
        assert (outcome.reason, outcome.exit_code, outcome.stdout) == ("exited", 0, "quiet\n"), outcome.error

    until, wave = time.monotonic() + seconds, 0
    while wave == 0 or time.monotonic() < until:
        async with anyio.create_task_group() as group:
            for i in range(per_wave):
                group.start_soon(one, f"{tag}-w{wave}-q{i}")
        wave += 1
    return latencies


async def beside(
    backend: LocalPoolBackend, root: Path, tag: str, argv: list[str], caps: dict[str, Any],
    seconds: float, per_wave: int,
) -> tuple[list[float], AttemptOutcome]:
    """The quiet waves once a neighbour in the same shard says it is ready, then the neighbour's outcome."""
    ready = anyio.Event()
    ended: list[AttemptOutcome] = []

    def on_event(event: dict[str, object]) -> None:
        if event.get("event") == "progress":
            ready.set()

    async def neighbour() -> None:
        ended.append(await backend.run(SupervisorJob(f"{tag}-n", Invocation(argv), str(root / f"{tag}-n"), **caps),
                                       on_event))

    async with anyio.create_task_group() as group:
        group.start_soon(neighbour)
        await ready.wait()
        latencies = await quiet_waves(backend, root, tag, seconds, per_wave)
        await backend.cancel(f"{tag}-n")
    assert ended[0].reason == "cancelled", ended[0].error
    return latencies, ended[0]


async def main(rounds: int, seconds: float, per_wave: int) -> None:
    header("noisy neighbours", rounds=rounds, seconds=seconds, agents_per_wave=per_wave, shards=1)
    root = temp_root("flood")
    samples: dict[str, list[float]] = {"alone": [], "beside a flooder": [], "beside 200 children": []}
    flood_rates: list[float] = []
    async with LocalPoolBackend(60, max_shards=1) as backend:
        await quiet_waves(backend, root, "warm", 0, per_wave)  # the shard's worker is started
        for number in range(rounds):
            samples["alone"] += await quiet_waves(backend, root, f"r{number}-alone", seconds, per_wave)
            latencies, flood = await beside(backend, root, f"r{number}-flood", FLOODER, FLOOD_CAPS, seconds, per_wave)
            assert (flood.stdout_truncated, flood.stdout_cut_on_disk) == (True, True)
            samples["beside a flooder"] += latencies
            flood_rates.append(flood.stdout_bytes / (flood.finished_at - flood.started_at) / 1e6)
            latencies, forker = await beside(backend, root, f"r{number}-fork", FORKER, {}, seconds, per_wave)
            assert forker.killed_processes == 201, forker.killed_processes
            samples["beside 200 children"] += latencies
        assert len(backend.shards) == 1
    base = median(samples["alone"])
    table(
        ["quiet agents", "median ms", "p90 ms", "max ms", "samples", "vs alone"],
        [[name, median(ms), percentile(ms, 0.9), max(ms), len(ms), f"{median(ms) / base:.2f}x"]
         for name, ms in samples.items()],
    )
    print(f"the flooder wrote {median(flood_rates):.0f} MB/s over its life (median)")
    report_leftovers()


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:]]
    anyio.run(main, *(args + [5, 3, 8][len(args):]))
