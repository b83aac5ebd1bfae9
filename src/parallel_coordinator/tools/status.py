"""The get_progress_status tool: live counts, active agents and an estimate, optionally after a wait."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import Field

from parallel_coordinator.schemas.inputs import SessionId
from parallel_coordinator.schemas.outputs import ProgressStatus
from parallel_coordinator.tools._context import as_tool_errors, coordinator_of, principal
from parallel_coordinator.tools._progress import follow
from parallel_coordinator.tools.coordinate import result_caps
from parallel_coordinator.views import progress_status

DESCRIPTION = """\
Report how far a coordinate_task session has got: counts of completed, running, failed, pending,
cancelled and skipped tasks, each active agent with its progress, an estimated completion time, and
(once the session has ended) its results. Pass wait_seconds > 0 to wait up to that long for the
session to end before answering (with progress notifications meanwhile, if you passed a progress
token), instead of polling in a tight loop."""


async def get_progress_status(
    session_id: SessionId,
    wait_seconds: Annotated[float, Field(ge=0, le=3600)] = 0.0,
    ctx: Context[Any, Any] | None = None,
) -> ProgressStatus:
    coordinator = coordinator_of(ctx)
    with as_tool_errors():
        view = coordinator.get(session_id, principal())
        live = coordinator.sessions.get(view.id) if view.live else None
        if live is not None and wait_seconds > 0:
            await follow(live, coordinator.events, ctx, wait_seconds, live.policy.progress_interval_s)
            view = coordinator.snapshot(live)
        return progress_status(view, *result_caps(coordinator, view.result_chars, view.total_result_chars))
