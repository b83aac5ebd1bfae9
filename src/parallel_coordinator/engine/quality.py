"""An attempt's QA checks (qa/), run under the session's supervision: each check's process is a supervisor job
on the execution backend, bounded by the task's timeout and the session's memory cap, and killed by a cancel.

Called inside the attempt's worktree (isolation.py), before it is committed and removed, so the checks
see exactly what the agent left and the configured commands run in its checkout.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parallel_coordinator.engine.acceptance import check_output, schema_instruction
from parallel_coordinator.engine.session import Session, TaskRecord
from parallel_coordinator.engine.summary import error_line
from parallel_coordinator.errors import RunnerUnavailableError, WorkerLostError
from parallel_coordinator.planning.graph import TaskNode
from parallel_coordinator.qa.agent_check import VERDICT_SCHEMA
from parallel_coordinator.qa.pipeline import run_checks
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, RunChoices, RunResult, TaskRequest
from parallel_coordinator.runners.models import DEFAULT_MODELS
from parallel_coordinator.state.names import safe_name
from parallel_coordinator.supervisor import SupervisorJob

if TYPE_CHECKING:
    from parallel_coordinator.engine.attempts import Attempts

log = logging.getLogger(__name__)


def output_matches(node: TaskNode, result: RunResult) -> bool:
    """Whether the run's output passes its schema (if any): checks run only on what acceptance would keep."""
    if node.output_schema is None:
        return True
    return check_output(dict(node.output_schema), result.output, result.details.get("structured_output")).accepted


async def checked(
    attempts: Attempts, session: Session, node: TaskNode, record: TaskRecord, request: TaskRequest,
    outcome: AttemptOutcome, result: RunResult,
) -> tuple[AttemptOutcome, RunResult]:
    """The attempt with its checks' results in `result.qa`; a cancel during the checks makes it a cancelled one."""
    record.message = "QA: " + ", ".join(session.policy.qa)
    session.notify()
    jobs = SessionCheckJobs(attempts, session, request)
    results = await run_checks(
        session.policy.qa, jobs, directory=request.working_directory, output=result.output,
        task_description=node.description,
    )
    qa = [check.as_dict() for check in results]
    if session.stop_reason is not None:
        result.details["reason"] = "cancelled"
        stopped = dataclasses.replace(outcome, reason="cancelled", error=session.stop_reason)
        return stopped, dataclasses.replace(result, ok=False, error=session.stop_reason, qa=qa)
    result.qa = qa
    return outcome, result


class SessionCheckJobs:
    """qa.pipeline.CheckJobs for one attempt of one session."""

    def __init__(self, attempts: Attempts, session: Session, request: TaskRequest) -> None:
        self.attempts, self.session, self.request = attempts, session, request
        self.commands: Mapping[str, str | Sequence[str]] = attempts.settings.qa_commands

    async def command(self, invocation: Invocation, cwd: str | None) -> AttemptOutcome:
        settings, policy = self.attempts.settings, self.session.policy
        job = SupervisorJob(
            attempt_id=secrets.token_hex(8), invocation=invocation,
            env=settings.environment_policy.agent_environment(), artefact_dir=str(self._artefacts("check")),
            cwd=cwd, timeout_s=self.request.timeout_s, memory_limit_mb=policy.memory_limit_mb,
            output_cap_bytes=settings.output_cap_bytes, disk_cap_bytes=settings.artefact_cap_bytes,
            stall_timeout_s=policy.stall_timeout_s or settings.stall_timeout_s,
        )
        return await self._supervise(job)

    async def agent(self, name: str, description: str, context: dict[str, str]) -> tuple[Any, str | None]:
        agent = self.session.agents.get(name)
        runner = self.attempts.runners.get(agent.runner) if agent is not None else None
        if agent is None or runner is None:
            return None, f"agent {name!r} (or its runner) is not available to this session"
        settings, policy = self.attempts.settings, self.session.policy
        agent = runner.for_run(agent, RunChoices(
            priority_mode=policy.priority_mode, cost_budget_usd=policy.cost_budget_per_agent_usd,
            models={**DEFAULT_MODELS, **settings.models}, output_schema=VERDICT_SCHEMA,
        ))
        if not runner.enforces_schema:
            description += schema_instruction(VERDICT_SCHEMA)
        request = TaskRequest(
            session_id=self.session.id, task_id=f"{self.request.task_id}:qa:{name}", description=description,
            task_description=self.request.task_description, context=context,
            working_directory=self.request.working_directory, timeout_s=agent.timeout or settings.task_timeout_s,
            token_budget=policy.token_budget_per_agent,
        )
        try:
            invocation = runner.invocation(agent, request)
        except RunnerUnavailableError as exc:
            return None, str(exc)
        job = self.attempts.job(
            runner, agent, invocation, request, self._artefacts(name), policy.memory_limit_mb, policy.stall_timeout_s,
        )
        outcome = await self._supervise(job)
        result = runner.interpret(agent, outcome)
        self.attempts.budgets.on_attempt_ended(self.session, result, outcome.tokens_used)  # checks count as runs
        if not result.ok:
            return None, f"it failed: {error_line(result.error)}"
        verdict = check_output(VERDICT_SCHEMA, result.output, result.details.get("structured_output"))
        return verdict.output_json, verdict.error

    def _artefacts(self, check: str) -> Path:
        attempt_dir = self.attempts.artefacts(self.session.id, self.request.task_id, self.request.attempt)
        return attempt_dir / "qa" / f"{safe_name(check)}-{secrets.token_hex(3)}"

    async def _supervise(self, job: SupervisorJob) -> AttemptOutcome:
        # Known to the session before it starts: a stop cancels it with the session's other extra runs.
        self.session.extra_attempts.add(job.attempt_id)
        try:
            if self.session.stop_reason is not None:
                return AttemptOutcome(reason="cancelled", error=self.session.stop_reason)
            return await self.attempts.backend.run(job, lambda _event: None)
        except WorkerLostError as exc:
            return AttemptOutcome(reason="lost", error=str(exc))
        except Exception as exc:
            log.exception("QA job %s of task %r failed inside Parallel Coordinator", job.attempt_id,
                          self.request.task_id)
            return AttemptOutcome(reason="spawn_failed", error=f"internal error in Parallel Coordinator ({exc!r})")
        finally:
            self.session.extra_attempts.discard(job.attempt_id)
