"""One attempt: one agent's run at one task, from the request it is given to the result read from its outcome.

Builds the supervisor job (environment, artefact folder, caps), runs it on the execution backend,
turns the supervisor's events into session events, and records the attempt through events.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from parallel_coordinator.agents import AgentSpec
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.acceptance import (
    check_output,
    feedback_section,
    schema_instruction,
    unverified_work,
)
from parallel_coordinator.engine.budget import BudgetGuard
from parallel_coordinator.engine.events import EventBus, SessionEvent
from parallel_coordinator.engine.isolation import isolated
from parallel_coordinator.engine.quality import checked, output_matches
from parallel_coordinator.engine.session import AttemptInfo, Session, TaskRecord, context_files
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.errors import RunnerUnavailableError, WorkerLostError
from parallel_coordinator.execution.backend import ExecutionBackend
from parallel_coordinator.execution.worktrees import WorktreeError
from parallel_coordinator.planning.graph import TaskNode
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.qa.verdicts import rejection
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, RunChoices, Runner, RunResult, TaskRequest
from parallel_coordinator.runners.models import DEFAULT_MODELS
from parallel_coordinator.runners.progress import PREFIX_KEYS
from parallel_coordinator.state.names import safe_name
from parallel_coordinator.state.outputs import keep_file
from parallel_coordinator.state.private_files import private_dir, write_private
from parallel_coordinator.supervisor import SupervisorJob

log = logging.getLogger(__name__)


class Attempts:
    def __init__(
        self, settings: Settings, backend: ExecutionBackend, runners: dict[str, Runner], events: EventBus,
        slots: Slots, budgets: BudgetGuard | None = None,
    ) -> None:
        self.settings, self.backend, self.runners, self.events, self.slots = settings, backend, runners, events, slots
        self.budgets = budgets or BudgetGuard(request_stop=lambda _session, _reason: None)
        self.peak_rss_mb: dict[str, float] = {}  # agent -> the most one of its runs was seen to use
        self._envs: dict[tuple[str, ...], dict[str, str]] = {}  # one per pass-through list in use
        self._models = {**DEFAULT_MODELS, **settings.models}  # the configuration's names over the built-in table

    def artefacts(self, session_id: str, task_id: str, attempt: int) -> Path:
        return self.settings.runs_dir / session_id / safe_name(task_id) / str(attempt)

    def agent_env(self, runner: Runner, agent: AgentSpec) -> dict[str, str]:
        """The environment this agent starts with: ours, less credentials and secrets (environment.py).

        Worked out once per distinct pass-through list (matching every variable against every pattern
        costs ~0.3 ms, on the path of every attempt); the server's environment does not change while it runs.
        """
        allowed = (*runner.env_passthrough, *agent.pass_env)
        env = self._envs.get(allowed)
        if env is None:
            env = self._envs[allowed] = self.settings.environment_policy.agent_environment(allowed)
        return env

    def job(
        self, runner: Runner, agent: AgentSpec, invocation: Invocation, request: TaskRequest, artefact_dir: Path,
        memory_limit_mb: float | None, stall_timeout_s: float | None = None,
    ) -> SupervisorJob:
        """The attempt's job; `stall_timeout_s` is the session's option, else the agent file's, else the server's."""
        return SupervisorJob(
            attempt_id=secrets.token_hex(8), invocation=invocation, env=self.agent_env(runner, agent),
            artefact_dir=str(artefact_dir), cwd=request.working_directory, timeout_s=request.timeout_s,
            memory_limit_mb=memory_limit_mb, output_cap_bytes=self.settings.output_cap_bytes,
            disk_cap_bytes=self.settings.artefact_cap_bytes,
            token_budget=request.token_budget if runner.counts_tokens else None,
            stall_timeout_s=stall_timeout_s or agent.stall_timeout or self.settings.stall_timeout_s,
        )

    async def run(self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec) -> RunResult:
        number = len(record.attempts) + 1
        attempt = AttemptInfo(number=number, agent=agent.name, started_at=time.time())
        record.attempts.append(attempt)
        session.attempts_running += 1  # peak parallelism counts agent runs (metrics.peak_parallelism)
        session.peak_parallelism = max(session.peak_parallelism, session.attempts_running)
        try:
            return await self._run(session, node, record, agent, attempt)
        finally:
            session.attempts_running -= 1

    async def _run(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec, attempt: AttemptInfo
    ) -> RunResult:
        number = attempt.number
        self.events.emit(SessionEvent(
            "attempt_started", session.id, node.id, agent.name, attempt=number,
            state={"attempt": _stored(session.id, node.id, attempt)},
        ))
        session.notify()
        runner = self.runners.get(agent.runner)
        # Only what succeeded is handed on (a judge runs on the replicas that did); validated output as JSON.
        done = [session.tasks[dep] for dep in node.dependencies if session.tasks[dep].status is TaskState.SUCCEEDED]
        request = TaskRequest(
            session_id=session.id, task_id=node.id,
            description=attempt_description(node, record, enforces_schema=bool(runner and runner.enforces_schema)),
            task_description=session.task_description,
            context={dep.task_id: handed_on(dep) for dep in done},
            context_files=context_files(done),
            working_directory=session.policy.working_directory,
            timeout_s=node.timeout_s or agent.timeout or self.settings.task_timeout_s,
            token_budget=_smaller(session.policy.token_budget_per_agent, self.budgets.tokens_left(session)),
            attempt=number,
        )
        outcome: AttemptOutcome
        if runner is None:
            missing = f"no runner {agent.runner!r} for agent {agent.name!r}"
            outcome = AttemptOutcome(reason="spawn_failed", error=missing)
            result = RunResult(ok=False, error=outcome.error, retryable=False)
        else:
            agent = runner.for_run(agent, RunChoices(
                task_priority=node.priority, priority_mode=session.policy.priority_mode,
                cost_budget_usd=session.policy.cost_budget_per_agent_usd,
                models=self._models, output_schema=dict(node.output_schema) if node.output_schema else None,
            ))
            try:
                outcome, result = await self._start_and_read(session, node, record, agent, runner, request)
            except WorktreeError as exc:
                outcome = AttemptOutcome(reason="spawn_failed", error=str(exc))
                result = RunResult(ok=False, error=str(exc), retryable=False)
        result.details.setdefault("reason", outcome.reason)
        self.budgets.on_attempt_ended(session, result, outcome.tokens_used)
        result, rejected = accept(result, node, record, agent, fail_flagged=session.policy.on_flagged == "fail")
        if outcome.peak_rss_mb:
            self.peak_rss_mb[agent.name] = max(self.peak_rss_mb.get(agent.name, 0.0), outcome.peak_rss_mb)
        session.killed_processes += outcome.killed_processes
        attempt.finished_at = outcome.finished_at or time.time()
        if outcome.started_at:
            attempt.started_at = outcome.started_at
        attempt.exit_code = outcome.exit_code
        attempt.outcome = "rate_limited" if result.rate_limited else "rejected" if rejected else outcome.reason
        attempt.error = result.error
        attempt.prefix = prefix_tokens(result.details.get("prefix"))
        if session.warmup is not None:
            session.warmup.ended(agent.name)  # held runs of this agent go now, answered or not
            session.poke()
        self.events.emit(SessionEvent(
            "attempt_ended", session.id, node.id, agent.name, attempt=number, status=attempt.outcome,
            error=attempt.error,
            details={
                "exit_code": attempt.exit_code, "duration_s": round(attempt.finished_at - attempt.started_at, 3),
                "peak_rss_mb": outcome.peak_rss_mb, "killed_processes": outcome.killed_processes,
                "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
                "cost_usd": result.cost_usd, "model": result.details.get("model"),
            },
            state={
                "attempt": _stored(session.id, node.id, attempt), "pid": outcome.pid,
                "peak_rss_mb": outcome.peak_rss_mb,
                "streams": {
                    "stdout_bytes": outcome.stdout_bytes, "stderr_bytes": outcome.stderr_bytes,
                    "stdout_cut_on_disk": outcome.stdout_cut_on_disk,
                    "stderr_cut_on_disk": outcome.stderr_cut_on_disk,
                },
            },
        ))
        return result

    async def _start_and_read(
        self, session: Session, node: TaskNode, record: TaskRecord, agent: AgentSpec, runner: Runner,
        request: TaskRequest,
    ) -> tuple[AttemptOutcome, RunResult]:
        """Start the agent (in its own worktree if it wants one), wait for it, and read its outcome."""
        root = self.settings.state_dir / "worktrees"
        async with isolated(session, record, agent, request, root, self.events) as request:
            try:
                invocation = runner.invocation(agent, request)
            except RunnerUnavailableError as exc:
                return AttemptOutcome(reason="spawn_failed", error=str(exc)), RunResult(
                    ok=False, error=str(exc), retryable=False
                )
            artefacts = self.artefacts(session.id, record.task_id, request.attempt)
            invocation = with_files(invocation, artefacts)
            job = self.job(
                runner, agent, invocation, request, artefacts, session.policy.memory_limit_mb,
                session.policy.stall_timeout_s,
            )
            outcome = await self._supervise(session, record, job)
            result = runner.interpret(agent, outcome)
            if outcome.stdout_truncated and runner.output_is_stdout:
                # Only the start reached us: the whole output is the stdout artefact (up to the disk cap).
                result.kept = keep_file(
                    result.output, artefacts / "stdout", outcome.stdout_chars, cut=outcome.stdout_cut_on_disk
                )
            if session.policy.qa and result.ok and output_matches(node, result):
                # Still in the worktree: the checks see what the agent left, before it is committed and removed.
                outcome, result = await checked(self, session, node, record, request, outcome, result)
            return outcome, result

    async def _supervise(self, session: Session, record: TaskRecord, job: SupervisorJob) -> AttemptOutcome:
        record.attempt_id, record.pid, record.progress, record.message = job.attempt_id, None, None, None

        def on_event(event: dict[str, Any]) -> None:
            kind = event.get("event")
            if kind == "started":
                record.pid = event.get("pid")
            elif kind == "quiet":  # the agent has shown no sign of work for a while (the stall watchdog)
                quiet, window = event.get("quiet_s", 0), event.get("stall_s", 0)
                record.message = f"quiet for {quiet:.0f} s (counts as stalled at {window:.0f} s)"
            elif kind == "progress":
                tokens = event.get("tokens")
                if isinstance(tokens, int) and not isinstance(tokens, bool):
                    self.budgets.on_tokens_so_far(session, job.attempt_id, tokens)
                if event.get("first_response") and session.warmup is not None:
                    session.warmup.answered(record.agent)  # its prompt is cached: held runs may read it
                    session.poke()
                record.progress = event.get("percent")
                record.message = event.get("message")
                self.events.emit(SessionEvent(
                    "progress", session.id, record.task_id, record.agent, progress=record.progress,
                    message=record.message, state={"progress": record.progress, "message": record.message},
                ))
            session.notify()

        try:
            if session.stop_reason is not None:
                return AttemptOutcome(reason="cancelled", error=session.stop_reason)
            return await self.backend.run(job, on_event)
        except WorkerLostError as exc:  # a worker that died takes only its own attempt with it
            log.warning("attempt %s of task %r lost its worker: %s", job.attempt_id, record.task_id, exc)
            return AttemptOutcome(reason="lost", error=str(exc))
        except Exception as exc:
            # Not the agent's failure, not a lost worker: ours. Say so, keep serving, do not retry.
            log.exception("attempt %s of task %r failed inside Parallel Coordinator", job.attempt_id, record.task_id)
            return AttemptOutcome(reason="spawn_failed", error=(
                f"internal error in Parallel Coordinator while running it ({exc!r}); this is a bug, please report it"
            ))
        finally:
            record.attempt_id = None
            session.spend.live_tokens.pop(job.attempt_id, None)  # its result's usage is counted instead


def attempt_description(node: TaskNode, record: TaskRecord, *, enforces_schema: bool) -> str:
    """The subtask as this attempt gets it: the answer format where the runner cannot enforce the schema
    itself, and why the last attempt was not accepted."""
    description = node.description
    if node.output_schema is not None and not enforces_schema:
        description += schema_instruction(dict(node.output_schema))
    if record.feedback:
        description += feedback_section(record.feedback)
    return description


def handed_on(dependency: TaskRecord) -> str:
    """A dependency's result as its dependents get it: its validated JSON when it has one, else its text."""
    if dependency.output_json is not None:
        return json.dumps(dependency.output_json, indent=2, ensure_ascii=False)
    return dependency.output


def accept(
    result: RunResult, node: TaskNode, record: TaskRecord, agent: AgentSpec, *, fail_flagged: bool
) -> tuple[RunResult, bool]:
    """A run that says it succeeded, checked (acceptance.py, then its QA checks); (the result, whether rejected).

    A rejection is a failed, retryable attempt whose reason becomes the next attempt's feedback.
    """
    if not result.ok:
        return result, False
    flags = unverified_work(
        node.description, has_tools=agent.tools is None or bool(agent.tools),
        tool_uses=result.details.get("tool_uses"), worktree=record.worktree,
    )
    problem, retryable = None, True
    if node.output_schema is not None:
        verdict = check_output(dict(node.output_schema), result.output, result.details.get("structured_output"))
        problem, result.output_json, retryable = verdict.error, verdict.output_json, verdict.retryable
    if problem is None and flags and fail_flagged:
        problem = "flagged (options.on_flagged is 'fail'): " + "; ".join(flags)
    if problem is None:
        problem = rejection(result.qa)  # a failed QA check (quality.py ran them): its findings are the feedback
    result.flags = flags
    if problem is None:
        record.feedback = None
        return result, False
    record.feedback = problem
    return replace(result, ok=False, error=problem, retryable=retryable, output_json=None), True


def with_files(invocation: Invocation, folder: Path) -> Invocation:
    """The invocation's files written owner-only into `folder`, and argv naming them by path (Invocation.files)."""
    if not invocation.files:
        return invocation
    private_dir(folder)
    argv = list(invocation.argv)
    for name, content in invocation.files.items():
        path = folder / safe_name(name)
        write_private(path, content)
        argv = [part.replace("{file:" + name + "}", str(path)) for part in argv]
    return replace(invocation, argv=argv, files={})


def _smaller(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _stored(session_id: str, task_id: str, attempt: AttemptInfo) -> dict[str, Any]:
    """An attempt as the store's StoredAttempt takes it."""
    return {
        "session_id": session_id, "task_id": task_id, "number": attempt.number, "agent": attempt.agent,
        "started_at": attempt.started_at, "finished_at": attempt.finished_at, "exit_code": attempt.exit_code,
        "outcome": attempt.outcome, "error": attempt.error, "prefix": attempt.prefix,
    }


def prefix_tokens(value: object) -> dict[str, int] | None:
    """A run's reported prefix (its details' "prefix", e.g. from claude_stream.py), kept only in its known shape."""
    if not isinstance(value, dict):
        return None
    counts = {key: value.get(key) for key in PREFIX_KEYS}
    if not all(isinstance(count, int) and not isinstance(count, bool) for count in counts.values()):
        return None
    return {key: int(count) for key, count in counts.items() if isinstance(count, int)}
