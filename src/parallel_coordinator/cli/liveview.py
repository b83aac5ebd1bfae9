"""The terminal's live view of a session: an overall bar and one line per active agent (rich, on stderr);
on a pipe, one plain line per task start and end instead."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parallel_coordinator.engine.session import TaskRecord
from parallel_coordinator.planning.scheduler import FINAL_STATES, TaskState
from parallel_coordinator.schemas.outputs import ProgressStatus


def render_status(status: ProgressStatus, max_rows: int | None = None) -> RenderableType:
    """The view; with `max_rows`, at most that many agent lines (a terminal shows no more: the rest is counted)."""
    done = status.completed + status.failed + status.cancelled + status.skipped
    header = Table.grid(padding=(0, 1))
    header.add_row(
        Text(f"session {status.session_id}", style="bold"),
        ProgressBar(total=max(status.total_tasks, 1), completed=done, width=30),
        Text(
            f"{done}/{status.total_tasks} done · {status.in_progress - len(status.waiting_on_twins)} running"
            + (f" · {len(status.waiting_on_twins)} waiting for a twin" if status.waiting_on_twins else "")
            + f" · {status.failed} failed · {status.pending} pending"
        ),
    )
    agents = Table.grid(padding=(0, 2))
    active_agents = sorted(status.agents_active, key=lambda a: a.task_id)
    shown = active_agents
    if max_rows is not None and len(active_agents) > max_rows:
        shown = active_agents[:max(max_rows - 1, 0)]  # one line left for the count of the rest
    for active in shown:
        percent = f"{active.progress:3.0f}%" if active.progress is not None else "  … "
        agents.add_row(
            Text(f"  {active.task_id}", style="cyan"),
            Text(active.agent, style="magenta"),
            Text(percent),
            Text(f"{active.elapsed_s:5.1f}s", style="dim"),
            Text((active.message or "")[:60], style="dim"),
        )
    parts: list[RenderableType] = [header]
    spend = spend_line(status)
    if spend:
        parts.append(Text(f"  {spend}", style="dim"))
    if status.queue_reason:  # why ready tasks are not starting: the first thing a user asks
        parts.append(Text(f"  waiting: {status.queue_reason}", style="yellow"))
    parts.append(agents)
    if len(shown) < len(active_agents):
        parts.append(Text(f"  … and {len(active_agents) - len(shown)} more running", style="dim"))
    return Group(*parts)


def spend_line(status: ProgressStatus) -> str | None:
    """'spent 16,585 tokens, $0.0159 of budget 15,000 tokens · forecast 90,000 tokens, $0.34', when there is any."""
    spent, budget, forecast = status.spent, status.budget, status.forecast
    if spent is None or (not spent.tokens and not spent.usd and budget is None):
        return None
    text = f"spent {spent.tokens:,} tokens, ${spent.usd:.4f}"
    if budget is not None:
        caps = [f"{budget.tokens:,} tokens" if budget.tokens else "", f"${budget.usd:g}" if budget.usd else "",
                f"{budget.seconds:g} s" if budget.seconds else ""]
        text += " of budget " + ", ".join(c for c in caps if c)
    if forecast is not None and forecast.tokens:
        text += f" · forecast {forecast.tokens:,} tokens, ${forecast.usd:.2f}"
    return text


def stderr_console() -> Console:
    # stdout may be a protocol wire or a pipe the user reads results from: the live view uses stderr.
    return Console(stderr=True)


def task_lines(tasks: dict[str, TaskRecord], seen: dict[str, TaskState]) -> list[str]:
    """A plain line for each task that started or ended since `seen` (updated): what a pipe or a log gets."""
    lines = []
    for task_id, record in tasks.items():
        state = record.status
        if seen.get(task_id, TaskState.PENDING) == state:
            continue
        seen[task_id] = state
        if state is TaskState.RUNNING:
            lines.append(f"started {task_id} ({record.agent})")
        elif state in FINAL_STATES:
            ran = record.started_at and record.finished_at
            took = f" in {(record.finished_at or 0) - (record.started_at or 0):.2f} s" if ran else ""
            error = f": {record.error.splitlines()[0][:200]}" if record.error and record.error.strip() else ""
            lines.append(f"{state.value} {task_id} ({record.agent}){took}{error}")
    return lines


@contextmanager
def logs_above_live() -> Iterator[None]:
    """While a rich Live runs (it has put a proxy on sys.stderr), log handlers write through that proxy, so a
    log line is printed above the live view instead of tearing it."""
    handlers = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    previous = [h.setStream(sys.stderr) for h in handlers]
    try:
        yield
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)
