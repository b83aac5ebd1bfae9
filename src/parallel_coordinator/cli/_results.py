"""What `pcoord run` shows at the end: each task's first lines and where its whole output is, the synthesis,
the report command, and, with `--output DIR`, every task's whole output written to a file of its own."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.text import Text

from parallel_coordinator.engine.read_model import SessionView
from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.schemas.outputs import CoordinationResult
from parallel_coordinator.state.names import safe_name
from parallel_coordinator.state.outputs import read_output

HEAD_LINES = 5  # lines of each task's output shown on the terminal; the rest is in its file
SYNTHESIS_LINES = 40  # the synthesis is the answer: shown longer, still bounded for a 2,000-task summary
_LINE_CHARS = 200  # one line of agent output, cut so a minified blob does not fill the screen
SYNTHESIS_FILE = "_synthesis.txt"  # safe_name never starts a name with '_': no task's file can take it


def check_output_dir(directory: Path) -> None:
    """Refuse, before anything runs, a --output that exists and is not a directory."""
    if directory.exists() and not directory.is_dir():
        raise CoordinatorError(
            f"--output {str(directory)!r} exists and is not a directory: name a directory (it is created if missing)"
        )


def output_file(directory: Path, task_id: str) -> Path:
    return directory / f"{safe_name(task_id)}.txt"


def write_outputs(snap: SessionView, directory: Path, synthesis: str | None) -> None:
    """Each task's whole output (replicas included) to its `output_file`; the synthesis beside them."""
    directory.mkdir(parents=True, exist_ok=True)
    for task_id, record in snap.tasks.items():
        output_file(directory, task_id).write_text(read_output(record.kept), encoding="utf-8", errors="replace")
    if synthesis:
        (directory / SYNTHESIS_FILE).write_text(synthesis, encoding="utf-8", errors="replace")


def print_result(result: CoordinationResult, snap: SessionView, output: Path | None) -> None:
    """The result for a person: `output` is where write_outputs put the whole outputs, if anywhere."""
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"[bold]{result.status}[/bold] session {result.session_id} in {result.execution_time_s:.2f} s")
    for task in result.results:
        style = "green" if task.status == "succeeded" else "red"
        # Ids and names are the caller's text, never rich markup: "a[/b]" is printed as itself.
        console.print(Text.assemble((f"{task.status:>10}", style), f" {task.task_id} ({task.agent})"))
        for line in (task.error or "").splitlines()[:3]:  # the first line often only introduces the stderr tail
            console.print(Text(f"           {line[:_LINE_CHARS]}", style="dim"))
        lines = task.output.strip().splitlines()
        for line in lines[:HEAD_LINES]:
            console.print(Text(f"           │ {line[:_LINE_CHARS]}"))  # agent text: never read as rich markup
        record = snap.tasks.get(task.task_id)
        kept = record.kept.path if record is not None else None
        whole = output_file(output, task.task_id) if output is not None else kept or task.output_uri
        if task.output_truncated or len(lines) > HEAD_LINES:
            console.print(Text(f"           … {task.output_chars:,} characters in all: {whole}", style="dim"))
        elif output is not None:
            console.print(Text(f"           whole: {whole}", style="dim"))
    if result.results_omitted:
        console.print(f"… and {result.results_omitted} more tasks: `pcoord status {result.session_id}` lists them")
    if result.error_summary:
        console.print(Text(result.error_summary, style="yellow"))
    if result.synthesis:
        console.print("[bold]synthesis[/bold]")
        lines = result.synthesis.strip().splitlines()
        for line in lines[:SYNTHESIS_LINES]:
            console.print(Text(f"  {line}"))
        if len(lines) > SYNTHESIS_LINES:
            where = f": {output / SYNTHESIS_FILE}" if output is not None else " (--output DIR writes it whole)"
            console.print(Text(f"  … {len(lines) - SYNTHESIS_LINES} more lines{where}", style="dim"))
    console.print(Text(f"report: pcoord report {result.session_id}  (writes the HTML timeline, graph and metrics)"))
