"""The get_session_view tool: a session as the MCP App's live view draws it, for the app to call (not the model).

coordinate_task and get_progress_status point at the app (`_meta.ui.resourceUri`); the app, once the
host has handed it their result, calls this tool to follow the session. Their own answers are unchanged.
"""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from parallel_coordinator.schemas.inputs import SessionId
from parallel_coordinator.tools._context import as_tool_errors, coordinator_of, principal
from parallel_coordinator.views import live_snapshot

SESSION_VIEW_URI = "ui://parallel-coordinator/session.html"

DESCRIPTION = """\
The live view of a coordinate_task session, as data for the Parallel Coordinator app to draw: each task
with its latest progress message and why it waits, every attempt on its slot, the graph's layout and the
spend. Meant for the app; a model should call get_progress_status instead."""


def ui_meta(*, app_only: bool = False) -> dict[str, Any]:
    """The `_meta` that points a tool at the session view (io.modelcontextprotocol/ui)."""
    ui: dict[str, Any] = {"resourceUri": SESSION_VIEW_URI}
    if app_only:
        ui["visibility"] = ["app"]
    return {"ui": ui}


async def get_session_view(session_id: SessionId, ctx: Context[Any, Any] | None = None) -> dict[str, Any]:
    coordinator = coordinator_of(ctx)
    with as_tool_errors():
        return live_snapshot(coordinator.get(session_id, principal(), estimate=False))  # it shows no time left
