"""`completion/complete`: the session ids (and a session's task ids) a caller may name, as it types them.

Offered for the `session_id` of the resource templates and of any prompt argument of that name, and for
the `task_id` of the task template once its session is known. Anything else completes to nothing.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp_types import CompleteRequestParams, CompleteResult, Completion, PromptReference, ResourceTemplateReference

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.errors import UnknownSessionError
from parallel_coordinator.server.resources import SESSION_TEMPLATE, TASK_TEMPLATE
from parallel_coordinator.tools._context import principal

# The specification's cap on the values of one completion.
MAX_VALUES = 100
# How many of the caller's newest sessions a prefix is matched against: the bound on one request's work.
SESSIONS_SCANNED = 1_000


def register_completions(server: MCPServer[Any]) -> None:
    """Serve completion/complete (which also declares the `completions` capability)."""

    async def complete(ctx: ServerRequestContext[Any, Any], params: CompleteRequestParams) -> CompleteResult:
        coordinator = ctx.lifespan_context
        if not isinstance(coordinator, Coordinator):
            raise TypeError(f"the server's lifespan must yield a Coordinator, not {type(coordinator).__name__}")
        ref, argument = params.ref, params.argument
        if argument.name == "session_id" and await _takes_session_id(server, ref):
            ids = [row[0] for row in coordinator.list_sessions(principal(), SESSIONS_SCANNED)]  # newest first
            return _completion(ids, argument.value)
        if argument.name == "task_id" and isinstance(ref, ResourceTemplateReference) and ref.uri == TASK_TEMPLATE:
            session_id = (params.context.arguments or {}).get("session_id") if params.context else None
            if session_id:
                try:
                    found = coordinator.get(session_id, principal())
                except UnknownSessionError:
                    return _completion([], "")
                return _completion(list(found.tasks), argument.value)  # in the plan's order
        return _completion([], "")

    # Registered on the low-level server, as MCPServer's own completion decorator does, so that the handler
    # gets the request's context (and so the coordinator).
    server._lowlevel_server.add_request_handler("completion/complete", CompleteRequestParams, complete)


async def _takes_session_id(server: MCPServer[Any], ref: ResourceTemplateReference | PromptReference) -> bool:
    if isinstance(ref, ResourceTemplateReference):
        return ref.uri in (SESSION_TEMPLATE, TASK_TEMPLATE)
    prompt = next((p for p in await server.list_prompts() if p.name == ref.name), None)
    return prompt is not None and any(arg.name == "session_id" for arg in prompt.arguments or ())


def _completion(candidates: list[str], prefix: str) -> CompleteResult:
    matching = [value for value in candidates if value.startswith(prefix)]
    return CompleteResult(completion=Completion(
        values=matching[:MAX_VALUES], total=len(matching), has_more=len(matching) > MAX_VALUES
    ))
