"""The whole page: a session's header and sections around the timeline, graph and tables, with the CSS and JS inlined.

The style sheet and script are package data (report.css, report.js), read once and written into
each page so the file opens from disk with no fetch.
"""

from __future__ import annotations

import time
from functools import cache
from importlib.resources import files
from pathlib import Path

from parallel_coordinator.engine.figures import peak_parallelism
from parallel_coordinator.errors import UnknownSessionError
from parallel_coordinator.report._graph import graph_svg
from parallel_coordinator.report._tables import legend, metrics_table, task_table
from parallel_coordinator.report._text import cap, clock, duration, esc
from parallel_coordinator.report._timeline import bars_of, timeline_svg
from parallel_coordinator.state.private_files import private_dir, write_private
from parallel_coordinator.state.store import Store, StoredSession
from parallel_coordinator.views._layout import css_name


@cache
def _asset(name: str) -> str:
    """A file shipped beside this module (report.css, report.js); two small files, so the cache stays tiny."""
    return files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_report(stored: StoredSession) -> str:
    """The whole page for one session: open it from disk, no network needed."""
    now = time.time()
    bars = bars_of(stored, now)
    end = stored.finished_at or now
    span = max([end - stored.created_at, *(b.end for b in bars), 1e-3])
    peak = stored.peak_parallelism or peak_parallelism(
        (a.started_at, a.finished_at or now) for a in stored.attempts if a.started_at
    )
    statuses: dict[str, int] = {}
    for t in stored.tasks:
        statuses[t.status] = statuses.get(t.status, 0) + 1
    totals = ", ".join(f"{n} {name}" for name, n in sorted(statuses.items()))
    retries = sum(1 for a in stored.attempts if a.number > 1)
    wall = (stored.finished_at - stored.created_at) if stored.finished_at else None
    facts = [
        ("Status", f'<span class="badge session-{css_name(stored.status)}">{esc(stored.status)}</span>'),
        ("Created", esc(clock(stored.created_at))),
        ("Finished", esc(clock(stored.finished_at)) if stored.finished_at else "still running"),
        ("Wall time", duration(wall) if wall is not None else f"{duration(now - stored.created_at)} so far"),
        ("Tasks", f"{len(stored.tasks)} ({esc(totals)})" if stored.tasks else "0"),
        ("Attempts", f"{len(stored.attempts)} ({retries} retr{'y' if retries == 1 else 'ies'})"),
    ]
    if stored.resumed_from:
        facts.append(("Resumed from", f"<code>{esc(stored.resumed_from)}</code>"))
    header = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    summary = (
        f'<p class="error-summary">{esc(cap(stored.error_summary, 2000))}</p>' if stored.error_summary else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session {esc(stored.id)} · Parallel Coordinator report</title>
<style>
{_asset("report.css")}</style>
</head>
<body>
<header>
<p class="kicker">Parallel Coordinator · session report</p>
<h1><code>{esc(stored.id)}</code></h1>
<p class="description">{esc(cap(stored.task_description, 2000))}</p>
<dl class="facts">{header}</dl>
{summary}
</header>
<main>
<section>
<h2>Timeline
<span class="hint">every attempt on the slot it ran in · hover a bar for details, click to follow its task</span></h2>
{legend("outcome", ["succeeded", "failed", "timeout", "memory", "rate_limited", "cancelled", "lost", "running"])}
<div class="scroll">{timeline_svg(bars, span)}</div>
</section>
<section>
<h2>Dependency graph
<span class="hint">columns by longest path from the roots · click a task to see its attempts</span></h2>
{legend("status", ["succeeded", "failed", "skipped", "cancelled", "interrupted", "running", "pending"])}
<div class="scroll">{graph_svg(stored.tasks)}</div>
</section>
<section>
<h2>Metrics</h2>
{metrics_table(stored, peak)}
</section>
<section>
<h2>Tasks</h2>
{task_table(stored)}
</section>
</main>
<footer>Generated {esc(clock(now))} by <code>pcoord report</code>.</footer>
<script>
{_asset("report.js")}</script>
</body>
</html>
"""


def write_report(store: Store, session_id: str, output: Path | None = None, *, reports_dir: Path) -> Path:
    """Render the stored session to `output` (default `reports_dir/<session id>.html`) and return the path."""
    stored = store.load_session(session_id)
    if stored is None:
        raise UnknownSessionError(session_id)
    path = output or reports_dir / f"{session_id}.html"
    if output is None:
        private_dir(path.parent)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, render_report(stored).encode("utf-8"))
    return path
