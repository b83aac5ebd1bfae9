"""The list_sessions tool: the caller's recent sessions, to find one again after a disconnect."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from parallel_coordinator.tools._context import coordinator_of, principal
from parallel_coordinator.views import iso

DESCRIPTION = """\
List your most recent coordinate_task sessions, newest first: id, status, start time and task. Use it to
find a session again (for get_progress_status or cancel_execution) after a restart or a dropped
connection. Over HTTP you see only the sessions your token started."""


class SessionSummary(BaseModel):
    session_id: str
    status: str
    created_at: str | None
    task_description: str


class SessionList(BaseModel):
    sessions: list[SessionSummary]


async def list_sessions(
    limit: Annotated[int, Field(ge=1, le=200)] = 20, ctx: Context[Any, Any] | None = None
) -> SessionList:
    rows = coordinator_of(ctx).list_sessions(principal(), limit)
    return SessionList(sessions=[
        SessionSummary(session_id=sid, status=status, created_at=iso(created), task_description=text[:300])
        for sid, status, text, created in rows
    ])
