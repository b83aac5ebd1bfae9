"""MCP tasks (`io.modelcontextprotocol/tasks`, 2026-07-28): coordinate_task answered with a task handle.

For a client that declares the extension on its request, coordinate_task starts the session and
returns `resultType: "task"` at once; the task id is the session id. `tasks/get` reports the session
(working, then completed with the tool's final result, or cancelled), `tasks/cancel` cancels it,
`tasks/update` has nothing to take (no task of ours waits for input). Other clients get the plain
tool behaviour.
"""

from __future__ import annotations

from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, CallToolRequestParams, RequestParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.read_model import SessionView
from parallel_coordinator.errors import UnknownSessionError, shortened
from parallel_coordinator.tools._context import as_task, principal
from parallel_coordinator.tools._progress import progress_message
from parallel_coordinator.views import coordination_result, iso

TASKS = "io.modelcontextprotocol/tasks"
POLL_INTERVAL_MS = 1000


class TaskIdParams(RequestParams):
    task_id: str


class UpdateTaskParams(RequestParams):
    task_id: str
    input_responses: dict[str, Any] | None = None


def client_declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """The client declared the extension on a 2026-era connection (a task handle cannot travel on an
    older wire, whatever the client advertised at its handshake)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and TASKS in capabilities.extensions)


class TasksExtension(Extension):
    identifier = TASKS

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", TaskIdParams, self._get),
            MethodBinding("tasks/cancel", TaskIdParams, self._cancel),
            MethodBinding("tasks/update", UpdateTaskParams, self._update),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name != "coordinate_task" or not client_declared(ctx):
            return await call_next(ctx)
        token = as_task.set(True)
        try:
            result = await call_next(ctx)
        finally:
            as_task.reset(token)
        content = _structured(result)
        if content is None or not content.get("session_id"):
            return result  # a tool error or a dry run: answered at once, no task needed
        coordinator = _coordinator(ctx)
        return {"resultType": "task", **_task(coordinator, coordinator.get(content["session_id"]))}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        coordinator = _coordinator(ctx)
        return {"resultType": "complete", **_task(coordinator, _find(coordinator, params.task_id), detailed=True)}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskIdParams) -> HandlerResult:
        coordinator = _coordinator(ctx)
        _find(coordinator, params.task_id)
        await coordinator.cancel(params.task_id, principal())
        return {"resultType": "complete", **_task(coordinator, coordinator.get(params.task_id), detailed=True)}

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: UpdateTaskParams) -> HandlerResult:
        _find(_coordinator(ctx), params.task_id)
        return {}


def _coordinator(ctx: ServerRequestContext[Any, Any]) -> Coordinator:
    coordinator = ctx.lifespan_context
    if not isinstance(coordinator, Coordinator):
        raise TypeError(f"the server's lifespan must yield a Coordinator, not {type(coordinator).__name__}")
    return coordinator


def _find(coordinator: Coordinator, task_id: str) -> SessionView:
    try:
        return coordinator.get(task_id, principal())
    except UnknownSessionError as exc:
        raise MCPError(INVALID_PARAMS, f"unknown task {shortened(task_id)}") from exc


def _structured(result: HandlerResult) -> dict[str, Any] | None:
    data = result.model_dump(by_alias=True, mode="json") if isinstance(result, BaseModel) else result
    if not isinstance(data, dict) or data.get("isError"):
        return None
    structured = data.get("structuredContent")
    return structured if isinstance(structured, dict) else None


def _task(coordinator: Coordinator, found: SessionView, *, detailed: bool = False) -> dict[str, Any]:
    status = {"RUNNING": "working", "CANCELLED": "cancelled"}.get(found.status, "completed")
    updated = found.finished_at or (found.last_activity if found.live else None)
    task: dict[str, Any] = {
        "taskId": found.id,
        "status": status,
        "createdAt": iso(found.created_at),
        "lastUpdatedAt": iso(updated or found.created_at),
        "ttlMs": None,
        "pollIntervalMs": POLL_INTERVAL_MS,
    }
    if found.live and status == "working":
        task["statusMessage"] = progress_message(found.tasks, found.queue_reason)
    elif found.error_summary:
        task["statusMessage"] = found.error_summary
    if detailed and status == "completed":
        settings = coordinator.settings
        final = coordination_result(found, settings.result_chars, settings.total_result_chars)
        task["result"] = {
            "content": [{"type": "text", "text": final.model_dump_json(indent=2)}],
            "structuredContent": final.model_dump(mode="json"),
            "isError": False,
        }
    return task
