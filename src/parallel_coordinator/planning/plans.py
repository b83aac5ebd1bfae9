"""A plan, validated: subtasks (a caller's, or a stored session's) become a TaskGraph and the agents it uses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psutil

from parallel_coordinator.errors import PlanError, UnknownAgentError
from parallel_coordinator.planning.graph import TaskGraph, TaskNode
from parallel_coordinator.planning.routing import Router

if TYPE_CHECKING:
    from parallel_coordinator.agents import AgentCatalog, AgentSpec
    from parallel_coordinator.schemas.inputs import Subtask
    from parallel_coordinator.state.store import StoredTask


@dataclass(frozen=True)
class PlannedSession:
    """A validated plan, before it runs: the graph, the agents it uses and why each was chosen."""

    graph: TaskGraph
    agents: dict[str, AgentSpec]
    routing_notes: dict[str, str]


def build_plan(subtasks: Sequence[Subtask], default_attempts: int, catalog: AgentCatalog) -> PlannedSession:
    """Validate a caller's subtasks into a graph; route subtasks that name no agent."""
    if not subtasks:
        raise PlanError("the plan has no subtasks; pass at least one in `subtasks`")
    router: Router | None = None
    nodes, agents, notes = [], {}, {}
    for sub in subtasks:
        name = sub.agent_type
        if name is None:
            if not len(catalog):
                raise PlanError(
                    f"task {sub.id!r} names no agent_type and no agents were found to route it to; "
                    "run `pcoord agents` to see where agents are looked for"
                )
            router = router or Router(catalog.agents.values())
            route = router.best(sub.description)
            if route is None:  # a non-empty catalogue always has a best agent
                raise PlanError(f"task {sub.id!r} could not be routed to any of {len(catalog)} agents")
            name = route.agent
            notes[sub.id] = route.reason
        spec = catalog.get(name)
        if spec is None:
            raise UnknownAgentError(name, sub.id, catalog.names())
        fallbacks = tuple(sub.fallback_agents or spec.fallback_agents)
        for fallback in fallbacks:
            if fallback not in catalog:
                raise UnknownAgentError(fallback, sub.id, catalog.names())
            agents[fallback] = catalog.agents[fallback]
        agents[name] = spec
        _check_memory_need(sub)
        policy = sub.retry_policy
        nodes.append(_node(
            sub.id, sub.description, name, sub.dependencies, sub.priority, {
                "timeout_s": sub.timeout or spec.timeout, "expected_duration_s": sub.expected_duration,
                "max_attempts": policy.max_attempts if policy else default_attempts,
                "backoff_s": policy.backoff_seconds if policy else None,
                "fallback_agents": fallbacks, "resources_required": sub.resources_required or {},
            },
        ))
    return PlannedSession(TaskGraph(nodes), agents, notes)


def plan_from_stored(tasks: Sequence[StoredTask], catalog: AgentCatalog) -> PlannedSession:
    """The graph of a stored session, for resume_session; its agents as the catalogue has them now."""
    nodes, agents = [], {}
    for task in tasks:
        for name in (task.agent, *task.spec.get("fallback_agents", [])):
            agent = catalog.get(name)
            if agent is None:
                raise UnknownAgentError(name, task.task_id, catalog.names())
            agents[name] = agent
        nodes.append(_node(task.task_id, task.description, task.agent, task.dependencies, task.priority, task.spec))
    return PlannedSession(TaskGraph(nodes), agents, {})


def _node(
    task_id: str, description: str, agent: str, dependencies: Sequence[str], priority: int, spec: dict[str, Any]
) -> TaskNode:
    """The one place a TaskNode is built from a plan: `spec` is what node_spec stores."""
    return TaskNode(
        id=task_id, description=description, agent=agent, dependencies=tuple(dict.fromkeys(dependencies)),
        priority=priority, timeout_s=spec.get("timeout_s"), expected_duration_s=spec.get("expected_duration_s"),
        max_attempts=spec.get("max_attempts"), backoff_s=spec.get("backoff_s"),
        fallback_agents=tuple(spec.get("fallback_agents") or ()),
        resources_required=dict(spec.get("resources_required") or {}),
    )


def node_spec(node: TaskNode) -> dict[str, Any]:
    """What a stored task needs, beyond its columns, to be run again by resume_session."""
    return {
        "timeout_s": node.timeout_s, "expected_duration_s": node.expected_duration_s,
        "max_attempts": node.max_attempts, "backoff_s": node.backoff_s,
        "fallback_agents": list(node.fallback_agents), "resources_required": dict(node.resources_required),
    }


def _check_memory_need(sub: Subtask) -> None:
    """A declared need the machine can never meet would wait forever: refuse it with the figures."""
    declared = (sub.resources_required or {}).get("memory_mb")
    if isinstance(declared, int | float) and not isinstance(declared, bool):
        total = psutil.virtual_memory().total / (1024 * 1024)
        if declared > total:
            raise PlanError(
                f"task {sub.id!r} declares memory_mb {declared:g}, but this machine has {total:,.0f} MB in all;"
                " lower resources_required.memory_mb"
            )
