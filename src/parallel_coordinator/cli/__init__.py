"""The `pcoord` command line: serve, agents, run, demo.

Results go to stdout; live progress and logs go to stderr. `serve` writes nothing of its own to
stdout: in stdio mode that is the protocol wire.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from rich.console import Console
from rich.live import Live
from rich.table import Table

from parallel_coordinator import __version__
from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.errors import CoordinatorError, UnknownSessionError
from parallel_coordinator.planning.strategies import Strategy
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.schemas.outputs import ProgressStatus
from parallel_coordinator.state.store import Store
from parallel_coordinator.views import iso, progress_status

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class PlanFile(BaseModel):
    """A plan file: the same fields as coordinate_task's input."""

    model_config = ConfigDict(extra="forbid")

    task_description: str
    subtasks: list[Subtask] | None = None
    strategy: Strategy = "auto"
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
    serve.add_argument(
        "--backend", choices=["local", "dask"], default=None,
        help="where agents run: the local process pool (default) or a Dask cluster",
    )
    serve.add_argument(
        "--scheduler", default=None,
        help="with --backend dask: the scheduler's address, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    )
    serve.add_argument(
        "--allow-remote", action="store_true",
        help="with --transport http: allow binding to a non-loopback address (needs PCOORD_TOKEN)",
    )
    serve.add_argument("--prometheus", action="store_true", help="with --transport http: serve /metrics")

    agents = commands.add_parser("agents", help="list the agents found and every file skipped or repaired")
    agents.add_argument("--json", action="store_true", help="print JSON instead of a table")

    run = commands.add_parser("run", help="run a plan file (YAML or JSON) with live progress")
    run.add_argument("plan", type=Path)
    run.add_argument("--json", action="store_true", help="print the result as JSON")

    plan = commands.add_parser(
        "plan", help="plan a task (or check a plan file) without running it; prints a plan file for `pcoord run`"
    )
    plan.add_argument("task", help="a plan file (YAML or JSON), or the task itself in plain words")
    plan.add_argument("--json", action="store_true", help="print JSON instead of YAML")

    status = commands.add_parser("status", help="a session's state (without SESSION: the recent sessions)")
    status.add_argument("session", nargs="?")
    status.add_argument("--json", action="store_true", help="print get_progress_status's JSON")

    watch = commands.add_parser("watch", help="follow a session live (it may run in another `pcoord serve`)")
    watch.add_argument("session")

    metrics = commands.add_parser("metrics", help="machine health and figures over recent agent runs")
    metrics.add_argument("--json", action="store_true", help="print get_performance_metrics's JSON")

    report = commands.add_parser("report", help="write a self-contained HTML report of a session")
    report.add_argument("session")
    report.add_argument("-o", "--output", type=Path, default=None, help="file to write (default: state dir)")

    config = commands.add_parser("config", help="the effective settings and where each came from")
    config.add_argument("--json", action="store_true", help="print JSON instead of a table")

    gc = commands.add_parser(
        "gc", help="remove old sessions and their files now, by the retention limits (a server does it hourly)"
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    gc.add_argument("--json", action="store_true", help="print JSON instead of plain words")

    demo = commands.add_parser("demo", help="a real parallel run on bundled agents, through the MCP server")
    demo.add_argument("--target", type=Path, default=None, help="source tree to analyse (default: here)")
    return parser


def effective_settings() -> Settings:
    """The settings as the configuration file and PCOORD_* variables make them."""
    from parallel_coordinator.config.file import load_settings

    return load_settings()[0]


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
        if args.command == "plan":
            return show_plan(args.task, args.json)
        if args.command == "status":
            return show_status(args.session, args.json)
        if args.command == "watch":
            return watch_session(args.session)
        if args.command == "metrics":
            return show_metrics(args.json)
        if args.command == "report":
            return write_session_report(args.session, args.output)
        if args.command == "config":
            return show_config(args.json)
        if args.command == "gc":
            return collect_garbage(args.dry_run, args.json)
        if args.command == "demo":
            from parallel_coordinator.cli.demo import run_demo

            return run_demo(args.target)
    except CoordinatorError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        return EXIT_FAILED
    except BaseExceptionGroup as group:
        # Task groups wrap what fails inside them, e.g. a backend that cannot start under the server.
        matched, _ = group.split(CoordinatorError)
        if matched is None:
            raise
        first: BaseException = matched
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        Console(stderr=True).print(f"[red]error:[/red] {first}")
        return EXIT_FAILED
    return EXIT_USAGE


def serve_settings(args: argparse.Namespace) -> Settings:
    """The effective settings with serve's --backend and --scheduler laid over them."""
    settings = effective_settings()
    if args.backend is not None:
        settings.backend = args.backend
    if args.scheduler is not None:
        settings.dask_scheduler = args.scheduler
    return settings


def serve(args: argparse.Namespace) -> int:
    from parallel_coordinator.server import create_server

    settings = serve_settings(args)
    if settings.dask_scheduler is not None and settings.backend != "dask":
        Console(stderr=True).print(
            f"[red]error:[/red] a Dask scheduler ({settings.dask_scheduler!r}) is set, but the backend is "
            f"{settings.backend!r}: add --backend dask", highlight=False,
        )
        return EXIT_USAGE
    if args.transport == "stdio":
        from parallel_coordinator.server.stdio import serve_stdio

        anyio.run(serve_stdio, create_server(settings))
        return EXIT_OK
    return serve_http(args, settings)


def serve_http(args: argparse.Namespace, settings: Settings) -> int:
    from parallel_coordinator.server import create_server
    from parallel_coordinator.server.http import is_loopback, parse_tokens, resolve_token

    errors = Console(stderr=True)
    if not is_loopback(args.host):
        if not args.allow_remote:
            errors.print(f"[red]error:[/red] {args.host!r} is not a loopback address; pass --allow-remote to expose "
                         "the server beyond this machine")
            return EXIT_USAGE
        if not os.environ.get("PCOORD_TOKEN"):
            errors.print("[red]error:[/red] a server reachable from other machines needs PCOORD_TOKEN set")
            return EXIT_USAGE
    try:
        token, generated = resolve_token(settings.state_dir)
        tokens = {"default": token} | parse_tokens(os.environ.get("PCOORD_TOKENS", ""))
    except ValueError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        return EXIT_USAGE
    from parallel_coordinator.execution.environment import scrub_server_credentials

    scrub_server_credentials()  # read once: from here on no agent, worker or cluster process inherits them
    base_url = f"http://{args.host}:{args.port}"
    if generated:
        config = {"mcpServers": {"parallel-coordinator": {
            "type": "http", "url": f"{base_url}/mcp", "headers": {"Authorization": f"Bearer {token}"}}}}
        errors.print(f"generated a bearer token (kept in {settings.state_dir}); client configuration:", highlight=False)
        print(json.dumps(config, indent=2), file=sys.stderr)
    server = create_server(settings, tokens=tokens, base_url=base_url, prometheus=args.prometheus)
    server.run(
        "streamable-http", host=args.host, port=args.port, max_request_body_size=settings.max_request_bytes
    )
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


def show_plan(task: str, as_json: bool) -> int:
    path = Path(task)
    plan = load_plan(path) if path.suffix in (".yaml", ".yml", ".json") or path.is_file() else PlanFile(
        task_description=task
    )
    return anyio.run(_show_plan, plan, as_json)


async def _show_plan(plan: PlanFile, as_json: bool) -> int:
    from parallel_coordinator.engine.coordinator import Coordinator

    async with Coordinator(effective_settings()) as coordinator:
        options = coordinator.with_defaults(plan.options)
        planned, notes = await coordinator.prepare(plan.task_description, plan.subtasks, plan.strategy, options)
    document = {
        "task_description": plan.task_description,
        "subtasks": [
            {"id": n.id, "description": n.description, "agent_type": n.agent, "dependencies": list(n.dependencies),
             "priority": n.priority}
            for n in planned.graph.nodes.values()
        ],
    }
    for note in notes:
        Console(stderr=True).print(f"note: {note}", highlight=False)
    print(json.dumps(document, indent=2) if as_json else yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return EXIT_OK


def open_store() -> Store:
    settings = effective_settings()
    if not settings.database.exists():
        raise CoordinatorError(
            f"no state at {str(settings.state_dir)!r}: nothing has run here yet (PCOORD_STATE_DIR chooses the place)"
        )
    return Store(settings.database)


def stored_status(store: Store, session_id: str) -> ProgressStatus:
    stored = store.load_session(session_id)
    if stored is None:
        raise UnknownSessionError(session_id)
    settings = effective_settings()
    return progress_status(view_of_stored(stored), settings.result_chars, settings.total_result_chars)


def status_table(status: ProgressStatus) -> Table:
    table = Table(title=f"session {status.session_id}: {status.status}", title_justify="left")
    for column in ("task", "agent", "status", "attempts", "time", "progress", "error"):
        table.add_column(column, overflow="fold")
    active = {a.task_id: a for a in status.agents_active}
    for result in status.results or []:
        table.add_row(
            result.task_id, result.agent, result.status, str(result.attempts),
            f"{result.duration_s:.2f}s" if result.duration_s is not None else "",
            "", (result.error or "").splitlines()[0][:80] if result.error else "",
        )
    for task_id, agent in active.items():
        percent = f"{agent.progress:.0f}% {agent.message or ''}" if agent.progress is not None else agent.message or ""
        table.add_row(task_id, agent.agent, "running", "", f"{agent.elapsed_s:.1f}s", percent, "")
    return table


def show_status(session_id: str | None, as_json: bool) -> int:
    store = open_store()
    try:
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
    for alert in metrics.alerts:
        console.print(f"[yellow]alert:[/yellow] {alert}")
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
        table.add_row(sid, status, iso(created) or "", text.splitlines()[0][:70] if text else "")
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


def show_metrics(as_json: bool) -> int:
    import psutil

    from parallel_coordinator.engine.health import Health
    from parallel_coordinator.views import performance_metrics
    from parallel_coordinator.views.metrics import memory_sample

    store = open_store()
    try:
        used_mb, memory_percent = memory_sample()
        metrics = performance_metrics(store, Health(
            cpu_percent=psutil.cpu_percent(interval=0.2), memory_used_mb=used_mb, memory_percent=memory_percent,
            active_agents=store.running_tasks(), queue_size=0, queue_reasons=[],
            limits=effective_settings().alert_limits,
        ))
    finally:
        store.close()
    if as_json:
        print(metrics.model_dump_json(indent=2))
        return EXIT_OK
    console = Console()
    health, perf = metrics.system_health, metrics.performance
    summary = Table(title="parallel coordinator", title_justify="left", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    for label, value in (
        ("CPU", f"{health.cpu_percent:.0f}%"),
        ("memory", f"{health.memory_used_mb:,.0f} MB ({health.memory_percent:.0f}%)"),
        ("agents running", str(health.active_agents)),
        ("tasks per second", f"{perf.tasks_per_second:.3f}"),
        ("average run", f"{perf.avg_response_time_s:.2f}s"),
        ("p95 run", f"{perf.p95_response_time_s:.2f}s"),
        ("success rate", f"{perf.success_rate:.0%}"),
        ("parallel efficiency", f"{perf.parallel_efficiency:.0%}"),
        ("tokens in / out", f"{metrics.input_tokens or 0:,} / {metrics.output_tokens or 0:,}"),
        ("cost", f"${metrics.cost_usd or 0:.4f}"),
    ):
        summary.add_row(label, value)
    console.print(summary)
    agents = Table(title="agents (last 1,000 runs)", title_justify="left")
    for column in ("agent", "runs", "failures", "avg", "tokens in", "tokens out", "cost"):
        agents.add_column(column)
    for name, figures in metrics.agents.items():
        agents.add_row(
            name, str(figures.runs), str(figures.failures), f"{figures.avg_duration_s:.2f}s",
            f"{figures.input_tokens:,}" if figures.input_tokens is not None else "-",
            f"{figures.output_tokens:,}" if figures.output_tokens is not None else "-",
            f"${figures.cost_usd:.4f}" if figures.cost_usd is not None else "-",
        )
    console.print(agents)
    for alert in metrics.alerts:
        console.print(f"[yellow]alert:[/yellow] {alert}")
    return EXIT_OK


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
    from parallel_coordinator.cli.liveview import render_status, stderr_console
    from parallel_coordinator.engine.coordinator import Coordinator
    from parallel_coordinator.views import coordination_result, progress_status

    interrupted = False
    async with Coordinator(effective_settings()) as coordinator:
        options = coordinator.with_defaults(plan.options)
        planned, notes = await coordinator.prepare(plan.task_description, plan.subtasks, plan.strategy, options)
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


def show_config(as_json: bool) -> int:
    """Every setting after the configuration file and PCOORD_* variables, with where its value came from."""
    import dataclasses

    from parallel_coordinator.config.file import load_settings, search_paths

    settings, sources = load_settings()
    values = dataclasses.asdict(settings)
    del values["config_notes"]  # shown as notes, not as a setting
    if as_json:
        print(json.dumps({
            "config_file": str(settings.config_file) if settings.config_file else None,
            "searched": [str(path) for path in search_paths()],
            "settings": {name: {"value": value, "source": sources[name]} for name, value in values.items()},
            "notes": list(settings.config_notes),
            "agent_environment": settings.environment_policy.describe(),
        }, indent=2, default=str))
        return EXIT_OK
    table = Table(title=f"settings (configuration file: {settings.config_file or 'none found'})", title_justify="left")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for name, value in values.items():
        table.add_row(name, str(value), sources[name], style="" if sources[name] == "default" else "bold")
    console = Console()
    console.print(table, highlight=False)
    if settings.config_file is None:
        console.print("looked for: " + ", ".join(str(path) for path in search_paths()), highlight=False)
    for note in settings.config_notes:
        console.print(f"note: {note}", style="yellow", highlight=False)
    policy = settings.environment_policy.describe()
    removed: dict[str, str] = policy["removed_now"]  # type: ignore[assignment]
    console.print(
        "agents inherit this environment less the server's credentials and names that look like secrets"
        f" (deny: {', '.join(settings.environment_policy.deny)};"
        f" allow: {', '.join(settings.environment_policy.pass_through) or 'none'}); an agent file's pass_env"
        " lets more through", highlight=False,
    )
    for name, why in removed.items():
        console.print(f"  not passed to agents: {name} ({why})", highlight=False)
    return EXIT_OK
