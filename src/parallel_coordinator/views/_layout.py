"""Where things go in a session's pictures: attempts on lanes, tasks in layers and on a grid, the time axis's ticks.

One layout for two renderers: the static report (report/) draws it as SVG in Python, the live view
(views/_live.py, drawn by the browser) sends it as data.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parallel_coordinator.engine.figures import attempt_failed

NODE_W, NODE_H, _COL_GAP, _ROW_GAP, GRAPH_PAD = 140, 26, 48, 10, 14
_WRAP_GAP, BAND_HEAD = 14, 18  # between the columns of one wrapped layer; room for the "layer n" label
# Above two minutes the axis counts minutes, so its steps are whole seconds a clock reader expects.
_CLOCK_STEPS = (15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]")


class Linked(Protocol):
    """A task as the graph sees it: its id and the ids it depends on (a stored task, a plan node)."""

    @property
    def task_id(self) -> str: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


class Ended(Protocol):
    """An attempt as its outcome is read: a stored one or a live one."""

    @property
    def finished_at(self) -> float | None: ...
    @property
    def outcome(self) -> str: ...
    @property
    def error(self) -> str | None: ...
    @property
    def exit_code(self) -> int | None: ...


def css_name(value: str) -> str:
    """A status or outcome as part of a CSS class name."""
    return _CLASS_UNSAFE.sub("_", value.lower()) or "unknown"


def attempt_outcome(attempt: Ended) -> str:
    """The outcome a person reads: `exited` splits into succeeded and failed; a spawn failure is a failure."""
    if attempt.finished_at is None or attempt.outcome == "running":
        return "running"
    if attempt.outcome == "exited":
        return "failed" if attempt_failed(attempt.outcome, attempt.error, attempt.exit_code) else "succeeded"
    if attempt.outcome == "spawn_failed":
        return "failed"
    return css_name(attempt.outcome)


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


def tick_step(span: float, target: int = 10) -> float:
    raw = max(span, 1e-3) / target
    if span > 120:
        return float(next((step for step in _CLOCK_STEPS if step >= raw), math.ceil(raw / 86400) * 86400))
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def tick_label(value: float, step: float, span: float) -> str:
    if span > 120:
        minutes, secs = divmod(round(value), 60)
        return f"{minutes}:{secs:02d}"
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{decimals}f}s"


def ticks(span: float) -> list[tuple[float, str]]:
    """The time axis's (seconds, label) marks from 0 to `span`, about ten of them."""
    step = tick_step(span)
    return [(i * step, tick_label(i * step, step, span)) for i in range(int(span / step + 1e-9) + 1)]


def axis_title(span: float) -> str:
    return f"{'minutes:seconds' if span > 120 else 'seconds'} since the session started"


def graph_layers(tasks: Sequence[Linked]) -> dict[str, int]:
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
class GraphGeometry:
    width: int
    height: float
    layers: dict[str, int]
    position: dict[str, tuple[float, float]]  # task id -> top-left corner of its node
    bands: dict[int, tuple[float, float]]  # layer -> (left, right) of its columns

    def edge_path(self, dep: str, task_id: str) -> str:
        """The SVG path of the curve from `dep`'s right edge to `task_id`'s left edge."""
        x1, y1 = self.position[dep]
        x2, y2 = self.position[task_id]
        sx, sy, ex, ey = x1 + NODE_W, y1 + NODE_H / 2, x2 - 2, y2 + NODE_H / 2
        bend = max((ex - sx) / 2, 20)
        return f"M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}"


def graph_geometry(tasks: Sequence[Linked]) -> GraphGeometry:
    """Tasks in columns by layer, each near the mean row of its dependencies; a wide layer wraps into columns."""
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
    first_row = GRAPH_PAD + BAND_HEAD
    height = first_row + rows * NODE_H + (rows - 1) * _ROW_GAP + GRAPH_PAD
    position: dict[str, tuple[float, float]] = {}
    bands: dict[int, tuple[float, float]] = {}
    x: float = GRAPH_PAD - _WRAP_GAP
    previous: int | None = None
    for layer, column in columns:
        x += _WRAP_GAP if layer == previous else _COL_GAP
        previous = layer
        bands[layer] = (bands.get(layer, (x, x))[0], x + NODE_W)
        offset = (rows - len(column)) * (NODE_H + _ROW_GAP) / 2  # centre short columns vertically
        for r, task_id in enumerate(column):
            position[task_id] = (x, first_row + offset + r * (NODE_H + _ROW_GAP))
        x += NODE_W
    return GraphGeometry(math.ceil(x + GRAPH_PAD), height, layers, position, bands)
