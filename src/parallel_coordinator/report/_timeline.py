"""The Gantt timeline: every attempt as a bar on the slot (lane) it ran in, against seconds since the start."""

from __future__ import annotations

from dataclasses import dataclass

from parallel_coordinator.errors import first_line
from parallel_coordinator.report._text import cap, duration, esc
from parallel_coordinator.state.store import StoredAttempt, StoredSession
from parallel_coordinator.views._layout import assign_lanes, attempt_outcome, axis_title, ticks

# Timeline geometry (SVG user units; the SVG scales to the page width).
_TL_WIDTH, _TL_LEFT, _TL_RIGHT, _TL_TOP = 1100, 64, 16, 8
_LANE_H, _BAR_H, _AXIS_H = 24, 18, 34
_CHAR_W = 8.0  # width of an 11px bold sans-serif glyph, generously: how much of a label fits a bar


@dataclass(frozen=True)
class Bar:
    attempt: StoredAttempt
    start: float  # seconds since the session started
    end: float
    outcome: str
    lane: int


def bars_of(stored: StoredSession, now: float) -> list[Bar]:
    timed = [a for a in stored.attempts if a.started_at is not None]
    spans = [
        ((a.started_at or 0.0) - stored.created_at, (a.finished_at or now) - stored.created_at) for a in timed
    ]
    lanes = assign_lanes(spans)
    return [
        Bar(a, max(start, 0.0), max(end, start, 0.0), attempt_outcome(a), lane)
        for a, (start, end), lane in zip(timed, spans, lanes, strict=True)
    ]


def timeline_svg(bars: list[Bar], span: float) -> str:
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
    for value, label in ticks(span):
        x = _TL_LEFT + value * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{_TL_TOP}" x2="{x:.1f}" y2="{_TL_TOP + plot_h + 4}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{_TL_TOP + plot_h + 16}">{label}</text>')
    parts.append(
        f'<text class="axis-title" x="{_TL_LEFT + plot_w / 2}" y="{height - 2}">{axis_title(span)}</text>'
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
                f"duration: {duration(bar.end - bar.start)}{' so far' if bar.outcome == 'running' else ''}",
                f"outcome: {bar.outcome}{exit_note}",
                f"pid: {a.pid}" if a.pid is not None else "",
                _memory_line(a.peak_rss_mb),
                f"error: {first_line(a.error, 300)}" if a.error else "",
            )
            if line
        )
        parts.append(
            f'<rect class="attempt outcome-{bar.outcome}" data-task="{esc(a.task_id)}" data-attempt="{a.number}" '
            f'data-lane="{bar.lane}" data-start="{bar.start:.4f}" data-end="{bar.end:.4f}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{_BAR_H}" rx="3">'
            f"<title>{esc(tooltip)}</title></rect>"
        )
        # The attempt number outlives truncation: "long-task-na… #2" still says which retry it was.
        suffix = "" if a.number == 1 else f" #{a.number}"
        fits = int((w - 8) / _CHAR_W) - len(suffix)
        if fits >= 3:
            # Glyph widths are only estimated: a clip keeps a label inside its own bar whatever the font.
            label = cap(a.task_id, fits) + suffix
            parts.append(
                f'<clipPath id="clip-{index}"><rect x="{x:.1f}" y="{y:.1f}" width="{w - 2:.1f}" height="{_BAR_H}"/>'
                f'</clipPath><text class="bar-label" clip-path="url(#clip-{index})" x="{x + 4:.1f}" '
                f'y="{y + _BAR_H / 2 + 4:.1f}">{esc(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _memory_line(peak_rss_mb: float | None) -> str:
    """The most memory the agent's process tree held; 0 means it ended before the supervisor's first sample."""
    if peak_rss_mb is None:
        return ""
    return f"peak RSS: {peak_rss_mb:,.1f} MB" if peak_rss_mb > 0 else "peak RSS: not sampled (ended too soon)"
