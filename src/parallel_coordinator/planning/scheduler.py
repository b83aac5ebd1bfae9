"""The scheduler: a pure state machine over a TaskGraph that says which task should start next.

No I/O and no clocks. A task becomes ready the moment its last dependency succeeds (no level
barriers); ready tasks are taken by priority (1 first), then by longest remaining critical path.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from enum import StrEnum

from parallel_coordinator.planning.graph import TaskGraph, TaskNode


class TaskState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


FINAL_STATES = frozenset(
    {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.SKIPPED, TaskState.CANCELLED, TaskState.INTERRUPTED}
)


class Scheduler:
    """Tracks every task's state; `take_ready` hands out the best task that is allowed to start."""

    def __init__(self, graph: TaskGraph) -> None:
        self.graph = graph
        self.state: dict[str, TaskState] = dict.fromkeys(graph.nodes, TaskState.PENDING)
        self.skip_reason: dict[str, str] = {}
        self._unmet: dict[str, int] = {t: len(n.dependencies) for t, n in graph.nodes.items()}
        self._position = {task_id: i for i, task_id in enumerate(graph.nodes)}
        self._ready: list[tuple[int, float, int, str]] = []
        # Kept as tasks move, so the coordinator's per-start questions cost O(1), not O(tasks):
        # the pending tasks in the ready heap, their (agent, declared memory) groups, and the running.
        self._queued: set[str] = set()
        self._groups: Counter[tuple[str, float | None]] = Counter()
        self.running: set[str] = set()
        self._unfinished = len(self.state)
        for task_id, unmet in self._unmet.items():
            if unmet == 0:
                self._push(task_id)

    def _group(self, task_id: str) -> tuple[str, float | None]:
        node = self.graph.nodes[task_id]
        declared = node.resources_required.get("memory_mb")
        if isinstance(declared, int | float) and not isinstance(declared, bool):
            return node.agent, float(declared)
        return node.agent, None

    def _set(self, task_id: str, state: TaskState) -> None:
        if task_id in self._queued and state is not TaskState.PENDING:
            self._queued.discard(task_id)
            group = self._group(task_id)
            self._groups[group] -= 1
            if not self._groups[group]:
                del self._groups[group]
        if state is TaskState.RUNNING:
            self.running.add(task_id)
        else:
            self.running.discard(task_id)
        self._unfinished += (self.state[task_id] in FINAL_STATES) - (state in FINAL_STATES)
        self.state[task_id] = state

    def _push(self, task_id: str) -> None:
        node = self.graph.nodes[task_id]
        key = (node.priority, -self.graph.remaining_path(task_id), self._position[task_id], task_id)
        heapq.heappush(self._ready, key)
        if self.state[task_id] is TaskState.PENDING and task_id not in self._queued:
            self._queued.add(task_id)
            self._groups[self._group(task_id)] += 1

    def take_ready(
        self, allowed: Callable[[str], bool] = lambda _agent: True,
        node_allowed: Callable[[TaskNode], bool] | None = None,
    ) -> str | None:
        """Pop the best ready task whose agent `allowed` accepts (and the node itself `node_allowed`), and mark
        it running."""
        passed_over: list[tuple[int, float, int, str]] = []
        chosen: str | None = None
        while self._ready:
            entry = heapq.heappop(self._ready)
            task_id = entry[3]
            if self.state[task_id] is not TaskState.PENDING:
                continue
            node = self.graph.nodes[task_id]
            if (node_allowed is None or node_allowed(node)) and allowed(node.agent):
                chosen = task_id
                break
            passed_over.append(entry)
        for entry in passed_over:
            heapq.heappush(self._ready, entry)
        if chosen is not None:
            self._set(chosen, TaskState.RUNNING)
        return chosen

    def ready_count(self) -> int:
        """Tasks whose dependencies are met but that have not started: the queue."""
        return len(self._queued)

    def ready_ids(self) -> list[str]:
        return [e[3] for e in self._ready if self.state[e[3]] is TaskState.PENDING]

    def ready_groups(self) -> Counter[tuple[str, float | None]]:
        """The queue counted by (agent, declared `memory_mb` or None): what its tasks may need."""
        return self._groups

    def succeed(self, task_id: str) -> list[str]:
        """Mark a task succeeded; returns the dependents that just became ready."""
        self._set(task_id, TaskState.SUCCEEDED)
        return [dependent for dependent in self.graph.dependents[task_id] if self._met_one(dependent)]

    def _met_one(self, dependent: str) -> bool:
        """One more dependency of `dependent` is done; True when that made it ready."""
        self._unmet[dependent] -= 1
        if self._unmet[dependent] == 0 and self.state[dependent] is TaskState.PENDING:
            self._push(dependent)
            return True
        return False

    def mark_succeeded(self, task_id: str) -> list[str]:
        """A task whose result is already known (a resumed session): succeed it without running it."""
        self._set(task_id, TaskState.RUNNING)
        return self.succeed(task_id)

    def fail(self, task_id: str, state: TaskState = TaskState.FAILED) -> list[str]:
        """Mark a task failed for good; every pending task below it is skipped. Returns those."""
        self._set(task_id, state)
        below: set[str] = set()
        for dependent in self.graph.dependents[task_id]:
            if self.graph.nodes[task_id].replica_of == dependent:
                self._met_one(dependent)  # the task merging a subtask's replicas takes the failed ones too
            else:
                below |= {dependent, *self.graph.descendants(dependent)}
        skipped = []
        for dependent in sorted(below, key=self._position.__getitem__):
            if self.state[dependent] is TaskState.PENDING:
                self._set(dependent, TaskState.SKIPPED)
                self.skip_reason[dependent] = f"skipped: dependency {task_id!r} {state.value}"
                skipped.append(dependent)
        return skipped

    def cancel_pending(self) -> list[str]:
        """Mark every task that has not started cancelled; returns them."""
        cancelled = [t for t, s in self.state.items() if s is TaskState.PENDING]
        for task_id in cancelled:
            self._set(task_id, TaskState.CANCELLED)
        return cancelled

    def count(self, state: TaskState) -> int:
        return sum(1 for s in self.state.values() if s is state)

    @property
    def finished(self) -> bool:
        return self._unfinished == 0
