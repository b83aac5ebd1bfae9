"""The final merger: one Markdown report from whatever sections its dependencies produced.

Copes with any subset: a section that is missing or empty is named in the summary, not fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from parallel_coordinator.demo_agents import complexity, loc, secret_scan, todos
from parallel_coordinator.demo_agents._protocol import AgentError, Request, log, plural, progress, run
from parallel_coordinator.state.private_files import write_private

DEFAULT_TITLE = "Code analysis report"
KNOWN_SECTIONS = (loc.TITLE, todos.TITLE, complexity.TITLE, secret_scan.TITLE)
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Section:
    task_id: str
    title: str
    summary: str
    body: str


def parse_section(task_id: str, text: str) -> Section:
    """A dependency's output as a section: its first heading is the title (else the task id),
    its first paragraph of prose the summary."""
    lines = text.strip().splitlines()
    heading = _HEADING.match(lines[0]) if lines else None
    title = heading.group(2) if heading else task_id
    body = lines[1:] if heading else lines
    paragraphs = re.split(r"\n\s*\n", "\n".join(body).strip())
    prose = next((p for p in paragraphs if p and not p.lstrip().startswith(("|", "#", "```", "<"))), "")
    summary = " ".join(prose.split())
    if len(summary) > 240:
        summary = summary[:239] + "…"
    return Section(task_id, title, summary, _demote("\n".join(body).strip(), to=3))


def _demote(markdown: str, to: int) -> str:
    """Shift the body's headings so the highest is level `to`, below the report's own `##`."""
    lines = markdown.splitlines()
    fenced, levels = False, []
    for line in lines:
        fenced ^= line.lstrip().startswith("```")
        heading = None if fenced else _HEADING.match(line)
        levels.append(len(heading.group(1)) if heading else 0)
    top = min((level for level in levels if level), default=to)
    shift = max(0, to - top)
    return "\n".join(
        ("#" * min(6, level + shift) + line[level:]) if level else line
        for line, level in zip(lines, levels, strict=True)
    )


def build_report(request: Request, target: str) -> str:
    outputs = request.context.items()
    sections = [parse_section(task_id, text) for task_id, text in outputs if text.strip()]
    empty = [task_id for task_id, text in outputs if not text.strip()]
    rank = {title.lower(): index for index, title in enumerate(KNOWN_SECTIONS)}
    sections.sort(key=lambda s: rank.get(s.title.lower(), len(rank)))  # stable: others keep their order
    present = {s.title.lower() for s in sections}
    missing = [title for title in KNOWN_SECTIONS if title.lower() not in present]

    header = f"# {request.option('title') or DEFAULT_TITLE}\n\n**Target:** `{target}`"
    if request.session_id:
        header += f"  \n**Session:** `{request.session_id}`"
    summary = [f"- **{s.title}:** {s.summary or 'see below.'}" for s in sections]
    summary += [f"- **{name}:** not available (the task failed or was not run)." for name in missing]
    summary += [f"- Task `{task_id}` returned no output." for task_id in empty]
    parts = [header, "## Summary\n\n" + "\n".join(summary)]
    parts += [f"## {s.title}\n\n{s.body}".rstrip() for s in sections]
    return "\n\n".join(parts) + "\n"


def analyse(request: Request) -> str:
    given = request.option("path", "target")
    target = str(Path(given).expanduser().resolve()) if given else str(Path.cwd())
    progress(30, f"merging {plural(len(request.context), 'section')}")
    report = build_report(request, target)
    output = request.option("output")
    if output:
        path = Path(output).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The report may sit in the coordinator's state directory: owner-only, as everything there.
            write_private(path, report.encode("utf-8"))
        except OSError as exc:
            raise AgentError(f"cannot write the report to {str(path)!r}: {exc.strerror or exc}") from None
        log(f"wrote the report to {path.resolve()}")
    return report


if __name__ == "__main__":
    run(analyse)
