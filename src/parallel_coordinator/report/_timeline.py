"""The Gantt timeline: every attempt as a bar on the slot (lane) it ran in, against seconds since the start."""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass

from parallel_coordinator.engine.figures import attempt_failed
from parallel_coordinator.errors import first_line
from parallel_coordinator.report._text import cap, css_name, duration, esc
from parallel_coordinator.state.store import StoredAttempt, StoredSession

# Timeline geometry (SVG user units; the SVG scales to the page width).
_TL_WIDTH, _TL_LEFT, _TL_RIGHT, _TL_TOP = 1100, 64, 16, 8
_LANE_H, _BAR_H, _AXIS_H = 24, 18, 34
_CHAR_W = 8.0  # width of an 11px bold sans-serif glyph, generously: how much of a label fits a bar
# Above two minutes the axis counts minutes, so its steps are whole seconds a clock reader expects.
_CLOCK_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)


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
        return "failed" if attempt_failed(attempt.outcome, attempt.error, attempt.exit_code) else "succeeded"
    if attempt.outcome == "spawn_failed":
        return "failed"
    return css_name(attempt.outcome)


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
