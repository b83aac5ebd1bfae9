"""Decomposition: a plain task becomes a subtasks graph, planned by a headless Claude Code run.

The planner sees the task, the catalogue of agents and a JSON schema for the plan. Its plan is
validated like any caller's: unknown agents are repaired by routing, a cycle is sent back once with
the error. With no planner to ask (no `claude`) or no usable answer, the whole task goes to the
best-matching agent, and the notes say so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.errors import PlanError
from parallel_coordinator.schemas.inputs import Subtask

PLANNER_NAME = "pcoord-planner"

PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "subtasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "description": {"type": "string"},
                    "agent_type": {"type": "string"},
                    "dependencies": {"type": "array", "items": {"type": "string"}},
                    "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                },
                "required": ["id", "description", "agent_type"],
            },
        }
    },
    "required": ["subtasks"],
}

PLANNER_PROMPT = """\
You plan work for a team of specialist agents that run in parallel. Break the task you are given
into subtasks, each a self-contained job for one of the agents listed, with dependencies only where
a subtask needs another's output. Prefer a wide graph to a long chain. Answer with JSON only,
matching the schema you were given: {"subtasks": [{"id", "description", "agent_type",
"dependencies", "priority"}]}. Use only agent names from the list."""


def builtin_planner() -> AgentSpec:
    """The default planner: a Claude Code run with no tools that answers with the plan's JSON."""
    return AgentSpec(
        name=PLANNER_NAME, description="Breaks a task into a subtasks graph", body=PLANNER_PROMPT,
        tools=[], runner="claude", extra={"jsonSchema": PLAN_SCHEMA, "maxTurns": 3},
    )


def planning_request(task: str, agents: Sequence[AgentSpec], error: str | None = None) -> str:
    lines = [f"Task to plan:\n{task}", "", "Agents you may use (name: what it is for; tools):"]
    for agent in sorted(agents, key=lambda a: a.name):
        tools = ", ".join(agent.tools) if agent.tools is not None else "all tools"
        summary = agent.description.strip().splitlines()[0][:200] if agent.description.strip() else ""
        lines.append(f"- {agent.name}: {summary} ({tools})")
    if error:
        lines += ["", f"Your previous plan was rejected: {error}. Send a corrected plan."]
    return "\n".join(lines)


def json_of_answer(answer: str, structured: Any = None, what: str = "plan") -> Any:
    """A planner's JSON answer: its structured output, or JSON in its text (fenced or not)."""
    if structured is not None:
        return structured
    text = answer.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1).strip()
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise PlanError(f"the planner answered without a {what}: {answer.strip()[:200]!r}")
    try:
        return json.JSONDecoder().raw_decode(text[start:])[0]
    except ValueError as exc:
        raise PlanError(f"the planner's {what} is not valid JSON ({exc}): {answer.strip()[:200]!r}") from exc


def parse_plan(answer: str, structured: Any = None) -> list[Subtask]:
    """The subtasks in a planner's answer: its structured output, or JSON in its text (fenced or not)."""
    data = json_of_answer(answer, structured)
    items = data.get("subtasks") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise PlanError(f"the planner's answer has no subtasks list: {str(data)[:200]!r}")
    try:
        return [Subtask.model_validate(item) for item in items]
    except ValidationError as exc:
        raise PlanError(f"the planner's subtasks do not fit the schema: {exc}") from exc


def repair_agents(subtasks: list[Subtask], known: set[str]) -> tuple[list[Subtask], list[str]]:
    """Subtasks naming agents that do not exist lose the name, so routing picks one; says which."""
    repaired, notes = [], []
    for sub in subtasks:
        if sub.agent_type is not None and sub.agent_type not in known:
            notes.append(f"the planner named unknown agent {sub.agent_type!r} for {sub.id!r}: routed instead")
            sub = sub.model_copy(update={"agent_type": None})
        repaired.append(sub)
    return repaired, notes


@dataclass
class Decomposition:
    subtasks: list[Subtask]
    notes: list[str] = field(default_factory=list)
    planned: bool = True


def whole_task(task: str, reason: str) -> Decomposition:
    return Decomposition([Subtask(id="task", description=task)], [reason], planned=False)

