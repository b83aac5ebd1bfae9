"""Builds the MCP server: tools registered, and a Coordinator that lives as long as the server does."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import Response

from parallel_coordinator import __version__
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server.completions import register_completions
from parallel_coordinator.server.dashboard import Dashboard, Stopping
from parallel_coordinator.server.dashboard_auth import DashboardAuth
from parallel_coordinator.server.http import StaticTokenVerifier
from parallel_coordinator.server.live_pages import session_app
from parallel_coordinator.server.prometheus import exposition
from parallel_coordinator.server.prompts import register_prompts
from parallel_coordinator.server.resources import announce_updates, register_resources
from parallel_coordinator.server.subscriptions import ResourceSubscriptions, register_subscriptions
from parallel_coordinator.server.tasks import TasksExtension
from parallel_coordinator.tools import all_tools
from parallel_coordinator.tools.session_view import SESSION_VIEW_URI
from parallel_coordinator.views import performance_metrics

INSTRUCTIONS = """\
Parallel Coordinator runs one task on many agents at once. Call list_agents to see the agents, then
coordinate_task with `subtasks` (a dependency graph) to run them in parallel. If it answers RUNNING,
follow it with get_progress_status(session_id, wait_seconds=...) and stop it with cancel_execution."""


def create_server(
    settings: Settings | None = None,
    *,
    coordinator: Coordinator | None = None,
    tokens: dict[str, str] | None = None,
    base_url: str | None = None,
    prometheus: bool = False,
    subscriptions: ResourceSubscriptions | None = None,
    dashboard_sees_all: bool = False,
    stopping: Stopping | None = None,
) -> MCPServer[Coordinator]:
    """A server that owns a Coordinator for its lifetime, or serves one the caller already runs.

    With `tokens` (HTTP: principal name -> token), every request must carry one of them as a bearer
    token, and each client sees only its own sessions; `prometheus` adds /metrics. `subscriptions`,
    already running, is the caller's to keep past this server's lifespan (it owns the update bus).
    With tokens, /dashboard serves the live dashboard behind them; `dashboard_sees_all` shows it every
    session of the state directory (`pcoord dashboard`), not only the principal's own; its event streams
    end once `stopping` is set (http_serving.py sets it on Ctrl-C).
    """
    hub = subscriptions if subscriptions is not None else ResourceSubscriptions()
    bus = hub.bus
    running: list[Coordinator] = []

    @asynccontextmanager
    async def lifespan(_: MCPServer[Coordinator]) -> AsyncIterator[Coordinator]:
        async with AsyncExitStack() as stack:
            active = coordinator if coordinator is not None else await stack.enter_async_context(Coordinator(settings))
            # Everything allocated so far (the SDK, pydantic's schemas, our modules) lives as long as the
            # server: out of the collector's way, a 10,000-task call spends ~0.1 s less in full collections.
            gc.freeze()
            running.append(active)
            stack.callback(running.remove, active)
            if subscriptions is None:
                await stack.enter_async_context(hub.running())
            group = await stack.enter_async_context(anyio.create_task_group())
            group.start_soon(announce_updates, active, bus)
            yield active
            group.cancel_scope.cancel()

    verifier = StaticTokenVerifier(tokens) if tokens else None
    auth = None
    if verifier is not None:
        if base_url is None:
            raise ValueError("an HTTP server with tokens needs its base URL for the auth metadata")
        # Our tokens are shared secrets with no audience claim: the verifier itself decides (a resource
        # check would refuse every one of them), and saying so keeps the SDK's warning off the console.
        auth = AuthSettings(
            issuer_url=AnyHttpUrl(base_url), resource_server_url=AnyHttpUrl(f"{base_url}/mcp"),
            validate_token_resource=False,
        )
    server: MCPServer[Coordinator] = MCPServer(
        "parallel-coordinator", instructions=INSTRUCTIONS, version=__version__, lifespan=lifespan,
        subscriptions=bus, token_verifier=verifier, auth=auth, tools=all_tools(),
        extensions=[TasksExtension(), session_app(SESSION_VIEW_URI)],  # MCP tasks; the session view as an MCP App
    )
    register_resources(server)
    register_subscriptions(server, hub)
    register_prompts(server)
    register_completions(server)
    if tokens:
        dashboard = Dashboard(lambda: running[-1] if running else None, DashboardAuth(tokens),
                              see_all=dashboard_sees_all, stopping=stopping)
        for route in dashboard.routes():  # custom routes bypass the SDK's auth: the dashboard checks its own
            server.custom_route(route.path, methods=sorted(route.methods or ()))(route.endpoint)
    if prometheus:

        @server.custom_route("/metrics", methods=["GET"])  # type: ignore[untyped-decorator]
        async def metrics(request: Request) -> Response:
            # Custom routes bypass the SDK's auth: check the same bearer token here.
            given = request.headers.get("authorization", "")
            if verifier is not None and not (given.startswith("Bearer ") and verifier.accepts(given[7:])):
                return Response("bearer token required", status_code=401, headers={"WWW-Authenticate": "Bearer"})
            if not running:
                return Response("the coordinator is not running yet", status_code=503)
            body = exposition(performance_metrics(running[-1].store, running[-1].health()))
            return Response(body, media_type="text/plain; version=0.0.4")

    return server
