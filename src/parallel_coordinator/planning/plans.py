"""A plan, validated: subtasks (a caller's, or a stored session's) become a TaskGraph and the agents it uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from parallel_coordinator.errors import PlanError, UnknownAgentError
from parallel_coordinator.planning.graph import TaskGraph, TaskNode
from parallel_coordinator.planning.rerank import CANDIDATES, Routed
from parallel_coordinator.planning.routing import Route, Router, RouterCache

if TYPE_CHECKING:
    from parallel_coordinator.agents import AgentCatalog, AgentSpec
    from parallel_coordinator.schemas.inputs import Subtask
    from parallel_coordinator.state.store import StoredTask


@dataclass(frozen=True)
class PlannedSession:
    """A validated plan, before it runs: the graph, the agents it uses and why each was chosen.

    `candidates`: for each subtask the router placed, its top lexical routes, for the planner to re-rank.
    """

    graph: TaskGraph
    agents: dict[str, AgentSpec]
    routing_notes: dict[str, str]
    candidates: dict[str, tuple[Route, ...]] = field(default_factory=dict)


def build_plan(
    subtasks: Sequence[Subtask], default_attempts: int, catalog: AgentCatalog, *,
    routers: RouterCache | None = None, routed: Mapping[str, Routed] | None = None,
) -> PlannedSession:
    """Validate a caller's subtasks into a graph; route subtasks that name no agent.

    `routed` holds agents already chosen for such subtasks (the planner's re-rank), by id; the others
    are routed lexically, on the router `routers` keeps for this catalogue (a new one without it).
    """
    if not subtasks:
        raise PlanError("the plan has no subtasks; pass at least one in `subtasks`")
    router: Router | None = None
    nodes, agents, notes, candidates = [], {}, {}, {}
    for sub in subtasks:
        name = sub.agent_type
        if name is None:
            if not len(catalog):
                raise PlanError(
                    f"task {sub.id!r} names no agent_type and no agents were found to route it to; "
                    "run `pcoord agents` to see where agents are looked for"
                )
            chosen = (routed or {}).get(sub.id)
            if chosen is None:
                if router is None:
                    router = routers.router(catalog.agents.values()) if routers else Router(catalog.agents.values())
                ranked = router.rank(sub.description)
                if not ranked:  # a non-empty catalogue always has a best agent
                    raise PlanError(f"task {sub.id!r} could not be routed to any of {len(catalog)} agents")
                candidates[sub.id] = tuple(ranked[:CANDIDATES])
                chosen = Routed(ranked[0].agent, ranked[0].reason)
            name = chosen.agent
            notes[sub.id] = chosen.reason
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
        node_spec = {
            "timeout_s": sub.timeout or spec.timeout, "expected_duration_s": sub.expected_duration,
            "max_attempts": policy.max_attempts if policy else default_attempts,
            "backoff_s": policy.backoff_seconds if policy else None,
            "fallback_agents": fallbacks, "resources_required": sub.resources_required or {},
            "output_schema": sub.output_schema,
        }
        if sub.count == 1:
            nodes.append(_node(sub.id, sub.description, name, sub.dependencies, sub.priority, node_spec))
            continue
        judge = sub.judge_agent
        if judge is not None:
            if judge not in catalog:
                raise UnknownAgentError(judge, sub.id, catalog.names())
            agents[judge] = catalog.agents[judge]
        nodes.extend(replica_nodes(sub.id, sub.description, name, sub.dependencies, sub.priority, node_spec,
                                   sub.count, sub.merge_kind, judge))
    taken = {node.id for node in nodes if node.replica_of is None}
    for node in nodes:
        if node.replica_of is not None and node.id in taken:
            raise PlanError(f"task id {node.id!r} is also the id of a replica of {node.replica_of!r}; rename it")
    return PlannedSession(TaskGraph(nodes), agents, notes, candidates)


def replica_nodes(
    task_id: str, description: str, agent: str, dependencies: Sequence[str], priority: int, spec: dict[str, Any],
    count: int, merge: str, judge: str | None,
) -> list[TaskNode]:
    """N replicas of one subtask, each a task of its own, and the task that merges them under the subtask's id."""
    replicas = [
        _node(f"{task_id}#{k}", description, agent, dependencies, priority, {**spec, "replica_of": task_id})
        for k in range(1, count + 1)
    ]
    merging = {**spec, "merge": merge, "fallback_agents": (), "expected_duration_s": None if judge is None else
               spec.get("expected_duration_s")}
    merger = _node(
        task_id, judge_description(description, count) if judge is not None else description,
        judge or agent, [r.id for r in replicas], priority, merging,
    )
    return [*replicas, merger]


def judge_description(description: str, count: int) -> str:
    """What a judge is asked: pick or merge the replicas' answers (its context holds each), and say why."""
    return (
        f"{count} agents did the task below independently; their answers are in your context (the outputs"
        " of the tasks this one depends on). Pick the best answer, or merge them into one better answer,"
        " and say in one short paragraph at the end why.\n\n## The task they did\n\n" + description
    )


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
        output_schema=spec.get("output_schema"), replica_of=spec.get("replica_of"), merge=spec.get("merge"),
    )


def node_spec(node: TaskNode) -> dict[str, Any]:
    """What a stored task needs, beyond its columns, to be run again by resume_session."""
    return {
        "timeout_s": node.timeout_s, "expected_duration_s": node.expected_duration_s,
        "max_attempts": node.max_attempts, "backoff_s": node.backoff_s,
        "fallback_agents": list(node.fallback_agents), "resources_required": dict(node.resources_required),
        "output_schema": node.output_schema, "replica_of": node.replica_of, "merge": node.merge,
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
