"""Worktree isolation for one attempt: a fresh git worktree when the agent or the session asks for one.

Afterwards the agent's changes are committed on the worktree's branch and summarised in the task's
record; the worktree itself is removed unless the session keeps worktrees.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from parallel_coordinator.agents import AgentSpec
from parallel_coordinator.engine.events import EventBus, SessionEvent
from parallel_coordinator.engine.session import Session, TaskRecord
from parallel_coordinator.execution.worktrees import (
    WorktreeError,
    create_worktree,
    remove_worktree,
    summarize,
)
from parallel_coordinator.runners.base import TaskRequest

log = logging.getLogger(__name__)

_CLEANUP_WAIT_S = 10.0
_FILES_LISTED = 50


def wants_worktree(session: Session, agent: AgentSpec) -> bool:
    return agent.isolation == "worktree" or session.policy.isolation == "worktree"


@asynccontextmanager
async def isolated(
    session: Session, record: TaskRecord, agent: AgentSpec, request: TaskRequest, root: Path, events: EventBus,
) -> AsyncIterator[TaskRequest]:
    """The request as the attempt runs it: in its own worktree when asked. A WorktreeError on the way in
    carries git's own words and fails the attempt (see attempts.py)."""
    if not wants_worktree(session, agent):
        yield request
        return
    where = Path(request.working_directory or Path.cwd())
    tree = await anyio.to_thread.run_sync(lambda: create_worktree(
        where, session_id=session.id, task_id=record.task_id, attempt=request.attempt, root=root,
    ))
    try:
        yield dataclasses.replace(request, working_directory=str(tree.cwd))
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_WAIT_S):
            keep = session.policy.keep_worktrees
            try:
                summary = await anyio.to_thread.run_sync(summarize, tree)
                record.worktree = {
                    "branch": summary.branch, "files_changed": summary.files_changed,
                    "insertions": summary.insertions, "deletions": summary.deletions,
                    "files": summary.files[:_FILES_LISTED], "committed": summary.committed,
                    "path": str(tree.path) if keep else None,
                }
                if not keep:
                    await anyio.to_thread.run_sync(lambda: remove_worktree(tree))
            except WorktreeError as exc:
                log.warning("worktree of task %r: %s", record.task_id, exc)
                record.worktree = {"branch": tree.branch, "error": str(exc), "path": str(tree.path)}
            events.emit(SessionEvent(
                "task_changed", session.id, record.task_id, record.agent,
                state={"worktree": json.dumps(record.worktree)},
            ))
