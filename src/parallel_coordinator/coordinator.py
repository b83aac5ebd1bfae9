"""The coordinator: turns a plan into a session, runs its graph on the execution backend, cancels it.

Plain Python and anyio: it knows nothing of MCP, so the server, the CLI and tests all drive it the
same way. One anyio task group owns every session; each session's task group owns its attempts.
"""

from __future__ import annotations

import hashlib
import logging
import math
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from parallel_coordinator.agents import AgentCatalog, AgentSpec, discover_agents
from parallel_coordinator.config import Settings
from parallel_coordinator.errors import (
    PlanError,
    RunnerUnavailableError,
    UnknownAgentError,
    UnknownSessionError,
)
from parallel_coordinator.graph import TaskGraph, TaskNode
from parallel_coordinator.metrics import SystemSampler
from parallel_coordinator.pool import ExecutionBackend, LocalPoolBackend
from parallel_coordinator.routing import Router
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, Runner, RunResult, TaskRequest
from parallel_coordinator.runners.command import CommandRunner
from parallel_coordinator.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.session import AttemptInfo, Session, TaskRecord
from parallel_coordinator.store import Store, StoredAttempt, StoredSession
from parallel_coordinator.supervisor import SupervisorJob

log = logging.getLogger(__name__)

DEFAULT_TASK_TIMEOUT_S = 300.0
_CANCEL_WAIT_S = 10.0


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
        self.backend: ExecutionBackend = backend or LocalPoolBackend(
            self.settings.pool_size, self.settings.pool_idle_timeout_s
        )
        self.runners = runners if runners is not None else default_runners()
        self.sessions: dict[str, Session] = {}
        self.store = Store(self.settings.database)
        self._agent_running: Counter[str] = Counter()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._exit_stack = AsyncExitStack()
        self.system = SystemSampler()
        self.started_at = time.time()

    async def __aenter__(self) -> Coordinator:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(self.backend)
            stack.callback(self.store.close)
            self._task_group = await stack.enter_async_context(anyio.create_task_group())
            self._exit_stack = stack.pop_all()
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

    def catalog(self) -> AgentCatalog:
        return discover_agents(self.settings.agent_dirs)

    # Planning -----------------------------------------------------------------------------------

    def plan(self, subtasks: Sequence[Subtask], options: CoordinateOptions) -> PlannedSession:
        """Validate a caller's subtasks into a graph; route subtasks that name no agent."""
        if not subtasks:
            raise PlanError("the plan has no subtasks; pass at least one in `subtasks`")
        catalog = self.catalog()
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

    # Running ------------------------------------------------------------------------------------

    async def start(
        self, task_description: str, planned: PlannedSession, options: CoordinateOptions
    ) -> Session:
        assert self._task_group is not None, "use the Coordinator as an async context manager"
        session = Session(
            id=secrets.token_hex(8), task_description=task_description, options=options, graph=planned.graph
        )
        session.agents = planned.agents
        session.routing_notes = planned.routing_notes
        self.store.create_session(
            session.id,
            task_description,
            options.model_dump(mode="json"),
            session.created_at,
            options.max_agents,
            [(n.id, n.agent, n.description, n.dependencies, n.priority) for n in planned.graph.nodes.values()],
        )
        self.sessions[session.id] = session
        self._task_group.start_soon(self._run_session, session, name=f"session {session.id}")
        return session

    async def _run_session(self, session: Session) -> None:
        deadline = anyio.current_time() + session.options.timeout if session.options.timeout else None
        try:
            async with anyio.create_task_group() as tasks:
                while not session.scheduler.finished:
                    self._start_ready(session, tasks)
                    with anyio.move_on_after(deadline - anyio.current_time() if deadline else math.inf):
                        await session.wake.wait()
                    session.wake = anyio.Event()
                    if deadline is not None and anyio.current_time() >= deadline and session.stop_reason is None:
                        assert session.options.timeout is not None
                        await self._stop(session, f"session timed out after {session.options.timeout:g} s")
        finally:
            self._finish_session(session)

    def _start_ready(self, session: Session, tasks: anyio.abc.TaskGroup) -> None:
        if session.stop_reason is not None:
            return
        while len(session.running()) < session.options.max_agents:
            task_id = session.scheduler.take_ready(self._agent_has_room)
            if task_id is None:
                return
            record = session.tasks[task_id]
            record.status = TaskState.RUNNING
            record.started_at = time.time()
            self._agent_running[record.agent] += 1
            session.peak_parallelism = max(session.peak_parallelism, len(session.running()))
            self.store.update_task(session.id, task_id, status="running", started_at=record.started_at)
            tasks.start_soon(self._run_task, session, task_id, name=f"task {session.id}/{task_id}")

    def _agent_has_room(self, agent: str) -> bool:
        spec = self._spec_for(agent)
        limit = spec.max_concurrent if spec is not None else None
        return limit is None or self._agent_running[agent] < limit

    def _spec_for(self, agent: str) -> AgentSpec | None:
        for session in self.sessions.values():
            spec = getattr(session, "agents", {}).get(agent)
            if spec is not None:
                return spec  # type: ignore[no-any-return]
        return None

    async def _run_task(self, session: Session, task_id: str) -> None:
        node = session.graph.nodes[task_id]
        record = session.tasks[task_id]
        agent: AgentSpec = session.agents[node.agent]
        try:
            result = await self._attempt(session, node, record, agent)
        finally:
            self._agent_running[agent.name] -= 1
            self._poke_all()
        record.finished_at = time.time()
        record.progress = 100.0 if result.ok else record.progress
        if result.ok:
            record.status = TaskState.SUCCEEDED
            record.output, record.error = result.output, None
            session.scheduler.succeed(task_id)
        else:
            cancelled = session.stop_reason is not None and result.details.get("reason") in ("cancelled", "lost")
            record.status = TaskState.CANCELLED if cancelled else TaskState.FAILED
            record.output, record.error = result.output, result.error
            skipped = session.scheduler.fail(task_id, record.status)
            for other in skipped:
                skipped_record = session.tasks[other]
                skipped_record.status = TaskState.SKIPPED
                skipped_record.error = session.scheduler.skip_reason[other]
            self.store.update_tasks(session.id, skipped, status="skipped")
            for other in skipped:
                self.store.update_task(session.id, other, error=session.tasks[other].error)
        record.input_tokens, record.output_tokens, record.cost_usd = (
            result.input_tokens, result.output_tokens, result.cost_usd,
        )
        self.store.update_task(
            session.id, task_id, status=record.status.value, output=record.output, error=record.error,
            attempts=len(record.attempts), finished_at=record.finished_at, input_tokens=result.input_tokens,
            output_tokens=result.output_tokens, cost_usd=result.cost_usd,
        )
        session.poke()

    async def _attempt(self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec) -> RunResult:
        number = len(record.attempts) + 1
        attempt = AttemptInfo(number=number, agent=agent.name, started_at=time.time())
        record.attempts.append(attempt)
        request = TaskRequest(
            session_id=session.id,
            task_id=node.id,
            description=node.description,
            task_description=session.task_description,
            context={dep: session.tasks[dep].output for dep in node.dependencies},
            working_directory=session.options.working_directory,
            timeout_s=node.timeout_s or DEFAULT_TASK_TIMEOUT_S,
            token_budget=session.options.token_budget_per_agent,
            attempt=number,
        )
        runner = self.runners.get(agent.runner)
        outcome: AttemptOutcome
        if runner is None:
            result = RunResult(ok=False, error=f"no runner {agent.runner!r} for agent {agent.name!r}")
            outcome = AttemptOutcome(reason="spawn_failed", error=result.error)
        else:
            try:
                invocation = runner.invocation(agent, request)
            except RunnerUnavailableError as exc:
                outcome = AttemptOutcome(reason="spawn_failed", error=str(exc))
                result = RunResult(ok=False, error=str(exc))
            else:
                outcome = await self._supervise(session, record, invocation, request)
                result = runner.interpret(agent, outcome)
        result.details.setdefault("reason", outcome.reason)
        session.killed_processes += outcome.killed_processes
        attempt.finished_at = outcome.finished_at or time.time()
        if outcome.started_at:
            attempt.started_at = outcome.started_at
        attempt.exit_code = outcome.exit_code
        attempt.outcome = outcome.reason if outcome.reason != "spawn_failed" or runner else "unavailable"
        attempt.error = result.error
        self.store.add_attempt(
            StoredAttempt(
                session.id, node.id, number, agent.name, attempt.started_at, attempt.finished_at,
                attempt.exit_code, attempt.outcome, attempt.error,
            ),
            pid=outcome.pid,
            peak_rss_mb=outcome.peak_rss_mb,
        )
        return result

    async def _supervise(
        self, session: Session, record: TaskRecord, invocation: Invocation, request: TaskRequest
    ) -> AttemptOutcome:
        attempt_id = secrets.token_hex(8)
        record.attempt_id, record.pid, record.progress, record.message = attempt_id, None, None, None
        artefacts = self.settings.runs_dir / session.id / _safe_name(record.task_id) / str(request.attempt)
        job = SupervisorJob(
            attempt_id=attempt_id,
            invocation=invocation,
            artefact_dir=str(artefacts),
            channel="",
            cwd=request.working_directory,
            timeout_s=request.timeout_s,
            memory_limit_mb=session.options.memory_limit_mb,
            output_cap_bytes=self.settings.output_cap_bytes,
        )

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "started":
                record.pid = event.get("pid")
            elif kind == "progress":
                record.progress = event.get("percent")
                record.message = event.get("message")
            session.notify()

        try:
            return await self.backend.run(job, on_event)
        except Exception as exc:  # a pool worker that died takes only its own attempt with it
            log.warning("attempt %s of task %r lost its worker: %r", attempt_id, record.task_id, exc)
            return AttemptOutcome(reason="lost", error=f"the pool worker running it died ({exc!r})")
        finally:
            record.attempt_id = None

    def _poke_all(self) -> None:
        # A freed agent slot may let another session's task start.
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
        self.store.finish_session(session.id, session.status, session.finished_at, session.error_summary)
        session.done.set()
        session.poke()

    async def wait(self, session: Session, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await session.done.wait()

    # Looking up ---------------------------------------------------------------------------------

    def get(self, session_id: str) -> Session | StoredSession:
        session = self.sessions.get(session_id)
        if session is not None:
            return session
        stored = self.store.load_session(session_id)
        if stored is None:
            raise UnknownSessionError(session_id)
        return stored

    @property
    def active_sessions(self) -> list[Session]:
        return [s for s in self.sessions.values() if s.status == "RUNNING"]

    # Cancelling ---------------------------------------------------------------------------------

    async def cancel(self, session_id: str) -> CancelOutcome:
        """Stop a session: pending tasks are cancelled, running agents' trees killed. Idempotent."""
        found = self.get(session_id)
        if not isinstance(found, Session) or found.status != "RUNNING":
            return CancelOutcome(found.id, found.status, 0, 0)
        session = found
        session.cancel_requested = True
        with anyio.CancelScope(shield=True):
            cancelled = await self._stop(session, "cancelled by the caller")
            with anyio.move_on_after(_CANCEL_WAIT_S):
                await session.done.wait()
        return CancelOutcome(session.id, session.status, cancelled, session.killed_processes)

    async def _stop(self, session: Session, reason: str) -> int:
        """Cancel what has not started and tell every running attempt to kill its agent."""
        session.stop_reason = reason
        pending = session.scheduler.cancel_pending()
        for task_id in pending:
            session.tasks[task_id].status = TaskState.CANCELLED
            session.tasks[task_id].error = reason
        if pending:
            self.store.update_tasks(session.id, pending, status="cancelled", error=reason)
        running = session.running()
        for record in running:
            if record.attempt_id is not None:
                await self.backend.cancel(record.attempt_id)
        session.poke()
        return len(pending) + len(running)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if text and text.strip() else "no error text"


def _safe_name(task_id: str) -> str:
    """A task id as a directory name: ids are free text, paths are not."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "_" for c in task_id)[:80]
    if cleaned == task_id:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(task_id.encode()).hexdigest()[:8]}"
