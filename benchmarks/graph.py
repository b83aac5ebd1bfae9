"""Graph: makespan of random DAGs of sleeping agents against the lower bound, ours beside Dask and a barrier.

The lower bound on P slots is max(critical path, total work / P), computed from the durations actually
assigned. Every alternative runs the same executable (`/bin/sleep <d>`) for each task, on the same DAG
(fixed seed); rounds are interleaved and the table shows medians. Pools and clusters are warm when the
clock starts: a server's steady state, not its start-up.

- parallel coordinator: Coordinator.plan + start in this process, options.max_agents = slots; once with
  each task's `expected_duration` as a hint, once without (every task weighs the same).
- dask: the same graph as Dask futures with dependencies on a LocalCluster of worker processes
  totalling `slots` threads, each task running the executable through subprocess. It runs in a
  child process, since importing `distributed` here slows loky (NOTES.md).
- barrier: level by level (networkx topological_generations), at most `slots` at once, the whole
  level awaited before the next.

Run: .venv/bin/python benchmarks/graph.py [--sizes 50] [--slots 8 64] [--rounds 2] (~45 s on 2 cores)
Issue 7's full run: --sizes 200 1000 --rounds 3 --alternatives coordinator "coordinator + hints" dask barrier
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import networkx as nx
from _common import header, median, report_leftovers, table, temp_root, write_agents

SLEEP = "/bin/sleep"
STEPS_MS = range(20, 201, 10)  # durations in 10 ms steps: one agent file per step


@dataclass(frozen=True)
class Dag:
    durations: list[float]  # seconds, per task
    deps: list[list[int]]  # indices of earlier tasks

    @classmethod
    def random(cls, size: int, seed: int) -> Dag:
        """Each task depends on 0-3 tasks among the previous size/8, so the graph is neither a chain nor flat."""
        rng = random.Random(seed)
        window = max(10, size // 8)
        durations = [rng.choice(STEPS_MS) / 1000 for _ in range(size)]
        deps = [
            sorted(rng.sample(range(max(0, i - window), i), min(i, rng.choice([0, 1, 1, 2, 2, 3]))))
            for i in range(size)
        ]
        return cls(durations, deps)

    def critical_path(self) -> float:
        finish: list[float] = []
        for i, duration in enumerate(self.durations):
            finish.append(duration + max((finish[d] for d in self.deps[i]), default=0.0))
        return max(finish)

    def lower_bound(self, slots: int) -> float:
        return max(self.critical_path(), sum(self.durations) / slots)

    def levels(self) -> list[list[int]]:
        graph: nx.DiGraph = nx.DiGraph()
        graph.add_nodes_from(range(len(self.durations)))
        graph.add_edges_from((d, i) for i, deps in enumerate(self.deps) for d in deps)
        return [sorted(level) for level in nx.topological_generations(graph)]

    def to_json(self) -> dict[str, Any]:
        return {"durations": self.durations, "deps": self.deps}


def argv_of(duration: float) -> list[str]:
    return [SLEEP, f"{duration:.3f}"]


def agent_name(duration: float) -> str:
    return f"sleep-{round(duration * 1000)}ms"


# Alternatives -------------------------------------------------------------------------------------


def barrier(dag: Dag, slots: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(slots) as threads:
        for level in dag.levels():
            list(threads.map(lambda i: subprocess.run(argv_of(dag.durations[i]), check=True), level))
    return time.perf_counter() - started


class DaskChild:
    """A child process holding a warm LocalCluster of `slots` threads; one DAG a line in, one makespan out.

    Starting Python, distributed and a cluster takes ~6 s on 2 cores: paid once per slot count.
    """

    def __init__(self, slots: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--dask-worker-mode", str(slots)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self._read()  # the cluster is up and warm: nothing of its start-up overlaps a measured run

    def _read(self) -> dict[str, float]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the dask child exited with {self.process.wait()}")
        answer: dict[str, float] = json.loads(line)
        return answer

    def __call__(self, dag: Dag) -> float:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(dag.to_json()) + "\n")
        self.process.stdin.flush()
        return self._read()["makespan"]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def run_sleep(argv: list[str], *_dependencies: object) -> None:
    subprocess.run(argv, check=True)


def dask_worker_mode(slots: int) -> None:
    """Per DAG read on stdin (one JSON line), run it on a warm LocalCluster of `slots` threads and print
    {"makespan": s}; the clock runs from the first submit to the last task's end."""
    import psutil
    from distributed import Client, LocalCluster, wait

    workers = max(w for w in range(1, psutil.cpu_count() + 1) if slots % w == 0)
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=slots // workers, processes=True,
            dashboard_address=":0", silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        wait([client.submit(run_sleep, [SLEEP, "0"], pure=False) for _ in range(slots)])  # warm the workers
        print(json.dumps({"ready": 1}), flush=True)
        for number, line in enumerate(sys.stdin):
            request = json.loads(line)
            dag = Dag(request["durations"], request["deps"])
            started = time.perf_counter()
            futures: list[Any] = []
            for i, duration in enumerate(dag.durations):
                deps = [futures[d] for d in dag.deps[i]]
                futures.append(client.submit(run_sleep, argv_of(duration), *deps, key=f"r{number}-t{i}", pure=False))
            wait(futures)
            makespan = time.perf_counter() - started
            errors = [f for f in futures if f.status != "finished"]
            if errors:
                raise RuntimeError(f"{len(errors)} dask tasks did not finish: {errors[0].exception()}")
            del futures
            print(json.dumps({"makespan": makespan}), flush=True)


def coordinator_alternative(root: Path) -> tuple[Callable[[Dag, int, bool], Awaitable[float]], Any]:
    """Our scheduler in this process: one warm Coordinator for every run. Returns (run, async context)."""
    from parallel_coordinator.config.settings import Settings
    from parallel_coordinator.engine.coordinator import Coordinator
    from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

    # A 2-core machine running 64 agents is at 100% CPU: the coordinator's alerts about it are expected here.
    logging.getLogger("parallel_coordinator").setLevel(logging.ERROR)
    agents = write_agents(root / "agents", {agent_name(ms / 1000): argv_of(ms / 1000) for ms in STEPS_MS})
    settings = Settings(
        state_dir=root / "state", agent_dirs=[(agents, "env")], max_cpu_usage=100, performance_logging=False,
    )
    coordinator = Coordinator(settings)

    async def run(dag: Dag, slots: int, hints: bool) -> float:
        options = CoordinateOptions(max_agents=slots, wait_seconds=0, retry_attempts=1, reuse_results="off")
        subtasks = [
            Subtask(
                id=f"t{i}", description=f"sleep {duration:.3f}", agent_type=agent_name(duration),
                dependencies=[f"t{d}" for d in dag.deps[i]], expected_duration=duration if hints else None,
            )
            for i, duration in enumerate(dag.durations)
        ]
        started = time.perf_counter()
        session = await coordinator.start("graph", coordinator.plan(subtasks, options), options)
        await session.done.wait()
        elapsed = time.perf_counter() - started
        if session.status != "SUCCESS":
            raise RuntimeError(f"session ended {session.status}: {session.error_summary}")
        return elapsed

    return run, coordinator


ALTERNATIVES = ["coordinator", "coordinator + hints", "dask", "barrier"]


async def benchmark(sizes: list[int], slot_counts: list[int], rounds: int, seed: int, names: list[str]) -> None:
    root = temp_root("graph")
    run_ours, coordinator = coordinator_alternative(root)
    dags = {size: Dag.random(size, seed + size) for size in sizes}
    times: dict[tuple[int, int, str], list[float]] = {}
    async with coordinator:
        warm = Dag([0.02] * max(slot_counts), [[] for _ in range(max(slot_counts))])
        await run_ours(warm, max(slot_counts), False)  # the pool grows to its size once
        for slots in slot_counts:  # one Dask cluster alive at a time
            dask = DaskChild(slots) if "dask" in names else None
            try:
                for _ in range(rounds):
                    for size, dag in dags.items():
                        for name in names:  # interleaved, so drift hits everyone alike
                            if dask is not None and name == "dask":
                                elapsed = await anyio.to_thread.run_sync(dask, dag)
                            elif name == "barrier":
                                elapsed = await anyio.to_thread.run_sync(barrier, dag, slots)
                            else:
                                elapsed = await run_ours(dag, slots, name.endswith("hints"))
                            times.setdefault((size, slots, name), []).append(elapsed)
            finally:
                if dask is not None:
                    await anyio.to_thread.run_sync(dask.close)

    header(
        "graph", sizes=sizes, slots=slot_counts, rounds=rounds, seed=seed, durations="20-200 ms of /bin/sleep",
        baseline=names[0],
    )
    rows: list[list[object]] = []
    for size, dag in dags.items():
        levels = len(dag.levels())
        for slots in slot_counts:
            bound = dag.lower_bound(slots)
            ours = median(times[(size, slots, names[0])])
            for name in names:
                makespan = median(times[(size, slots, name)])
                rows.append([
                    f"{size} tasks/{slots} slots: {name}", round(dag.critical_path(), 3),
                    round(sum(dag.durations) / slots, 3), levels, makespan, bound, makespan / bound, makespan / ours,
                ])
    table(["graph / alternative", "crit s", "work/P s", "levels", "median s", "bound s", "/bound", "/ours"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50], help="tasks per DAG (issue 7: 200 1000)")
    parser.add_argument("--slots", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--alternatives", nargs="+", choices=ALTERNATIVES, default=["coordinator", "dask", "barrier"],
        help="the first is the baseline of the /ours column; 'coordinator + hints' passes each duration as"
        " expected_duration",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dask-worker-mode", type=int, metavar="SLOTS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dask_worker_mode:
        dask_worker_mode(args.dask_worker_mode)
        return
    anyio.run(benchmark, args.sizes, args.slots, args.rounds, args.seed, args.alternatives)
    report_leftovers()


if __name__ == "__main__":
    main()
