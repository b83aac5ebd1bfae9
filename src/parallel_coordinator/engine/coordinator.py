"""The coordinator: the engine's facade. It composes the parts and offers start, resume, get, list, cancel.

Plain Python and anyio: it knows nothing of MCP and nothing of presentation, so the server, the
CLI and tests all drive it the same way. One anyio task group owns every session; each session's
task group owns its attempts. docs/design.md draws the parts and walks one subtask through them.
"""

from __future__ import annotations

import importlib
import secrets
import threading
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType

import anyio
import anyio.abc

from parallel_coordinator.agents import AgentCatalog, AgentSpec
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.admission import Gate, MachineGate
from parallel_coordinator.engine.attempts import Attempts
from parallel_coordinator.engine.budget import BudgetGuard
from parallel_coordinator.engine.cancel import CANCEL_WAIT_S, CancelOutcome, answer_cancel_requests, cancel_elsewhere
from parallel_coordinator.engine.catalog import Agents
from parallel_coordinator.engine.events import EventBus, PerformanceLog, SessionEvent
from parallel_coordinator.engine.health import Health, Sampler, health_now
from parallel_coordinator.engine.one_off import OneOffRuns
from parallel_coordinator.engine.policy import SessionPolicy, options_with_defaults
from parallel_coordinator.engine.read_model import SessionView, view_of
from parallel_coordinator.engine.recorder import StoreRecorder, session_started
from parallel_coordinator.engine.reuse import ResultReuse
from parallel_coordinator.engine.run_loop import SessionRuns
from parallel_coordinator.engine.session import Session
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.engine.startup import learn_durations, learn_usage, recover, weigh_by_learned_durations
from parallel_coordinator.engine.tasks import TaskRuns
from parallel_coordinator.engine.throttle import RunnerThrottle
from parallel_coordinator.errors import ApprovalRequiredError, EngineNotStartedError, PlanError, UnknownSessionError
from parallel_coordinator.execution.backend import ExecutionBackend, make_backend
from parallel_coordinator.execution.environment import refuse_past_max_depth
from parallel_coordinator.planning.estimates import DurationEstimator
from parallel_coordinator.planning.forecast import Forecast, PlannedRun, UsageHistory, forecast
from parallel_coordinator.planning.planner import Decomposition
from parallel_coordinator.planning.plans import PlannedSession, build_plan, plan_from_stored
from parallel_coordinator.planning.rerank import Routed
from parallel_coordinator.planning.routing import RouterCache
from parallel_coordinator.planning.strategies import Strategy, apply_strategy
from parallel_coordinator.qa.agent_check import check_agents
from parallel_coordinator.runners.base import AttemptOutcome, Runner, RunResult
from parallel_coordinator.runners.command import CommandRunner
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.cleanup import Retention
from parallel_coordinator.state.retained import EndedSessions
from parallel_coordinator.state.store import Store, StoredSession, StoredTask

__all__ = ["CancelOutcome", "Coordinator", "PlannedSession", "default_runners"]


def default_runners() -> dict[str, Runner]:
    from parallel_coordinator.runners.claude import ClaudeRunner
    from parallel_coordinator.runners.codex import CodexRunner
    from parallel_coordinator.runners.gemini import GeminiRunner

    return {runner.kind: runner for runner in (CommandRunner(), ClaudeRunner(), CodexRunner(), GeminiRunner())}


class Coordinator:
    """Owns sessions, the execution backend and the store; each job is a part's (see the imports)."""

    def __init__(
        self, settings: Settings | None = None, *, backend: ExecutionBackend | None = None,
        runners: dict[str, Runner] | None = None, gate: Gate | None = None,
    ) -> None:
        self.settings = settings = settings or Settings()
        self.backend: ExecutionBackend = backend or make_backend(settings)
        self.runners = runners if runners is not None else default_runners()
        self.sessions: dict[str, Session] = {}
        self.store = Store(settings.database)
        self.recorder = StoreRecorder(self.store)
        self.events = EventBus(writer=self.recorder)  # listeners run after it
        self.performance_log: PerformanceLog | None = None
        if settings.performance_logging:
            self.performance_log = PerformanceLog(settings.logs_dir)
            self.events.subscribe(self.performance_log)
        self.agents = Agents(settings)
        self.gate: Gate = gate or MachineGate(max_cpu_usage=settings.max_cpu_usage)
        self.estimator = DurationEstimator(default_s=settings.default_task_duration_s)
        self.usage = UsageHistory()
        self.events.subscribe(self._learn_usage)
        self.budgets = BudgetGuard(request_stop=self._stop_soon)
        self.slots = Slots(settings.pool_size, on_freed=self._wake_sessions)
        self.attempts = Attempts(settings, self.backend, self.runners, self.events, self.slots, self.budgets)
        self.routers = RouterCache()  # the lexical index of the catalogue, built again only when an agent changed
        self.one_off = OneOffRuns(settings, self.attempts, self.catalog, self.routers)
        self.tasks = TaskRuns(settings, self.attempts, self.slots, ResultReuse(), self.events, self.estimator,
                              request_stop=self._stop_soon)
        self.runs = SessionRuns(self.runners, self.backend, self.gate, self.slots, self.attempts, self.tasks,
                                self.events, synthesize=self.one_off.synthesize, budgets=self.budgets)
        self.sampler = Sampler(self.gate, self.store, self.health, busy=lambda: bool(self.active_sessions),
                               while_busy=self._answer_cancel_requests)
        self.retention = Retention(settings)
        self._ended = EndedSessions()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._exit_stack = AsyncExitStack()
        self.started_at = time.time()

    async def __aenter__(self) -> Coordinator:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.backend)
            stack.callback(self.store.close)
            if self.performance_log is not None:
                stack.callback(self.performance_log.close)
            stack.callback(self.recorder.flush)  # before the store closes (callbacks run last first)
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            self._task_group.start_soon(self.recorder.run, name="store writes")
            self._task_group.start_soon(self.sampler.run, name="machine sampler")
            # networkx is imported lazily so the server answers its first request sooner; warm it up
            # meanwhile, off the event loop, so the first plan does not pay the ~0.1 s import either.
            threading.Thread(target=importlib.import_module, args=("networkx",), daemon=True).start()
            self._exit_stack = stack.pop_all()
        learn_durations(self.store, self.estimator)
        learn_usage(self.store, self.usage)
        recover(self.store, self.settings.state_dir / "worktrees")
        # After recovery, so that the sessions of a server that died count as ended.
        self._task_group.start_soon(self.retention.run, name="retention")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        # Whatever ends the server, its agents end with it: cancel every live session, bounded.
        with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_WAIT_S):
            for session in self.active_sessions:
                await self.cancel(session.id)
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        return await self._exit_stack.__aexit__(exc_type, exc, tb)

    # Agents and plans -----------------------------------------------------------------------------

    async def catalog(self) -> AgentCatalog:
        """The agents on disk now, with agent_pool overrides; edits apply without a restart."""
        return await self.agents.read()

    def catalog_now(self) -> AgentCatalog:
        return self.agents.read_now()

    def with_defaults(self, options: CoordinateOptions | None) -> CoordinateOptions:
        """A call's options, with what the caller left unset taken from the server's configuration."""
        return options_with_defaults(options, self.settings)

    def plan(
        self, subtasks: Sequence[Subtask], options: CoordinateOptions, catalog: AgentCatalog | None = None,
        routed: dict[str, Routed] | None = None,
    ) -> PlannedSession:
        """Validate subtasks into a graph (routed lexically, or as `routed` says). On the event loop, pass
        `await self.catalog()`."""
        catalog = catalog if catalog is not None else self.catalog_now()
        planned = build_plan(subtasks, options.retry_attempts, catalog, routers=self.routers, routed=routed)
        planned.agents.update(check_agents(options.qa, catalog))  # agents named as QA checks run in the session
        return planned

    async def prepare(
        self, task_description: str, subtasks: list[Subtask] | None, strategy: Strategy, options: CoordinateOptions
    ) -> tuple[PlannedSession, list[str]]:
        """A validated graph for a call, and notes on how it was made (planned, routed, re-ranked, repaired)."""
        notes: list[str] = []
        catalog = await self.catalog()
        not_asked = None if self.settings.routing_rerank else "parallel_config.routing_rerank is off"
        if subtasks is None:
            decomposition = await self.decompose(task_description, options, catalog)
            subtasks, notes = decomposition.subtasks, decomposition.notes
            if not decomposition.planned:  # the planner could not be asked, or gave nothing usable
                not_asked = not_asked or "its decomposition of the task gave no plan"
        subtasks = apply_strategy(subtasks, strategy)
        planned = self.plan(subtasks, options, catalog)  # validated before any planner run is spent on it
        if planned.candidates:
            routed, run_notes = await self.one_off.rerank(
                planned, {s.id: s.description for s in subtasks}, task_description, catalog, not_asked
            )
            planned, notes = self.plan(subtasks, options, catalog, routed), notes + run_notes
        return planned, notes + [planned.routing_notes[s.id] for s in subtasks if s.id in planned.routing_notes]

    async def decompose(
        self, task_description: str, options: CoordinateOptions, catalog: AgentCatalog | None = None
    ) -> Decomposition:
        """Ask the planner for a subtasks graph; fall back to the whole task on the best agent."""
        catalog = catalog if catalog is not None else await self.catalog()
        return await self.one_off.decompose(task_description, options.retry_attempts, catalog)

    async def run_once(
        self, agent: AgentSpec, description: str, task_description: str
    ) -> tuple[RunResult, AttemptOutcome]:
        """One run of an agent outside any graph, on the same pool and under the same guards."""
        return await self.one_off.run_once(agent, description, task_description)

    async def resume_plan(
        self, session_id: str, principal: str | None = None
    ) -> tuple[str, PlannedSession, dict[str, StoredTask]]:
        """The graph of an ended session, and the tasks of it that succeeded (kept, not re-run)."""
        found = self._find(session_id, principal)
        if found.status == "RUNNING":
            raise PlanError(f"session {session_id!r} is still running; only an ended session can be resumed")
        stored = found if isinstance(found, StoredSession) else self.store.load_session(session_id)
        if stored is None:
            raise UnknownSessionError(session_id)
        planned = plan_from_stored(stored.tasks, await self.catalog())
        return stored.task_description, planned, {t.task_id: t for t in stored.tasks if t.status == "succeeded"}

    def forecast(
        self, planned: PlannedSession, options: CoordinateOptions, kept: dict[str, StoredTask] | None = None
    ) -> Forecast:
        """What the plan is expected to take: runs, tokens, dollars, seconds (planning/forecast.py)."""
        def run_of(agent: AgentSpec, expected_s: float | None = None) -> PlannedRun:
            runner = self.runners.get(agent.runner)
            return PlannedRun(agent.name, agent.model, runner is not None and runner.counts_tokens, expected_s)

        graph = planned.graph
        runs = {t: run_of(planned.agents[n.agent], n.expected_duration_s) for t, n in graph.nodes.items()}
        synthesizer = self.catalog_now().get(options.synthesizer) if options.synthesizer else None
        return forecast(
            graph, runs, self.usage, self.estimator, slots=min(options.max_agents, self.settings.pool_size),
            token_cap=options.token_budget_per_agent, extra_runs=[run_of(synthesizer)] if synthesizer else [],
            # A resumed session's kept results do not run again; merging replicas (all, vote) runs no agent.
            skip=lambda t: t in (kept or {}) or graph.nodes[t].merge in ("all", "vote"),
        )

    def needs_approval(self, forecast: Forecast, options: CoordinateOptions) -> bool:
        threshold = options.approval_threshold_usd
        return not options.approved and threshold is not None and forecast.usd > threshold

    def _learn_usage(self, event: SessionEvent) -> None:
        # Every ended run that reported usage teaches the forecast what its agent (and model tier) costs.
        if event.kind != "attempt_ended" or event.agent is None:
            return
        details = event.details
        tokens = (details.get("input_tokens") or 0) + (details.get("output_tokens") or 0)
        usd = details.get("cost_usd")
        if tokens or usd:
            self.usage.observe(event.agent, details.get("model"), tokens, usd or 0.0)

    # Running --------------------------------------------------------------------------------------

    async def start(
        self, task_description: str, planned: PlannedSession, options: CoordinateOptions, *,
        resumed_from: str | None = None, kept: dict[str, StoredTask] | None = None, strategy: Strategy = "auto",
        owner: str | None = None,
    ) -> Session:
        if self._task_group is None:
            raise EngineNotStartedError()
        refuse_past_max_depth(self.settings.max_depth)
        running = [s for s in self.active_sessions if s.owner == owner]
        if len(running) >= self.settings.max_sessions_per_principal:
            raise PlanError(
                f"{len(running)} sessions of this client are still running, the most allowed at once"
                f" ({self.settings.max_sessions_per_principal}); wait for one to end or cancel one"
            )
        expected = self.forecast(planned, options, kept)
        if self.needs_approval(expected, options):
            raise ApprovalRequiredError(expected.describe(), expected.usd, options.approval_threshold_usd or 0.0)
        weigh_by_learned_durations(planned.graph, self.estimator)
        session = Session(
            strategy=strategy, owner=owner, id=secrets.token_hex(8), task_description=task_description,
            policy=SessionPolicy.from_options(options), graph=planned.graph,
            agents={**planned.agents, **check_agents(options.qa, self.catalog_now())},  # a resumed plan's too
            routing_notes=planned.routing_notes, resumed_from=resumed_from, forecast=expected,
        )
        self.events.emit(session_started(session, options))
        for task_id in planned.graph.order:
            if kept and task_id in kept:
                self.tasks.keep(session, kept[task_id])
        self.sessions[session.id] = session
        self._task_group.start_soon(self.runs.run, session, self._retire, name=f"session {session.id}")
        return session

    def _retire(self, session: Session) -> None:
        """An ended session leaves memory (the store has it all), but the last few stay for quick reads."""
        session.result_cache.clear()
        for stale in self._ended.add(session):
            self.sessions.pop(stale, None)

    def _stop_soon(self, session: Session, reason: str) -> None:
        if self._task_group is not None:
            self._task_group.start_soon(self.runs.stop, session, reason)

    def _wake_sessions(self) -> None:
        # A freed agent slot may let another session's task start.
        for other in self.active_sessions:
            other.wake.set()

    async def wait(self, session: Session, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await session.done.wait()

    # Reading --------------------------------------------------------------------------------------

    def get(self, session_id: str, principal: str | None = None, *, estimate: bool = True) -> SessionView:
        """A session by id, live or stored. With a principal (an HTTP client), only its own: a foreign
        session is reported exactly like a missing one, so ids cannot be probed. `estimate`: with time left."""
        return self.snapshot(self._find(session_id, principal), estimate=estimate)

    def _find(self, session_id: str, principal: str | None) -> Session | StoredSession:
        source = self.sessions.get(session_id) or self.store.load_session(session_id)
        if source is None or (principal is not None and source.owner != principal):
            raise UnknownSessionError(session_id)
        return source

    def snapshot(self, source: Session | StoredSession, *, estimate: bool = True) -> SessionView:
        """The view of a session this caller holds, live or as read from the store; `estimate`: with time left."""
        return view_of(source, self.estimator if estimate else None)

    def list_sessions(self, principal: str | None = None, limit: int = 20) -> list[tuple[str, str, str, float]]:
        """(id, status, task description, created_at) of the newest sessions this principal may see."""
        return self.store.recent_sessions(limit, owner=principal)

    @property
    def active_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.status == "RUNNING"]

    @property
    def active_agents(self) -> int:
        return self.slots.active

    @property
    def throttles(self) -> dict[str, RunnerThrottle]:
        return self.slots.throttles

    def health(self) -> Health:
        """The machine and our queue now, for get_performance_metrics and the alerts."""
        return health_now(self.gate, self.active_sessions, self.active_agents, self.settings.alert_limits)

    async def next_machine_sample(self) -> None:
        """Wait for the machine sampler's next reading (CPU figures change only then)."""
        await self.sampler.next_sample()

    # Cancelling -----------------------------------------------------------------------------------

    async def cancel(self, session_id: str, principal: str | None = None) -> CancelOutcome:
        """Stop a session: pending tasks are cancelled, running agents' trees killed. Idempotent."""
        found = self._find(session_id, principal)  # no view: cancelling needs no time-left estimate
        if found.status != "RUNNING":
            return CancelOutcome(found.id, found.status, 0, 0)
        if not isinstance(found, Session):
            return await cancel_elsewhere(self.store, found.id)
        session = found
        session.cancel_requested = True
        with anyio.CancelScope(shield=True):
            cancelled = await self.runs.stop(session, "cancelled by the caller")
            with anyio.move_on_after(CANCEL_WAIT_S):
                await session.done.wait()
        return CancelOutcome(session.id, session.status, cancelled, session.killed_processes)

    async def _answer_cancel_requests(self) -> None:
        await answer_cancel_requests(self.store, {s.id for s in self.active_sessions}, self.cancel)
