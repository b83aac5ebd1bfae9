"""A stored session as one self-contained HTML page: header, Gantt timeline of attempts, dependency graph, metrics.

Everything is inline (CSS, SVG, a little JS) and a Content-Security-Policy forbids any fetch, so the
file opens from disk offline. Every piece of user text passes through `_text.esc`.
"""

from parallel_coordinator.report._page import render_report, write_report
from parallel_coordinator.views._layout import assign_lanes, attempt_outcome, graph_layers

__all__ = ["assign_lanes", "attempt_outcome", "graph_layers", "render_report", "write_report"]
