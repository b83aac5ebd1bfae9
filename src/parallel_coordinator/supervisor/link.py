"""The supervisor's end of its link to the coordinator's hub: events out, `cancel` in, EOF means it is gone."""

from __future__ import annotations

import contextlib
import json
import os
import socket


def split_address(address: str) -> tuple[str, int]:
    """'tcp://host:port' or 'tcp://[v6]:port' -> (host, port)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    return host.strip("[]"), int(port)


def _connect(address: str) -> socket.socket:
    """A connected socket to the hub: a Unix socket path, or tcp://host:port for remote workers."""
    if not address.startswith("tcp://"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(address)
        return sock
    sock = socket.create_connection(split_address(address), timeout=10)
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # A coordinator whose machine vanished sends no FIN: keepalive probes find out within ~30 s.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 10), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 4)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


class HubLink:
    """The line-oriented link to the coordinator: events out, `cancel` in, EOF means it is gone."""

    def __init__(self, address: str, attempt_id: str, secret: str = "") -> None:
        self.sock = _connect(address)
        self._inbox = b""
        self.send({"attempt": attempt_id, "event": "hello", "worker_pid": os.getpid(), "secret": secret})

    def send(self, event: dict[str, object]) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(json.dumps(event).encode() + b"\n")

    def read_commands(self) -> list[str] | None:
        """Commands received so far; None once the coordinator has gone away."""
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return []
        except OSError:
            return None
        if not data:
            return None
        self._inbox += data
        *lines, self._inbox = self._inbox.split(b"\n")
        return [line.decode(errors="replace").strip() for line in lines]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
