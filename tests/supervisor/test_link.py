"""The shard's end of its link over TCP: how long it waits on a coordinator whose machine vanished."""

from __future__ import annotations

import socket
import sys

import pytest

from parallel_coordinator.supervisor.link import ShardLink


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_USER_TIMEOUT is Linux's")
def test_a_tcp_link_gives_up_on_unacknowledged_frames_after_30_s_where_keepalive_would_wait() -> None:
    with socket.create_server(("127.0.0.1", 0)) as hub:
        link = ShardLink(f"tcp://127.0.0.1:{hub.getsockname()[1]}", "s1", "secret", 1)
        try:
            assert link.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 30_000
            assert link.sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        finally:
            link.close()
