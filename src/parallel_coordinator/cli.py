"""The `pcoord` command line: serve, agents, run, demo.

Results go to stdout; live progress and logs go to stderr. `serve` writes nothing of its own to
stdout: in stdio mode that is the protocol wire.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from parallel_coordinator import __version__
from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class PlanFile(BaseModel):
    """A plan file: the same fields as coordinate_task's input."""

    model_config = ConfigDict(extra="forbid")

    task_description: str
    subtasks: list[Subtask] | None = None
    strategy: str = "auto"
    options: CoordinateOptions = Field(default_factory=CoordinateOptions)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcoord", description="Parallel Coordinator: run one task on many agents at once (an MCP server)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--backend", choices=["local", "dask"], default="local")
    serve.add_argument("--scheduler", default=None, help="Dask scheduler address (with --backend dask)")

    agents = commands.add_parser("agents", help="list the agents found and every file skipped or repaired")
    agents.add_argument("--json", action="store_true", help="print JSON instead of a table")

    run = commands.add_parser("run", help="run a plan file (YAML or JSON) with live progress")
    run.add_argument("plan", type=Path)
    run.add_argument("--json", action="store_true", help="print the result as JSON")

    demo = commands.add_parser("demo", help="a real parallel run on bundled agents, through the MCP server")
    demo.add_argument("--target", type=Path, default=None, help="source tree to analyse (default: here)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "agents":
            return list_agents(args.json)
        if args.command == "run":
            return run_plan(args.plan, args.json)
        if args.command == "demo":
            from parallel_coordinator.demo import run_demo

            return run_demo(args.target)
    except CoordinatorError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        return EXIT_FAILED
    return EXIT_USAGE


def serve(args: argparse.Namespace) -> int:
    if args.transport != "stdio" or args.backend != "local":
        Console(stderr=True).print(
            "[red]error:[/red] only `--transport stdio` with `--backend local` is available in this version"
        )
        return EXIT_USAGE
    from parallel_coordinator.server import create_server

    create_server().run("stdio")
    return EXIT_OK


def list_agents(as_json: bool) -> int:
    from parallel_coordinator.agents import discover_agents

    catalog = discover_agents()
    if as_json:
        print(json.dumps({
            "agents": [
                {
                    "name": a.name, "description": a.description, "runner": a.runner, "model": a.model,
                    "tools": a.tools, "source": a.source, "path": str(a.path) if a.path else None,
                    "max_concurrent": a.max_concurrent, "priority": a.priority,
                }
                for a in sorted(catalog.agents.values(), key=lambda a: a.name)
            ],
            "diagnostics": [{"path": d.path, "problem": d.problem} for d in catalog.diagnostics],
        }, indent=2))
        return EXIT_OK
    console = Console()
    table = Table(title=f"{len(catalog.agents)} agents")
    for column in ("name", "runner", "model", "source", "path"):
        table.add_column(column)
    for agent in sorted(catalog.agents.values(), key=lambda a: a.name):
        table.add_row(agent.name, agent.runner, agent.model or "-", agent.source, str(agent.path or ""))
    console.print(table)
    if catalog.diagnostics:
        diagnostics = Table(title=f"{len(catalog.diagnostics)} files skipped or repaired")
        diagnostics.add_column("path")
        diagnostics.add_column("problem")
        for diagnostic in catalog.diagnostics:
            diagnostics.add_row(diagnostic.path, diagnostic.problem)
        console.print(diagnostics)
    return EXIT_OK


def load_plan(path: Path) -> PlanFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CoordinatorError(f"cannot read plan file {str(path)!r}: {exc.strerror}") from exc
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CoordinatorError(f"plan file {str(path)!r} is not valid {path.suffix[1:] or 'YAML'}: {exc}") from exc
    try:
        return PlanFile.model_validate(data)
    except ValidationError as exc:
        raise CoordinatorError(f"plan file {str(path)!r} does not fit coordinate_task's input:\n{exc}") from exc


def run_plan(path: Path, as_json: bool) -> int:
    plan = load_plan(path)
    return anyio.run(_run_plan, plan, as_json)


async def _run_plan(plan: PlanFile, as_json: bool) -> int:
    from parallel_coordinator.coordinator import Coordinator
    from parallel_coordinator.liveview import render_status, stderr_console
    from parallel_coordinator.tools.coordinate import chain_pipeline
    from parallel_coordinator.views import coordination_result, progress_status

    interrupted = False
    async with Coordinator() as coordinator:
        subtasks = plan.subtasks or [Subtask(id="task", description=plan.task_description)]
        if plan.strategy == "pipeline":
            subtasks = chain_pipeline(subtasks)
        planned = coordinator.plan(subtasks, plan.options)
        session = await coordinator.start(plan.task_description, planned, plan.options)
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
            with Live(console=stderr_console(), refresh_per_second=8, transient=False) as live:
                while not session.done.is_set():
                    changed = session.changed
                    live.update(render_status(progress_status(coordinator.snapshot(session), 0, 0)))
                    with anyio.move_on_after(0.25):
                        await changed.wait()
                live.update(render_status(progress_status(coordinator.snapshot(session), 0, 0)))
            group.cancel_scope.cancel()
        result = coordination_result(coordinator.snapshot(session), settings.result_chars, settings.total_result_chars)
    if as_json:
        print(result.model_dump_json(indent=2))
    else:
        print_result(result)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if result.status == "SUCCESS" else EXIT_FAILED


def print_result(result: Any) -> None:
    console = Console()
    console.print(f"[bold]{result.status}[/bold] session {result.session_id} in {result.execution_time_s:.2f} s")
    for task in result.results:
        style = "green" if task.status == "succeeded" else "red"
        console.print(f"[{style}]{task.status:>10}[/{style}] {task.task_id} ({task.agent})")
        if task.error:
            console.print(f"           {task.error.splitlines()[0] if task.error else ''}", style="dim")
    if result.error_summary:
        console.print(result.error_summary, style="yellow")
