"""The MCP tools: thin adapters from the protocol to the coordinator. Only this package and `server` import mcp."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from parallel_coordinator.tools import agents, cancel, coordinate, metrics, sessions, status


def register_tools(server: MCPServer[Any]) -> None:
    server.add_tool(coordinate.coordinate_task, description=coordinate.DESCRIPTION)
    server.add_tool(
        status.get_progress_status, description=status.DESCRIPTION,
        annotations=ToolAnnotations(read_only_hint=True),
    )
    server.add_tool(
        cancel.cancel_execution, description=cancel.DESCRIPTION,
        annotations=ToolAnnotations(destructive_hint=True, idempotent_hint=True),
    )
    server.add_tool(
        metrics.get_performance_metrics, description=metrics.DESCRIPTION,
        annotations=ToolAnnotations(read_only_hint=True),
    )
    server.add_tool(
        agents.list_agents, description=agents.DESCRIPTION, annotations=ToolAnnotations(read_only_hint=True)
    )
    server.add_tool(
        sessions.list_sessions, description=sessions.DESCRIPTION, annotations=ToolAnnotations(read_only_hint=True)
    )


__all__ = ["register_tools"]
