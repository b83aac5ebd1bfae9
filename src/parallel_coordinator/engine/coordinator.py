"""The coordinator: turns a plan into a session, runs its graph on the execution backend, cancels it.

Plain Python and anyio: it knows nothing of MCP, so the server, the CLI and tests all drive it the
same way. One anyio task group owns every session; each session's task group owns its attempts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
import math
import random
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from parallel_coordinator.agents import AgentCatalog, AgentSpec, CatalogCache
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.admission import DEFAULT_NEED_MB, MachineGate
from parallel_coordinator.engine.events import EventBus, PerformanceLog, SessionEvent
from parallel_coordinator.engine.session import AttemptInfo, CachedResult, Session, TaskRecord, context_files
from parallel_coordinator.engine.throttle import RunnerThrottle
from parallel_coordinator.errors import (
    PlanError,
    RunnerUnavailableError,
    UnknownAgentError,
    UnknownSessionError,
    WorkerLostError,
)
from parallel_coordinator.execution.backend import ExecutionBackend, make_backend
from parallel_coordinator.execution.worktrees import (
    WorktreeError,
    create_worktree,
    prune_orphans,
    remove_session_worktrees,
    remove_worktree,
    summarize,
)
from parallel_coordinator.planning.estimates import DurationEstimator
from parallel_coordinator.planning.graph import TaskGraph, TaskNode
from parallel_coordinator.planning.planner import (
    Decomposition,
    builtin_planner,
    parse_plan,
    planning_request,
    repair_agents,
    whole_task,
)
from parallel_coordinator.planning.routing import Router
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.planning.strategies import Strategy, apply_strategy
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, Runner, RunResult, TaskRequest
from parallel_coordinator.runners.command import CommandRunner
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.schemas.outputs import PerformanceMetrics
from parallel_coordinator.state.cleanup import Retention
from parallel_coordinator.state.outputs import INLINE_CHARS, keep_file, keep_text
from parallel_coordinator.state.retained import EndedSessions, ServerResultCache
from parallel_coordinator.state.store import Store, StoredAttempt, StoredSession, StoredTask, is_alive
from parallel_coordinator.supervisor import SupervisorJob
from parallel_coordinator.views import Snapshot, performance_metrics, snapshot_of
from parallel_coordinator.views.metrics import memory_sample

log = logging.getLogger(__name__)

_CANCEL_WAIT_S = 10.0
_RECHECK_S = 0.5  # how soon a queue held back by CPU, memory or a rate limit is looked at again
_CPU_SAMPLE_S = 1.0
_STORE_POLL_S = 0.1  # how often a cancel through the store looks for the owning server's answer


@dataclass(frozen=True)
class PlannedSession:
    """A validated plan, before it runs: the graph, the agents it uses and why each was chosen."""

    graph: TaskGraph
    agents: dict[str, AgentSpec]
    routing_notes: dict[str, str]


@dataclass(frozen=True)
class CancelOutcome:
    session_id: str
    status: str
    cancelled_tasks: int
    killed_processes: int
    note: str | None = None


def default_runners() -> dict[str, Runner]:
    runners: dict[str, Runner] = {"command": CommandRunner()}
    from parallel_coordinator.runners.claude import ClaudeRunner

    runners["claude"] = ClaudeRunner()
    return runners


class Coordinator:
    """Owns sessions, the execution backend, the supervisor hub and the store."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        backend: ExecutionBackend | None = None,
        runners: dict[str, Runner] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.backend: ExecutionBackend = backend or make_backend(self.settings)
        self.runners = runners if runners is not None else default_runners()
        self.sessions: dict[str, Session] = {}
        self._ended = EndedSessions()
        self._agent_envs: dict[tuple[str, ...], dict[str, str]] = {}  # one per pass-through list in use
        self.store = Store(self.settings.database)
        self.agent_files = CatalogCache(self.settings.agent_dirs)
        self._agent_running: Counter[str] = Counter()
        self._capacity = anyio.Event()
        self._sampled = anyio.Event()
        self._peak_rss_mb: dict[str, float] = {}
        self._result_cache = ServerResultCache()
        self.throttles: dict[str, RunnerThrottle] = {}
        self.gate = MachineGate(max_cpu_usage=self.settings.max_cpu_usage)
        self.estimator = DurationEstimator(default_s=self.settings.default_task_duration_s)
        self.events = EventBus()
        self._alerts: set[str] = set()
        self.performance_log: PerformanceLog | None = None
        if self.settings.performance_logging:
            self.performance_log = PerformanceLog(self.settings.logs_dir)
            self.events.subscribe(self.performance_log)
        self._task_group: anyio.abc.TaskGroup | None = None
        self.retention = Retention(self.settings)
        self._exit_stack = AsyncExitStack()
        self.started_at = time.time()

    async def __aenter__(self) -> Coordinator:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.backend)
            stack.callback(self.store.close)
            if self.performance_log is not None:
                stack.callback(self.performance_log.close)
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            self._task_group.start_soon(self._sample_machine, name="machine sampler")
            # networkx is imported lazily so the server answers its first request sooner; warm it up
            # meanwhile, off the event loop, so the first plan does not pay the ~0.1 s import either.
            threading.Thread(target=importlib.import_module, args=("networkx",), daemon=True).start()
            self._exit_stack = stack.pop_all()
        self.estimator.seed(
            (a.agent, a.finished_at - a.started_at)
            for a in reversed(self.store.recent_attempts(1000))
            if a.outcome == "exited" and a.error is None and a.started_at and a.finished_at
        )
        recovered = self.store.recover_orphans(time.time())
        for session_id in recovered:
            remove_session_worktrees(self.worktrees_dir, session_id)
        if self.worktrees_dir.exists():
            prune_orphans(self.worktrees_dir)
        # After recovery, so that the sessions of a server that died count as ended.
        self._task_group.start_soon(self.retention.run, name="retention")
        if recovered:
            log.warning("%d session(s) were running when a server stopped; marked interrupted: %s",
                        len(recovered), ", ".join(recovered))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._task_group is not None
        # Whatever ends the server, its agents end with it: cancel every live session, bounded.
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_WAIT_S):
            for session in list(self.sessions.values()):
                if session.status == "RUNNING":
                    await self.cancel(session.id)
        self._task_group.cancel_scope.cancel()
        return await self._exit_stack.__aexit__(exc_type, exc, tb)

    # Agents -------------------------------------------------------------------------------------

    async def catalog(self) -> AgentCatalog:
        """The agents on disk now, with the configuration file's agent_pool overrides applied.

        Read off the event loop; only files that changed since the last call are parsed again, so
        edits apply without a restart and an unchanged folder costs a stat per file.
        """
        return self._with_pool_overrides(await self.agent_files.read())

    def catalog_now(self) -> AgentCatalog:
        """The same, read on the calling thread: for scripts and tests; the engine awaits catalog()."""
        return self._with_pool_overrides(self.agent_files.read_now())

    def _with_pool_overrides(self, catalog: AgentCatalog) -> AgentCatalog:
        for name, override in self.settings.agent_pool.items():
            agent = catalog.agents.get(name)
            if agent is None:
                continue
            changes: dict[str, Any] = {}
            if override.max_concurrent is not None:
                changes["max_concurrent"] = override.max_concurrent
            if override.priority is not None:
                changes["priority"] = override.priority
            catalog.agents[name] = agent.model_copy(update=changes)
        return catalog

    def with_defaults(self, options: CoordinateOptions | None) -> CoordinateOptions:
        """A call's options, with what the caller left unset taken from the server's configuration."""
        given = options.model_dump(exclude_unset=True) if options is not None else {}
        defaults = {
            "max_agents": min(64, self.settings.pool_size),
            "retry_attempts": self.settings.retry_attempts,
            "progress_update_interval": self.settings.progress_update_interval_s,
            "max_memory_per_agent": self.settings.max_memory_per_agent,
            "token_budget_per_agent": self.settings.token_budget_per_agent,
            "synthesizer": self.settings.synthesizer,
        }
        return CoordinateOptions.model_validate({**defaults, **given})

    # Planning -----------------------------------------------------------------------------------

    def plan(
        self, subtasks: Sequence[Subtask], options: CoordinateOptions, catalog: AgentCatalog | None = None
    ) -> PlannedSession:
        """Validate a caller's subtasks into a graph; route subtasks that name no agent.

        On the event loop, pass `await self.catalog()`: without one, the catalogue is read on this thread.
        """
        if not subtasks:
            raise PlanError("the plan has no subtasks; pass at least one in `subtasks`")
        catalog = catalog if catalog is not None else self.catalog_now()
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
                assert route is not None
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
            nodes.append(
                TaskNode(
                    id=sub.id,
                    description=sub.description,
                    agent=name,
                    dependencies=tuple(dict.fromkeys(sub.dependencies)),
                    priority=sub.priority,
                    timeout_s=sub.timeout or spec.timeout,
                    expected_duration_s=sub.expected_duration,
                    max_attempts=policy.max_attempts if policy else options.retry_attempts,
                    backoff_s=policy.backoff_seconds if policy else None,
                    fallback_agents=fallbacks,
                    resources_required=sub.resources_required or {},
                )
            )
        return PlannedSession(TaskGraph(nodes), agents, notes)

    async def resume_plan(
        self, session_id: str, principal: str | None = None
    ) -> tuple[str, PlannedSession, dict[str, StoredTask]]:
        """The graph of an ended session, and the tasks of it that succeeded (kept, not re-run)."""
        found = self.get(session_id, principal)
        if isinstance(found, Session):
            if found.status == "RUNNING":
                raise PlanError(f"session {session_id!r} is still running; only an ended session can be resumed")
            found = self.store.load_session(session_id) or found
        assert not isinstance(found, Session)
        catalog = await self.catalog()
        nodes, agents = [], {}
        for task in found.tasks:
            spec = task.spec
            for name in (task.agent, *spec.get("fallback_agents", [])):
                agent = catalog.get(name)
                if agent is None:
                    raise UnknownAgentError(name, task.task_id, catalog.names())
                agents[name] = agent
            nodes.append(
                TaskNode(
                    id=task.task_id, description=task.description, agent=task.agent,
                    dependencies=tuple(task.dependencies), priority=task.priority,
                    timeout_s=spec.get("timeout_s"), expected_duration_s=spec.get("expected_duration_s"),
                    max_attempts=spec.get("max_attempts"), backoff_s=spec.get("backoff_s"),
                    fallback_agents=tuple(spec.get("fallback_agents", [])),
                    resources_required=spec.get("resources_required") or {},
                )
            )
        kept = {t.task_id: t for t in found.tasks if t.status == "succeeded"}
        return found.task_description, PlannedSession(TaskGraph(nodes), agents, {}), kept

    async def prepare(
        self, task_description: str, subtasks: list[Subtask] | None, strategy: Strategy, options: CoordinateOptions
    ) -> tuple[PlannedSession, list[str]]:
        """A validated graph for a call, and notes on how it was made (planned, routed, repaired)."""
        notes: list[str] = []
        catalog = await self.catalog()
        if subtasks is None:
            decomposition = await self.decompose(task_description, options, catalog)
            subtasks, notes = decomposition.subtasks, decomposition.notes
        subtasks = apply_strategy(subtasks, strategy)
        planned = self.plan(subtasks, options, catalog)
        notes += [planned.routing_notes[s.id] for s in subtasks if s.id in planned.routing_notes]
        return planned, notes

    async def decompose(
        self, task_description: str, options: CoordinateOptions, catalog: AgentCatalog | None = None
    ) -> Decomposition:
        """Ask the planner for a subtasks graph; fall back to the whole task on the best agent."""
        catalog = catalog if catalog is not None else await self.catalog()
        if not len(catalog):
            raise PlanError(
                "no agents were found to run this task; run `pcoord agents` to see where they are looked for"
            )
        configured = self.settings.planner
        planner = builtin_planner()
        if configured:
            found = catalog.get(configured)
            if found is None:
                raise UnknownAgentError(configured, "planner", catalog.names())
            planner = found
        error: str | None = None
        for _ in range(2):
            request = planning_request(task_description, list(catalog.agents.values()), error)
            try:
                result, outcome = await self.run_once(planner, request, task_description)
            except RunnerUnavailableError as exc:
                return whole_task(task_description, f"no planner available ({_first_line(str(exc))})")
            if not result.ok:
                return whole_task(task_description, f"the planner failed ({_first_line(result.error)})")
            try:
                subtasks = parse_plan(result.output, (outcome.final_event or {}).get("structured_output"))
            except PlanError as exc:
                return whole_task(task_description, str(exc))
            subtasks, notes = repair_agents(subtasks, set(catalog.names()))
            try:
                self.plan(subtasks, options, catalog)
            except PlanError as exc:
                if error is None:
                    error = str(exc)  # asked again, once, with what was wrong
                    continue
                raise PlanError(f"the planner's plan was rejected twice: {exc}") from exc
            return Decomposition(subtasks, [f"planned by {planner.name} into {len(subtasks)} subtasks", *notes])
        raise AssertionError("unreachable")

    async def run_once(
        self,
        agent: AgentSpec,
        description: str,
        task_description: str,
        *,
        context: dict[str, str] | None = None,
        context_files: dict[str, str] | None = None,
        session: Session | None = None,
    ) -> tuple[RunResult, AttemptOutcome]:
        """One run of an agent outside the graph (the planner, a synthesizer); same pool, same guards.

        Given a session, the run is stopped with it (cancel, timeout) like any of its attempts.
        """
        runner = self.runners.get(agent.runner)
        if runner is None:
            raise RunnerUnavailableError(f"no runner {agent.runner!r} for agent {agent.name!r}")
        label = f"{agent.name}-{secrets.token_hex(4)}"
        request = TaskRequest(
            session_id=session.id if session else label, task_id=agent.name, description=description,
            task_description=task_description, context=context or {}, context_files=context_files or {},
            timeout_s=agent.timeout or self.settings.task_timeout_s,
        )
        job = SupervisorJob(
            attempt_id=secrets.token_hex(8), invocation=runner.invocation(agent, request),
            env=self._agent_env(runner, agent),
            artefact_dir=str(self.settings.runs_dir / (session.id if session else "one-off") / label), channel="",
            timeout_s=request.timeout_s, output_cap_bytes=self.settings.output_cap_bytes,
            disk_cap_bytes=self.settings.artefact_cap_bytes,
            memory_limit_mb=session.options.memory_limit_mb if session else None,
        )
        if session is not None:
            session.extra_attempts.add(job.attempt_id)
        try:
            outcome = await self.backend.run(job, lambda _event: None)
        finally:
            if session is not None:
                session.extra_attempts.discard(job.attempt_id)
        return runner.interpret(agent, outcome), outcome

    async def _synthesize(self, session: Session) -> None:
        """Run the synthesizer last, with every successful result in its context."""
        name = session.options.synthesizer
        if not name or session.stop_reason is not None:
            return
        agent = (await self.catalog()).get(name)
        if agent is None:
            session.notes.append(f"synthesizer {name!r} was not found among the agents; summary given instead")
            return
        succeeded = [r for r in session.tasks.values() if r.status is TaskState.SUCCEEDED]
        context = {r.task_id: r.output for r in succeeded}
        description = (
            "Merge the results of the subtasks in your context into one answer to the task. Say what is missing"
            " where a subtask failed or was skipped: "
            + ", ".join(f"{t} ({r.status.value})" for t, r in session.tasks.items())
        )
        try:
            result, _ = await self.run_once(agent, description, session.task_description, context=context,
                                            context_files=context_files(succeeded), session=session)
        except RunnerUnavailableError as exc:
            session.notes.append(f"synthesizer {name!r} could not run ({_first_line(str(exc))}); summary given")
            return
        if result.ok:
            session.synthesis = result.output[:INLINE_CHARS]
            session.notes.append(f"synthesized by {name}")
            if len(result.output) > INLINE_CHARS:
                session.notes.append(f"the synthesis was cut at {INLINE_CHARS:,} of {len(result.output):,} characters")
        else:
            session.notes.append(f"synthesizer {name!r} failed ({_first_line(result.error)}); summary given")

    # Running ------------------------------------------------------------------------------------

    async def start(
        self,
        task_description: str,
        planned: PlannedSession,
        options: CoordinateOptions,
        *,
        resumed_from: str | None = None,
        kept: dict[str, StoredTask] | None = None,
        strategy: Strategy = "auto",
        owner: str | None = None,
    ) -> Session:
        assert self._task_group is not None, "use the Coordinator as an async context manager"
        running = [s for s in self.active_sessions if s.owner == owner]
        if len(running) >= self.settings.max_sessions_per_principal:
            raise PlanError(
                f"{len(running)} sessions of this client are still running, the most allowed at once"
                f" ({self.settings.max_sessions_per_principal}); wait for one to end or cancel one"
            )
        session = Session(
            strategy=strategy, owner=owner,
            id=secrets.token_hex(8), task_description=task_description, options=options, graph=planned.graph,
            agents=planned.agents, routing_notes=planned.routing_notes, resumed_from=resumed_from,
        )
        self.store.create_session(
            session.id, task_description, options.model_dump(mode="json"), session.created_at, options.max_agents,
            [(n.id, n.agent, n.description, n.dependencies, n.priority, _node_spec(n))
             for n in planned.graph.nodes.values()],
            resumed_from=resumed_from, owner=owner,
        )
        self.events.emit(SessionEvent(
            "session_started", session.id, details={"tasks": len(planned.graph), "resumed_from": resumed_from},
        ))
        for task_id in planned.graph.order:
            if kept and task_id in kept:
                self._keep_result(session, kept[task_id])
        self.sessions[session.id] = session
        self._task_group.start_soon(self._run_session, session, name=f"session {session.id}")
        return session

    def _keep_result(self, session: Session, stored: StoredTask) -> None:
        record = session.tasks[stored.task_id]
        record.status = TaskState.SUCCEEDED
        record.agent = stored.agent
        record.keep(stored.kept)
        record.started_at, record.finished_at = stored.started_at, stored.finished_at
        record.input_tokens, record.output_tokens, record.cost_usd = (
            stored.input_tokens, stored.output_tokens, stored.cost_usd,
        )
        record.progress = 100.0
        session.scheduler.mark_succeeded(stored.task_id)
        self.store.update_task(
            session.id, stored.task_id, status="succeeded", output=record.output, output_chars=record.output_chars,
            output_path=record.output_path, output_cut=record.output_cut,
            started_at=record.started_at, finished_at=record.finished_at, input_tokens=record.input_tokens,
            output_tokens=record.output_tokens, cost_usd=record.cost_usd,
            error=f"kept from session {session.resumed_from!r}",
        )

    async def _run_session(self, session: Session) -> None:
        deadline = anyio.current_time() + session.options.timeout if session.options.timeout else None
        try:
            async with anyio.create_task_group() as tasks:
                while not session.scheduler.finished:
                    self._start_ready(session, tasks)
                    # A queue held back by CPU, memory or a rate limit is looked at again shortly.
                    wait = _RECHECK_S if session.queue_reason else math.inf
                    if deadline is not None:
                        wait = min(wait, deadline - anyio.current_time())
                    with anyio.move_on_after(wait):
                        await session.wake.wait()
                    session.wake = anyio.Event()
                    if deadline is not None and anyio.current_time() >= deadline and session.stop_reason is None:
                        assert session.options.timeout is not None
                        await self._stop(session, f"session timed out after {session.options.timeout:g} s")
            with anyio.move_on_after(deadline - anyio.current_time() if deadline else math.inf):
                await self._synthesize(session)
        finally:
            self._finish_session(session)

    def _start_ready(self, session: Session, tasks: anyio.abc.TaskGroup) -> None:
        before = session.queue_reason
        session.queue_reason = self._start_what_may(session, tasks)
        if session.queue_reason != before:
            session.notify()

    def _start_what_may(self, session: Session, tasks: anyio.abc.TaskGroup) -> str | None:
        """Start ready tasks while the limits allow; returns why the rest must wait, if they must."""
        if session.stop_reason is not None:
            return None
        while len(session.scheduler.running) < session.options.max_agents and session.scheduler.ready_count():
            refusal = self.gate.refusal(self._expected_need_mb(session), self.active_agents)
            if refusal is not None:
                return refusal
            task_id = session.scheduler.take_ready(lambda agent: self._may_start(session, agent))
            if task_id is None:
                return self._throttle_reason(session)
            agent = session.tasks[task_id].agent
            batch = [task_id]
            if session.strategy == "burst" and session.agents[agent].runner == "claude":
                # Small tasks for the same agent share one run: one start-up and one system prompt.
                same_agent = agent.__eq__
                while len(batch) < BURST_BATCH_SIZE:
                    more = session.scheduler.take_ready(same_agent)
                    if more is None:
                        break
                    batch.append(more)
            self._agent_running[agent] += 1  # one slot, however many tasks the run carries
            for member in batch:
                record = session.tasks[member]
                record.status = TaskState.RUNNING
                record.started_at = time.time()
                self.store.update_task(session.id, member, status="running", started_at=record.started_at)
                self.events.emit(SessionEvent("task_started", session.id, member, agent, ts=record.started_at))
            if len(batch) == 1:
                tasks.start_soon(self._run_task, session, task_id, name=f"task {session.id}/{task_id}")
            else:
                tasks.start_soon(self._run_batch, session, batch, name=f"batch {session.id}/{task_id}")
        return None

    def _may_start(self, session: Session, agent: str) -> bool:
        spec = session.agents[agent]
        if spec.max_concurrent is not None and self._agent_running[agent] >= spec.max_concurrent:
            return False
        return self._throttle(spec.runner).admits()

    def _throttle(self, runner: str) -> RunnerThrottle:
        if runner not in self.throttles:
            self.throttles[runner] = RunnerThrottle(max_limit=self.settings.pool_size)
        return self.throttles[runner]

    def _throttle_reason(self, session: Session) -> str | None:
        for runner, throttle in self.throttles.items():
            if throttle.throttled and any(a.runner == runner for a in session.agents.values()):
                return (
                    f"backing off {runner!r} after {throttle.rate_limits} rate limit(s): at most"
                    f" {max(1, int(throttle.limit))} at once, next start in {throttle.pause_left():.1f} s"
                )
        return None

    def _expected_need_mb(self, session: Session) -> float:
        """Memory the next agent is expected to need, the most of any task waiting to start.

        A subtask's `resources_required.memory_mb` says it outright; otherwise the most its agent has
        been seen to use, or a default for its runner; never more than the per-agent cap.
        """
        needs = []
        for agent, declared in session.scheduler.ready_groups():
            if declared is not None:
                needs.append(declared)
                continue
            runner = session.agents[agent].runner
            needs.append(self._peak_rss_mb.get(agent, DEFAULT_NEED_MB.get(runner, 50.0)))
        return min(max(needs, default=0.0), session.options.memory_limit_mb)

    @property
    def active_agents(self) -> int:
        return sum(self._agent_running.values())

    async def next_machine_sample(self) -> None:
        """Wait for the machine sampler's next reading (CPU figures change only then)."""
        await self._sampled.wait()

    async def _sample_machine(self) -> None:
        while True:
            self.gate.sample_cpu(ours=bool(self.active_sessions))
            self._sampled.set()
            self._sampled = anyio.Event()
            if self.active_sessions:
                self._warn_about_alerts()
                await self._answer_cancel_requests()  # a cancel here pauses sampling for its few seconds
            await anyio.sleep(_CPU_SAMPLE_S)

    async def _run_task(self, session: Session, task_id: str) -> None:
        """Run one task to its end: retries with backoff, then each fallback agent in turn."""
        node = session.graph.nodes[task_id]
        record = session.tasks[task_id]
        held = node.agent  # the agent whose concurrency slot this task holds
        result = RunResult(ok=False, error="not run")
        key, reused = await self._reuse(session, node)
        try:
            for agent_name in (node.agent, *node.fallback_agents) if reused is None else ():
                if agent_name != held:
                    held = await self._move_slot(session, held, agent_name)
                    if held != agent_name:
                        break  # stopped while waiting for the fallback's slot
                    record.agent = agent_name
                    log.info("task %r moves to fallback agent %r", task_id, agent_name)
                result = await self._attempts_with(session, node, record, session.agents[agent_name])
                if result.ok or session.stop_reason is not None:
                    break
        finally:
            self._agent_running[held] -= 1
            self._poke_all()
        self._finish_task(session, task_id, reused or result)
        if key is not None:
            # Twins get the output as it is now kept (its head and file), never a whole copy in memory.
            kept = record.kept
            self._publish_result(session, key, task_id, dataclasses.replace(result, output=kept.head, kept=kept))

    async def _run_batch(self, session: Session, batch: list[str]) -> None:
        """Several small tasks of one agent in one run; the answer is split back per task.

        Tasks the answer has no section for run again on their own, so a batch can only save work.
        """
        nodes = [session.graph.nodes[t] for t in batch]
        agent = session.agents[nodes[0].agent]
        carrier = session.tasks[batch[0]]
        combined = TaskNode(
            id=batch[0], description=batch_prompt(nodes), agent=agent.name,
            dependencies=tuple(dict.fromkeys(d for n in nodes for d in n.dependencies)),
            priority=min(n.priority for n in nodes),
            timeout_s=max((n.timeout_s or agent.timeout or self.settings.task_timeout_s) for n in nodes),
            max_attempts=1,
        )
        try:
            result = await self._attempts_with(session, combined, carrier, agent)
        finally:
            self._agent_running[agent.name] -= 1
            self._poke_all()
        parts = split_batch(result.output, batch) if result.ok else {}
        for member in batch:
            if member in parts:
                if member != batch[0]:
                    session.tasks[member].attempts = list(carrier.attempts)
                self._finish_task(session, member, RunResult(
                    ok=True, output=parts[member],
                    input_tokens=result.input_tokens if member == batch[0] else None,
                    output_tokens=result.output_tokens if member == batch[0] else None,
                    cost_usd=result.cost_usd if member == batch[0] else None,
                ))
        session.notes.append(
            f"batched {len(batch)} tasks of {agent.name} in one run ({', '.join(batch)}); "
            f"{len(parts)} answered there" + (f", tokens and cost counted on {batch[0]!r}" if parts else "")
        )
        for member in batch:
            if member in parts:
                continue
            if session.stop_reason is not None:
                self._finish_task(session, member, RunResult(
                    ok=False, error=session.stop_reason, details={"reason": "cancelled"}))
                continue
            session.tasks[member].attempts = []
            self._agent_running[agent.name] += 1
            await self._run_task(session, member)

    async def _reuse(self, session: Session, node: TaskNode) -> tuple[str | None, RunResult | None]:
        """The cache key of this task, and a result to reuse if an identical task already produced one.

        Identical means same agent, description and context. A twin still running is waited for.
        """
        mode = session.options.reuse_results
        if mode == "off":
            return None, None
        context = {dep: session.tasks[dep].kept.identity() for dep in node.dependencies}
        key = cache_key(node.agent, node.description, context)
        source: tuple[str, RunResult] | None = None
        twin = session.result_cache.get(key)
        if twin is not None:
            record = session.tasks[node.id]
            record.waiting_for = twin.task_id  # runs no agent meanwhile: shown as waiting, not active
            session.notify()
            while not twin.done.is_set() and session.stop_reason is None:
                with anyio.move_on_after(_RECHECK_S):
                    await twin.done.wait()
            record.waiting_for = None
            if twin.result is not None and twin.result.ok:
                source = (twin.task_id, twin.result)
        elif mode == "server":
            source = self._result_cache.get(key)
        if source is None:
            if twin is None:
                session.result_cache[key] = CachedResult(node.id)
            return key, None
        origin, result = source
        session.notes.append(f"task {node.id!r} reused the result of {origin!r} (same agent, description and context)")
        return None, RunResult(
            ok=True, output=result.output, kept=result.kept, details={"reason": "reused", "from": origin}
        )

    def _publish_result(self, session: Session, key: str, task_id: str, result: RunResult) -> None:
        entry = session.result_cache.get(key)
        if entry is not None and entry.task_id == task_id:
            entry.result = result
            entry.done.set()
        if result.ok and session.options.reuse_results == "server":
            self._result_cache.put(key, f"{session.id}/{task_id}", result)

    async def _attempts_with(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec
    ) -> RunResult:
        """Up to max_attempts runs of one agent; rate-limited runs wait and do not use up attempts."""
        max_attempts = node.max_attempts or session.options.retry_attempts
        throttle = self._throttle(agent.runner)
        used = rate_limited = 0
        result = RunResult(ok=False, error="not run")
        while used < max_attempts and session.stop_reason is None:
            await self._wait_until(session, throttle.admits, throttle.pause_left)
            if session.stop_reason is not None:
                break
            result = await self._attempt(session, node, record, agent)
            if result.ok:
                throttle.on_success()
                return result
            if result.details.get("reason") in ("cancelled", "lost") and session.stop_reason is not None:
                return result
            if result.rate_limited and rate_limited < self.settings.max_rate_limit_retries:
                rate_limited += 1
                pause = throttle.on_rate_limit()
                log.warning("%s run of task %r was rate limited; backing off %.1f s", agent.runner, node.id, pause)
                continue
            used += 1
            if not result.retryable or outcome_is_permanent(result):
                break
            if used < max_attempts:
                await self._backoff(session, node, used)
        return result

    async def _backoff(self, session: Session, node: TaskNode, failures: int) -> None:
        """Exponential backoff with jitter before a retry; a stop cuts it short."""
        base = node.backoff_s if node.backoff_s is not None else 1.0
        delay = min(self.settings.max_backoff_s, base * 2 ** (failures - 1)) * random.uniform(0.5, 1.5)
        with anyio.move_on_after(delay):
            await session.stopped.wait()

    async def _wait_until(
        self, session: Session, admitted: Callable[[], bool], pause_left: Callable[[], float]
    ) -> None:
        while not admitted() and session.stop_reason is None:
            with anyio.move_on_after(max(pause_left(), _RECHECK_S)):
                await session.stopped.wait()

    async def _move_slot(self, session: Session, held: str, wanted: str) -> str:
        """Give back `held`'s concurrency slot and take one of `wanted`'s, waiting for room."""
        self._agent_running[held] -= 1
        self._poke_all()
        spec = session.agents[wanted]
        while spec.max_concurrent is not None and self._agent_running[wanted] >= spec.max_concurrent:
            if session.stop_reason is not None:
                self._agent_running[held] += 1
                return held
            changed = self._capacity
            with anyio.move_on_after(_RECHECK_S):
                await changed.wait()
        self._agent_running[wanted] += 1
        return wanted

    def _finish_task(self, session: Session, task_id: str, result: RunResult) -> None:
        record = session.tasks[task_id]
        record.finished_at = time.time()
        # From here on the server holds only the output's head; a long one lives whole in a file.
        record.keep(result.kept or keep_text(
            result.output, self._artefacts(session, task_id, max(1, len(record.attempts)))
        ))
        if result.ok:
            record.status = TaskState.SUCCEEDED
            record.error, record.progress = None, 100.0
            session.scheduler.succeed(task_id)
        else:
            stopped = session.stop_reason is not None and result.details.get("reason") in ("cancelled", "lost")
            record.status = TaskState.CANCELLED if stopped else TaskState.FAILED
            record.error = result.error
            self._skip_dependents(session, task_id)
        tokens = [a for a in (result.input_tokens, result.output_tokens) if a is not None]
        if tokens or result.cost_usd is not None:
            record.input_tokens, record.output_tokens, record.cost_usd = (
                result.input_tokens, result.output_tokens, result.cost_usd,
            )
        self.store.update_task(
            session.id, task_id, status=record.status.value, output=record.output, output_chars=record.output_chars,
            output_path=record.output_path, output_cut=record.output_cut, error=record.error,
            agent=record.agent, attempts=len(record.attempts), finished_at=record.finished_at,
            input_tokens=record.input_tokens, output_tokens=record.output_tokens, cost_usd=record.cost_usd,
            progress=record.progress, message=record.message,
        )
        if result.ok and record.started_at is not None:
            last = record.attempts[-1] if record.attempts else None
            if last is not None and last.finished_at is not None:
                self.estimator.observe(record.agent, last.finished_at - last.started_at)
        self.events.emit(SessionEvent(
            "task_ended", session.id, task_id, record.agent, status=record.status.value, error=record.error,
            details={"attempts": len(record.attempts), "output_chars": record.output_chars},
        ))
        session.poke()
        if record.status is TaskState.FAILED and session.options.on_failure == "stop" and not session.stop_reason:
            assert self._task_group is not None
            self._task_group.start_soon(self._stop, session, f"stopped at the first failure: task {task_id!r} failed")

    def _skip_dependents(self, session: Session, task_id: str) -> None:
        skipped = session.scheduler.fail(task_id, session.tasks[task_id].status)
        for other in skipped:
            session.tasks[other].status = TaskState.SKIPPED
            session.tasks[other].error = session.scheduler.skip_reason[other]
            self.store.update_task(session.id, other, status="skipped", error=session.tasks[other].error)
            self.events.emit(SessionEvent(
                "task_ended", session.id, other, session.tasks[other].agent, status="skipped",
                error=session.tasks[other].error,
            ))

    async def _attempt(self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec) -> RunResult:
        number = len(record.attempts) + 1
        attempt = AttemptInfo(number=number, agent=agent.name, started_at=time.time())
        record.attempts.append(attempt)
        session.attempts_running += 1  # peak parallelism counts agent runs (metrics.peak_parallelism)
        session.peak_parallelism = max(session.peak_parallelism, session.attempts_running)
        try:
            return await self._attempt_run(session, node, record, agent, attempt)
        finally:
            session.attempts_running -= 1

    async def _attempt_run(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec, attempt: AttemptInfo
    ) -> RunResult:
        number = attempt.number
        self.store.add_attempt(
            StoredAttempt(session.id, node.id, number, agent.name, attempt.started_at, None, None, "running", None),
            pid=None, peak_rss_mb=None,
        )
        session.notify()
        self.events.emit(SessionEvent("attempt_started", session.id, node.id, agent.name, attempt=number))
        request = TaskRequest(
            session_id=session.id,
            task_id=node.id,
            description=node.description,
            task_description=session.task_description,
            context={dep: session.tasks[dep].output for dep in node.dependencies},
            context_files=context_files(session.tasks[dep] for dep in node.dependencies),
            working_directory=session.options.working_directory,
            timeout_s=node.timeout_s or agent.timeout or self.settings.task_timeout_s,
            token_budget=session.options.token_budget_per_agent,
            attempt=number,
        )
        runner = self.runners.get(agent.runner)
        agent = self._for_this_run(session, node, agent)
        outcome: AttemptOutcome
        if runner is None:
            missing = f"no runner {agent.runner!r} for agent {agent.name!r}"
            outcome = AttemptOutcome(reason="spawn_failed", error=missing)
            result = RunResult(ok=False, error=outcome.error, retryable=False)
        else:
            try:
                outcome, result = await self._run_isolated(session, node, record, agent, runner, request)
            except WorktreeError as exc:
                outcome = AttemptOutcome(reason="spawn_failed", error=str(exc))
                result = RunResult(ok=False, error=str(exc), retryable=False)
        result.details.setdefault("reason", outcome.reason)
        if outcome.peak_rss_mb:
            self._peak_rss_mb[agent.name] = max(self._peak_rss_mb.get(agent.name, 0.0), outcome.peak_rss_mb)
        session.killed_processes += outcome.killed_processes
        attempt.finished_at = outcome.finished_at or time.time()
        if outcome.started_at:
            attempt.started_at = outcome.started_at
        attempt.exit_code = outcome.exit_code
        attempt.outcome = "rate_limited" if result.rate_limited else outcome.reason
        attempt.error = result.error
        self.store.add_attempt(
            StoredAttempt(
                session.id, node.id, number, agent.name, attempt.started_at, attempt.finished_at,
                attempt.exit_code, attempt.outcome, attempt.error,
            ),
            pid=outcome.pid,
            peak_rss_mb=outcome.peak_rss_mb,
            streams={
                "stdout_bytes": outcome.stdout_bytes, "stderr_bytes": outcome.stderr_bytes,
                "stdout_cut_on_disk": outcome.stdout_cut_on_disk, "stderr_cut_on_disk": outcome.stderr_cut_on_disk,
            },
        )
        self.events.emit(SessionEvent(
            "attempt_ended", session.id, node.id, agent.name, attempt=number, status=attempt.outcome,
            error=attempt.error,
            details={
                "exit_code": attempt.exit_code, "duration_s": round(attempt.finished_at - attempt.started_at, 3),
                "peak_rss_mb": outcome.peak_rss_mb, "killed_processes": outcome.killed_processes,
                "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                "cost_usd": result.cost_usd,
            },
        ))
        return result

    async def _run_isolated(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec, runner: Runner,
        request: TaskRequest,
    ) -> tuple[AttemptOutcome, RunResult]:
        """Start the agent (in its own worktree if it wants one), wait for it, and read its outcome."""
        throttle = self._throttle(agent.runner)
        async with self._isolation(session, node, record, agent, request) as isolated:
            try:
                invocation = runner.invocation(agent, isolated)
            except RunnerUnavailableError as exc:
                return AttemptOutcome(reason="spawn_failed", error=str(exc)), RunResult(
                    ok=False, error=str(exc), retryable=False
                )
            throttle.running += 1
            try:
                outcome = await self._supervise(session, record, invocation, isolated, self._agent_env(runner, agent))
            finally:
                throttle.running -= 1
            result = runner.interpret(agent, outcome)
            if outcome.stdout_truncated and runner.output_is_stdout:
                # Only the start reached us: the whole output is the stdout artefact (up to the disk cap).
                stdout = self._artefacts(session, node.id, request.attempt) / "stdout"
                result.kept = keep_file(result.output, stdout, outcome.stdout_chars, cut=outcome.stdout_cut_on_disk)
            return outcome, result

    @asynccontextmanager
    async def _isolation(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec, request: TaskRequest
    ) -> AsyncIterator[TaskRequest]:
        """Run in a fresh git worktree when the agent or the session asks for isolation.

        Afterwards the agent's changes are committed on the worktree's branch and summarised in the
        task's record; the worktree itself is removed unless options.keep_worktrees.
        """
        if agent.isolation != "worktree" and session.options.isolation != "worktree":
            yield request
            return
        where = Path(request.working_directory or Path.cwd())
        # A WorktreeError here fails the attempt with git's own words (see _attempt).
        tree = await anyio.to_thread.run_sync(lambda: create_worktree(
            where, session_id=session.id, task_id=node.id, attempt=request.attempt, root=self.worktrees_dir,
        ))
        try:
            yield dataclasses.replace(request, working_directory=str(tree.cwd))
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_WAIT_S):
                keep = session.options.keep_worktrees
                try:
                    summary = await anyio.to_thread.run_sync(summarize, tree)
                    record.worktree = {
                        "branch": summary.branch, "files_changed": summary.files_changed,
                        "insertions": summary.insertions, "deletions": summary.deletions,
                        "files": summary.files[:50], "committed": summary.committed,
                        "path": str(tree.path) if keep else None,
                    }
                    if not keep:
                        await anyio.to_thread.run_sync(lambda: remove_worktree(tree))
                except WorktreeError as exc:
                    log.warning("worktree of task %r: %s", node.id, exc)
                    record.worktree = {"branch": tree.branch, "error": str(exc), "path": str(tree.path)}
                self.store.update_task(session.id, node.id, worktree=json.dumps(record.worktree))

    @property
    def worktrees_dir(self) -> Path:
        return self.settings.state_dir / "worktrees"

    def _for_this_run(self, session: Session, node: TaskNode, agent: AgentSpec) -> AgentSpec:
        """The agent as this run needs it: a chosen model, and the session's budgets."""
        if agent.runner != "claude":
            return agent
        models = {**DEFAULT_MODELS, **self.settings.models}
        extra = dict(agent.extra)
        if session.options.cost_budget_per_agent_usd is not None:
            extra["maxBudgetUsd"] = session.options.cost_budget_per_agent_usd
        return agent.model_copy(update={"model": choose_model(agent, node, models), "extra": extra})

    def _artefacts(self, session: Session, task_id: str, attempt: int) -> Path:
        return self.settings.runs_dir / session.id / _safe_name(task_id) / str(attempt)

    async def _supervise(
        self, session: Session, record: TaskRecord, invocation: Invocation, request: TaskRequest,
        env: dict[str, str],
    ) -> AttemptOutcome:
        attempt_id = secrets.token_hex(8)
        record.attempt_id, record.pid, record.progress, record.message = attempt_id, None, None, None
        job = SupervisorJob(
            attempt_id=attempt_id,
            invocation=invocation,
            env=env,
            artefact_dir=str(self._artefacts(session, record.task_id, request.attempt)),
            channel="",
            cwd=request.working_directory,
            timeout_s=request.timeout_s,
            memory_limit_mb=session.options.memory_limit_mb,
            output_cap_bytes=self.settings.output_cap_bytes,
            disk_cap_bytes=self.settings.artefact_cap_bytes,
            token_budget=request.token_budget if invocation.stream == "claude" else None,
        )

        persisted = [0.0]

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "started":
                record.pid = event.get("pid")
            elif kind == "progress":
                record.progress = event.get("percent")
                record.message = event.get("message")
                self.events.emit(SessionEvent(
                    "progress", session.id, record.task_id, record.agent, progress=record.progress,
                    message=record.message,
                ))
                # Persisted at most once a second, for `pcoord watch` in another process.
                now = time.monotonic()
                if now - persisted[0] >= 1.0:
                    persisted[0] = now
                    self.store.update_task(
                        session.id, record.task_id, progress=record.progress, message=record.message
                    )
            session.notify()

        if session.stop_reason is not None:
            return AttemptOutcome(reason="cancelled", error=session.stop_reason)
        try:
            return await self.backend.run(job, on_event)
        except WorkerLostError as exc:  # a worker that died takes only its own attempt with it
            log.warning("attempt %s of task %r lost its worker: %s", attempt_id, record.task_id, exc)
            return AttemptOutcome(reason="lost", error=str(exc))
        except Exception as exc:
            # Not the agent's failure, not a lost worker: ours. Say so, keep serving, do not retry.
            log.exception("attempt %s of task %r failed inside Parallel Coordinator", attempt_id, record.task_id)
            return AttemptOutcome(reason="spawn_failed", error=(
                f"internal error in Parallel Coordinator while running it ({exc!r}); this is a bug, please report it"
            ))
        finally:
            record.attempt_id = None

    def _agent_env(self, runner: Runner, agent: AgentSpec) -> dict[str, str]:
        """The environment this agent starts with: ours, less credentials and secrets (environment.py).

        Worked out once per distinct pass-through list (matching every variable against every pattern
        costs ~0.3 ms, on the path of every attempt); the server's environment does not change while it runs.
        """
        allowed = (*runner.env_passthrough, *agent.pass_env)
        env = self._agent_envs.get(allowed)
        if env is None:
            env = self._agent_envs[allowed] = self.settings.environment_policy.agent_environment(allowed)
        return env

    def _poke_all(self) -> None:
        # A freed agent slot may let another session's task, or a waiting fallback, start.
        self._capacity.set()
        self._capacity = anyio.Event()
        for other in self.sessions.values():
            if other.status == "RUNNING":
                other.wake.set()

    def _finish_session(self, session: Session) -> None:
        cancelled = session.scheduler.cancel_pending()
        for task_id in cancelled:
            session.tasks[task_id].status = TaskState.CANCELLED
        if cancelled:
            self.store.update_tasks(session.id, cancelled, status="cancelled")
        for record in session.tasks.values():
            if record.status is TaskState.RUNNING:  # only when the server itself is going down
                record.status = TaskState.INTERRUPTED
                self.store.update_task(session.id, record.task_id, status="interrupted")
        session.finished_at = time.time()
        session.status = session.decide_status()
        session.queue_reason = None
        failures = [r for r in session.tasks.values() if r.status is TaskState.FAILED]
        notes = []
        if session.stop_reason and not session.cancel_requested:
            notes.append(session.stop_reason)
        if failures:
            notes.append(
                f"{len(failures)} task(s) failed: "
                + "; ".join(f"{r.task_id} ({r.agent}): {_first_line(r.error)}" for r in failures[:5])
            )
        skipped = session.scheduler.count(TaskState.SKIPPED)
        if skipped:
            notes.append(f"{skipped} task(s) skipped because a dependency failed")
        session.error_summary = "; ".join(notes) or None
        self.store.finish_session(
            session.id, session.status, session.finished_at, session.error_summary, session.synthesis,
            peak_parallelism=session.peak_parallelism, notes=session.notes, killed_processes=session.killed_processes,
        )
        self.events.emit(SessionEvent(
            "session_ended", session.id, status=session.status, error=session.error_summary,
            details={"execution_time_s": round(session.finished_at - session.created_at, 3)},
        ))
        session.done.set()
        session.poke()
        self._retire(session)

    def _retire(self, session: Session) -> None:
        """An ended session leaves memory (the store has it all), but the last few stay for quick reads."""
        session.result_cache.clear()
        for stale in self._ended.add(session):
            self.sessions.pop(stale, None)

    def snapshot(self, session: Session | StoredSession) -> Snapshot:
        return snapshot_of(session, self.estimator)

    def performance_metrics(self) -> PerformanceMetrics:
        sessions = self.active_sessions
        return performance_metrics(
            self.store, (self.gate.cpu_percent, *memory_sample()), active_agents=self.active_agents,
            queue_size=sum(s.scheduler.ready_count() for s in sessions),
            queue_reasons=sorted({s.queue_reason for s in sessions if s.queue_reason}),
            limits=self.settings.alert_limits,
        )

    def _warn_about_alerts(self) -> None:
        """Log each alert once, when it first appears."""
        current = set(self.performance_metrics().alerts)
        for alert in sorted(current - self._alerts):
            log.warning("alert: %s", alert)
        self._alerts = current

    async def wait(self, session: Session, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await session.done.wait()

    # Looking up ---------------------------------------------------------------------------------

    def get(self, session_id: str, principal: str | None = None) -> Session | StoredSession:
        """A session by id. With a principal (an HTTP client), only its own: a foreign session is
        reported exactly like a missing one, so ids cannot be probed."""
        session = self.sessions.get(session_id)
        found: Session | StoredSession | None = session if session is not None else self.store.load_session(session_id)
        if found is None or (principal is not None and found.owner != principal):
            raise UnknownSessionError(session_id)
        return found

    def list_sessions(self, principal: str | None = None, limit: int = 20) -> list[tuple[str, str, str, float]]:
        """(id, status, task description, created_at) of the newest sessions this principal may see."""
        return self.store.recent_sessions(limit, owner=principal)

    @property
    def active_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.status == "RUNNING"]

    # Cancelling ---------------------------------------------------------------------------------

    async def cancel(self, session_id: str, principal: str | None = None) -> CancelOutcome:
        """Stop a session: pending tasks are cancelled, running agents' trees killed. Idempotent."""
        found = self.get(session_id, principal)
        if not isinstance(found, Session):
            if found.status == "RUNNING":
                return await self._cancel_elsewhere(found.id)
            return CancelOutcome(found.id, found.status, 0, 0)
        if found.status != "RUNNING":
            return CancelOutcome(found.id, found.status, 0, 0)
        session = found
        session.cancel_requested = True
        with anyio.CancelScope(shield=True):
            cancelled = await self._stop(session, "cancelled by the caller")
            with anyio.move_on_after(_CANCEL_WAIT_S):
                await session.done.wait()
        return CancelOutcome(session.id, session.status, cancelled, session.killed_processes)

    async def _cancel_elsewhere(self, session_id: str) -> CancelOutcome:
        """A session another server on this state directory runs: ask it through the store, wait for it."""
        pid, started_at, _, _ = self.store.owner_of(session_id)
        if not is_alive(pid, started_at):
            self.store.recover_orphans(time.time())
            _, _, ended, _ = self.store.owner_of(session_id)
            return CancelOutcome(session_id, ended or "FAILED", 0, 0, note=(
                f"the server that ran it (pid {pid}) is gone, so its agents died with it; the session was"
                " already interrupted and is now marked so"
            ))
        self.store.request_cancel(session_id, time.time())
        with anyio.move_on_after(_CANCEL_WAIT_S):
            # Another process writes the answer: there is nothing to wait on but the database itself.
            while self.store.owner_of(session_id)[2] == "RUNNING":  # noqa: ASYNC110
                await anyio.sleep(_STORE_POLL_S)
        stored = self.store.load_session(session_id)
        cancelled = sum(t.status == "cancelled" for t in stored.tasks) if stored else 0
        _, _, status, killed = self.store.owner_of(session_id)
        if status == "RUNNING":
            note = f"asked the server running it (pid {pid}) to cancel; no confirmation within {_CANCEL_WAIT_S:g} s"
        else:
            note = f"cancelled through the state directory by the server running it (pid {pid})"
        return CancelOutcome(session_id, status or "RUNNING", cancelled, killed, note=note)

    async def _answer_cancel_requests(self) -> None:
        """Cancel our sessions that another server asked to stop (through the store)."""
        mine = {s.id for s in self.active_sessions}
        for session_id in self.store.cancel_requests() & mine:
            log.info("session %s: cancel requested through the state directory", session_id)
            await self.cancel(session_id)

    async def _stop(self, session: Session, reason: str) -> int:
        """Cancel what has not started and tell every running attempt to kill its agent."""
        if session.stop_reason is None:
            session.stop_reason = reason
        session.stopped.set()
        pending = session.scheduler.cancel_pending()
        for task_id in pending:
            session.tasks[task_id].status = TaskState.CANCELLED
            session.tasks[task_id].error = reason
        if pending:
            self.store.update_tasks(session.id, pending, status="cancelled", error=reason)
        for task_id in pending:
            self.events.emit(SessionEvent(
                "task_ended", session.id, task_id, session.tasks[task_id].agent, status="cancelled", error=reason,
            ))
        running = session.running()
        for record in running:
            if record.attempt_id is not None:
                await self.backend.cancel(record.attempt_id)
        for attempt_id in list(session.extra_attempts):
            await self.backend.cancel(attempt_id)
        session.poke()
        return len(pending) + len(running)


def outcome_is_permanent(result: RunResult) -> bool:
    """Running again cannot help: it could not start (missing command), or it spent its whole budget."""
    return result.details.get("reason") in ("spawn_failed", "budget")


BURST_BATCH_SIZE = 8
_BATCH_MARKER = re.compile(r"^=== task: (.+?) ===[ \t]*$", re.MULTILINE)


def batch_prompt(nodes: Sequence[TaskNode]) -> str:
    sections = "\n\n".join(f"=== task: {n.id} ===\n{n.description}" for n in nodes)
    return (
        f"You have {len(nodes)} small tasks. Answer every one, in the order given. Begin each answer with a"
        " line of its own that repeats its marker exactly, for example `=== task: "
        f"{nodes[0].id} ===`, and put nothing else on that line.\n\n{sections}"
    )


def split_batch(answer: str, task_ids: Sequence[str]) -> dict[str, str]:
    """Each task's part of a batched answer, by its marker line; tasks without one are left out."""
    wanted = set(task_ids)
    found = list(_BATCH_MARKER.finditer(answer))
    parts: dict[str, str] = {}
    for marker, following in zip(found, [*found[1:], None], strict=True):
        task_id = marker.group(1).strip()
        if task_id in wanted and task_id not in parts:
            end = following.start() if following else len(answer)
            parts[task_id] = answer[marker.end():end].strip("\n")
    return parts


DEFAULT_MODELS = {"simple": "haiku", "default": "sonnet", "critical": "opus"}


def choose_model(agent: AgentSpec, node: TaskNode, models: dict[str, str]) -> str | None:
    """Smart selection for agents that leave the model open: small for simple work, largest for critical."""
    if agent.model and agent.model.strip().lower() != "inherit":
        return agent.model
    if node.priority == 1 or agent.priority == "critical":
        return models.get("critical")
    if node.priority >= 4 or agent.priority == "low":
        return models.get("simple")
    return models.get("default")


def cache_key(agent: str, description: str, context: dict[str, str]) -> str:
    payload = json.dumps([agent, description, sorted(context.items())], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def _node_spec(node: TaskNode) -> dict[str, Any]:
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
        total = MachineGate.total_memory_mb()
        if declared > total:
            raise PlanError(
                f"task {sub.id!r} declares memory_mb {declared:g}, but this machine has {total:,.0f} MB in all;"
                " lower resources_required.memory_mb"
            )


def _first_line(text: str | None) -> str:
    """One line of an error for a summary; 'exited ...; last stderr lines:' gets its last line too."""
    lines = (text or "").strip().splitlines()
    if not lines:
        return "no error text"
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[-1].strip()}"
    return first[:200]


def _safe_name(task_id: str) -> str:
    """A task id as a directory name: ids are free text, paths are not."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in task_id)[:80]
    if cleaned == task_id:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(task_id.encode()).hexdigest()[:8]}"
