"""Answers about a plan that did not run: a dry run's, and one that waits for approval of its forecast."""

from __future__ import annotations

from parallel_coordinator.planning.forecast import Forecast
from parallel_coordinator.planning.graph import TaskGraph
from parallel_coordinator.schemas.outputs import CoordinationResult, ForecastFigures, PlannedTask


def planned_tasks(graph: TaskGraph) -> list[PlannedTask]:
    return [
        PlannedTask(
            task_id=n.id, agent=n.agent, description=n.description, dependencies=list(n.dependencies),
            priority=n.priority,
        )
        for n in graph.nodes.values()
    ]


def dry_run_result(
    graph: TaskGraph, notes: list[str] | None = None, forecast: Forecast | None = None
) -> CoordinationResult:
    return CoordinationResult(
        session_id="", status="RUNNING", plan=planned_tasks(graph), notes=notes or [],
        next_step="dry run: nothing ran; pass these subtasks (edited if need be) without dry_run to run them",
        forecast=ForecastFigures(**forecast.as_dict()) if forecast is not None else None,
    )


def approval_needed_result(
    graph: TaskGraph, notes: list[str], forecast: Forecast, threshold_usd: float, *, declined: bool = False
) -> CoordinationResult:
    """Nothing ran: the forecast is over the threshold, and the caller has not approved it (or declined)."""
    if declined:
        step = (f"declined: nothing ran and nothing was spent (forecast {forecast.describe()}). To run it after all,"
                " call coordinate_task again with options.approved=true")
    else:
        step = (f"needs approval: nothing ran. The forecast is {forecast.describe()}, over the approval threshold"
                f" of ${threshold_usd:g}. Show it to the user; to run it, call coordinate_task again with the same"
                " arguments and options.approved=true (or a higher options.approval_threshold_usd)")
    return CoordinationResult(
        session_id="", status="CANCELLED" if declined else "RUNNING", plan=planned_tasks(graph), notes=notes,
        next_step=step, forecast=ForecastFigures(**forecast.as_dict()), approval_required=not declined,
    )
