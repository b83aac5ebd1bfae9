"""The scheduler's kept counts (queue, its groups, running, finished) against a walk over every task."""

from __future__ import annotations

import random
from collections import Counter

from parallel_coordinator.planning.graph import TaskGraph, TaskNode
from parallel_coordinator.planning.scheduler import FINAL_STATES, Scheduler, TaskState


def _graph(rng: random.Random, size: int) -> TaskGraph:
    nodes = []
    for i in range(size):
        deps = tuple(f"t{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 2))))
        need = rng.choice([None, 100, 300])
        nodes.append(TaskNode(
            id=f"t{i}", description="x", agent=rng.choice("ab"), dependencies=deps,
            priority=rng.randint(1, 3), resources_required={} if need is None else {"memory_mb": need},
        ))
    return TaskGraph(nodes)


def _check(scheduler: Scheduler) -> None:
    queued = scheduler.ready_ids()
    assert scheduler.ready_count() == len(queued)
    expected: Counter[tuple[str, float | None]] = Counter()
    for task_id in queued:
        node = scheduler.graph.nodes[task_id]
        need = node.resources_required.get("memory_mb")
        expected[(node.agent, float(need) if isinstance(need, int) else None)] += 1
    assert scheduler.ready_groups() == expected
    assert scheduler.running == {t for t, s in scheduler.state.items() if s is TaskState.RUNNING}
    assert scheduler.finished == all(s in FINAL_STATES for s in scheduler.state.values())


def test_kept_counts_match_a_full_walk_through_random_runs() -> None:
    rng = random.Random(7)
    for _ in range(30):
        scheduler = Scheduler(_graph(rng, 40))
        _check(scheduler)
        while not scheduler.finished:
            move = rng.random()
            if move < 0.05:
                scheduler.cancel_pending()
            elif scheduler.running and move < 0.5:
                task_id = rng.choice(sorted(scheduler.running))
                if rng.random() < 0.8:
                    scheduler.succeed(task_id)
                else:
                    scheduler.fail(task_id)
            else:
                taken = scheduler.take_ready(lambda agent: agent == "a" or rng.random() < 0.7)
                if taken is None and not scheduler.running:
                    scheduler.cancel_pending()
            _check(scheduler)
