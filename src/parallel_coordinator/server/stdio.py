"""Serving over stdio, with an answer for every line, even one the SDK cannot read.

The SDK's stdio transport hands a line it cannot parse (nesting past 200 levels, a lone surrogate)
to the server as an exception, and the server drops it: the client waits forever for its reply. Here
such a line is answered as over HTTP, with a JSON-RPC parse error (-32700; -32600 for JSON that is not
a JSON-RPC message), carrying the request's id when it can be read back, and the server serves on.
Upstream, this belongs in mcp/server/stdio.py (`stdin_reader`) or the server's dispatcher.
"""

from __future__ import annotations

import contextvars
import json
import logging
from typing import Any, Protocol, Self

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError
from pydantic import ValidationError

from parallel_coordinator.tools._context import over_stdio

log = logging.getLogger(__name__)

# Past this size a bad line's id is not looked for: parsing it again would hold the event loop.
_RECOVER_ID_MAX_CHARS = 4 * 1024 * 1024


class _Inbound(Protocol):
    async def receive(self) -> SessionMessage | Exception: ...
    async def aclose(self) -> None: ...


class _Outbound(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...


async def serve_stdio(server: MCPServer[Any]) -> None:
    """What `server.run("stdio")` does, with unreadable lines answered instead of dropped."""
    # The SDK's own in-memory client reaches the protocol server the same way (mcp/client/_memory.py).
    protocol = server._lowlevel_server
    over_stdio.set(True)  # the tasks started below, the handlers among them, inherit it
    async with stdio_server() as (read_stream, write_stream):
        await protocol.run(
            AnsweringUnreadableLines(read_stream, write_stream), write_stream,
            protocol.create_initialization_options(),
        )


class AnsweringUnreadableLines:
    """The transport's read stream less the lines it could not read: each of those is answered on `replies`."""

    def __init__(self, inbound: _Inbound, replies: _Outbound) -> None:
        self._inbound = inbound
        self._replies = replies

    @property
    def last_context(self) -> contextvars.Context | None:
        """The sender's context of the last message, which the SDK's dispatcher runs handlers in."""
        context: contextvars.Context | None = getattr(self._inbound, "last_context", None)
        return context

    async def receive(self) -> SessionMessage | Exception:
        while True:
            item = await self._inbound.receive()
            if not isinstance(item, ValidationError):
                return item
            reply = reply_to_unreadable(item)
            log.warning("answered an unreadable message: %s", reply.error.message)
            await self._replies.send(SessionMessage(reply))

    async def aclose(self) -> None:
        await self._inbound.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def reply_to_unreadable(error: ValidationError) -> JSONRPCError:
    """The JSON-RPC error for a line that failed to parse as a message (`error` says why)."""
    problems = error.errors(include_url=False)
    first = problems[0] if problems else {"type": "", "msg": str(error)}
    if first["type"] == "json_invalid":
        line = first.get("input")
        request_id = _request_id(_parse_leniently(line) if isinstance(line, str) else None)
        return JSONRPCError(
            jsonrpc="2.0", id=request_id, error=ErrorData(code=PARSE_ERROR, message=f"Parse error: {first['msg']}")
        )
    # JSON, but not a JSON-RPC message: the errors of the members the message missed carry it whole.
    message = next((p["input"] for p in problems if isinstance(p.get("input"), dict)), None)
    return JSONRPCError(
        jsonrpc="2.0", id=_request_id(message),
        error=ErrorData(code=INVALID_REQUEST, message="Invalid Request: not a JSON-RPC 2.0 request or notification"),
    )


def _parse_leniently(line: str) -> Any:
    """Python's parser takes what the SDK's refuses (lone surrogates, deep nesting) and may find the id."""
    if len(line) > _RECOVER_ID_MAX_CHARS:
        return None
    try:
        return json.loads(line)
    except (ValueError, RecursionError):
        return None


def _request_id(message: Any) -> str | int | None:
    """The id of a request, if `message` is one with a usable id (JSON-RPC: a string or an integer)."""
    if not isinstance(message, dict) or "method" not in message:
        return None
    request_id = message.get("id")
    if isinstance(request_id, str) or (isinstance(request_id, int) and not isinstance(request_id, bool)):
        return request_id
    return None
