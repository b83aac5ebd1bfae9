"""Builds the MCP server: tools registered, and a Coordinator that lives as long as the server does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus

from parallel_coordinator import __version__
from parallel_coordinator.config import Settings
from parallel_coordinator.coordinator import Coordinator
from parallel_coordinator.server.resources import announce_updates, register_resources
from parallel_coordinator.tools import register_tools

INSTRUCTIONS = """\
Parallel Coordinator runs one task on many agents at once. Call list_agents to see the agents, then
coordinate_task with `subtasks` (a dependency graph) to run them in parallel. If it answers RUNNING,
follow it with get_progress_status(session_id, wait_seconds=...) and stop it with cancel_execution."""


def create_server(
    settings: Settings | None = None, *, coordinator: Coordinator | None = None
) -> MCPServer[Coordinator]:
    """A server that owns a Coordinator for its lifetime, or serves one the caller already runs."""

    bus = InMemorySubscriptionBus()

    @asynccontextmanager
    async def lifespan(_: MCPServer[Coordinator]) -> AsyncIterator[Coordinator]:
        async with AsyncExitStack() as stack:
            running = coordinator if coordinator is not None else await stack.enter_async_context(Coordinator(settings))
            group = await stack.enter_async_context(anyio.create_task_group())
            group.start_soon(announce_updates, running, bus)
            yield running
            group.cancel_scope.cancel()

    server: MCPServer[Coordinator] = MCPServer(
        "parallel-coordinator", instructions=INSTRUCTIONS, version=__version__, lifespan=lifespan,
        subscriptions=bus,
    )
    register_tools(server)
    register_resources(server)
    return server
