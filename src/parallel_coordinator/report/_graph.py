"""The dependency graph: tasks in columns by their longest path from a root, edges drawn as curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

from parallel_coordinator.errors import first_line
from parallel_coordinator.report._text import cap, css_name, esc
from parallel_coordinator.state.store import StoredTask

_NODE_W, _NODE_H, _COL_GAP, _ROW_GAP, _GRAPH_PAD = 140, 26, 48, 10, 14
_WRAP_GAP, _BAND_HEAD = 14, 18  # between the columns of one wrapped layer; room for the "layer n" label
_LABEL_CHARS = 19
_MIN_GRAPH_SCALE = 0.75  # below this the labels are unreadable: the graph scrolls instead of shrinking


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



def graph_svg(tasks: Sequence[StoredTask]) -> str:
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
                f'<path class="edge" data-from="{esc(dep)}" data-to="{esc(t.task_id)}" '
                f'd="M{sx:.1f},{sy:.1f} C{sx + bend:.1f},{sy:.1f} {ex - bend:.1f},{ey:.1f} {ex:.1f},{ey:.1f}" '
                'marker-end="url(#arrow)"/>'
            )
    for t in tasks:
        left, top = position[t.task_id]
        status = css_name(t.status)
        tooltip = f"{t.task_id}\nagent: {t.agent}\nstatus: {t.status}\nattempts: {t.attempts}"
        if t.dependencies:
            tooltip += f"\nafter: {', '.join(t.dependencies)}"
        if t.error:
            tooltip += f"\nerror: {first_line(t.error, 300)}"
        parts.append(
            f'<g class="task status-{status}" data-task="{esc(t.task_id)}" data-layer="{layers[t.task_id]}">'
            f"<title>{esc(tooltip)}</title>"
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{_NODE_W}" height="{_NODE_H}" rx="6"/>'
            f'<text x="{left + _NODE_W / 2:.1f}" y="{top + _NODE_H / 2 + 4:.1f}">'
            f"{esc(cap(t.task_id, _LABEL_CHARS))}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
