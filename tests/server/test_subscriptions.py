"""resources/subscribe and unsubscribe for handshake-era clients, through a real in-memory MCP client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp import Client
from mcp.client.session import IncomingMessage
from mcp.server.subscriptions import InMemorySubscriptionBus, ServerEvent
from mcp.shared.exceptions import MCPError
from mcp_types import ResourceUpdatedNotification

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.session import Session
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.server import create_server
from parallel_coordinator.server.subscriptions import MAX_URIS_PER_CONNECTION, Coalescer, ResourceSubscriptions
from tests.conftest import AgentFactory

pytestmark = [
    pytest.mark.anyio,
    # resources/subscribe is the handshake era's; the SDK's client marks its helpers deprecated for that.
    pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning"),
]


def gated_agent(agents: AgentFactory, gate: Path) -> None:
    """An agent that says nothing until `gate` exists, then ends."""
    agents.script("gated", f"""
        import json, os, sys, time
        request = json.load(sys.stdin)
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.02)
        print(request["task_id"], "done")
    """)


class Updates:
    """The uris of the resource-updated notifications a client receives, in order (a context manager)."""

    def __init__(self) -> None:
        self._send, self.received = anyio.create_memory_object_stream[str](max_buffer_size=10_000)

    async def handler(self, message: IncomingMessage) -> None:
        if isinstance(message, ResourceUpdatedNotification):
            self._send.send_nowait(str(message.params.uri))

    def __enter__(self) -> Updates:
        return self

    def __exit__(self, *_: object) -> None:
        self._send.close()
        self.received.close()


async def next_uri(received: MemoryObjectReceiveStream[str], wanted: Callable[[str], bool]) -> list[str]:
    """Every uri received up to and including the first that `wanted` accepts."""
    seen = []
    with anyio.fail_after(30):
        async for uri in received:
            seen.append(uri)
            if wanted(uri):
                return seen
    raise AssertionError(f"the notifications ended before the one wanted; saw {seen}")


async def start(coordinator: Coordinator, subtasks: list[Subtask]) -> Session:
    options = CoordinateOptions(wait_seconds=0)
    return await coordinator.start("followed", coordinator.plan(subtasks, options), options)


async def until(hub: ResourceSubscriptions, condition: Callable[[], bool]) -> None:
    with anyio.fail_after(30):
        while not condition():
            await hub.changed.wait()


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[tuple[Client, Updates]]:
    with Updates() as updates:
        async with Client(
            create_server(coordinator=coordinator), mode="legacy", message_handler=updates.handler
        ) as connected:
            yield connected, updates


async def test_a_handshake_era_client_is_offered_subscriptions(client: tuple[Client, Updates]) -> None:
    connected, _ = client
    assert connected.server_capabilities.resources is not None
    assert connected.server_capabilities.resources.subscribe is True


async def test_a_subscribed_client_is_told_when_its_session_and_task_output_change(
    client: tuple[Client, Updates], coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    connected, updates = client
    gated_agent(agents, tmp_path / "gate")
    session = await start(coordinator, [Subtask(id="a b", description="x", agent_type="gated")])
    session_uri, task_uri = f"pcoord://sessions/{session.id}", f"pcoord://sessions/{session.id}/tasks/a%20b"
    await connected.subscribe_resource(session_uri)
    await connected.subscribe_resource(task_uri)
    (tmp_path / "gate").touch()
    seen = await next_uri(updates.received, lambda uri: uri == task_uri)
    assert set(seen) <= {session_uri, task_uri}
    # The session's end comes after its last task's: it is announced too, however close behind.
    await next_uri(updates.received, lambda uri: uri == session_uri and session.done.is_set())


async def test_after_unsubscribe_a_uri_is_no_longer_notified(
    client: tuple[Client, Updates], coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    connected, updates = client
    gated_agent(agents, tmp_path / "gate")
    session = await start(coordinator, [
        Subtask(id="first", description="x", agent_type="gated"),
        Subtask(id="second", description="x", agent_type="echo", dependencies=["first"]),
    ])
    first, second = (f"pcoord://sessions/{session.id}/tasks/{task}" for task in ("first", "second"))
    await connected.subscribe_resource(first)
    await connected.subscribe_resource(second)
    await connected.unsubscribe_resource(first)
    (tmp_path / "gate").touch()
    # "first" ends before "second" starts; were it still followed, its notification would come first.
    assert await next_uri(updates.received, lambda uri: uri == second) == [second]


async def test_a_client_that_disconnects_leaves_no_listener_and_no_task(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    class CountingBus(InMemorySubscriptionBus):
        listeners = 0

        def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
            CountingBus.listeners += 1
            unsubscribe = super().subscribe(listener)

            def counted() -> None:
                CountingBus.listeners -= 1
                unsubscribe()

            return counted

    gated_agent(agents, tmp_path / "gate")
    session = await start(coordinator, [Subtask(id="a", description="x", agent_type="gated")])
    uri = f"pcoord://sessions/{session.id}"
    # A hub that outlives the connections, as a long-running HTTP server's does.
    with Updates() as staying:
        async with ResourceSubscriptions(CountingBus()).running() as hub:
            server = create_server(coordinator=coordinator, subscriptions=hub)
            async with Client(server, mode="legacy", message_handler=staying.handler) as stays:
                await stays.subscribe_resource(uri)
                async with Client(server, mode="legacy") as leaves:
                    await leaves.subscribe_resource(uri)
                    await leaves.subscribe_resource(f"pcoord://sessions/{session.id}/tasks/a")
                    await until(hub, lambda: hub.connections == 2 and hub.delivery_tasks == 2)
                    assert CountingBus.listeners == 2
                await until(hub, lambda: hub.connections == 1 and hub.delivery_tasks == 1)
                assert CountingBus.listeners == 1
                (tmp_path / "gate").touch()
                # The connection that stayed is still told.
                await next_uri(staying.received, lambda seen: seen == uri and session.done.is_set())
            await until(hub, lambda: hub.connections == 0 and hub.delivery_tasks == 0)
            assert CountingBus.listeners == 0


@pytest.mark.parametrize(("uri", "says"), [
    ("no scheme at all", "malformed resource uri 'no scheme at all'"),
    ("pcoord://sessions/", "unknown resource uri 'pcoord://sessions/'"),
    ("pcoord://agents/coder", "unknown resource uri 'pcoord://agents/coder'"),
    ("pcoord://sessions/0000000000000000", "unknown session '0000000000000000'"),
    (f"pcoord://sessions/{'s' * 60_000}", "(60,0"),
])
async def test_a_malformed_or_unknown_uri_is_refused_naming_it_and_the_server_serves_on(
    client: tuple[Client, Updates], uri: str, says: str
) -> None:
    connected, _ = client
    with pytest.raises(MCPError) as refused:
        await connected.subscribe_resource(uri)
    assert says in str(refused.value) and len(str(refused.value)) < 1_000
    assert "pcoord://sessions/{session_id}" in str(refused.value) or "coordinate_task" in str(refused.value)
    assert (await connected.list_tools()).tools


async def test_a_task_the_session_does_not_have_is_refused_naming_it(
    client: tuple[Client, Updates], coordinator: Coordinator
) -> None:
    connected, _ = client
    session = await start(coordinator, [Subtask(id="a", description="x", agent_type="echo")])
    with pytest.raises(MCPError, match=f"session '{session.id}' has no task 'nope'"):
        await connected.subscribe_resource(f"pcoord://sessions/{session.id}/tasks/nope")


async def test_a_uri_of_another_scheme_is_accepted_and_a_connection_follows_a_bounded_number(
    client: tuple[Client, Updates],
) -> None:
    connected, _ = client
    # Another server's uri: the specification leaves its meaning to us; it is followed and never fires.
    for number in range(MAX_URIS_PER_CONNECTION):
        await connected.subscribe_resource(f"test://watched-resource/{number}")
    await connected.subscribe_resource("test://watched-resource/0")  # already followed: no new slot
    with pytest.raises(MCPError, match=f"already follows {MAX_URIS_PER_CONNECTION:,} resources; unsubscribe"):
        await connected.subscribe_resource("test://one-too-many")
    await connected.unsubscribe_resource("test://watched-resource/0")
    await connected.subscribe_resource("test://one-too-many")


def test_a_burst_of_updates_is_one_notification_now_and_one_when_the_interval_has_passed() -> None:
    coalescer = Coalescer(interval_s=0.5)
    assert coalescer.next_due_in(0.0) is None
    coalescer.updated("s")
    assert coalescer.take_due(10.0) == ["s"]
    for _ in range(50):  # a burst within the interval
        coalescer.updated("s")
    assert coalescer.take_due(10.1) == []
    assert coalescer.next_due_in(10.1) == pytest.approx(0.4)
    assert coalescer.take_due(10.5) == ["s"]
    assert coalescer.take_due(10.6) == [] and coalescer.next_due_in(10.6) is None


def test_each_uri_has_its_own_interval_and_a_forgotten_one_is_dropped() -> None:
    coalescer = Coalescer(interval_s=0.5)
    coalescer.updated("s")
    assert coalescer.take_due(1.0) == ["s"]
    coalescer.updated("s")
    coalescer.updated("t")
    assert coalescer.take_due(1.1) == ["t"]  # a uri never sent is due at once
    coalescer.forget("s")
    assert coalescer.next_due_in(1.1) is None and coalescer.take_due(5.0) == []
