"""A session's summary in words: why it stopped, which tasks failed and why, how many were skipped."""

from __future__ import annotations

from parallel_coordinator.engine.session import Session
from parallel_coordinator.errors import first_line
from parallel_coordinator.planning.scheduler import TaskState

_FAILURES_NAMED = 5


def error_line(text: str | None) -> str:
    """An error as one line of a summary or note (errors.first_line), never blank."""
    return first_line(text) or "no error text"


def error_summary(session: Session) -> str | None:
    failures = [r for r in session.tasks.values() if r.status is TaskState.FAILED]
    notes = []
    if session.stop_reason and not session.cancel_requested:
        notes.append(session.stop_reason)
    if failures:
        notes.append(
            f"{len(failures)} task(s) failed: "
            + "; ".join(f"{r.task_id} ({r.agent}): {error_line(r.error)}" for r in failures[:_FAILURES_NAMED])
        )
    skipped = session.scheduler.count(TaskState.SKIPPED)
    if skipped:
        notes.append(f"{skipped} task(s) skipped because a dependency failed")
    return "; ".join(notes) or None
