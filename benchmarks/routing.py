"""Routing: top-1, top-3 and top-5 accuracy of our router and of the candidates measured against it, side by side.

Over the VoltAgent collection, by split of benchmarks/routing_tasks.yaml: `tune` (the only rows
weights were chosen on, with the table of tests/planning/test_routing.py), `held-out` and `fresh`
(never tuned on). A task counts as a hit when an acceptable agent is first (top-1) or among the
first three (top-3) or five (top-5: the candidates the planner's re-rank chooses among, so its
ceiling). Then the cost: building the index and routing one subtask, over the collection and over a
catalogue of N agents made of its files repeated under new names, and what a plan pays for its
router with the index built per plan or kept (RouterCache). The bm25s rows need
`pip install -e '.[bench]'`; without it they are left out, with a word on stderr.

Run: .venv/bin/python benchmarks/routing.py [--agents 5000] [--misses] (~1 min on 2 cores)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import yaml
from _common import header, median, table

from parallel_coordinator.agents import AgentSpec, discover_agents
from parallel_coordinator.planning.routing import Router, RouterCache

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[1] / "shared" / "corpus" / "agents-voltagent"
TASKS = HERE / "routing_tasks.yaml"
TESTS = HERE.parent / "tests" / "planning"


class _Ranked(Protocol):
    agent: str


class _Ranker(Protocol):
    def rank(self, text: str) -> Sequence[_Ranked]: ...


Case = tuple[str, frozenset[str]]


def evaluation_set(split: str | None = None) -> list[Case]:
    """The tasks of routing_tasks.yaml, all of them or those of one split (tune, held-out, fresh)."""
    rows: list[dict[str, Any]] = yaml.safe_load(TASKS.read_text())
    return [(row["task"], frozenset(row["acceptable"])) for row in rows if split in (None, row["split"])]


def test_table() -> list[Case]:
    sys.path.insert(0, str(TESTS))
    from test_routing import TABLE  # the tests' own table, read where it lives

    return list(TABLE)


def accuracy(
    router: _Ranker, cases: Iterable[Case], misses: list[str] | None = None
) -> tuple[float, float, float]:
    top1 = top3 = top5 = total = 0
    for task, acceptable in cases:
        ranked = [r.agent for r in router.rank(task)[:5]]
        total += 1
        top1 += ranked[0] in acceptable
        top3 += bool(acceptable & set(ranked[:3]))
        top5 += bool(acceptable & set(ranked))
        if misses is not None and ranked[0] not in acceptable:
            misses.append(f"  {task[:70]!r}: got {ranked[:3]}, want {sorted(acceptable)}")
    return top1 / total, top3 / total, top5 / total


def catalogue(agents: list[AgentSpec], size: int) -> list[AgentSpec]:
    """`size` agents: the collection's files again and again, each copy under a name of its own."""
    return [
        agents[i % len(agents)].model_copy(update={"name": f"{agents[i % len(agents)].name}-{i}"}) for i in range(size)
    ]


def cost(
    make: Callable[[list[AgentSpec]], _Ranker], agents: list[AgentSpec], queries: list[str]
) -> tuple[float, float]:
    """Median milliseconds to build the index, and to rank one query, over three rounds."""
    builds, ranks = [], []
    for _ in range(3):
        started = time.perf_counter()
        router = make(agents)
        builds.append(time.perf_counter() - started)
        started = time.perf_counter()
        for query in queries:
            router.rank(query)
        ranks.append((time.perf_counter() - started) / len(queries))
    return median(builds) * 1000, median(ranks) * 1000


def routers() -> dict[str, Callable[[list[AgentSpec]], _Ranker]]:
    found: dict[str, Callable[[list[AgentSpec]], _Ranker]] = {
        "ours: hand-written BM25 (planning/routing.py)": Router,
    }
    try:
        from _routing_candidates import FieldsApart, LibraryDefaults
    except ImportError as missing:
        sys.stderr.write(f"bm25s rows left out ({missing}): pip install -e '.[bench]'\n")
        return found
    found["bm25s + PyStemmer, as the library comes"] = LibraryDefaults
    found["bm25s, fields apart, Snowball, tuned"] = FieldsApart
    found["  same, compound words split"] = partial(FieldsApart, words="compound")
    found["  same, + declared expertise field (0.5)"] = partial(
        FieldsApart, weights={"name": 2.0, "description": 1.0, "expertise": 0.5, "prompt": 1.5}
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=5000, help="catalogue size for the cost rows")
    parser.add_argument("--misses", action="store_true", help="list the tasks each router gets wrong at top-1")
    args = parser.parse_args()
    if not CORPUS.is_dir():
        raise SystemExit(f"the VoltAgent corpus is not at {CORPUS}: it lives in ../shared beside the repository")
    agents = list(discover_agents([(CORPUS, "user")]).agents.values())
    candidates = routers()
    sets = {
        "tune": evaluation_set("tune"),
        "test table": test_table(),
        "held-out": evaluation_set("held-out"),
        "fresh": evaluation_set("fresh"),
    }
    sets["held-out + fresh"] = sets["held-out"] + sets["fresh"]
    tasks = len(evaluation_set()) + len(test_table())
    header("routing accuracy, top-1 / top-3 / top-5", agents=len(agents), tasks=tasks)
    rows = []
    missed: dict[str, list[str]] = {}
    for router_name, make in candidates.items():
        router = make(agents)
        row = [router_name]
        for set_name, cases in sets.items():
            misses = missed.setdefault(f"{router_name.strip()}, {set_name}", [])
            top1, top3, top5 = accuracy(router, cases, misses)
            row.append(f"{top1:.0%} / {top3:.0%} / {top5:.0%}")
        rows.append(row)
    table(["router", *(f"{name} ({len(cases)})" for name, cases in sets.items())], rows)
    if args.misses:
        for name, lines in missed.items():
            if lines and not name.endswith("held-out + fresh"):
                sys.stderr.write(f"\nmissed at top-1, {name}:\n" + "\n".join(lines) + "\n")
    queries = [task for task, _ in evaluation_set()][:20]
    rows = []
    for size_name, pool in (("collection", agents), (f"{args.agents} agents", catalogue(agents, args.agents))):
        for router_name, make in candidates.items():
            build, rank = cost(make, pool, queries)
            rows.append([size_name, router_name, f"{build:.1f}", f"{rank:.2f}"])
    header("routing cost, median of 3 rounds", queries=len(queries))
    table(["catalogue", "router", "build ms", "rank ms/query"], rows)
    rows = []
    for size_name, pool in (("collection", agents), (f"{args.agents} agents", catalogue(agents, args.agents))):
        fresh, kept = plans_cost(pool, queries[:3])
        rows.append([size_name, f"{fresh:.1f}", f"{kept:.1f}"])
    header("a plan of 3 routed subtasks, median of 5 plans after the first", agents=args.agents)
    table(["catalogue", "index built per plan, ms", "index kept (RouterCache), ms"], rows)


def plans_cost(agents: list[AgentSpec], queries: list[str]) -> tuple[float, float]:
    """Median milliseconds a plan spends routing `queries`: building its own Router, or asking a RouterCache."""
    def per_plan(route: Callable[[], _Ranker]) -> float:
        times = []
        for _ in range(6):
            started = time.perf_counter()
            router = route()
            for query in queries:
                router.rank(query)
            times.append(time.perf_counter() - started)
        return median(times[1:]) * 1000  # the first plan builds the kept index too

    cache = RouterCache()
    return per_plan(lambda: Router(agents)), per_plan(lambda: cache.router(agents))


if __name__ == "__main__":
    main()
