"""The list_agents tool: every agent found, where it came from, and every file that was skipped."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from parallel_coordinator.agents.guide import empty_catalog_help
from parallel_coordinator.schemas.outputs import AgentInfo, AgentListing, DiagnosticInfo
from parallel_coordinator.tools._context import coordinator_of

DESCRIPTION = """\
List the agents this server can run (from ~/.claude/agents, ./.claude/agents and PCOORD_AGENT_DIRS):
name, description, runner, model, tools, source and concurrency limit. Use the names as
`agent_type` in coordinate_task. `diagnostics` lists agent files that were skipped or repaired;
`help`, set when there are no agents, says where the server looked and how to add one."""


async def list_agents(ctx: Context[Any, Any] | None = None) -> AgentListing:
    catalog = await coordinator_of(ctx).catalog()
    return AgentListing(
        agents=[
            AgentInfo(
                name=a.name, description=a.description, runner=a.runner, model=a.model, tools=a.tools,
                source=a.source, max_concurrent=a.max_concurrent, priority=a.priority,
                path=str(a.path) if a.path else None,
            )
            for a in sorted(catalog.agents.values(), key=lambda a: a.name)
        ],
        diagnostics=[DiagnosticInfo(path=d.path, problem=d.problem) for d in catalog.diagnostics],
        help=empty_catalog_help(catalog),
    )
