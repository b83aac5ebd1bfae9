"""The planner's re-rank of routed subtasks (a fake `claude` answering), and the lexical index kept per catalogue."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.rerank import DESCRIPTION_CHARS, MAX_SUBTASKS
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory
from tests.engine.test_claude_agents import FAKE_CLAUDE

pytestmark = pytest.mark.anyio

OOM = "The payment pods keep getting OOMKilled after the last deploy; find out why"
OPTIONS = CoordinateOptions(wait_seconds=0, retry_attempts=1)


@pytest.fixture
def specialists(agents: AgentFactory) -> None:
    # The words favour payment-integration ("payment"); what the subtask is about is Kubernetes.
    agents.script("payment-integration", "print('paid')",
                  description="Integrates payment providers: Stripe checkout, refunds and payment webhooks")
    agents.script("kubernetes-specialist", "print('k8s')",
                  description="Kubernetes clusters: deployments, manifests, resource limits and node health")


@dataclasses.dataclass
class Planner:
    """The fake claude's queued answers (one line of the sequence per run) and the last run's record."""

    sequence: Path
    record: Path

    def runs_left(self) -> int:
        return len([line for line in self.sequence.read_text().splitlines() if line.strip()])

    def last_request(self) -> str:
        return str(json.loads(self.record.read_text())["stdin"])


@pytest.fixture
def planner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    record = tmp_path / "planner-run.json"
    monkeypatch.setenv("FAKE_CLAUDE_RECORD", str(record))

    def queue(*answers: object) -> Planner:
        lines = []
        for i, answer in enumerate(answers):
            if isinstance(answer, str) and answer in ("crash", "hang", "logged_out"):
                lines.append(answer)
                continue
            path = tmp_path / f"answer-{i}.txt"
            path.write_text(answer if isinstance(answer, str) else json.dumps(answer))  # raw JSON: structured output
            lines.append(f"answer:{path}")
        sequence = tmp_path / "sequence"
        sequence.write_text("".join(f"{line}\n" for line in lines))
        monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
        return Planner(sequence, record)

    return queue


@pytest.fixture
async def server(settings: Settings, specialists: None) -> AsyncIterator[Coordinator]:
    async with Coordinator(settings) as running:
        yield running


def choices(*picks: tuple[str, str], reason: str = "it is about the cluster") -> dict[str, Any]:
    return {"choices": [{"id": task_id, "agent": agent, "reason": reason} for task_id, agent in picks]}


async def prepare(coordinator: Coordinator, *subtasks: Subtask) -> tuple[dict[str, str], list[str]]:
    planned, notes = await coordinator.prepare("fix the outage", list(subtasks), "auto", OPTIONS)
    return {task_id: node.agent for task_id, node in planned.graph.nodes.items()}, notes


def lexical_first(coordinator: Coordinator, description: str) -> str:
    planned = coordinator.plan([Subtask(id="x", description=description)], OPTIONS)
    return planned.graph.nodes["x"].agent


async def test_the_planners_choice_among_the_top_candidates_is_taken_and_the_note_says_so(
    server: Coordinator, planner: Any
) -> None:
    assert lexical_first(server, OOM) == "payment-integration"
    queued = planner(choices(("oom", "kubernetes-specialist"), reason="OOMKilled pods are a cluster matter"))
    agents, notes = await prepare(server, Subtask(id="oom", description=OOM))
    assert agents == {"oom": "kubernetes-specialist"}
    note = next(n for n in notes if n.startswith("routed to kubernetes-specialist"))
    assert note.startswith("routed to kubernetes-specialist by the planner from payment-integration, ")
    assert note.endswith(": OOMKilled pods are a cluster matter")
    assert any(n.startswith("pcoord-router re-ranked 1 routed subtask(s) in one run ($") for n in notes)
    request = queued.last_request()
    assert OOM in request and "## Subtask 'oom'" in request
    assert "- kubernetes-specialist: Kubernetes clusters: deployments" in request
    assert "--json-schema" in json.loads(queued.record.read_text())["argv"]


@pytest.mark.parametrize(("answer", "why"), [
    (choices(("oom", "security-wizard")), "not re-ranked: the planner chose 'security-wizard', which is not one"),
    (choices(("other", "kubernetes-specialist")), "not re-ranked: the planner's answer has no choice for it"),
    ("I would rather not choose.", "the planner's answer was not used: the planner answered without a list of choices"),
    ("crash", "the planner failed: "),
    ("logged_out", "the planner failed: "),
])
async def test_a_choice_that_cannot_be_taken_keeps_the_lexical_pick_and_says_why(
    server: Coordinator, planner: Any, answer: object, why: str
) -> None:
    queued = planner(answer)
    agents, notes = await prepare(server, Subtask(id="oom", description=OOM))
    assert agents == {"oom": "payment-integration"}
    note = next(n for n in notes if n.startswith("routed to payment-integration"))
    assert note.startswith("routed to payment-integration: matched 'payment'") and f"(lexical; {why}" in note
    assert queued.runs_left() == 0, "the planner was asked once"


async def test_a_planner_run_past_its_timeout_keeps_the_lexical_pick(
    settings: Settings, specialists: None, agents: AgentFactory, planner: Any
) -> None:
    (agents.root / "quick-planner.md").write_text(
        "---\nname: quick-planner\ndescription: Plans work quickly\ntimeout: 1\n---\nPlan.\n"
    )
    planner("hang")
    async with Coordinator(dataclasses.replace(settings, planner="quick-planner")) as coordinator:
        agents_of, notes = await prepare(coordinator, Subtask(id="oom", description=OOM))
    assert agents_of == {"oom": "payment-integration"}
    note = next(n for n in notes if n.startswith("routed to payment-integration"))
    assert "(lexical; the planner failed: " in note and "time" in note.lower(), note


async def test_with_the_switch_off_no_planner_run_starts(
    settings: Settings, specialists: None, planner: Any
) -> None:
    queued = planner(choices(("oom", "kubernetes-specialist")))
    async with Coordinator(dataclasses.replace(settings, routing_rerank=False)) as coordinator:
        agents, notes = await prepare(coordinator, Subtask(id="oom", description=OOM))
    assert agents == {"oom": "payment-integration"}
    assert any("(lexical; the planner was not asked: parallel_config.routing_rerank is off)" in n for n in notes)
    assert queued.runs_left() == 1 and not queued.record.exists()


async def test_without_a_planner_the_lexical_pick_stands_and_says_why(
    server: Coordinator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PCOORD_CLAUDE_BIN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-claude-here"))
    agents, notes = await prepare(server, Subtask(id="oom", description=OOM))
    assert agents == {"oom": "payment-integration"}
    assert any("(lexical; the planner was not asked: no planner available (" in n for n in notes), notes


async def test_a_subtask_that_names_its_agent_is_never_re_ranked(server: Coordinator, planner: Any) -> None:
    both = choices(("oom", "kubernetes-specialist"), ("named", "kubernetes-specialist"))
    queued = planner(both, both)
    agents, _ = await prepare(
        server, Subtask(id="oom", description=OOM),
        Subtask(id="named", description=OOM, agent_type="payment-integration"),
    )
    assert agents == {"oom": "kubernetes-specialist", "named": "payment-integration"}
    assert "'named'" not in queued.last_request()
    # A plan whose subtasks all name their agents starts no planner run at all.
    agents, notes = await prepare(server, Subtask(id="named", description=OOM, agent_type="payment-integration"))
    assert agents == {"named": "payment-integration"} and notes == []
    assert queued.runs_left() == 1


async def test_one_planner_run_re_ranks_every_routed_subtask_of_a_plan(server: Coordinator, planner: Any) -> None:
    ids = ["oom", "limits", "restarts"]
    queued = planner(choices(*((i, "kubernetes-specialist") for i in ids)), choices(("oom", "echo")))
    agents, notes = await prepare(server, *(Subtask(id=i, description=f"{OOM} ({i})") for i in ids))
    assert agents == dict.fromkeys(ids, "kubernetes-specialist")
    assert queued.runs_left() == 1, "one run for the whole plan"
    assert all(f"## Subtask {i!r}" in queued.last_request() for i in ids)
    assert any(n.startswith("pcoord-router re-ranked 3 routed subtask(s) in one run") for n in notes)


async def test_the_request_is_bounded_in_subtasks_and_in_description_length(
    server: Coordinator, planner: Any
) -> None:
    ids = [f"t{k:02d}" for k in range(MAX_SUBTASKS + 1)]
    queued = planner(choices(*((i, "kubernetes-specialist") for i in ids)))
    long_tail = "x" * (DESCRIPTION_CHARS * 3)
    agents, notes = await prepare(server, *(Subtask(id=i, description=f"{OOM} {long_tail}") for i in ids))
    request = queued.last_request()
    assert [i for i in ids if f"## Subtask {i!r}" in request] == ids[:MAX_SUBTASKS]
    assert long_tail not in request and "x" * (DESCRIPTION_CHARS - len(OOM) - 1) + " [...]" in request
    assert agents == {**dict.fromkeys(ids[:MAX_SUBTASKS], "kubernetes-specialist"), ids[-1]: "payment-integration"}
    assert any(f"the planner was not asked: it re-ranks the first {MAX_SUBTASKS} per plan" in n for n in notes)


async def test_the_lexical_index_is_reused_for_an_unchanged_catalogue_and_rebuilt_when_an_agent_changes(
    server: Coordinator, agents: AgentFactory
) -> None:
    assert server.routers.builds == 0
    for _ in range(3):
        assert lexical_first(server, OOM) == "payment-integration"
    assert server.routers.builds == 1
    agents.script("kubernetes-specialist", "print('k8s')",
                  description="Kubernetes: payment pods that keep getting OOMKilled, deployments and limits")
    assert lexical_first(server, OOM) == "kubernetes-specialist"  # the edited file is routed on at once
    assert server.routers.builds == 2
    agents.script("sre", "print('sre')", description="Site reliability: on-call rotas and incident response")
    assert lexical_first(server, "write the incident response rota") == "sre"  # a new file is routed to
    assert server.routers.builds == 3
