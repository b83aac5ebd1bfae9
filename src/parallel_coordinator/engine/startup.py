"""What a server does as it starts: learn from past runs, and clean up after servers that died."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from parallel_coordinator.execution.worktrees import prune_orphans, remove_session_worktrees
from parallel_coordinator.planning.estimates import DurationEstimator
from parallel_coordinator.planning.forecast import UsageHistory
from parallel_coordinator.planning.graph import TaskGraph
from parallel_coordinator.state.store import Store

log = logging.getLogger(__name__)

_LEARN_FROM = 1000  # past attempts the duration estimates start from


def learn_durations(store: Store, estimator: DurationEstimator) -> None:
    estimator.seed(
        (a.agent, a.finished_at - a.started_at)
        for a in reversed(store.recent_attempts(_LEARN_FROM))
        if a.outcome == "exited" and a.error is None and a.started_at and a.finished_at
    )


def learn_usage(store: Store, usage: UsageHistory) -> None:
    """What each agent's past runs used, for the forecasts (stored per task: the model is not known here)."""
    usage.seed((agent, None, tokens, usd) for agent, tokens, usd in reversed(store.recent_usage(_LEARN_FROM)))


def recover(store: Store, worktrees_dir: Path) -> list[str]:
    """Mark the sessions of servers that died as interrupted, and remove their worktrees."""
    recovered = store.recover_orphans(time.time())
    for session_id in recovered:
        remove_session_worktrees(worktrees_dir, session_id)
    if worktrees_dir.exists():
        prune_orphans(worktrees_dir)
    if recovered:
        log.warning("%d session(s) were running when a server stopped; marked interrupted: %s",
                    len(recovered), ", ".join(recovered))
    return recovered


def weigh_by_learned_durations(graph: TaskGraph, estimator: DurationEstimator) -> None:
    """Critical-path priority from what each agent's runs took; a caller's expected_duration still wins.

    Once any agent of the graph is known, every task is weighed in seconds: its expected duration, else
    its agent's learned one, else the estimator's default (the same figures the ETA uses), so that
    known and unknown agents compare in one unit. With nothing learned the graph keeps its weights.
    """
    if not any(estimator.known(node.agent) for node in graph.nodes.values()):
        return
    graph.reweigh({
        task_id: node.expected_duration_s if node.expected_duration_s is not None else estimator.estimate(node.agent)
        for task_id, node in graph.nodes.items()
    })
