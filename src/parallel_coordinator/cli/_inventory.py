"""What this machine has: `pcoord agents`, `pcoord config` and `pcoord metrics`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from parallel_coordinator.cli._exits import EXIT_OK
from parallel_coordinator.cli._state import effective_settings, open_store

if TYPE_CHECKING:
    from parallel_coordinator.agents import AgentCatalog


def list_agents(as_json: bool) -> int:
    from parallel_coordinator.agents import discover_agents
    from parallel_coordinator.agents.guide import empty_catalog_help

    catalog = discover_agents()
    help_text = empty_catalog_help(catalog)
    if as_json:
        print(json.dumps({
            "agents": [
                {
                    "name": a.name, "description": a.description, "runner": a.runner, "model": a.model,
                    "tools": a.tools, "source": a.source, "path": str(a.path) if a.path else None,
                    "max_concurrent": a.max_concurrent, "priority": a.priority, "plugin": a.plugin,
                }
                for a in sorted(catalog.agents.values(), key=lambda a: a.name)
            ],
            "diagnostics": [{"path": d.path, "problem": d.problem} for d in catalog.diagnostics],
            "searched": [{"path": str(path), "source": source} for path, source in catalog.searched],
            "help": help_text,
        }, indent=2))
        return EXIT_OK
    console = Console()
    if help_text is not None:
        console.print(help_text, highlight=False, markup=False, soft_wrap=True)
    else:
        _print_agents(console, catalog)
    if catalog.diagnostics:
        diagnostics = Table(title=f"{len(catalog.diagnostics)} files skipped or repaired")
        diagnostics.add_column("path")
        diagnostics.add_column("problem")
        for diagnostic in catalog.diagnostics:
            diagnostics.add_row(Text(diagnostic.path), Text(diagnostic.problem))  # file text: never markup
        console.print(diagnostics)
    return EXIT_OK


def _print_agents(console: Console, catalog: AgentCatalog) -> None:
    table = Table(title=f"{len(catalog.agents)} agents")
    for column in ("name", "runner", "model", "source", "path"):
        table.add_column(column)
    for agent in sorted(catalog.agents.values(), key=lambda a: a.name):
        source = f"plugin {agent.plugin}" if agent.plugin else agent.source
        table.add_row(*map(Text, (agent.name, agent.runner, agent.model or "-", source, str(agent.path or ""))))
    console.print(table)
    from parallel_coordinator.agents.discovery import BUNDLED_AGENTS_DIR

    overridden = sorted(
        Path(d.path).stem for d in catalog.diagnostics
        if d.problem.startswith("shadowed:") and Path(d.path).parent == BUNDLED_AGENTS_DIR
    )
    if overridden:
        console.print(
            f"your own agents override the bundled {', '.join(overridden)} (same name; see below)", highlight=False
        )


def show_metrics(as_json: bool) -> int:
    import psutil

    from parallel_coordinator.engine.figures import memory_sample
    from parallel_coordinator.engine.health import Health
    from parallel_coordinator.views import performance_metrics

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
            Text(name), str(figures.runs), str(figures.failures), f"{figures.avg_duration_s:.2f}s",
            f"{figures.input_tokens:,}" if figures.input_tokens is not None else "-",
            f"{figures.output_tokens:,}" if figures.output_tokens is not None else "-",
            f"${figures.cost_usd:.4f}" if figures.cost_usd is not None else "-",
        )
    console.print(agents)
    for alert in metrics.alerts:  # they name agents: text, never markup
        console.print(Text.assemble(("alert:", "yellow"), f" {alert}"))
    return EXIT_OK


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
    table = Table(title=Text(f"settings (configuration file: {settings.config_file or 'none found'})"),
                  title_justify="left")
    table.add_column("setting", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("source", overflow="fold")
    for name, value in values.items():
        # Values and paths are the caller's text, never markup: a state directory '/tmp/a[/b]' is shown as itself.
        table.add_row(name, Text(str(value)), Text(sources[name]), style="" if sources[name] == "default" else "bold")
    console = Console()
    console.print(table, highlight=False)
    if settings.config_file is None:
        console.print("looked for: " + ", ".join(str(path) for path in search_paths()), highlight=False, markup=False)
    for note in settings.config_notes:
        console.print(f"note: {note}", style="yellow", highlight=False, markup=False)
    policy = settings.environment_policy.describe()
    removed: dict[str, str] = policy["removed_now"]  # type: ignore[assignment]
    console.print(
        "agents inherit this environment less the server's credentials and names that look like secrets"
        f" (deny: {', '.join(settings.environment_policy.deny)};"
        f" allow: {', '.join(settings.environment_policy.pass_through) or 'none'}); an agent file's pass_env"
        " lets more through", highlight=False,
    )
    for name, why in removed.items():
        console.print(f"  not passed to agents: {name} ({why})", highlight=False, markup=False)
    return EXIT_OK
