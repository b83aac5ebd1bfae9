"""`resources/subscribe` and `resources/unsubscribe` for handshake-era clients (protocol 2025-11-25 and before).

A subscribed connection gets `notifications/resources/updated` for each uri it follows, fed by the same
bus as the 2026-era `subscriptions/listen` streams, at most one per uri every COALESCE_INTERVAL_S. What a
connection subscribes (its uris, its bus listener, its delivery task) ends with the connection.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Self

import anyio
from anyio.abc import TaskGroup
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ResourceUpdated, ServerEvent, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, EmptyResult, SubscribeRequestParams, UnsubscribeRequestParams

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.errors import UnknownSessionError, shortened
from parallel_coordinator.server.resources import SESSION_TEMPLATE, TASK_TEMPLATE, resource_ids
from parallel_coordinator.tools._context import principal

# A burst (64 tasks ending together) is one notification now and one at the end of the interval.
COALESCE_INTERVAL_S = 0.5
# The bound on what one connection holds: its uris, and so its pending updates and send times.
MAX_URIS_PER_CONNECTION = 1_000
_STATE_KEY = "parallel_coordinator.subscriptions"


class Coalescer:
    """Which followed uris are due a notification: the first update at once, the rest of a burst as one.

    Pure (the caller passes the time), so the policy is testable without a clock. Holds only uris it is
    told about, and `forget` drops one: its size is bounded by the caller's set of followed uris.
    """

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._pending: dict[str, None] = {}  # insertion-ordered set
        self._last_sent: dict[str, float] = {}

    def updated(self, uri: str) -> None:
        self._pending[uri] = None

    def forget(self, uri: str) -> None:
        self._pending.pop(uri, None)
        self._last_sent.pop(uri, None)

    def take_due(self, now: float) -> list[str]:
        """The pending uris whose last notification is an interval old (or that had none), marked sent."""
        due = [uri for uri in self._pending if now - self._last_sent.get(uri, -math.inf) >= self._interval_s]
        for uri in due:
            del self._pending[uri]
            self._last_sent[uri] = now
        return due

    def next_due_in(self, now: float) -> float | None:
        """Seconds until the next pending uri is due; None when nothing is pending."""
        if not self._pending:
            return None
        soonest = min(self._last_sent.get(uri, -math.inf) for uri in self._pending) + self._interval_s
        return max(0.0, soonest - now)


class _Follower:
    """One connection's subscriptions: the uris it follows, a bus listener and the task that notifies it."""

    def __init__(self, hub: ResourceSubscriptions, connection: Connection, interval_s: float) -> None:
        self._hub = hub
        self._connection = connection
        self.uris: set[str] = set()
        self._coalescer = Coalescer(interval_s)
        self._wake = anyio.Event()
        self._scope = anyio.CancelScope()
        self._stop_listening: Callable[[], None] = lambda: None
        self._closed = False

    def start(self, group: TaskGroup) -> None:
        self._stop_listening = self._hub.bus.subscribe(self._on_event)
        group.start_soon(self._deliver)

    def follow(self, uri: str) -> None:
        if uri not in self.uris and len(self.uris) >= MAX_URIS_PER_CONNECTION:
            raise MCPError(
                INVALID_PARAMS,
                f"cannot subscribe to {shortened(uri)}: this connection already follows "
                f"{MAX_URIS_PER_CONNECTION:,} resources; unsubscribe from some first",
            )
        self.uris.add(uri)

    def unfollow(self, uri: str) -> None:
        self.uris.discard(uri)
        self._coalescer.forget(uri)

    def close(self) -> None:
        """Stop listening and notifying (idempotent): the connection closed, or the hub stopped."""
        if self._closed:
            return
        self._closed = True
        self._stop_listening()
        self._scope.cancel()
        if self._connection.state.get(_STATE_KEY) is self:
            del self._connection.state[_STATE_KEY]
        self._hub._forget(self)

    def _on_event(self, event: ServerEvent) -> None:
        if isinstance(event, ResourceUpdated) and event.uri in self.uris:
            self._coalescer.updated(event.uri)
            self._wake.set()

    async def _deliver(self) -> None:
        self._hub._task_started()
        try:
            with self._scope:
                wait: float | None = None
                while True:
                    # Until the next uri is due, or an update comes in (a new uri is due at once).
                    with anyio.move_on_after(math.inf if wait is None else wait):
                        await self._wake.wait()
                    self._wake = anyio.Event()
                    for uri in self._coalescer.take_due(anyio.current_time()):
                        # Best effort: the SDK drops it when the connection has no channel left.
                        await self._connection.send_resource_updated(uri)
                    wait = self._coalescer.next_due_in(anyio.current_time())
        finally:
            self.close()
            self._hub._task_ended()


class ResourceSubscriptions:
    """The server's resource subscriptions: one follower per subscribed connection, run in its task group.

    It serves subscriptions while `running()` (the server's lifespan enters it, unless the caller passed
    one it runs itself, to outlive the connections it serves). `bus` is where resource updates are published.
    """

    def __init__(self, bus: SubscriptionBus | None = None, *, interval_s: float = COALESCE_INTERVAL_S) -> None:
        self.bus: SubscriptionBus = bus if bus is not None else InMemorySubscriptionBus()
        self._interval_s = interval_s
        self._groups: list[TaskGroup] = []
        self._followers: set[_Follower] = set()
        self._tasks = 0
        # Set and replaced on every change of connections or tasks, for whoever waits on one.
        self.changed = anyio.Event()

    @property
    def connections(self) -> int:
        """Connections that follow at least one resource."""
        return len(self._followers)

    @property
    def delivery_tasks(self) -> int:
        return self._tasks

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        """Followers started meanwhile run in this task group; they stop when it ends."""
        async with anyio.create_task_group() as group:
            self._groups.append(group)
            try:
                yield self
            finally:
                self._groups.remove(group)
                group.cancel_scope.cancel()

    def follower(self, connection: Connection) -> _Follower:
        """This connection's follower, started (and tied to the connection's end) on its first subscribe."""
        found = connection.state.get(_STATE_KEY)
        if isinstance(found, _Follower):
            return found
        if not self._groups:
            raise RuntimeError("resource subscriptions are not running: enter ResourceSubscriptions.running() first")
        follower = _Follower(self, connection, self._interval_s)
        follower.start(self._groups[-1])
        connection.state[_STATE_KEY] = follower
        connection.exit_stack.callback(follower.close)
        self._followers.add(follower)
        self._changed()
        return follower

    def existing_follower(self, connection: Connection) -> _Follower | None:
        found = connection.state.get(_STATE_KEY)
        return found if isinstance(found, _Follower) else None

    def _forget(self, follower: _Follower) -> None:
        self._followers.discard(follower)
        self._changed()

    def _task_started(self) -> None:
        self._tasks += 1
        self._changed()

    def _task_ended(self) -> None:
        self._tasks -= 1
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()


def register_subscriptions(server: MCPServer[Any], hub: ResourceSubscriptions) -> None:
    """Serve resources/subscribe and resources/unsubscribe (which also declares `resources.subscribe`)."""

    async def subscribe(ctx: ServerRequestContext[Any, Any], params: SubscribeRequestParams) -> EmptyResult:
        check_subscribable(_coordinator(ctx), params.uri)
        hub.follower(_connection_of(ctx)).follow(params.uri)
        return EmptyResult()

    async def unsubscribe(ctx: ServerRequestContext[Any, Any], params: UnsubscribeRequestParams) -> EmptyResult:
        check_well_formed(params.uri)
        follower = hub.existing_follower(_connection_of(ctx))
        if follower is not None:
            follower.unfollow(params.uri)
        return EmptyResult()

    # MCPServer has no decorator for these two; the SDK's docs point at the low-level server's
    # add_request_handler, reachable only as the private `_lowlevel_server` (as in the SDK's own
    # in-memory transport).
    protocol = server._lowlevel_server
    protocol.add_request_handler("resources/subscribe", SubscribeRequestParams, subscribe)
    protocol.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, unsubscribe)


def check_well_formed(uri: str) -> None:
    """A uri with a scheme; one of ours (`pcoord:`) must also have the shape of one of our resources."""
    scheme, sep, _ = uri.partition(":")
    if not sep or not scheme or not (scheme[0].isascii() and scheme[0].isalpha()):
        raise MCPError(INVALID_PARAMS, f"malformed resource uri {shortened(uri)}: a uri starts with a scheme "
                       f"(for this server's resources, {SESSION_TEMPLATE} or {TASK_TEMPLATE})")
    if scheme == "pcoord" and resource_ids(uri) is None:
        raise MCPError(INVALID_PARAMS, f"unknown resource uri {shortened(uri)}: this server's resources are "
                       f"{SESSION_TEMPLATE} and {TASK_TEMPLATE}")


def check_subscribable(coordinator: Coordinator, uri: str) -> None:
    """A well-formed uri; one of ours must name a session this caller may see (and a task of it).

    A uri of another scheme is accepted and never fires: the specification leaves a uri's meaning to the
    server, and subscriptions/listen honours such uris the same way.
    """
    check_well_formed(uri)
    ids = resource_ids(uri)
    if ids is None:
        return
    session_id, task_id = ids
    try:
        found = coordinator.get(session_id, principal())
    except UnknownSessionError as exc:
        raise MCPError(INVALID_PARAMS, f"cannot subscribe to {shortened(uri)}: {exc}") from exc
    if task_id is not None and task_id not in found.tasks:
        raise MCPError(INVALID_PARAMS, f"cannot subscribe to {shortened(uri)}: session {session_id!r} has no "
                       f"task {shortened(task_id)}")


def _connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    # A request's ServerSession is a per-request proxy; the connection it wraps (and its exit stack, which
    # the SDK unwinds when the client goes) is not exposed otherwise.
    return ctx.session._connection


def _coordinator(ctx: ServerRequestContext[Any, Any]) -> Coordinator:
    coordinator = ctx.lifespan_context
    if not isinstance(coordinator, Coordinator):
        raise TypeError(f"the server's lifespan must yield a Coordinator, not {type(coordinator).__name__}")
    return coordinator
