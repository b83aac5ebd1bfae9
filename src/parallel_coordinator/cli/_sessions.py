"""Commands on stored sessions: status, watch, cancel, report, and gc (the retention limits applied now)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from parallel_coordinator.cli._exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from parallel_coordinator.cli._state import effective_settings, open_store, stored_status
from parallel_coordinator.errors import CoordinatorError, shortened
from parallel_coordinator.schemas.outputs import ProgressStatus
from parallel_coordinator.state.store import Store
from parallel_coordinator.views import iso


def status_table(status: ProgressStatus) -> Table:
    table = Table(title=f"session {status.session_id}: {status.status}", title_justify="left")
    for column in ("task", "agent", "status", "attempts", "time", "progress", "error"):
        table.add_column(column, overflow="fold")
    active = {a.task_id: a for a in status.agents_active}
    for result in status.results or []:
        table.add_row(*map(Text, (  # ids, names and agents' errors are text, never rich markup
            result.task_id, result.agent, result.status, str(result.attempts),
            f"{result.duration_s:.2f}s" if result.duration_s is not None else "",
            "", (result.error or "").splitlines()[0][:80] if result.error else "",
        )))
    for task_id, agent in active.items():
        percent = f"{agent.progress:.0f}% {agent.message or ''}" if agent.progress is not None else agent.message or ""
        table.add_row(*map(Text, (task_id, agent.agent, "running", "", f"{agent.elapsed_s:.1f}s", percent, "")))
    return table


def show_status(session_id: str | None, as_json: bool, ids_only: bool = False) -> int:
    store = open_store()
    try:
        if ids_only:
            for listed_id, *_ in store.recent_sessions():
                print(listed_id)
            return EXIT_OK
        if session_id is None:
            return list_sessions(store, as_json)
        status = stored_status(store, session_id)
    finally:
        store.close()
    if as_json:
        print(status.model_dump_json(indent=2))
        return EXIT_OK
    console = Console()
    metrics = status.performance_metrics
    console.print(
        f"[bold]{status.status}[/bold] · {status.completed}/{status.total_tasks} succeeded · {status.failed} failed"
        f" · {status.skipped} skipped · {status.cancelled} cancelled · {status.in_progress} running"
    )
    console.print(
        f"avg task {metrics.avg_task_time_s:.2f}s · p95 {metrics.p95_task_time_s:.2f}s · error rate"
        f" {metrics.error_rate:.0%} · parallel efficiency {metrics.parallel_efficiency:.0%}"
    )
    console.print(status_table(status))
    for alert in metrics.alerts:  # they name agents: text, never markup
        console.print(Text.assemble(("alert:", "yellow"), f" {alert}"))
    return EXIT_OK


def list_sessions(store: Store, as_json: bool) -> int:
    sessions = store.recent_sessions()
    if as_json:
        print(json.dumps([
            {"session_id": sid, "status": status, "task_description": text, "created_at": iso(created)}
            for sid, status, text, created in sessions
        ], indent=2))
        return EXIT_OK
    table = Table(title="recent sessions", title_justify="left")
    for column in ("session", "status", "started", "task"):
        table.add_column(column, overflow="fold")
    for sid, status, text, created in sessions:
        table.add_row(*map(Text, (sid, status, iso(created) or "", text.splitlines()[0][:70] if text else "")))
    Console().print(table)
    return EXIT_OK


def watch_session(session_id: str) -> int:
    """Re-read the state directory a few times a second until the session ends."""
    from parallel_coordinator.cli.liveview import render_status, stderr_console

    store = open_store()
    console = stderr_console()
    try:
        status = stored_status(store, session_id)
        if console.is_terminal:
            with Live(console=console, refresh_per_second=4) as live:
                while status.status == "RUNNING":
                    live.update(render_status(status))
                    time.sleep(0.5)
                    status = stored_status(store, session_id)
                live.update(render_status(status))
        else:
            # Piped or logged: one plain line each time the picture changes, instead of redrawing.
            line = ""
            while True:
                if status_line(status) != line:
                    line = status_line(status)
                    print(line, file=sys.stderr, flush=True)
                if status.status != "RUNNING":
                    break
                time.sleep(0.5)
                status = stored_status(store, session_id)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        store.close()
    Console().print(status_table(status))
    return EXIT_OK if status.status == "SUCCESS" else EXIT_FAILED


def status_line(status: ProgressStatus) -> str:
    done = status.completed + status.failed + status.cancelled + status.skipped
    running = ", ".join(
        f"{a.agent} {a.task_id}" + (f" {a.progress:.0f}%" if a.progress is not None else "")
        for a in status.agents_active
    )
    return f"{status.status} {done}/{status.total_tasks} done, {status.in_progress} running" + (
        f": {running}" if running else ""
    )


def cancel_session(session_id: str) -> int:
    """Cancel a session whichever process runs it on this state directory: its owner is asked through the store."""
    import anyio

    from parallel_coordinator.engine.cancel import cancel_elsewhere

    store = open_store()
    try:
        stored = store.load_session(session_id)
        if stored is None:
            raise CoordinatorError(
                f"unknown session {shortened(session_id)} in {str(effective_settings().state_dir)!r}:"
                " `pcoord status` lists the recent sessions"
            )
        if stored.status != "RUNNING":
            print(f"session {session_id} had already ended: {stored.status}; nothing to cancel")
            return EXIT_OK
        outcome = anyio.run(cancel_elsewhere, store, session_id)
    finally:
        store.close()
    print(f"{outcome.status} session {session_id}: {outcome.cancelled_tasks} task(s) cancelled,"
          f" {outcome.killed_processes} process(es) killed" + (f"; {outcome.note}" if outcome.note else ""))
    return EXIT_FAILED if outcome.status == "RUNNING" else EXIT_OK


def write_session_report(session_id: str, output: Path | None) -> int:
    from parallel_coordinator.report import write_report

    store = open_store()
    try:
        path = write_report(store, session_id, output, reports_dir=effective_settings().reports_dir)
    finally:
        store.close()
    print(path)
    return EXIT_OK


def collect_garbage(dry_run: bool, as_json: bool) -> int:
    """Apply the retention limits now (or, with dry_run, say what that would remove) and say what was freed."""
    from parallel_coordinator.state.cleanup import collect
    from parallel_coordinator.state.retention import describe

    result = collect(effective_settings(), dry_run=dry_run, compact=True)
    print(json.dumps(result.as_dict(), indent=2) if as_json else "\n".join(describe(result)))
    return EXIT_OK

