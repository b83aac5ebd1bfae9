"""Following a session while a tool call waits: MCP progress notifications as it advances.

One notification for every task that starts or ends and one every `interval` while anything runs.
`progress` counts finished tasks plus the fractions running agents report, and never goes back
(the specification wants it to increase with each notification); `total` is the number of tasks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import anyio
from mcp.server.mcpserver import Context

from parallel_coordinator.engine.events import EventBus, SessionEvent
from parallel_coordinator.engine.session import Session, TaskRecord
from parallel_coordinator.planning.scheduler import FINAL_STATES, TaskState


def progress_message(tasks: Mapping[str, TaskRecord], queue_reason: str | None, limit: int = 4) -> str:
    """'7/15 done, 4 running: coder t4 75%, reviewer t2 45%'."""
    done = sum(r.status in FINAL_STATES for r in tasks.values())
    running = [r for r in tasks.values() if r.status is TaskState.RUNNING]
    text = f"{done}/{len(tasks)} done, {len(running)} running"
    if running:
        shown = sorted(running, key=lambda r: r.started_at or 0)[:limit]
        parts = [f"{r.agent} {r.task_id}" + (f" {r.progress:.0f}%" if r.progress is not None else "") for r in shown]
        text += ": " + ", ".join(parts) + (", ..." if len(running) > limit else "")
    if queue_reason:
        text += f" ({queue_reason})"
    return text


def _value(session: Session) -> float:
    done = sum(r.status in FINAL_STATES for r in session.tasks.values())
    partial = sum(min(r.progress or 0.0, 99.0) / 100 for r in session.running())
    return done + partial


async def follow(
    session: Session, events: EventBus, ctx: Context[Any, Any] | None, seconds: float, interval: float
) -> None:
    """Wait up to `seconds` for the session to end, reporting progress as it goes.

    Task starts and ends are captured as they happen (several may happen between two sends), so each
    gets its own notification with the counts of that moment.
    """
    total = float(len(session.tasks))
    sender, receiver = anyio.create_memory_object_stream[tuple[float, str]](max_buffer_size=100_000)

    def capture(event: SessionEvent) -> None:
        if event.session_id == session.id and event.kind in ("task_started", "task_ended", "session_ended"):
            with contextlib.suppress(anyio.WouldBlock):
                sender.send_nowait((_value(session), progress_message(session.tasks, session.queue_reason)))

    unsubscribe = events.subscribe(capture)
    last_value = -1.0
    deadline = anyio.current_time() + seconds

    async def send(value: float, message: str) -> None:
        nonlocal last_value
        value = min(total, max(value, last_value + 1e-3))
        if value > last_value:  # never repeat a value: it must increase with each notification
            if ctx is not None:
                await ctx.report_progress(value, total, message)
            last_value = value

    try:
        await send(_value(session), progress_message(session.tasks, session.queue_reason))
        while not session.done.is_set():
            now = anyio.current_time()
            if now >= deadline:
                return
            with anyio.move_on_after(min(deadline - now, interval)) as tick:
                value, message = await receiver.receive()
                await send(value, message)
            if tick.cancelled_caught:
                await send(_value(session), progress_message(session.tasks, session.queue_reason))
        while True:  # what happened up to the end, then the end itself
            try:
                value, message = receiver.receive_nowait()
            except anyio.WouldBlock:
                break
            await send(value, message)
        await send(total, progress_message(session.tasks, session.queue_reason))
    finally:
        unsubscribe()
        sender.close()
        receiver.close()
