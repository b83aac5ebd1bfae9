"""`pcoord run`: a plan file run in this process, with a live view on stderr and the result on stdout."""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.live import Live
from rich.text import Text

from parallel_coordinator.cli._exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from parallel_coordinator.cli._plans import PlanFile, load_plan, print_plan
from parallel_coordinator.cli._results import check_output_dir, print_result, write_outputs
from parallel_coordinator.cli._state import effective_settings
from parallel_coordinator.errors import ApprovalRequiredError
from parallel_coordinator.planning.forecast import Forecast
from parallel_coordinator.planning.graph import TaskGraph
from parallel_coordinator.planning.scheduler import TaskState

_ESTIMATE_S = 2.0  # the ETA's refresh: a walk of the graph (~3 ms at 2,000 tasks) that needs no more than this
_REDRAW_S = 0.25  # the live view's redraws: 4 a second is live to the eye and costs little at 2,000 tasks


def run_plan(path: Path, as_json: bool, output: Path | None = None) -> int:
    if output is not None:
        check_output_dir(output)  # before anything runs: a typo must not cost a whole run
    plan = load_plan(path)
    return anyio.run(_run_plan, plan, as_json, output)


async def _run_plan(plan: PlanFile, as_json: bool, output: Path | None) -> int:
    from parallel_coordinator.cli.liveview import logs_above_live, render_status, stderr_console, task_lines
    from parallel_coordinator.engine.coordinator import Coordinator
    from parallel_coordinator.views import coordination_result, progress_status

    interrupted = False
    async with Coordinator(effective_settings()) as coordinator:
        options = coordinator.with_defaults(plan.options)
        # As coordinate_task does: a resumed session's plan is the stored one, and the file's tasks are not read.
        kept = None
        if options.resume_session is not None:
            description, planned, kept = await coordinator.resume_plan(options.resume_session)
            notes: list[str] = []
        else:
            description = plan.task_description
            planned, notes = await coordinator.prepare(plan.task_description, plan.subtasks, plan.strategy, options)
        expected = coordinator.forecast(planned, options, kept)
        if options.dry_run:
            return show_dry_run(description, planned.graph, notes, as_json, expected,
                                resuming=options.resume_session is not None)
        if coordinator.needs_approval(expected, options):
            if not confirmed_on_terminal(expected, options.approval_threshold_usd or 0.0):
                raise ApprovalRequiredError(expected.describe(), expected.usd, options.approval_threshold_usd or 0.0)
            options = options.model_copy(update={"approved": True})
        if options.resume_session is not None:
            session = await coordinator.start(
                description, planned, options, resumed_from=options.resume_session, kept=kept
            )
        else:
            session = await coordinator.start(plan.task_description, planned, options, strategy=plan.strategy)
            session.notes = notes
        settings = coordinator.settings

        async with anyio.create_task_group() as group:

            async def cancel_on_interrupt() -> None:
                nonlocal interrupted
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        interrupted = True
                        await coordinator.cancel(session.id)
                        return

            group.start_soon(cancel_on_interrupt)
            estimated_at, last_eta = -math.inf, None

            def status() -> Any:
                # Counts and active agents on every redraw; the estimate walks every task, so at most every
                # _ESTIMATE_S (the ETA shown in between is the last one, counting down).
                nonlocal estimated_at, last_eta
                now = time.monotonic()
                fresh = now - estimated_at >= _ESTIMATE_S
                current = progress_status(coordinator.snapshot(session, estimate=fresh), 0, 0, with_metrics=False)
                if fresh:
                    estimated_at, last_eta = now, current.estimated_completion
                return current.model_copy(update={"estimated_completion": last_eta})

            console = stderr_console()
            if not console.is_terminal:
                # A pipe or a log file: plain lines as tasks start and end, not a bar wrapped at 80 columns.
                seen: dict[str, TaskState] = {}
                while True:
                    changed = session.changed
                    for line in task_lines(coordinator.snapshot(session, estimate=False).tasks, seen):
                        print(line, file=sys.stderr, flush=True)
                    if session.done.is_set():
                        break
                    with anyio.move_on_after(1.0):
                        await changed.wait()
            else:
                # Drawn only here, never by rich's own refresh thread: a render of 64 agent lines costs ~15 ms of
                # CPU the agents' shards could use. The agent lines fit the terminal (the rest are counted).
                with Live(console=console, auto_refresh=False, transient=False) as live, logs_above_live():
                    while not session.done.is_set():
                        changed = session.changed
                        live.update(render_status(status(), max_rows=max(console.height - 4, 1)), refresh=True)
                        await anyio.sleep(_REDRAW_S)  # at most this often, however fast tasks end
                        with anyio.move_on_after(1.0):
                            await changed.wait()
                    live.update(render_status(status(), max_rows=max(console.height - 4, 1)), refresh=True)
            group.cancel_scope.cancel()
        snap = coordinator.snapshot(session)
        result = coordination_result(snap, settings.result_chars, settings.total_result_chars)
        if output is not None:
            write_outputs(snap, output, snap.synthesis or result.synthesis)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(result, snap, output)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status == "SUCCESS" else EXIT_FAILED


def show_dry_run(
    task_description: str, graph: TaskGraph, notes: list[str], as_json: bool, expected: Forecast, *, resuming: bool
) -> int:
    """What would run, and nothing run: coordinate_task's dry-run result with --json, else the plan as a plan file."""
    if as_json:
        from parallel_coordinator.views import dry_run_result

        print(dry_run_result(graph, notes, expected).model_dump_json(indent=2))
        return EXIT_OK
    print_plan(task_description, graph, notes, as_json=False)
    again = "without dry_run to resume it" if resuming else "this plan without dry_run to run it"
    console = Console(stderr=True)
    console.print(f"forecast: {expected.describe()}", highlight=False, markup=False)  # it names agents
    console.print(f"dry run: nothing ran; pass {again}", highlight=False)
    return EXIT_OK


def confirmed_on_terminal(expected: Forecast, threshold_usd: float) -> bool:
    """The CLI's approval: a yes on a terminal. Without one (a pipe, CI) the run is refused with how to approve."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return False
    console = Console(stderr=True)
    console.print(f"The forecast is {expected.describe()}, over the approval threshold of ${threshold_usd:g}.",
                  highlight=False, markup=False)  # it names agents: text, never markup
    try:
        answer = console.input(Text("Run it? [y/N] "))  # as markup, "[y/N]" was an unknown style, unseen
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")
