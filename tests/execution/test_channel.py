"""The coordinator's hub on its own: real shard links (supervisor/link.py) over its real Unix socket.

A shard link that breaks (its worker SIGKILLed with frames still unread, so the kernel resets the
connection) must end that link alone: the hub goes on serving every other shard.
"""

from __future__ import annotations

import select
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest

from parallel_coordinator.execution.channel import AttemptHub, ShardConnection
from parallel_coordinator.supervisor.link import ShardLink, split_address

pytestmark = pytest.mark.anyio

WAIT_S = 10.0


@asynccontextmanager
async def serving(tcp_host: str | None = None) -> AsyncIterator[AttemptHub]:
    hub = AttemptHub(tcp_host=tcp_host)
    try:
        async with anyio.create_task_group() as group:
            await group.start(hub.serve)
            yield hub
            group.cancel_scope.cancel()
    finally:
        hub.close()


async def connect(hub: AttemptHub, shard_id: str) -> ShardLink:
    return await anyio.to_thread.run_sync(ShardLink, hub.address, shard_id, hub.secret, 1)


async def wait_readable(link: ShardLink) -> None:
    readable, _, _ = await anyio.to_thread.run_sync(select.select, [link], [], [], WAIT_S)
    assert readable, "the hub's frame never reached the shard"


async def test_a_shard_link_reset_with_frames_unread_ends_that_link_alone() -> None:
    async with serving() as hub:
        await _reset_one_link_then_use_another(hub)


async def _reset_one_link_then_use_another(hub: AttemptHub) -> None:
    broken = hub.shard("s1")
    link = await connect(hub, "s1")
    broken.post(("cancel", "a1"))
    await wait_readable(link)
    link.close()  # unread data: the hub's next read is a reset (ECONNRESET), not an end of file
    with anyio.fail_after(WAIT_S):
        await broken.closed.wait()

    events: list[dict[str, Any]] = []
    got = anyio.Event()
    hub.register("a2", lambda event: (events.append(event), got.set()))
    healthy = hub.shard("s2")
    other = await connect(hub, "s2")
    try:
        healthy.post(("cancel", "a2"))
        await wait_readable(other)
        assert other.receive() == [("cancel", "a2")]
        other.post({"attempt": "a2", "event": "progress"})
        other.flush()
        with anyio.fail_after(WAIT_S):
            await got.wait()
    finally:
        other.close()
    assert events == [{"attempt": "a2", "event": "progress"}]


async def test_a_frame_the_hub_cannot_send_leaves_the_link_reading_and_the_hub_serving() -> None:
    async with serving() as hub:
        events: list[dict[str, Any]] = []
        arrived = anyio.Event()
        hub.register("a1", lambda event: (events.append(event), arrived.set()))
        connection = hub.shard("s1")
        link = await connect(hub, "s1")
        try:
            link.sock.shutdown(socket.SHUT_RD)  # the hub's first send to it fails (EPIPE)
            connection.post(("cancel", "a1"))
            await wait_until_unsent(connection)
            link.post({"attempt": "a1", "event": "progress"})
            link.flush()
            with anyio.fail_after(WAIT_S):
                await arrived.wait()
        finally:
            link.close()
        with anyio.fail_after(WAIT_S):
            await connection.closed.wait()
        assert events == [{"attempt": "a1", "event": "progress"}]


async def wait_until_unsent(connection: ShardConnection) -> None:
    """Until the hub's writer has taken the outbox (and so tried to send it)."""
    with anyio.fail_after(WAIT_S):
        while connection._outbox:
            await anyio.lowlevel.checkpoint()


async def test_a_second_link_for_a_shard_already_linked_is_refused_and_the_first_keeps_its_frames() -> None:
    async with serving() as hub:
        connection = hub.shard("s1")
        first = await connect(hub, "s1")
        connection.post(("cancel", "a0"))
        await wait_readable(first)  # the hub has linked it
        assert first.receive() == [("cancel", "a0")]
        second = await connect(hub, "s1")  # a replayed hello, or a rerun of the shard's task elsewhere
        try:
            readable, _, _ = await anyio.to_thread.run_sync(select.select, [second], [], [], WAIT_S)
            assert readable and second.receive() is None  # closed by the hub
            connection.post(("cancel", "a1"))
            await wait_readable(first)
            assert first.receive() == [("cancel", "a1")]
        finally:
            first.close()
            second.close()


async def test_a_peer_that_says_no_hello_in_time_is_dropped() -> None:
    hub = AttemptHub(tcp_host="127.0.0.1", hello_timeout_s=0.2)
    try:
        async with anyio.create_task_group() as group:
            await group.start(hub.serve)
            host, port = split_address(hub.address)
            async with await anyio.connect_tcp(host, port) as stranger:
                await stranger.send(b'{"shard": "s1"')  # and then nothing
                with anyio.fail_after(WAIT_S), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stranger.receive()
            group.cancel_scope.cancel()
    finally:
        hub.close()


@pytest.mark.parametrize(
    "hello",
    [b'{"secret": "caf\\u00e9"}\n', b'{"secret": "caf\xc3\xa9"}\n', b"[1, 2]\n", b"\xff\n", b"[" * 3000 + b"\n"],
)
async def test_a_stranger_whose_hello_is_not_the_secret_is_refused_and_the_hub_serves_on(hello: bytes) -> None:
    async with serving("127.0.0.1") as hub:
        host, port = split_address(hub.address)
        async with await anyio.connect_tcp(host, port) as stranger:
            await stranger.send(hello)
            with anyio.fail_after(WAIT_S), pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await stranger.receive()
        connection = hub.shard("s1")
        link = await connect(hub, "s1")
        try:
            connection.post(("cancel", "a1"))
            await wait_readable(link)
            assert link.receive() == [("cancel", "a1")]
        finally:
            link.close()




async def test_forgetting_a_shard_closes_its_link_so_the_shard_kills_its_agents() -> None:
    """The backend forgets a shard whose task it saw fail (a Dask worker the scheduler gave up on, say);
    if that shard still runs, the closed link is what tells it to kill the agents the backend counts as lost."""
    async with serving() as hub:
        connection = hub.shard("s1")
        link = await connect(hub, "s1")
        try:
            connection.post(("cancel", "a0"))
            await wait_readable(link)
            assert link.receive() == [("cancel", "a0")]
            hub.forget_shard("s1")
            await wait_readable(link)
            assert link.receive() is None  # end of file: the coordinator is gone, for this shard
            with anyio.fail_after(WAIT_S):
                await connection.closed.wait()
        finally:
            link.close()
