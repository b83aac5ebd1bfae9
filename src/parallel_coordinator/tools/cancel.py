"""The cancel_execution tool: stop a session and kill its agents' process trees."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from parallel_coordinator.schemas.inputs import SessionId
from parallel_coordinator.schemas.outputs import CancelResult
from parallel_coordinator.tools._context import as_tool_errors, coordinator_of, principal

DESCRIPTION = """\
Stop a coordinate_task session: tasks not yet started are cancelled, running agents are killed with
everything they started, and results already completed are kept. Returns how many tasks were
cancelled and how many processes were killed. Calling it again, or on a finished session, is harmless."""


async def cancel_execution(session_id: SessionId, ctx: Context[Any, Any] | None = None) -> CancelResult:
    with as_tool_errors():
        outcome = await coordinator_of(ctx).cancel(session_id, principal())
    return CancelResult(
        session_id=outcome.session_id,
        status=outcome.status,
        cancelled_tasks=outcome.cancelled_tasks,
        killed_processes=outcome.killed_processes,
        note=outcome.note,
    )
