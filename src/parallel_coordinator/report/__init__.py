"""A stored session as one self-contained HTML page: header, Gantt timeline of attempts, dependency graph, metrics.

Everything is inline (CSS, SVG, a little JS) and a Content-Security-Policy forbids any fetch, so the
file opens from disk offline. Every piece of user text passes through `_esc`.
"""

from __future__ import annotations

import heapq
import html
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from parallel_coordinator.engine.read_model import view_of_stored
from parallel_coordinator.errors import UnknownSessionError
from parallel_coordinator.state.private_files import private_dir, write_private
from parallel_coordinator.state.store import Store, StoredAttempt, StoredSession, StoredTask
from parallel_coordinator.views import session_metrics
from parallel_coordinator.views.metrics import attempt_figures, peak_parallelism

__all__ = ["assign_lanes", "attempt_outcome", "graph_layers", "render_report", "write_report"]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]")

# Timeline geometry (SVG user units; the SVG scales to the page width).
_TL_WIDTH, _TL_LEFT, _TL_RIGHT, _TL_TOP = 1100, 64, 16, 8
_LANE_H, _BAR_H, _AXIS_H = 24, 18, 34
_CHAR_W = 8.0  # width of an 11px bold sans-serif glyph, generously: how much of a label fits a bar

# Graph geometry.
_NODE_W, _NODE_H, _COL_GAP, _ROW_GAP, _GRAPH_PAD = 140, 26, 48, 10, 14
_WRAP_GAP, _BAND_HEAD = 14, 18  # between the columns of one wrapped layer; room for the "layer n" label
_LABEL_CHARS = 19
_MIN_GRAPH_SCALE = 0.75  # below this the labels are unreadable: the graph scrolls instead of shrinking
# Above two minutes the axis counts minutes, so its steps are whole seconds a clock reader expects.
_CLOCK_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)


def _esc(text: object) -> str:
    """Escape for HTML text and attribute values alike; control characters would make the page invalid."""
    return html.escape(_CONTROL.sub("\ufffd", str(text)), quote=True)


def _css_name(value: str) -> str:
    return _CLASS_UNSAFE.sub("_", value.lower()) or "unknown"


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str | None, limit: int = 200) -> str:
    """An error's first line; one ending in a colon ("...; last stderr lines:") gets the last line after it.

    The last stderr line is where the cause usually is (an exception, a `sys.exit` message).
    """
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    if line.endswith(":") and len(lines) > 1:
        line = f"{line} {'… ' if len(lines) > 2 else ''}{lines[-1]}"
    return _cap(line, limit)


def _clock(ts: float | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "—"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} m {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} m"


def assign_lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """Interval partitioning: each (start, end) span gets the lowest lane free at its start; lanes in input order.

    Greedy by start time uses as few lanes as the most spans that overlap at one moment, and a
    lane whose span ended at or before the next start is reused.
    """
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1], i))
    lanes = [0] * len(spans)
    busy: list[tuple[float, int]] = []  # (end, lane) of the spans still running
    free: list[int] = []
    used = 0
    for i in order:
        start, end = spans[i]
        while busy and busy[0][0] <= start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, used = used, used + 1
        lanes[i] = lane
        heapq.heappush(busy, (max(end, start), lane))
    return lanes


def attempt_outcome(attempt: StoredAttempt) -> str:
    """The outcome a person reads: `exited` splits into succeeded and failed; a spawn failure is a failure."""
    if attempt.finished_at is None or attempt.outcome == "running":
        return "running"
    if attempt.outcome == "exited":
        return "succeeded" if attempt.error is None and attempt.exit_code in (0, None) else "failed"
    if attempt.outcome == "spawn_failed":
        return "failed"
    return _css_name(attempt.outcome)


def graph_layers(tasks: Sequence[StoredTask]) -> dict[str, int]:
    """Each task's layer: the longest path from a root (a task with no dependencies) to it."""
    known = {t.task_id for t in tasks}
    deps = {t.task_id: [d for d in t.dependencies if d in known] for t in tasks}
    waiting = {task_id: len(ds) for task_id, ds in deps.items()}
    dependents: dict[str, list[str]] = {task_id: [] for task_id in deps}
    for task_id, ds in deps.items():
        for dep in ds:
            dependents[dep].append(task_id)
    layer = dict.fromkeys(deps, 0)
    ready = [task_id for task_id, n in waiting.items() if n == 0]
    while ready:
        current = ready.pop()
        for child in dependents[current]:
            layer[child] = max(layer[child], layer[current] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return layer  # a stored plan has no cycles; were there one, its tasks would simply stay in layer 0


@dataclass(frozen=True)
class _Bar:
    attempt: StoredAttempt
    start: float  # seconds since the session started
    end: float
    outcome: str
    lane: int


def _bars(stored: StoredSession, now: float) -> list[_Bar]:
    timed = [a for a in stored.attempts if a.started_at is not None]
    spans = [
        ((a.started_at or 0.0) - stored.created_at, (a.finished_at or now) - stored.created_at) for a in timed
    ]
    lanes = assign_lanes(spans)
    return [
        _Bar(a, max(start, 0.0), max(end, start, 0.0), attempt_outcome(a), lane)
        for a, (start, end), lane in zip(timed, spans, lanes, strict=True)
    ]


def _tick_step(span: float, target: int = 10) -> float:
    raw = max(span, 1e-3) / target
    if span > 120:
        return float(next((step for step in _CLOCK_STEPS if step >= raw), math.ceil(raw / 86400) * 86400))
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def _tick_label(value: float, step: float, span: float) -> str:
    if span > 120:
        minutes, secs = divmod(round(value), 60)
        return f"{minutes}:{secs:02d}"
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}s"


def _timeline_svg(bars: list[_Bar], span: float) -> str:
    lanes = max((b.lane for b in bars), default=-1) + 1
    plot_w = _TL_WIDTH - _TL_LEFT - _TL_RIGHT
    plot_h = max(lanes, 1) * _LANE_H
    height = _TL_TOP + plot_h + _AXIS_H
    scale = plot_w / span
    parts = [
        f'<svg id="timeline" class="chart" viewBox="0 0 {_TL_WIDTH} {height}" width="{_TL_WIDTH}" '
        f'height="{height}" role="img" aria-label="Timeline of every attempt on its slot">'
    ]
    for lane in range(lanes):
        top = _TL_TOP + lane * _LANE_H
        parts.append(f'<rect class="lane-bg" x="{_TL_LEFT}" y="{top}" width="{plot_w}" height="{_LANE_H}"/>')
        parts.append(f'<text class="lane-label" x="{_TL_LEFT - 8}" y="{top + _LANE_H / 2 + 4}">slot {lane + 1}</text>')
    step = _tick_step(span)
    for i in range(int(span / step + 1e-9) + 1):
        value = i * step
        x = _TL_LEFT + value * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{_TL_TOP}" x2="{x:.1f}" y2="{_TL_TOP + plot_h + 4}"/>')
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{_TL_TOP + plot_h + 16}">{_tick_label(value, step, span)}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{_TL_LEFT + plot_w / 2}" y="{height - 2}">'
        f"{'minutes:seconds' if span > 120 else 'seconds'} since the session started</text>"
    )
    if not bars:
        parts.append(f'<text class="empty" x="{_TL_LEFT + 8}" y="{_TL_TOP + 16}">no attempt was recorded</text>')
    for index, bar in enumerate(bars):
        a = bar.attempt
        x = _TL_LEFT + bar.start * scale
        w = max((bar.end - bar.start) * scale, 2.0)  # a very short attempt stays visible
        y = _TL_TOP + bar.lane * _LANE_H + (_LANE_H - _BAR_H) / 2
        exit_note = f" (exit {a.exit_code})" if a.exit_code not in (None, 0) else ""
        tooltip = "\n".join(
            line
            for line in (
                f"task {a.task_id} · attempt {a.number}",
                f"agent: {a.agent}",
                f"start: +{bar.start:.3f} s",
                f"duration: {_duration(bar.end - bar.start)}{' so far' if bar.outcome == 'running' else ''}",
                f"outcome: {bar.outcome}{exit_note}",
                f"error: {_first_line(a.error, 300)}" if a.error else "",
            )
            if line
        )
        parts.append(
            f'<rect class="attempt outcome-{bar.outcome}" data-task="{_esc(a.task_id)}" data-attempt="{a.number}" '
            f'data-lane="{bar.lane}" data-start="{bar.start:.4f}" data-end="{bar.end:.4f}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_BAR_H}" rx="3">'
            f"<title>{_esc(tooltip)}</title></rect>"
        )
        # The attempt number outlives truncation: "long-task-na… #2" still says which retry it was.
        suffix = "" if a.number == 1 else f" #{a.number}"
        fits = int((w - 8) / _CHAR_W) - len(suffix)
        if fits >= 3:
            # Glyph widths are only estimated: a clip keeps a label inside its own bar whatever the font.
            label = _cap(a.task_id, fits) + suffix
            parts.append(
                f'<clipPath id="clip-{index}"><rect x="{x:.1f}" y="{y:.1f}" width="{w - 2:.1f}" height="{_BAR_H}"/>'
                f'</clipPath><text class="bar-label" clip-path="url(#clip-{index})" x="{x + 4:.1f}" '
                f'y="{y + _BAR_H / 2 + 4:.1f}">{_esc(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _graph_svg(tasks: Sequence[StoredTask]) -> str:
    layers = graph_layers(tasks)
    by_id = {t.task_id: t for t in tasks}
    columns_of_layer: dict[int, list[str]] = {}
    for t in tasks:
        columns_of_layer.setdefault(layers[t.task_id], []).append(t.task_id)
    # A wide layer wraps into several columns (drawn on one band) so a few hundred tasks stay legible.
    rows_cap = max(16, math.ceil(math.sqrt(4 * len(tasks))))
    row_of: dict[str, float] = {}
    columns: list[tuple[int, list[str]]] = []
    for layer in sorted(columns_of_layer):
        members = columns_of_layer[layer]
        if layer > 0:
            # Barycentre ordering: a task sits near the mean row of its dependencies, which uncrosses edges.
            def centre(task_id: str) -> float:
                rows = [row_of[d] for d in by_id[task_id].dependencies if d in row_of]
                return sum(rows) / len(rows) if rows else 0.0

            members = sorted(members, key=centre)
        for start in range(0, len(members), rows_cap):
            column = members[start : start + rows_cap]
            columns.append((layer, column))
            for i, task_id in enumerate(column):
                row_of[task_id] = i - (len(column) - 1) / 2
    rows = max((len(c) for _, c in columns), default=1)
    first_row = _GRAPH_PAD + _BAND_HEAD
    height = first_row + rows * _NODE_H + (rows - 1) * _ROW_GAP + _GRAPH_PAD
    position: dict[str, tuple[float, float]] = {}
    bands: dict[int, list[float]] = {}  # layer -> [left, right]
    x = _GRAPH_PAD - _WRAP_GAP
    previous: int | None = None
    for layer, column in columns:
        x += _WRAP_GAP if layer == previous else _COL_GAP
        previous = layer
        bands.setdefault(layer, [x, x])[1] = x + _NODE_W
        offset = (rows - len(column)) * (_NODE_H + _ROW_GAP) / 2  # centre short columns vertically
        for r, task_id in enumerate(column):
            position[task_id] = (x, first_row + offset + r * (_NODE_H + _ROW_GAP))
        x += _NODE_W
    width = math.ceil(x + _GRAPH_PAD)
    band_svg = "".join(
        f'<rect class="layer-band" x="{left - 6:.1f}" y="{_GRAPH_PAD - 4}" width="{right - left + 12:.1f}" '
        f'height="{height - 2 * _GRAPH_PAD + 8}" rx="6"/>'
        f'<text class="layer-label" x="{(left + right) / 2:.1f}" y="{_GRAPH_PAD + 10}">layer {layer}</text>'
        for layer, (left, right) in bands.items()
    )
    parts = [
        f'<svg id="graph" class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'style="min-width:{math.ceil(width * _MIN_GRAPH_SCALE)}px" role="img" '
        'aria-label="Dependency graph of the tasks">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>',
        band_svg,
    ]
    for t in tasks:
        for dep in t.dependencies:
            if dep not in position:
                continue
            x1, y1 = position[dep]
            x2, y2 = position[t.task_id]
            sx, sy, ex, ey = x1 + _NODE_W, y1 + _NODE_H / 2, x2 - 2, y2 + _NODE_H / 2
            bend = max((ex - sx) / 2, 20)
            parts.append(
                f'<path class="edge" data-from="{_esc(dep)}" data-to="{_esc(t.task_id)}" '
                f'd="M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}" '
                'marker-end="url(#arrow)"/>'
            )
    for t in tasks:
        left, top = position[t.task_id]
        status = _css_name(t.status)
        tooltip = f"{t.task_id}\nagent: {t.agent}\nstatus: {t.status}\nattempts: {t.attempts}"
        if t.dependencies:
            tooltip += f"\nafter: {', '.join(t.dependencies)}"
        if t.error:
            tooltip += f"\nerror: {_first_line(t.error, 300)}"
        parts.append(
            f'<g class="task status-{status}" data-task="{_esc(t.task_id)}" data-layer="{layers[t.task_id]}">'
            f"<title>{_esc(tooltip)}</title>"
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{_NODE_W}" height="{_NODE_H}" rx="6"/>'
            f'<text x="{left + _NODE_W / 2:.1f}" y="{top + _NODE_H / 2 + 4:.1f}">'
            f"{_esc(_cap(t.task_id, _LABEL_CHARS))}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _metrics_table(stored: StoredSession, peak: int) -> str:
    figures = session_metrics(view_of_stored(stored))
    per_agent = attempt_figures(stored.attempts).per_agent
    rows = [
        ("avg_task_time_s", "Average task time", _duration(figures.avg_task_time_s)),
        ("p95_task_time_s", "p95 task time", _duration(figures.p95_task_time_s)),
        ("throughput_per_min", "Throughput", f"{figures.throughput_per_min:.2f} tasks / min"),
        ("error_rate", "Error rate (of attempts)", f"{figures.error_rate:.1%}"),
        ("parallel_efficiency", "Parallel efficiency", f"{figures.parallel_efficiency:.1%}"),
        ("peak_parallelism", "Peak parallelism", f"{peak} of {stored.max_agents} slots"),
    ]
    input_tokens = [t.input_tokens for t in stored.tasks if t.input_tokens is not None]
    output_tokens = [t.output_tokens for t in stored.tasks if t.output_tokens is not None]
    costs = [t.cost_usd for t in stored.tasks if t.cost_usd is not None]
    if input_tokens or output_tokens:
        rows.append(("tokens", "Tokens (in / out)", f"{sum(input_tokens):,} / {sum(output_tokens):,}"))
    if costs:
        rows.append(("cost_usd", "Cost", f"${sum(costs):,.4f}"))
    body = "".join(
        f'<tr class="metric" data-metric="{key}"><th scope="row">{label}</th><td colspan="3">{_esc(value)}</td></tr>'
        for key, label, value in rows
    )
    agents = "".join(
        f'<tr class="agent-metric" data-agent="{_esc(name)}"><th scope="row">{_esc(name)}</th>'
        f"<td>{runs}</td><td>{failures}</td><td>{_duration(avg)}</td></tr>"
        for name, (runs, failures, avg) in per_agent.items()
    ) or '<tr><td colspan="4" class="muted">no finished attempt</td></tr>'
    return (
        '<table id="metrics"><tbody class="session-metrics">'
        f"{body}</tbody>"
        '<tbody class="agent-metrics"><tr class="subhead"><th scope="col">Agent</th><th scope="col">Runs</th>'
        f'<th scope="col">Failures</th><th scope="col">Avg duration</th></tr>{agents}</tbody></table>'
    )


def _task_table(stored: StoredSession) -> str:
    last_agent = {a.task_id: a.agent for a in stored.attempts}
    rows = []
    for t in stored.tasks:
        duration = t.finished_at - t.started_at if t.started_at and t.finished_at else None
        output = ""
        if t.output:
            shown = _cap(t.output, 4000)
            output = f"<details><summary>output ({t.kept.chars:,} chars)</summary><pre>{_esc(shown)}</pre></details>"
        rows.append(
            f'<tr data-task="{_esc(t.task_id)}">'
            f'<td class="id" title="{_esc(t.description[:500])}">{_esc(t.task_id)}</td>'
            f"<td>{_esc(last_agent.get(t.task_id, t.agent))}</td>"
            f'<td><span class="pill status-{_css_name(t.status)}">{_esc(t.status)}</span></td>'
            f'<td class="num">{t.attempts}</td><td class="num">{_duration(duration)}</td>'
            f'<td class="error" title="{_esc(_cap(t.error or "", 2000))}">'
            f"{_esc(_first_line(t.error))}{output}</td></tr>"
        )
    return (
        '<table id="tasks"><thead><tr><th>Task</th><th>Agent</th><th>Status</th><th class="num">Attempts</th>'
        f'<th class="num">Duration</th><th>Error / output</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _legend(kind: str, names: Sequence[str]) -> str:
    items = "".join(f'<span class="key"><i class="{kind}-{name}"></i>{name.replace("_", " ")}</span>' for name in names)
    return f'<div class="legend">{items}</div>'


def render_report(stored: StoredSession) -> str:
    """The whole page for one session: open it from disk, no network needed."""
    now = time.time()
    bars = _bars(stored, now)
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
        ("Status", f'<span class="badge session-{_css_name(stored.status)}">{_esc(stored.status)}</span>'),
        ("Created", _esc(_clock(stored.created_at))),
        ("Finished", _esc(_clock(stored.finished_at)) if stored.finished_at else "still running"),
        ("Wall time", _duration(wall) if wall is not None else f"{_duration(now - stored.created_at)} so far"),
        ("Tasks", f"{len(stored.tasks)} ({_esc(totals)})" if stored.tasks else "0"),
        ("Attempts", f"{len(stored.attempts)} ({retries} retr{'y' if retries == 1 else 'ies'})"),
    ]
    if stored.resumed_from:
        facts.append(("Resumed from", f"<code>{_esc(stored.resumed_from)}</code>"))
    header = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    summary = (
        f'<p class="error-summary">{_esc(_cap(stored.error_summary, 2000))}</p>' if stored.error_summary else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; \
script-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session {_esc(stored.id)} · Parallel Coordinator report</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<p class="kicker">Parallel Coordinator · session report</p>
<h1><code>{_esc(stored.id)}</code></h1>
<p class="description">{_esc(_cap(stored.task_description, 2000))}</p>
<dl class="facts">{header}</dl>
{summary}
</header>
<main>
<section>
<h2>Timeline
<span class="hint">every attempt on the slot it ran in · hover a bar for details, click to follow its task</span></h2>
{_legend("outcome", ["succeeded", "failed", "timeout", "memory", "rate_limited", "cancelled", "lost", "running"])}
<div class="scroll">{_timeline_svg(bars, span)}</div>
</section>
<section>
<h2>Dependency graph
<span class="hint">columns by longest path from the roots · click a task to see its attempts</span></h2>
{_legend("status", ["succeeded", "failed", "skipped", "cancelled", "interrupted", "running", "pending"])}
<div class="scroll">{_graph_svg(stored.tasks)}</div>
</section>
<section>
<h2>Metrics</h2>
{_metrics_table(stored, peak)}
</section>
<section>
<h2>Tasks</h2>
{_task_table(stored)}
</section>
</main>
<footer>Generated {_esc(_clock(now))} by <code>pcoord report</code>.</footer>
<script>{_JS}</script>
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


_GREEN, _RED, _ORANGE, _GREY, _PURPLE, _BLUE = "#2f9e5b", "#d94848", "#e8912d", "#9aa1a9", "#8a5cd1", "#3b7dd8"

_CSS = f"""
:root {{ color-scheme: light; --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #f6f8fa; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  color: var(--ink); background: #fff; }}
header, main, footer {{ max-width: 1180px; margin: 0 auto; padding: 0 24px; }}
header {{ padding-top: 20px; border-bottom: 1px solid var(--line); padding-bottom: 12px; }}
.kicker {{ margin: 0; color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .06em; }}
h1 {{ margin: 4px 0; font-size: 22px; word-break: break-all; }}
h2 {{ font-size: 17px; margin: 26px 0 8px; }}
.hint {{ font-weight: normal; font-size: 12px; color: var(--muted); margin-left: 8px; }}
.description {{ white-space: pre-wrap; margin: 4px 0 10px; max-height: 9em; overflow: auto; }}
.facts {{ display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 0; }}
.facts dt {{ font-size: 11px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }}
.facts dd {{ margin: 0; }}
.error-summary {{ background: #fff4f4; border-left: 3px solid {_RED}; padding: 6px 10px; white-space: pre-wrap; }}
.badge {{ padding: 1px 8px; border-radius: 10px; color: #fff; font-weight: 600; font-size: 12px; background: {_GREY}; }}
.session-success {{ background: {_GREEN}; }} .session-failed {{ background: {_RED}; }}
.session-partial {{ background: {_ORANGE}; }} .session-running {{ background: {_BLUE}; }}
.scroll {{ overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); padding: 6px; }}
svg.chart {{ display: block; max-width: 100%; height: auto; font-family: inherit; }}
#timeline {{ width: 100%; }}
.legend {{ display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: 12px; color: var(--muted); margin-bottom: 6px; }}
.legend i {{ display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 5px;
  vertical-align: -1px; }}
.lane-bg {{ fill: #fff; stroke: var(--line); stroke-width: .5; }}
.lane-label, .tick {{ font-size: 11px; fill: var(--muted); }}
.lane-label {{ text-anchor: end; }} .tick {{ text-anchor: middle; }}
.axis-title {{ font-size: 11px; fill: var(--muted); text-anchor: middle; }}
.grid {{ stroke: #c4cbd3; stroke-dasharray: 2 3; stroke-width: .7; }}
.empty {{ font-size: 12px; fill: var(--muted); }}
.attempt {{ stroke: rgba(0,0,0,.25); stroke-width: .6; cursor: pointer; }}
.bar-label {{ font-size: 11px; fill: #fff; pointer-events: none; font-weight: 600; }}
.outcome-succeeded {{ fill: {_GREEN}; background: {_GREEN}; }}
.outcome-failed {{ fill: {_RED}; background: {_RED}; }}
.outcome-timeout, .outcome-memory {{ fill: {_ORANGE}; background: {_ORANGE}; }}
.outcome-cancelled, .outcome-lost, .outcome-interrupted {{ fill: {_GREY}; background: {_GREY}; }}
.outcome-rate_limited {{ fill: {_PURPLE}; background: {_PURPLE}; }}
.outcome-running {{ fill: {_BLUE}; background: {_BLUE}; }}
.layer-band {{ fill: #eef1f4; }}
.layer-label {{ font-size: 10px; fill: var(--muted); text-anchor: middle; letter-spacing: .04em; }}
.edge {{ fill: none; stroke: #8c959f; stroke-width: 1.3; }}
.arrowhead {{ fill: #8c959f; }}
.task {{ cursor: pointer; }}
.task rect {{ stroke: rgba(0,0,0,.3); stroke-width: 1; fill: #fff; }}
.task text {{ font-size: 11px; text-anchor: middle; fill: #fff; font-weight: 600; pointer-events: none; }}
.status-succeeded rect, i.status-succeeded, .pill.status-succeeded {{ fill: {_GREEN}; background: {_GREEN}; }}
.status-failed rect, i.status-failed, .pill.status-failed {{ fill: {_RED}; background: {_RED}; }}
.status-cancelled rect, i.status-cancelled, .pill.status-cancelled,
.status-interrupted rect, i.status-interrupted, .pill.status-interrupted {{ fill: {_GREY}; background: {_GREY}; }}
.status-running rect, i.status-running, .pill.status-running {{ fill: {_BLUE}; background: {_BLUE}; }}
.status-skipped rect {{ fill: #eceff2; stroke: #8c959f; stroke-dasharray: 4 3; }}
i.status-skipped, .pill.status-skipped {{ background: #eceff2; color: var(--ink); border: 1px dashed #8c959f; }}
.status-pending rect {{ fill: #fff; stroke: #8c959f; }}
i.status-pending, .pill.status-pending {{ background: #fff; color: var(--ink); border: 1px solid #8c959f; }}
.status-skipped text, .status-pending text {{ fill: var(--ink); font-weight: normal; }}
.dimmed {{ opacity: .2; }}
.attempt.selected, .task.selected rect {{ stroke: #111; stroke-width: 2.5; }}
tr.selected td {{ background: #fff8c5; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
th, td {{ text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }}
thead th, tr.subhead th {{ background: var(--bg); font-size: 12px; color: var(--muted); }}
#metrics {{ width: auto; min-width: 480px; }}
#metrics tbody.session-metrics th {{ font-weight: normal; color: var(--muted); }}
.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
td.id {{ font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; max-width: 260px; }}
td.error {{ color: #8b1a1a; word-break: break-word; }}
#tasks tbody tr {{ cursor: pointer; }}
.pill {{ padding: 0 7px; border-radius: 9px; color: #fff; font-size: 12px; white-space: nowrap; }}
details {{ color: var(--ink); }} summary {{ color: var(--muted); cursor: pointer; font-size: 12px; }}
pre {{ white-space: pre-wrap; word-break: break-word; background: var(--bg); padding: 6px; max-height: 24em;
  overflow: auto; font-size: 12px; }}
.muted {{ color: var(--muted); }}
footer {{ color: var(--muted); font-size: 12px; padding: 24px; }}
"""

# Reads task ids from data-task attributes, never from inline data: user text never reaches a script.
_JS = """
(function () {
  "use strict";
  var body = document.body;
  window.onerror = function (message, source, line) {
    var previous = body.getAttribute("data-errors");
    body.setAttribute("data-errors", (previous ? previous + " | " : "") + message + " (line " + line + ")");
  };
  var selected = null;
  function select(task) {
    selected = task === selected ? null : task;
    var items = document.querySelectorAll("[data-task]");
    for (var i = 0; i < items.length; i++) {
      var match = selected !== null && items[i].getAttribute("data-task") === selected;
      items[i].classList.toggle("selected", match);
      items[i].classList.toggle("dimmed", selected !== null && !match && items[i].tagName.toLowerCase() !== "tr");
    }
    var edges = document.querySelectorAll("#graph .edge");
    for (var j = 0; j < edges.length; j++) {
      var touches = edges[j].getAttribute("data-from") === selected || edges[j].getAttribute("data-to") === selected;
      edges[j].classList.toggle("dimmed", selected !== null && !touches);
    }
  }
  document.addEventListener("click", function (event) {
    var origin = event.target && event.target.closest ? event.target : null;
    if (origin && origin.closest("details")) { return; }  // opening an output is not a selection
    var target = origin ? origin.closest("[data-task]") : null;
    if (target) {
      select(target.getAttribute("data-task"));
    } else if (selected !== null) {
      select(selected);
    }
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && selected !== null) { select(selected); }
  });
  // report.html#task=<id> opens with that task selected: a link can point at one task.
  var wanted = null;
  try {
    wanted = location.hash.indexOf("#task=") === 0 ? decodeURIComponent(location.hash.slice(6)) : null;
  } catch (malformed) {
    wanted = null;  // a hand-edited link with a broken escape: open unselected
  }
  if (wanted !== null) { select(wanted); }
  body.dataset.rendered = "ok";
})();
"""
