"""Flood: how much one agent flooding stdout delays quiet agents in the same shard (issue 13).

One shard (the local pool backend with one shard at most) runs waves of quiet agents (`sh -c 'echo
quiet'`, each timed from `run()` to its outcome), alone or beside a flooder that writes to stdout as
fast as it can for the whole wave, past its caps before the first quiet agent starts (it is cancelled
after). Conditions are interleaved round by round;
the table shows medians and p90s over every quiet agent, and the flooder's throughput.

Run: .venv/bin/python benchmarks/flood.py [rounds] [waves] [agents-per-wave]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import anyio
from _common import header, median, percentile, report_leftovers, table, temp_root

from parallel_coordinator.execution.pool import LocalPoolBackend
from parallel_coordinator.runners.base import AttemptOutcome, Invocation
from parallel_coordinator.supervisor import SupervisorJob

# Writes past its caps (below) first, says so on stderr, then floods on until cancelled.
FLOODER = [sys.executable, "-c", """
import os
chunk, written = b"x" * 65535 + b"\\n", 0
while written < 16 << 20:
    written += os.write(1, chunk)
os.write(2, b'{"progress": 1, "message": "past its caps"}\\n')
while True:
    os.write(1, chunk)
"""]
FLOOD_CAPS = {"output_cap_bytes": 1 << 20, "disk_cap_bytes": 8 << 20}
QUIET = ["sh", "-c", "echo quiet"]


async def quiet_waves(backend: LocalPoolBackend, root: Path, tag: str, waves: int, per_wave: int) -> list[float]:
    """Each wave starts `per_wave` quiet agents at once; returns every agent's time to its outcome, in ms."""
    latencies: list[float] = []

    async def one(name: str) -> None:
        started = time.perf_counter()
        outcome = await backend.run(SupervisorJob(name, Invocation(QUIET), str(root / name)), lambda _event: None)
        latencies.append((time.perf_counter() - started) * 1000)
        assert (outcome.reason, outcome.exit_code, outcome.stdout) == ("exited", 0, "quiet\n"), outcome.error

    for wave in range(waves):
        async with anyio.create_task_group() as group:
            for i in range(per_wave):
                group.start_soon(one, f"{tag}-w{wave}-q{i}")
    return latencies


async def beside_a_flooder(
    backend: LocalPoolBackend, root: Path, tag: str, waves: int, per_wave: int
) -> tuple[list[float], float]:
    """The quiet waves while a flooder runs in the same shard; also the flooder's MB/s over its life."""
    flooding = anyio.Event()
    flood: dict[str, AttemptOutcome] = {}

    def on_event(event: dict[str, object]) -> None:
        if event.get("event") == "progress":
            flooding.set()

    async def flooder() -> None:
        job = SupervisorJob(f"{tag}-flood", Invocation(FLOODER), str(root / f"{tag}-flood"), **FLOOD_CAPS)
        flood["outcome"] = await backend.run(job, on_event)

    async with anyio.create_task_group() as group:
        group.start_soon(flooder)
        await flooding.wait()
        latencies = await quiet_waves(backend, root, tag, waves, per_wave)
        await backend.cancel(f"{tag}-flood")
    outcome = flood["outcome"]
    assert (outcome.reason, outcome.stdout_truncated, outcome.stdout_cut_on_disk) == ("cancelled", True, True)
    seconds = outcome.finished_at - outcome.started_at
    return latencies, outcome.stdout_bytes / seconds / 1e6


async def main(rounds: int, waves: int, per_wave: int) -> None:
    header("flood", rounds=rounds, waves=waves, agents_per_wave=per_wave, shards=1)
    root = temp_root("flood")
    alone: list[float] = []
    beside: list[float] = []
    rates: list[float] = []
    async with LocalPoolBackend(60, max_shards=1) as backend:
        await quiet_waves(backend, root, "warm", 1, per_wave)  # the shard's worker is started
        for number in range(rounds):
            alone += await quiet_waves(backend, root, f"r{number}-alone", waves, per_wave)
            latencies, rate = await beside_a_flooder(backend, root, f"r{number}-flood", waves, per_wave)
            beside += latencies
            rates.append(rate)
        assert len(backend.shards) == 1
    table(
        ["quiet agents", "median ms", "p90 ms", "max ms", "samples", "flooder MB/s"],
        [
            ["alone", median(alone), percentile(alone, 0.9), max(alone), len(alone), "-"],
            ["beside a flooder", median(beside), percentile(beside, 0.9), max(beside), len(beside), median(rates)],
        ],
    )
    print(f"median delay from the flood: {median(beside) - median(alone):.1f} ms per quiet agent "
          f"({median(beside) / median(alone):.2f}x)")
    report_leftovers()


if __name__ == "__main__":
    args = [int(arg) for arg in sys.argv[1:]]
    anyio.run(main, *(args + [5, 4, 8][len(args):]))
