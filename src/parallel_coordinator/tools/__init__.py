"""The MCP tools: thin adapters from the protocol to the coordinator. Only this package and `server` import mcp."""

from __future__ import annotations

from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from parallel_coordinator.tools import agents, cancel, coordinate, metrics, session_view, sessions, status
from parallel_coordinator.tools._strict import strict_tool


def all_tools() -> list[Tool]:
    """Every tool the server offers; each refuses arguments it does not take (see _strict)."""
    read_only = ToolAnnotations(read_only_hint=True)
    return [
        # The two that answer with a session point at the app that draws it live (MCP Apps).
        strict_tool(coordinate.coordinate_task, description=coordinate.DESCRIPTION, meta=session_view.ui_meta()),
        strict_tool(status.get_progress_status, description=status.DESCRIPTION, annotations=read_only,
                    meta=session_view.ui_meta()),
        strict_tool(
            cancel.cancel_execution, description=cancel.DESCRIPTION,
            annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True),
        ),
        strict_tool(metrics.get_performance_metrics, description=metrics.DESCRIPTION, annotations=read_only),
        strict_tool(agents.list_agents, description=agents.DESCRIPTION, annotations=read_only),
        strict_tool(sessions.list_sessions, description=sessions.DESCRIPTION, annotations=read_only),
        strict_tool(session_view.get_session_view, description=session_view.DESCRIPTION, annotations=read_only,
                    meta=session_view.ui_meta(app_only=True)),
    ]


__all__ = ["all_tools"]
