"""The task graph: validating a plan (ids, dependencies, cycles) and measuring its critical paths."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parallel_coordinator.errors import (
    CycleError,
    DuplicateTaskError,
    PlanError,
    UnknownDependencyError,
)

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True)
class TaskNode:
    """One subtask as the engine sees it, after its agent has been resolved."""

    id: str
    description: str
    agent: str
    dependencies: tuple[str, ...] = ()
    priority: int = 3
    timeout_s: float | None = None
    expected_duration_s: float | None = None
    max_attempts: int | None = None
    backoff_s: float | None = None
    fallback_agents: tuple[str, ...] = ()
    resources_required: Mapping[str, object] = field(default_factory=dict)
    output_schema: Mapping[str, Any] | None = None  # JSON Schema its output must match (engine/acceptance.py)
    # Replicas: a subtask with count N is N replica nodes ("id#1".."id#N", replica_of="id") and the node
    # "id" that merges them (merge "all", "vote", or "judge": then its agent is the judge).
    replica_of: str | None = None
    merge: str | None = None


class TaskGraph:
    """A validated DAG of TaskNodes, in the order the caller gave them.

    `remaining_path(id)` is the longest chain of expected work from a task to the end of the graph,
    the task itself included: the scheduler runs the longest chains first.
    """

    def __init__(self, nodes: Sequence[TaskNode], *, default_duration_s: float = 1.0) -> None:
        if not nodes:
            raise PlanError("the plan has no subtasks; pass at least one in `subtasks`")
        self.nodes: dict[str, TaskNode] = {}
        for node in nodes:
            if node.id in self.nodes:
                raise DuplicateTaskError(node.id)
            self.nodes[node.id] = node
        # Imported on first use: networkx takes ~0.1 s to import, which server start need not pay.
        import networkx as nx

        graph: nx.DiGraph = nx.DiGraph()
        graph.add_nodes_from(self.nodes)
        for node in nodes:
            for dep in node.dependencies:
                if dep == node.id:
                    raise CycleError([node.id])
                if dep not in self.nodes:
                    raise UnknownDependencyError(dep, node.id, self.nodes)
                graph.add_edge(dep, node.id)
        # find_cycle is slow on large acyclic graphs (NOTES.md): only look for the evidence once we know.
        if not nx.is_directed_acyclic_graph(graph):
            raise CycleError([edge[0] for edge in nx.find_cycle(graph)])
        self._graph = graph
        self.order: list[str] = list(nx.topological_sort(graph))
        self.dependents: dict[str, list[str]] = {n: list(graph.successors(n)) for n in self.nodes}
        self._remaining: dict[str, float] = {}
        self.reweigh({}, default_duration_s)

    def reweigh(self, durations: Mapping[str, float], default_duration_s: float = 1.0) -> None:
        """Recompute remaining critical paths with per-task duration estimates."""
        self._remaining = self.critical_paths({
            task_id: durations.get(task_id, node.expected_duration_s or default_duration_s)
            for task_id, node in self.nodes.items()
        })

    def critical_paths(self, durations: Mapping[str, float]) -> dict[str, float]:
        """For each task, the longest chain of `durations` from it to the end of the graph, itself included."""
        paths: dict[str, float] = {}
        for task_id in reversed(self.order):
            tail = max((paths[d] for d in self.dependents[task_id]), default=0.0)
            paths[task_id] = durations[task_id] + tail
        return paths

    def remaining_path(self, task_id: str) -> float:
        return self._remaining[task_id]

    def descendants(self, task_id: str) -> set[str]:
        import networkx as nx

        return set(nx.descendants(self._graph, task_id))

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[TaskNode]:
        return iter(self.nodes.values())
