"""The embedded default: analyse a source tree with five bundled agents, through the real MCP server.

A real MCP client starts `pcoord serve` over stdio, hands it a graph (four analysers in parallel,
then a report writer that merges their outputs), follows it live and prints where the report is.
No network and no API key needed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from rich.console import Console
from rich.live import Live
from rich.text import Text

from parallel_coordinator.cli.liveview import render_status, stderr_console
from parallel_coordinator.config.settings import default_state_dir
from parallel_coordinator.report import write_report
from parallel_coordinator.schemas.outputs import CoordinationResult, ProgressStatus
from parallel_coordinator.state.private_files import private_dir
from parallel_coordinator.state.store import Store

BUNDLED_AGENTS = Path(__file__).parent.parent / "agents" / "bundled"


def demo_plan(target: Path, report: Path) -> dict[str, Any]:
    where = f"path: {target}"
    return {
        "task_description": f"Analyse the source tree at {target} and write one report",
        "subtasks": [
            {"id": "loc", "agent_type": "loc-counter", "description": f"Count lines per language.\n{where}"},
            {"id": "todos", "agent_type": "todo-scanner", "description": f"List TODO and FIXME notes.\n{where}"},
            {
                "id": "complexity", "agent_type": "complexity-analyzer",
                "description": f"Measure Python cyclomatic complexity.\n{where}",
            },
            {"id": "secrets", "agent_type": "secret-scanner", "description": f"Scan for committed secrets.\n{where}"},
            {
                "id": "report", "agent_type": "report-writer",
                "description": f"Merge the analyses into one report.\n{where}\noutput: {report}",
                "dependencies": ["loc", "todos", "complexity", "secrets"],
            },
        ],
        "options": {"wait_seconds": 0},
    }


def server_parameters(state_dir: Path) -> StdioServerParameters:
    # The SDK passes only a few safe variables to the server: name ours explicitly.
    agent_dirs = os.pathsep.join(filter(None, [str(BUNDLED_AGENTS), os.environ.get("PCOORD_AGENT_DIRS")]))
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "parallel_coordinator", "serve"],
        env={"PCOORD_AGENT_DIRS": agent_dirs, "PCOORD_STATE_DIR": str(state_dir)},
    )


async def _demo(target: Path, state_dir: Path) -> tuple[CoordinationResult, Path]:
    report = state_dir / "reports" / f"demo-{time.strftime('%Y%m%d-%H%M%S')}.md"
    private_dir(report.parent)
    async with Client(server_parameters(state_dir)) as client:
        began = time.perf_counter()
        started = await client.call_tool("coordinate_task", demo_plan(target, report))
        if started.is_error:
            raise RuntimeError(f"coordinate_task failed: {started.content}")
        session_id = CoordinationResult.model_validate(started.structured_content).session_id
        with Live(console=stderr_console(), refresh_per_second=10) as live:
            while True:
                answer = await client.call_tool(
                    "get_progress_status", {"session_id": session_id, "wait_seconds": 0.1}
                )
                status = ProgressStatus.model_validate(answer.structured_content)
                live.update(render_status(status))
                if status.status != "RUNNING":
                    break
        result = CoordinationResult(
            session_id=session_id, status=status.status, results=status.results or [],
            performance_metrics=status.performance_metrics,
            execution_time_s=round(time.perf_counter() - began, 3),  # as the caller saw it, start to end
        )
    return result, report


def run_demo(target: Path | None) -> int:
    target = (target or Path.cwd()).resolve()
    state_dir = default_state_dir()
    console = Console()
    console.print(f"[bold]Parallel Coordinator demo[/bold]: five bundled agents analyse {target}")
    started = time.perf_counter()
    result, report = anyio.run(_demo, target, state_dir)
    elapsed = time.perf_counter() - started
    for task in result.results:
        style = "green" if task.status == "succeeded" else "red"
        took = f"{task.duration_s:.2f} s" if task.duration_s is not None else "-"
        console.print(f"  [{style}]{task.status:>9}[/{style}] {task.task_id:<11} {task.agent:<20} {took}")
        if task.error:
            console.print(Text(f"             {task.error.splitlines()[0]}", style="dim"))  # agent text, not markup
    metrics = result.performance_metrics
    console.print(
        f"[bold]{result.status}[/bold] in {result.execution_time_s:.2f} s ({elapsed:.2f} s with the server's start)"
        " · parallel efficiency "
        f"{metrics.parallel_efficiency:.0%} · session {result.session_id}"
    )
    if report.exists():
        console.print(f"report: {report}", soft_wrap=True, highlight=False)
    store = Store(state_dir / "state.db")
    try:
        page = write_report(store, result.session_id, reports_dir=state_dir / "reports")
    finally:
        store.close()
    console.print(f"timeline: {page}", soft_wrap=True, highlight=False)
    return 0 if result.status == "SUCCESS" else 1
