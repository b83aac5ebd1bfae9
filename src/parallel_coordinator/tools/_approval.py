"""Approval of a costly launch: the user is asked through MCP elicitation where the client offers it.

coordinate_task takes a parameter filled by `approval_of_launch`, an SDK resolver that runs before the
tool body: it plans the call, forecasts it, and when the forecast is over the threshold (and not
approved) asks the user with the forecast in the question. The SDK carries the question the way the
session's protocol wants: a request in the middle of the call on the 2025-11-25 protocol, an
input-required answer and a second round on 2026-07-28. A client that cannot be asked gets an answer
carrying the forecast and the exact call that approves it; nothing runs in the meantime.

The plan is made once per call and kept here between the rounds, so that the plan the user approves is
the one that runs (a planner agent need not agree with itself twice).
"""

from __future__ import annotations

import json
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit
from pydantic import BaseModel, Field

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.forecast import Forecast
from parallel_coordinator.planning.plans import PlannedSession
from parallel_coordinator.planning.strategies import Strategy
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.store import StoredTask
from parallel_coordinator.tools._context import coordinator_of, principal

_PLANS_KEPT = 16  # calls planned and not yet run (waiting for a second round, or declined): the oldest go first

NoQuestion = Literal["not needed", "cannot ask"]


class LaunchApproval(BaseModel):
    """What the user fills in (an elicitation form holds primitive fields only)."""

    approve: bool = Field(True, description="Run the plan now, spending about what the forecast says.")


@dataclass
class CallPlan:
    """One call's plan, resolved once: its graph, the notes on how it was made, what it keeps, its forecast."""

    description: str
    planned: PlannedSession
    notes: list[str]
    kept: dict[str, StoredTask] | None
    forecast: Forecast


# Per coordinator: each call's plan (or the error planning it raised), from the resolver to the body.
_plans: weakref.WeakKeyDictionary[Coordinator, OrderedDict[str, CallPlan | Exception]] = weakref.WeakKeyDictionary()


def _call_key(
    task_description: str, subtasks: list[Subtask] | None, strategy: Strategy, options: CoordinateOptions
) -> str:
    # The approval itself is not part of the plan: the approved call must find the plan it approved.
    chosen = options.model_dump(mode="json", exclude={"approved", "wait_seconds", "progress_update_interval"})
    return json.dumps([
        task_description, [s.model_dump(mode="json") for s in subtasks] if subtasks is not None else None,
        strategy, chosen, principal(),
    ], sort_keys=True)


async def plan_of_call(
    coordinator: Coordinator, task_description: str, subtasks: list[Subtask] | None, strategy: Strategy,
    options: CoordinateOptions,
) -> CallPlan:
    """The call's plan, made on first use and kept for the call's later rounds and for the same call coming
    back approved (forget_plan drops it)."""
    plans = _plans.setdefault(coordinator, OrderedDict())
    key = _call_key(task_description, subtasks, strategy, options)
    found = plans.get(key)
    if isinstance(found, Exception):
        raise found  # planning failed in an earlier round: the same error, not a second planner run
    if found is not None:
        return found
    try:
        plan = await _plan(coordinator, task_description, subtasks, strategy, options)
    except Exception as exc:
        _keep(plans, key, exc)
        raise
    _keep(plans, key, plan)
    return plan


async def _plan(
    coordinator: Coordinator, task_description: str, subtasks: list[Subtask] | None, strategy: Strategy,
    options: CoordinateOptions,
) -> CallPlan:
    kept = None
    if options.resume_session is not None:
        description, planned, kept = await coordinator.resume_plan(options.resume_session, principal())
        notes: list[str] = []
    else:
        description = task_description
        planned, notes = await coordinator.prepare(task_description, subtasks, strategy, options)
    return CallPlan(description, planned, notes, kept, coordinator.forecast(planned, options, kept))


def _keep(plans: OrderedDict[str, CallPlan | Exception], key: str, plan: CallPlan | Exception) -> None:
    plans[key] = plan
    while len(plans) > _PLANS_KEPT:
        plans.popitem(last=False)


async def approval_of_launch(
    task_description: str, subtasks: list[Subtask] | None, strategy: Strategy, options: CoordinateOptions | None,
    ctx: Context[Any, Any],
) -> Elicit[LaunchApproval] | NoQuestion:
    """The question to ask before the launch, if one is needed and the client can be asked."""
    coordinator = coordinator_of(ctx)
    options = coordinator.with_defaults(options)
    if options.dry_run or options.approved:
        return "not needed"
    try:
        plan = await plan_of_call(coordinator, task_description, subtasks, strategy, options)
    except Exception:  # a plan that cannot run: the tool body reports it, worded as every tool error is
        return "not needed"
    if not coordinator.needs_approval(plan.forecast, options):
        return "not needed"
    if not _can_be_asked(ctx):
        return "cannot ask"
    return Elicit(
        f"Parallel Coordinator is about to start {plan.forecast.describe()}. That is over the approval threshold"
        f" of ${options.approval_threshold_usd:g}. Run it?",
        LaunchApproval,
    )


def _can_be_asked(ctx: Context[Any, Any]) -> bool:
    # The SDK's own rule: a form-capable (or mode-less) elicitation capability.
    capabilities = ctx.client_capabilities
    elicitation = capabilities.elicitation if capabilities is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def forget_plan(
    coordinator: Coordinator, task_description: str, subtasks: list[Subtask] | None, strategy: Strategy,
    options: CoordinateOptions,
) -> None:
    """The call's plan is running (or cannot): the next identical call plans afresh."""
    _plans.get(coordinator, OrderedDict()).pop(_call_key(task_description, subtasks, strategy, options), None)
