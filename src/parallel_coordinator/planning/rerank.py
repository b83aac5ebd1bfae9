"""Re-ranking: one planner run chooses, for each routed subtask, among the lexical router's top candidates.

The router's words miss what needs meaning ("the payment pods keep getting OOMKilled" is a Kubernetes
job, not a payments one); its top 5 hold the right agent far more often than its top 1. This module
writes the one request for all of a plan's routed subtasks, reads the answer, and words the reasons;
engine/one_off.py makes the run. A choice outside a subtask's candidates is not taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.errors import PlanError
from parallel_coordinator.planning.planner import json_of_answer
from parallel_coordinator.planning.routing import Route

CANDIDATES = 5  # the lexical top 5 hold an acceptable agent for 95% of held-out tasks (top 1: 79%; benchmarks.md)
MAX_SUBTASKS = 20  # re-ranked in one run; the rest of a larger plan keep the lexical pick, and say so
DESCRIPTION_CHARS = 1_000  # of each subtask's description in the request (the whole may be 100,000)
SUMMARY_CHARS = 200  # of each candidate's description's first line, as the decomposition's request has it
REASON_CHARS = 200  # of the planner's reason, in the routing note
TIMEOUT_S = 120.0  # the run's bound when the planner agent sets none (the server's task timeout is 300 s)

RERANKER_NAME = "pcoord-router"

RERANK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "choices": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "agent": {"type": "string"},
                    "reason": {"type": "string"},
                },
                "required": ["id", "agent", "reason"],
            },
        }
    },
    "required": ["choices"],
}

RERANK_PROMPT = """\
You assign subtasks to specialist agents. For each subtask you are given its id, its description and a
short list of candidate agents (name: what it is for). Choose the one candidate best suited to do the
subtask: judge by what the subtask is about, not by words it mentions in passing. Answer with JSON only,
matching the schema you were given: {"choices": [{"id", "agent", "reason"}]}, one choice per subtask,
`agent` exactly one of that subtask's candidate names, `reason` one short sentence."""


@dataclass(frozen=True)
class Routed:
    """The agent a routed subtask goes to, and the sentence saying how it was chosen (the routing note)."""

    agent: str
    reason: str


def builtin_reranker() -> AgentSpec:
    """The built-in planner's kind of run (claude, no tools, structured output) with the re-ranking prompt."""
    return as_reranker(AgentSpec(name=RERANKER_NAME, description="Chooses among routing candidates", runner="claude"))


def as_reranker(planner: AgentSpec) -> AgentSpec:
    """A configured planner agent, asked to re-rank: its runner and model, this prompt and schema, no tools."""
    return planner.model_copy(update={
        "body": RERANK_PROMPT, "tools": [], "timeout": planner.timeout or TIMEOUT_S,
        "extra": {**planner.extra, "jsonSchema": RERANK_SCHEMA, "maxTurns": 3},
    })


def rerank_request(
    candidates: Mapping[str, Sequence[Route]], descriptions: Mapping[str, str], agents: Mapping[str, AgentSpec]
) -> str:
    """The request: each subtask's id and description (cut to DESCRIPTION_CHARS) and its candidates."""
    lines = ["Choose an agent for each subtask below, among its candidates."]
    for task_id, routes in candidates.items():
        description = descriptions[task_id].strip()
        if len(description) > DESCRIPTION_CHARS:
            description = description[:DESCRIPTION_CHARS] + " [...]"
        lines += ["", f"## Subtask {task_id!r}", description, "", "Candidates:"]
        for route in routes:
            lines.append(f"- {route.agent}: {_summary(agents[route.agent])}")
    return "\n".join(lines)


def _summary(agent: AgentSpec) -> str:
    text = agent.description.strip()
    return text.splitlines()[0][:SUMMARY_CHARS] if text else ""


def read_choices(
    answer: str, structured: Any, candidates: Mapping[str, Sequence[Route]]
) -> tuple[dict[str, Routed], dict[str, str]]:
    """The planner's valid choices by subtask id, and for every other subtask asked about why it has none.

    Raises PlanError when the answer as a whole is unusable (no JSON, no choices list).
    """
    data = json_of_answer(answer, structured, what="list of choices")
    items = data.get("choices") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise PlanError(f"the planner's answer has no choices list: {str(data)[:200]!r}")
    chosen: dict[str, Routed] = {}
    problems: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict) or item.get("id") not in candidates or item["id"] in chosen:
            continue  # a choice for no subtask asked about (or a second one) cannot be placed: ignored
        task_id, agent = item["id"], item.get("agent")
        names = [route.agent for route in candidates[task_id]]
        if agent not in names:
            problems[task_id] = f"the planner chose {str(agent)[:80]!r}, which is not one of its candidates"
            continue
        problems.pop(task_id, None)
        reason = " ".join(str(item.get("reason") or "").split())[:REASON_CHARS]
        chosen[task_id] = Routed(agent, planner_reason(agent, names, reason))
    for task_id in candidates:
        if task_id not in chosen:
            problems.setdefault(task_id, "the planner's answer has no choice for it")
    return chosen, problems


def planner_reason(agent: str, names: Sequence[str], reason: str) -> str:
    said = f": {reason}" if reason else ""
    return f"routed to {agent} by the planner from {', '.join(names)}{said}"


def lexical(route: Route, why: str) -> Routed:
    """The lexical pick kept, and why the planner's choice was not asked for or not taken."""
    return Routed(route.agent, f"{route.reason} (lexical; {why})")
