"""A shard's link to the coordinator's hub: one connection per shard, carrying every attempt's traffic.

The shard opens with one JSON line (its shard id and the hub's secret, so the hub can refuse a
stranger before reading anything else), then both ends exchange frames: a 4-byte length and a
pickle. The coordinator sends `("start", job)`, `("cancel", attempt_id)` and `("exit", None)`; the
shard sends event dicts, each naming its attempt. Pickle, because jobs and outcomes are our own
dataclasses and already travel as pickles to the pool. The hub reads frames only from an end that
proved the secret; the shard proves nothing of the hub: it trusts the address it was given (an
owner-only Unix socket, or the coordinator's TCP port). End of file means the other end is gone.
"""

from __future__ import annotations

import contextlib
import json
import pickle
import socket
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
# One frame at most: an outcome holds at most the output cap (4 MiB by default) of stdout, pickled.
MAX_FRAME = 256 * 1024 * 1024


def split_address(address: str) -> tuple[str, int]:
    """'tcp://host:port' or 'tcp://[v6]:port' -> (host, port)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    return host.strip("[]"), int(port)


def encode(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


class FrameReader:
    """Turns received bytes into whole frames' messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buffer += data
        messages = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise ValueError(f"a frame of {length} bytes is over the {MAX_FRAME}-byte limit")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            messages.append(pickle.loads(self._buffer[_LENGTH.size:end]))
            del self._buffer[:end]
        return messages


def _connect(address: str) -> socket.socket:
    """A connected socket to the hub: a Unix socket path, or tcp://host:port for remote workers."""
    if not address.startswith("tcp://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        return sock
    sock = socket.create_connection(split_address(address), timeout=10)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A coordinator whose machine vanished sends no FIN: keepalive probes find out within ~30 s on an
    # idle link; where data we sent goes unacknowledged, keepalive waits and the user timeout (Linux)
    # bounds it instead, or retransmissions would block our sendall, and the whole shard, for ~15 min.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 4), ("TCP_USER_TIMEOUT", 30_000)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


class ShardLink:
    """The shard's end: `receive()` after the socket turned readable, `post()` then `flush()` to send."""

    def __init__(self, address: str, shard_id: str, secret: str, worker_pid: int) -> None:
        self.sock = _connect(address)
        self._reader = FrameReader()
        self._outbox = bytearray()
        hello = {"shard": shard_id, "secret": secret, "worker_pid": worker_pid}
        self.sock.sendall(json.dumps(hello).encode() + b"\n")

    def fileno(self) -> int:
        return self.sock.fileno()

    def receive(self) -> list[Any] | None:
        """The messages received so far (call when readable); None once the coordinator has gone away."""
        try:
            data = self.sock.recv(1 << 20)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        try:
            return self._reader.feed(data)
        except (ValueError, pickle.UnpicklingError):
            return None  # not our coordinator's frames: treat it as gone

    def post(self, event: dict[str, Any]) -> None:
        """Queue an event; the shard flushes once per turn of its loop, so a burst goes out in one write."""
        self._outbox += encode(event)

    def flush(self) -> None:
        if self._outbox:
            data, self._outbox = bytes(self._outbox), bytearray()
            with contextlib.suppress(OSError):  # a gone coordinator shows as end of file on the next read
                self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
