"""The terminal's live view of a session: an overall bar and one line per active agent (rich, on stderr)."""

from __future__ import annotations

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from parallel_coordinator.schemas.outputs import ProgressStatus


def render_status(status: ProgressStatus) -> RenderableType:
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
    for active in sorted(status.agents_active, key=lambda a: a.task_id):
        percent = f"{active.progress:3.0f}%" if active.progress is not None else "  … "
        agents.add_row(
            Text(f"  {active.task_id}", style="cyan"),
            Text(active.agent, style="magenta"),
            Text(percent),
            Text(f"{active.elapsed_s:5.1f}s", style="dim"),
            Text((active.message or "")[:60], style="dim"),
        )
    if status.queue_reason:  # why ready tasks are not starting: the first thing a user asks
        return Group(header, Text(f"  waiting: {status.queue_reason}", style="yellow"), agents)
    return Group(header, agents)


def stderr_console() -> Console:
    # stdout may be a protocol wire or a pipe the user reads results from: the live view uses stderr.
    return Console(stderr=True)
