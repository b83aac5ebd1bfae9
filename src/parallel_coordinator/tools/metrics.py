"""The get_performance_metrics tool: machine health now, and figures over recent agent runs."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context

from parallel_coordinator.schemas.outputs import PerformanceMetrics
from parallel_coordinator.tools._context import coordinator_of
from parallel_coordinator.views import performance_metrics

DESCRIPTION = """\
Report the coordinator's health and performance: machine CPU and memory, agents running and tasks
queued (and why they wait), over the last 1,000 agent runs the throughput, average and p95 run
time, success rate and parallel efficiency, per-agent runs, failures, durations, tokens and cost,
the average `prefix` of claude runs (their first turn's prompt: uncached, cache writes, cache
reads; what a run pays before any work), and `alerts` for anything that needs attention (error
rate over 5%, CPU or memory at the limit, an agent failing repeatedly)."""


async def get_performance_metrics(ctx: Context[Any, Any] | None = None) -> PerformanceMetrics:
    coordinator = coordinator_of(ctx)
    return performance_metrics(coordinator.store, coordinator.health())
