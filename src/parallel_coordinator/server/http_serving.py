"""Runs the server's HTTP app under uvicorn: on a host and port, or on a socket already bound (a free port).

A stop (Ctrl-C, SIGTERM) sets `stopping`, which ends the dashboard's event streams (they never end by
themselves), and gives whatever else is open a few seconds before it is cut.
"""

from __future__ import annotations

import socket
from types import FrameType
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer

from parallel_coordinator.server.dashboard import Stopping

GRACEFUL_STOP_S = 3


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, stopping: Stopping) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._stopping.set()
        super().handle_exit(sig, frame)


def listening_socket(host: str, port: int = 0) -> socket.socket:
    """A socket listening on host:port (port 0: a free one the system picks). From the moment it returns, a
    client's connection waits in the backlog until the server accepts it, so its address may be given out."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listening.bind((host, port))
    listening.listen(128)
    return listening


def serve_http_app(
    server: MCPServer[Any], *, host: str, port: int, max_request_bytes: int, stopping: Stopping,
    bound: socket.socket | None = None,
) -> None:
    """Serve /mcp (and the custom routes) until stopped; on `bound` when given, else on host:port."""
    app = server.streamable_http_app(host=host, max_request_body_size=max_request_bytes)
    config = uvicorn.Config(
        app, host=host, port=port, log_level=server.settings.log_level.lower(),
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
    )
    try:
        _Server(config, stopping).run(sockets=[bound] if bound is not None else None)
    except KeyboardInterrupt:
        if not stopping.is_set:
            raise
        # uvicorn stopped cleanly on Ctrl-C, then raised it again for whoever runs it: this is a normal end.
