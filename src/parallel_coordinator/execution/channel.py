"""The coordinator's end of the supervisor link: a socket that carries attempt events and cancels.

Each supervisor connects, says which attempt it runs (with the hub's secret), then streams events
(started, progress) as JSON lines; the coordinator writes `cancel` to stop it. When the coordinator
dies the socket closes and every supervisor kills its agent: that is what keeps agents from
outliving the server. Local pools use a Unix socket; supervisors on Dask workers, which may be
other machines, reach the hub over TCP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from parallel_coordinator.execution.hub_dirs import SOCKET, make_hub_dir

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]


@dataclass
class _Attempt:
    on_event: EventHandler
    stream: anyio.abc.SocketStream | None = None
    cancel_requested: bool = False


class AttemptHub:
    """Routes supervisor events to the attempt that registered for them; sends cancels back."""

    def __init__(self, tcp_host: str | None = None) -> None:
        """A Unix socket by default; with `tcp_host`, a TCP port on that address (chosen by the OS)."""
        self._dir = make_hub_dir()
        self._tcp_host = tcp_host
        # Where supervisors connect: a socket path, or tcp://host:port once serving.
        self.address = str(self._dir / SOCKET)
        # Anyone who can reach a TCP port could claim to be a supervisor: the hello must carry this.
        self.secret = secrets.token_hex(16)
        self._attempts: dict[str, _Attempt] = {}
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        if self._tcp_host is None:
            self._listener = await anyio.create_unix_listener(self.address)
        else:
            tcp = await anyio.create_tcp_listener(local_host=self._tcp_host, local_port=0)
            port = tcp.extra(anyio.abc.SocketAttribute.local_port)
            host = f"[{self._tcp_host}]" if ":" in self._tcp_host else self._tcp_host
            self.address = f"tcp://{host}:{port}"
            self._listener = tcp
        task_status.started()
        async with self._listener:
            await self._listener.serve(self._handle)

    def close(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)

    def register(self, attempt_id: str, on_event: EventHandler) -> None:
        self._attempts[attempt_id] = _Attempt(on_event)

    def unregister(self, attempt_id: str) -> None:
        self._attempts.pop(attempt_id, None)

    async def cancel(self, attempt_id: str) -> None:
        """Ask the attempt's supervisor to kill its agent; if it has not connected yet, it will be told."""
        attempt = self._attempts.get(attempt_id)
        if attempt is None:
            return
        attempt.cancel_requested = True
        if attempt.stream is not None:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await attempt.stream.send(b"cancel\n")

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        buffered = BufferedByteReceiveStream(stream)
        attempt: _Attempt | None = None
        async with stream:
            try:
                while True:
                    line = await buffered.receive_until(b"\n", 1 << 20)
                    try:
                        event = json.loads(line)
                    except ValueError:
                        log.warning("ignoring a malformed supervisor message: %r", line[:200])
                        continue
                    if attempt is None:
                        if not secrets.compare_digest(str(event.get("secret", "")), self.secret):
                            log.warning("refused a supervisor connection without the hub's secret")
                            return
                        attempt = self._attempts.get(str(event.get("attempt")))
                        if attempt is None:
                            return  # an attempt we no longer track: closing the socket stops it
                        attempt.stream = stream
                        if attempt.cancel_requested:
                            await stream.send(b"cancel\n")
                    attempt.on_event(event)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                    anyio.ClosedResourceError, anyio.DelimiterNotFound):
                return
