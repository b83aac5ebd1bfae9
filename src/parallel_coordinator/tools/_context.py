"""How a tool reaches the coordinator, and how engine errors become tool errors the model can read."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.errors import CoordinatorError


def coordinator_of(ctx: Context[Any, Any] | None) -> Coordinator:
    """The server's coordinator; a tool called outside our server (no context, another lifespan) is a bug."""
    coordinator = ctx.request_context.lifespan_context if ctx is not None else None
    if not isinstance(coordinator, Coordinator):
        raise TypeError(f"the server's lifespan must yield a Coordinator, not {type(coordinator).__name__}")
    return coordinator


# Set while coordinate_task runs as an MCP task: it starts the session and returns without waiting.
as_task: contextvars.ContextVar[bool] = contextvars.ContextVar("pcoord_as_task", default=False)

# Set by server/stdio.py for everything it serves: there, a session lives only as long as the client's process.
over_stdio: contextvars.ContextVar[bool] = contextvars.ContextVar("pcoord_over_stdio", default=False)

ONE_SHOT_CLIENTS = (
    "; over stdio this session lives as long as this server, which ends when the client that started it exits:"
    " a client that starts a server for each call (the MCP Inspector's CLI) ends the session with it."
    " To follow a long session from such a client, serve over HTTP (`pcoord serve --transport http`)"
)


def principal() -> str | None:
    """The HTTP client (its token's name) making this request; None on stdio and in memory."""
    token = get_access_token()
    return token.client_id if token is not None else None


@contextmanager
def as_tool_errors() -> Iterator[None]:
    """Our own errors carry the offending value: hand their text to the model as a tool error."""
    try:
        yield
    except CoordinatorError as exc:
        raise ToolError(str(exc)) from exc
    except ValidationError as exc:  # a model built inside the tool: the model must still see why
        raise ToolError(str(exc)) from exc
