"""The coordinator's end of the shard links: one socket per shard, carrying all of its attempts.

Each shard connects and says, in one JSON line, which shard it is (with the hub's secret), then both
ends exchange frames (supervisor/link.py): jobs and cancels go out, every attempt's events come back
tagged with its attempt id. Outgoing frames are queued and written by one task per shard, so a burst
of starts goes out in few writes. When the coordinator dies the sockets close and every shard kills
its agents: that is what keeps agents from outliving the server. Local pools use a Unix socket;
shards on Dask workers, which may be other machines, reach the hub over TCP.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import secrets
import shutil
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc

from parallel_coordinator.execution.hub_dirs import SOCKET, make_hub_dir
from parallel_coordinator.supervisor.link import FrameReader, encode

log = logging.getLogger(__name__)

EventHandler = Callable[[dict[str, Any]], None]
_HELLO_LIMIT = 4096
# How a link ends without a word: its shard closed it, reset it (killed with frames unread), or it was closed here.
_LINK_ENDS = (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError)


class ShardConnection:
    """One shard's link, seen from the coordinator: an outbox written in order, and whether it has closed."""

    def __init__(self, shard_id: str) -> None:
        self.shard_id = shard_id
        self.worker_pid: int | None = None
        self.linked = False  # its shard said hello: the one link that may carry its frames
        self.closed = anyio.Event()
        self.closing = False  # the shard said it is ending (its worker is going): send it nothing new
        self._outbox: list[bytes] = []  # bounded by the jobs and cancels in flight on this shard
        self._wake = anyio.Event()
        self._link = anyio.CancelScope()  # cancelled: the hub closes the link, and the shard kills its agents

    def post(self, message: tuple[str, Any]) -> None:
        """Queue a message; it is sent once the shard has connected, in the order posted."""
        if not self.closed.is_set():
            self._outbox.append(encode(message))
            self._wake.set()

    def drop(self) -> None:
        """Close the link now (a hello still to come is refused); the shard sees the coordinator gone."""
        self.closed.set()
        self._link.cancel()

    async def write(self, stream: anyio.abc.SocketStream) -> None:
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):  # the reader sees it end
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                data, self._outbox = b"".join(self._outbox), []
                await stream.send(data)


class AttemptHub:
    """Routes shard events to the attempt they name; carries jobs and cancels to the shards."""

    def __init__(self, tcp_host: str | None = None, *, hello_timeout_s: float = 10.0) -> None:
        """A Unix socket by default; with `tcp_host`, a TCP port on that address (chosen by the OS).

        A peer that has not said a whole hello within `hello_timeout_s` is dropped: on a TCP port,
        strangers that connect and say nothing would otherwise each hold a socket and a task for ever.
        """
        self._dir = make_hub_dir()
        self._tcp_host = tcp_host
        self._hello_timeout_s = hello_timeout_s
        # Where shards connect: a socket path, or tcp://host:port once serving.
        self.address = str(self._dir / SOCKET)
        # Anyone who can reach a TCP port could claim to be a shard: the hello must carry this.
        self.secret = secrets.token_hex(16)
        self._attempts: dict[str, EventHandler] = {}
        self._shards: dict[str, ShardConnection] = {}
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

    def shard(self, shard_id: str) -> ShardConnection:
        """The connection a shard about to start will make; messages posted now wait for it."""
        connection = self._shards[shard_id] = ShardConnection(shard_id)
        return connection

    def forget_shard(self, shard_id: str) -> None:
        """Drop the shard; a link it still holds is closed, so a shard that still runs kills its agents."""
        connection = self._shards.pop(shard_id, None)
        if connection is not None:
            connection.drop()

    def register(self, attempt_id: str, on_event: EventHandler) -> None:
        self._attempts[attempt_id] = on_event

    def unregister(self, attempt_id: str) -> None:
        self._attempts.pop(attempt_id, None)

    async def _handle(self, stream: anyio.abc.SocketStream) -> None:
        connection: ShardConnection | None = None
        async with stream:
            try:
                connection, rest = None, b""
                with anyio.move_on_after(self._hello_timeout_s):
                    connection, rest = await self._hello(stream)
                if connection is None:
                    return
                # Caught inside the group: it would wrap them in an ExceptionGroup that ends the whole hub.
                with connection._link:
                    async with anyio.create_task_group() as group:
                        group.start_soon(connection.write, stream)
                        with contextlib.suppress(*_LINK_ENDS):
                            await self._read(connection, stream, rest)
                        group.cancel_scope.cancel()
            except _LINK_ENDS:
                pass
            finally:
                if connection is not None:
                    connection.closed.set()

    async def _read(self, connection: ShardConnection, stream: anyio.abc.SocketStream, rest: bytes) -> None:
        frames = FrameReader()
        try:
            self._dispatch(connection, frames.feed(rest))
            async for chunk in stream:
                self._dispatch(connection, frames.feed(chunk))
        except (ValueError, pickle.UnpicklingError) as exc:
            log.warning("dropping shard %s: unreadable link (%s)", connection.shard_id, exc)

    async def _hello(self, stream: anyio.abc.SocketStream) -> tuple[ShardConnection | None, bytes]:
        """Read the shard's hello; the shard's connection if it proved the secret, and the bytes after it."""
        received = b""
        while b"\n" not in received:
            if len(received) > _HELLO_LIMIT:
                return None, b""
            received += await stream.receive()
        line, rest = received.split(b"\n", 1)
        try:
            hello = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            return None, b""
        # As bytes: compare_digest raises on a str with non-ASCII characters (a stranger's word would end the hub).
        proof = str(hello.get("secret", "")).encode() if isinstance(hello, dict) else b""
        if not secrets.compare_digest(proof, self.secret.encode()):
            log.warning("refused a supervisor connection without the hub's secret")
            return None, b""
        connection = self._shards.get(str(hello.get("shard")))
        if connection is None or connection.closed.is_set():
            return None, b""  # a shard we no longer track: closing the socket ends it
        if connection.linked:  # a replayed hello, or the shard's task rerun elsewhere: one link per shard
            log.warning("refused a second link for shard %s", connection.shard_id)
            return None, b""
        connection.linked = True
        connection.worker_pid = hello.get("worker_pid")
        return connection, rest

    def _dispatch(self, connection: ShardConnection, events: list[Any]) -> None:
        for event in events:
            if event.get("shard_event") == "closing":
                connection.closing = True
                continue
            on_event = self._attempts.get(str(event.get("attempt")))
            if on_event is None:
                continue
            try:
                on_event(event)
            except Exception:  # a bug in one attempt's handler: the link and every other attempt on it go on
                log.exception("handling %s event of attempt %s failed", event.get("event"), event.get("attempt"))
