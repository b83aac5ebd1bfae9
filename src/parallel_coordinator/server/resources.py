"""Sessions and task outputs as MCP resources, and the notifications that say they changed.

`pcoord://sessions/{session_id}` is the same JSON as get_progress_status; each task's whole output is
`pcoord://sessions/{session_id}/tasks/{task_id}` (the id URL-quoted), so tool results can stay small.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.subscriptions import ResourceUpdated, SubscriptionBus
from mcp.shared.uri_template import UriTemplate

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.events import SessionEvent
from parallel_coordinator.errors import UnknownSessionError, shortened
from parallel_coordinator.state.outputs import read_output
from parallel_coordinator.tools._context import coordinator_of, principal
from parallel_coordinator.views import progress_status, session_uri, task_uri

# A session's resource is announced at most this often while only progress changes.
_SESSION_UPDATE_INTERVAL_S = 0.5

SESSION_TEMPLATE = "pcoord://sessions/{session_id}"
TASK_TEMPLATE = "pcoord://sessions/{session_id}/tasks/{task_id}"
_SESSION = UriTemplate.parse(SESSION_TEMPLATE)
_TASK = UriTemplate.parse(TASK_TEMPLATE)


def resource_ids(uri: str) -> tuple[str, str | None] | None:
    """(session id, task id or None) named by a uri of one of our resources; None for any other uri."""
    for template in (_SESSION, _TASK):
        found = template.match(uri)
        if found is not None:
            session_id, task_id = found.get("session_id"), found.get("task_id")
            if not isinstance(session_id, str) or not session_id:
                return None
            if task_id is None:
                return session_id, None
            return (session_id, task_id) if isinstance(task_id, str) and task_id else None
    return None


def register_resources(server: MCPServer[Any]) -> None:
    @server.resource(
        SESSION_TEMPLATE,
        name="session",
        description="A coordinate_task session: the same JSON as get_progress_status, results once ended.",
        mime_type="application/json",
    )
    async def session_resource(session_id: str, ctx: Context[Any, Any]) -> str:
        coordinator = coordinator_of(ctx)
        try:
            found = coordinator.get(session_id, principal())
        except UnknownSessionError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        settings = coordinator.settings
        status = progress_status(found, settings.result_chars, settings.total_result_chars)
        return status.model_dump_json(indent=2)

    @server.resource(
        TASK_TEMPLATE,
        name="task output",
        description="The whole output of one task of a session, however long.",
        mime_type="text/plain",
    )
    async def task_resource(session_id: str, task_id: str, ctx: Context[Any, Any]) -> str:
        coordinator = coordinator_of(ctx)
        task = task_id  # the template's match has decoded it already: a second decoding would change '%41' to 'A'
        try:
            found = coordinator.get(session_id, principal())
        except UnknownSessionError as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        record = found.tasks.get(task)
        if record is None:
            raise ResourceNotFoundError(f"session {session_id!r} has no task {shortened(task)}")
        # The whole text from its file (read off the event loop: it may be tens of megabytes).
        return await anyio.to_thread.run_sync(read_output, record.kept)


async def announce_updates(coordinator: Coordinator, bus: SubscriptionBus) -> None:
    """Publish resource-updated events for sessions and task outputs as the coordinator reports changes."""
    sender, receiver = anyio.create_memory_object_stream[SessionEvent](max_buffer_size=10_000)

    def enqueue(event: SessionEvent) -> None:
        # A listener this far behind refetches anyway: dropping an update loses nothing.
        with contextlib.suppress(anyio.WouldBlock):
            sender.send_nowait(event)

    unsubscribe = coordinator.events.subscribe(enqueue)
    try:
        await _publish(receiver, bus)
    finally:
        unsubscribe()
        sender.close()


async def _publish(receiver: MemoryObjectReceiveStream[SessionEvent], bus: SubscriptionBus) -> None:
    last_sent: dict[str, float] = {}
    async with receiver:
        async for event in receiver:
            uri = session_uri(event.session_id)
            now = time.monotonic()
            # Progress alone is rate-limited; a task or session starting or ending is always announced.
            if event.kind != "progress" or now - last_sent.get(uri, 0.0) >= _SESSION_UPDATE_INTERVAL_S:
                last_sent[uri] = now
                await bus.publish(ResourceUpdated(uri=uri))
            if event.kind == "task_ended" and event.task_id is not None:
                await bus.publish(ResourceUpdated(uri=task_uri(event.session_id, event.task_id)))
            if event.kind == "session_ended":
                last_sent.pop(uri, None)
