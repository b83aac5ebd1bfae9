"""Cancel across servers: a session another server on this state directory runs is asked through the store.

The server running it sees the request on its next machine sample (about a second) and cancels it
as its own caller would; this side waits for the store to say it ended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from parallel_coordinator.state.store import Store, is_alive

log = logging.getLogger(__name__)

CANCEL_WAIT_S = 10.0
_STORE_POLL_S = 0.1  # how often a cancel through the store looks for the owning server's answer


@dataclass(frozen=True)
class CancelOutcome:
    session_id: str
    status: str
    cancelled_tasks: int
    killed_processes: int
    note: str | None = None


async def cancel_elsewhere(store: Store, session_id: str) -> CancelOutcome:
    """Ask the server running `session_id` to cancel it, and wait (bounded) for it to have."""
    pid, started_at, _, _ = store.owner_of(session_id)
    if not is_alive(pid, started_at):
        store.recover_orphans(time.time())
        _, _, ended, _ = store.owner_of(session_id)
        return CancelOutcome(session_id, ended or "FAILED", 0, 0, note=(
            f"the server that ran it (pid {pid}) is gone, so its agents died with it; the session was"
            " already interrupted and is now marked so"
        ))
    store.request_cancel(session_id, time.time())
    with anyio.move_on_after(CANCEL_WAIT_S):
        # Another process writes the answer: there is nothing to wait on but the database itself.
        while store.owner_of(session_id)[2] == "RUNNING":  # noqa: ASYNC110
            await anyio.sleep(_STORE_POLL_S)
    stored = store.load_session(session_id)
    cancelled = sum(t.status == "cancelled" for t in stored.tasks) if stored else 0
    _, _, status, killed = store.owner_of(session_id)
    if status == "RUNNING":
        note = f"asked the server running it (pid {pid}) to cancel; no confirmation within {CANCEL_WAIT_S:g} s"
    else:
        note = f"cancelled through the state directory by the server running it (pid {pid})"
    return CancelOutcome(session_id, status or "RUNNING", cancelled, killed, note=note)


async def answer_cancel_requests(
    store: Store, ours: set[str], cancel: Callable[[str], Awaitable[CancelOutcome]]
) -> None:
    """Cancel the sessions of ours that another server asked, through the store, to stop."""
    for session_id in store.cancel_requests() & ours:
        log.info("session %s: cancel requested through the state directory", session_id)
        await cancel(session_id)
