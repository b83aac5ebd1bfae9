"""Runs outside the graph: the planner that decomposes a plain task (and re-ranks routing), and the synthesizer.

Each is one run of an agent on the same backend and under the same guards as any attempt; a run
made for a session is stopped with it (cancel, timeout).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping

from parallel_coordinator.agents import AgentCatalog, AgentSpec
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.attempts import Attempts
from parallel_coordinator.engine.session import Session, context_files
from parallel_coordinator.engine.summary import error_line
from parallel_coordinator.errors import PlanError, RunnerUnavailableError, UnknownAgentError
from parallel_coordinator.planning.planner import (
    Decomposition,
    builtin_planner,
    parse_plan,
    planning_request,
    repair_agents,
    whole_task,
)
from parallel_coordinator.planning.plans import PlannedSession, build_plan
from parallel_coordinator.planning.rerank import (
    MAX_SUBTASKS,
    Routed,
    as_reranker,
    builtin_reranker,
    lexical,
    read_choices,
    rerank_request,
)
from parallel_coordinator.planning.routing import Route, RouterCache
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.runners.base import AttemptOutcome, RunResult, TaskRequest
from parallel_coordinator.state.outputs import INLINE_CHARS

_PLANNER_TRIES = 2  # asked again, once, with what was wrong


class OneOffRuns:
    def __init__(
        self, settings: Settings, attempts: Attempts, catalog: Callable[[], Awaitable[AgentCatalog]],
        routers: RouterCache | None = None,
    ) -> None:
        self.settings, self.attempts, self._catalog = settings, attempts, catalog
        self.routers = routers

    async def run_once(
        self, agent: AgentSpec, description: str, task_description: str, *,
        context: dict[str, str] | None = None, context_files: dict[str, str] | None = None,
        session: Session | None = None,
    ) -> tuple[RunResult, AttemptOutcome]:
        runner = self.attempts.runners.get(agent.runner)
        if runner is None:
            raise RunnerUnavailableError(f"no runner {agent.runner!r} for agent {agent.name!r}")
        label = f"{agent.name}-{secrets.token_hex(4)}"
        request = TaskRequest(
            session_id=session.id if session else label, task_id=agent.name, description=description,
            task_description=task_description, context=context or {}, context_files=context_files or {},
            timeout_s=agent.timeout or self.settings.task_timeout_s,
        )
        artefacts = self.settings.runs_dir / (session.id if session else "one-off") / label
        job = self.attempts.job(
            runner, agent, runner.invocation(agent, request), request, artefacts,
            session.policy.memory_limit_mb if session else None,
        )
        if session is not None:
            session.extra_attempts.add(job.attempt_id)
        try:
            outcome = await self.attempts.backend.run(job, lambda _event: None)
        finally:
            if session is not None:
                session.extra_attempts.discard(job.attempt_id)
        return runner.interpret(agent, outcome), outcome

    async def decompose(self, task_description: str, default_attempts: int, catalog: AgentCatalog) -> Decomposition:
        """Ask the planner for a subtasks graph; fall back to the whole task on the best agent."""
        if not len(catalog):
            raise PlanError(
                "no agents were found to run this task; run `pcoord agents` to see where they are looked for"
            )
        planner = builtin_planner()
        if self.settings.planner:
            found = catalog.get(self.settings.planner)
            if found is None:
                raise UnknownAgentError(self.settings.planner, "planner", catalog.names())
            planner = found
        error: str | None = None
        for _ in range(_PLANNER_TRIES):
            request = planning_request(task_description, list(catalog.agents.values()), error)
            try:
                result, outcome = await self.run_once(planner, request, task_description)
            except RunnerUnavailableError as exc:
                return whole_task(task_description, f"no planner available ({error_line(str(exc))})")
            if not result.ok:
                return whole_task(task_description, f"the planner failed ({error_line(result.error)})")
            try:
                subtasks = parse_plan(result.output, (outcome.final_event or {}).get("structured_output"))
            except PlanError as exc:
                return whole_task(task_description, str(exc))
            subtasks, notes = repair_agents(subtasks, set(catalog.names()))
            try:
                build_plan(subtasks, default_attempts, catalog, routers=self.routers)
            except PlanError as exc:
                if error is None:
                    error = str(exc)
                    continue
                raise PlanError(f"the planner's plan was rejected twice: {exc}") from exc
            return Decomposition(subtasks, [f"planned by {planner.name} into {len(subtasks)} subtasks", *notes])
        raise PlanError(f"the planner gave no usable plan in {_PLANNER_TRIES} tries: {error}")

    async def rerank(
        self, planned: PlannedSession, descriptions: Mapping[str, str], task_description: str,
        catalog: AgentCatalog, not_asked: str | None = None,
    ) -> tuple[dict[str, Routed], list[str]]:
        """The agent of each subtask the router placed: the planner's choice among its candidates, made in
        one run for the whole plan, or the lexical pick with a note saying why. `not_asked`: why no run is made.

        Also returns a note on the run itself (how many subtasks it re-ranked, what it cost).
        """
        candidates = planned.candidates
        routed = {t: lexical(routes[0], f"the planner was not asked: {not_asked}") for t, routes in candidates.items()}
        if not_asked is not None or not candidates:
            return routed, []
        asked = {t: routes for t, routes in candidates.items() if len(routes) > 1}
        for task_id in [t for t, routes in candidates.items() if len(routes) < 2]:
            routed[task_id] = lexical(candidates[task_id][0], "the planner was not asked: no other agent to choose")
        for task_id in list(asked)[MAX_SUBTASKS:]:  # the bound on one request: the rest keep the lexical pick
            del asked[task_id]
            routed[task_id] = lexical(
                candidates[task_id][0], f"the planner was not asked: it re-ranks the first {MAX_SUBTASKS} per plan"
            )
        if not asked:
            return routed, []
        reranker = builtin_reranker()
        if self.settings.planner:
            configured = catalog.get(self.settings.planner)
            if configured is None:
                missing = f"the planner was not asked: {self.settings.planner!r} is not an agent"
                return self._kept(routed, asked, missing)
            reranker = as_reranker(configured)
        request = rerank_request(asked, descriptions, catalog.agents)
        try:
            result, outcome = await self.run_once(reranker, request, task_description)
        except RunnerUnavailableError as exc:
            unavailable = f"the planner was not asked: no planner available ({error_line(str(exc))})"
            return self._kept(routed, asked, unavailable)
        if not result.ok:
            return self._kept(routed, asked, f"the planner failed: {error_line(result.error)}")
        try:
            chosen, problems = read_choices(result.output, (outcome.final_event or {}).get("structured_output"), asked)
        except PlanError as exc:
            return self._kept(routed, asked, f"the planner's answer was not used: {error_line(str(exc))}")
        routed.update(chosen)
        for task_id, problem in problems.items():
            routed[task_id] = lexical(asked[task_id][0], f"not re-ranked: {problem}")
        spent = f" (${result.cost_usd:.4f})" if result.cost_usd is not None else ""
        taken = f"{reranker.name} re-ranked {len(asked)} routed subtask(s) in one run{spent}"
        return routed, [taken + (f"; {len(problems)} kept the lexical pick" if problems else "")]

    @staticmethod
    def _kept(
        routed: dict[str, Routed], asked: Mapping[str, tuple[Route, ...]], why: str
    ) -> tuple[dict[str, Routed], list[str]]:
        for task_id, routes in asked.items():
            routed[task_id] = lexical(routes[0], why)
        return routed, []

    async def synthesize(self, session: Session) -> None:
        """Run the synthesizer last, with every successful result in its context."""
        name = session.policy.synthesizer
        if not name or session.stop_reason is not None:
            return
        agent = (await self._catalog()).get(name)
        if agent is None:
            session.notes.append(f"synthesizer {name!r} was not found among the agents; summary given instead")
            return
        succeeded = [r for r in session.tasks.values() if r.status is TaskState.SUCCEEDED]
        description = (
            "Merge the results of the subtasks in your context into one answer to the task. Say what is missing"
            " where a subtask failed or was skipped: "
            + ", ".join(f"{t} ({r.status.value})" for t, r in session.tasks.items())
        )
        try:
            result, _ = await self.run_once(
                agent, description, session.task_description, context={r.task_id: r.output for r in succeeded},
                context_files=context_files(succeeded), session=session,
            )
        except RunnerUnavailableError as exc:
            session.notes.append(f"synthesizer {name!r} could not run ({error_line(str(exc))}); summary given")
            return
        if result.ok:
            session.synthesis = result.output[:INLINE_CHARS]
            session.notes.append(f"synthesized by {name}")
            if len(result.output) > INLINE_CHARS:
                session.notes.append(f"the synthesis was cut at {INLINE_CHARS:,} of {len(result.output):,} characters")
        else:
            session.notes.append(f"synthesizer {name!r} failed ({error_line(result.error)}); summary given")
