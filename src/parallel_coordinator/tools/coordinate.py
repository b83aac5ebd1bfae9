"""The coordinate_task tool: validate a plan, start its session, wait a while for it."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Resolve
from pydantic import Field

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.strategies import Strategy
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.schemas.outputs import CoordinationResult
from parallel_coordinator.tools._approval import LaunchApproval, approval_of_launch, forget_plan, plan_of_call
from parallel_coordinator.tools._context import (
    ONE_SHOT_CLIENTS,
    as_task,
    as_tool_errors,
    coordinator_of,
    over_stdio,
    principal,
)
from parallel_coordinator.tools._progress import follow
from parallel_coordinator.views import approval_needed_result, coordination_result, dry_run_result

DESCRIPTION = """\
Run one task on many agents at once, as a dependency graph of subtasks, and return their results.

Pass `subtasks` to say exactly what runs: each has an `id`, a `description` and, ideally, an
`agent_type` naming an agent from list_agents (omit it to route the subtask to the best-matching
agent). `dependencies` lists ids that must succeed first; their outputs are handed to the dependent
agent. Independent subtasks run in parallel (up to options.max_agents, default 64). Without
`subtasks`, the whole task goes to the single best-matching agent.

strategy: "auto"/"hybrid" run the graph as given; "pipeline" chains the subtasks in the order given;
"parallel" and "burst" run them as given (no dependencies needed).

options.wait_seconds (default 30) is how long this call waits. If the session finishes in time you get
the final result (status SUCCESS, PARTIAL, FAILED or CANCELLED); otherwise you get status RUNNING
with live counts and a session_id: then call get_progress_status(session_id, wait_seconds=...) until
the status is no longer RUNNING, or cancel_execution(session_id) to stop it. Long outputs are cut
(output_truncated: true) and the whole text is the resource named by output_uri. While it waits, the
call sends progress notifications if you passed a progress token. options.dry_run returns the
validated plan and its forecast (runs, tokens, dollars, seconds) without running anything.
A plan forecast to cost more than options.approval_threshold_usd (default $5) asks the user first where
the client supports elicitation; otherwise nothing runs and the answer (approval_required: true)
carries the forecast: show it to the user, and call again with options.approved=true to run it.
options.budget {tokens, usd, seconds} caps the whole session: once reached, it stops, keeps what
finished, and ends PARTIAL.
Failed runs are retried (options.retry_attempts, default 3, with backoff), then handed to
fallback_agents; a task that still fails skips only its dependents (status PARTIAL), unless
options.on_failure is "stop". options.resume_session=<id> re-runs an ended session's unfinished
tasks and keeps the results that succeeded.
Errors (unknown agent, unknown dependency, duplicate id, cycle) name the offending value."""


TaskDescription = Annotated[
    str, Field(min_length=1, max_length=100_000, description="The whole task, in plain words.")
]


async def coordinate_task(
    task_description: TaskDescription,
    # Filled before the body runs (the SDK's resolver): the user's answer when the launch needed asking.
    approval: Annotated[ElicitationResult[Any], Resolve(approval_of_launch)],
    subtasks: Annotated[list[Subtask] | None, Field(max_length=10_000)] = None,
    strategy: Strategy = "auto",
    options: CoordinateOptions | None = None,
    ctx: Context[Any, Any] | None = None,
) -> CoordinationResult:
    coordinator = coordinator_of(ctx)
    options = coordinator.with_defaults(options)
    with as_tool_errors():
        # Kept while it waits for approval, so that the same call coming back approved runs the plan shown.
        try:
            plan = await plan_of_call(coordinator, task_description, subtasks, strategy, options)
        except Exception:
            forget_plan(coordinator, task_description, subtasks, strategy, options)  # the next call plans afresh
            raise
        if options.dry_run:
            forget_plan(coordinator, task_description, subtasks, strategy, options)
            return dry_run_result(plan.planned.graph, plan.notes, plan.forecast)
        if coordinator.needs_approval(plan.forecast, options):
            threshold = options.approval_threshold_usd or 0.0
            if not isinstance(approval, AcceptedElicitation):  # the user declined, or cancelled the question
                return approval_needed_result(plan.planned.graph, plan.notes, plan.forecast, threshold, declined=True)
            if not isinstance(approval.data, LaunchApproval):  # the client could not be asked: the answer asks
                return approval_needed_result(plan.planned.graph, plan.notes, plan.forecast, threshold)
            if not approval.data.approve:
                return approval_needed_result(plan.planned.graph, plan.notes, plan.forecast, threshold, declined=True)
            options = options.model_copy(update={"approved": True})
        forget_plan(coordinator, task_description, subtasks, strategy, options)
        if options.resume_session is not None:
            session = await coordinator.start(
                plan.description, plan.planned, options, resumed_from=options.resume_session, kept=plan.kept,
                owner=principal(),
            )
        else:
            session = await coordinator.start(
                plan.description, plan.planned, options, strategy=strategy, owner=principal()
            )
            session.notes = plan.notes
        # A cancelled request stops this wait, not the session: it runs on and can be polled. Run as an
        # MCP task, the call returns at once: the client follows the task instead.
        if not as_task.get():
            await follow(session, coordinator.events, ctx, options.wait_seconds, options.progress_update_interval)
        caps = result_caps(coordinator, options.result_chars, options.total_result_chars)
        result = coordination_result(coordinator.snapshot(session), *caps)
        if result.next_step is not None and over_stdio.get():
            result.next_step += ONE_SHOT_CLIENTS
        return result


def result_caps(coordinator: Coordinator, result_chars: int | None, total_chars: int | None) -> tuple[int, int]:
    """Per-result and total character caps for outputs in a tool result: the call's, else the server's."""
    settings = coordinator.settings
    return (
        result_chars if result_chars is not None else settings.result_chars,
        total_chars if total_chars is not None else settings.total_result_chars,
    )
