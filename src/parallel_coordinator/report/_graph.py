"""The dependency graph: tasks in columns by their longest path from a root, edges drawn as curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

from parallel_coordinator.errors import first_line
from parallel_coordinator.report._text import cap, esc
from parallel_coordinator.state.store import StoredTask
from parallel_coordinator.views._layout import GRAPH_PAD, NODE_H, NODE_W, css_name, graph_geometry

_LABEL_CHARS = 19
_MIN_GRAPH_SCALE = 0.75  # below this the labels are unreadable: the graph scrolls instead of shrinking


def graph_svg(tasks: Sequence[StoredTask]) -> str:
    geometry = graph_geometry(tasks)
    layers, position, width, height = geometry.layers, geometry.position, geometry.width, geometry.height
    band_svg = "".join(
        f'<rect class="layer-band" x="{left - 6:.1f}" y="{GRAPH_PAD - 4}" width="{right - left + 12:.1f}" '
        f'height="{height - 2 * GRAPH_PAD + 8}" rx="6"/>'
        f'<text class="layer-label" x="{(left + right) / 2:.1f}" y="{GRAPH_PAD + 10}">layer {layer}</text>'
        for layer, (left, right) in geometry.bands.items()
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
            parts.append(
                f'<path class="edge" data-from="{esc(dep)}" data-to="{esc(t.task_id)}" '
                f'd="{geometry.edge_path(dep, t.task_id)}" '
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
            f'<rect x="{left:.1f}" y="{top:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{left + NODE_W / 2:.1f}" y="{top + NODE_H / 2 + 4:.1f}">'
            f"{esc(cap(t.task_id, _LABEL_CHARS))}</text>"
            "</g>"
        )
    parts.append("</svg>")
    return "".join(parts)
