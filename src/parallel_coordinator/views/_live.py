"""A session as the live view draws it: tasks, attempts on lanes, the graph's layout, why tasks wait, the spend.

Plain JSON-ready data, the same for the dashboard (sent by server-sent events) and the MCP App (read
through a tool); the browser draws it (static/session_view.js) in the report's colours and shapes.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from parallel_coordinator.engine.read_model import SessionView
from parallel_coordinator.engine.session import AttemptInfo, TaskRecord
from parallel_coordinator.engine.slots import Slots
from parallel_coordinator.errors import first_line
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.views._layout import (
    NODE_H,
    NODE_W,
    assign_lanes,
    attempt_outcome,
    axis_title,
    css_name,
    graph_geometry,
    ticks,
)

# Bounds: a snapshot is sent several times a second to every open page, so it stays small whatever the
# session's size. Past them the tasks that need attention are shown first and the snapshot says how many
# it left out.
MAX_LIVE_TASKS = 300
MAX_LIVE_ATTEMPTS = 500
MAX_LIVE_EDGES = 2_000  # 300 tasks may each depend on all the others: 44,850 curves, megabytes a snapshot
_TEXT_CHARS = 300  # a progress message, an error's first line, a description
_DEPENDENCIES_SHOWN = 20
_RANK = {TaskState.RUNNING: 0, TaskState.FAILED: 1, TaskState.INTERRUPTED: 1, TaskState.PENDING: 2}


@dataclass(frozen=True)
class _Node:
    task_id: str
    dependencies: tuple[str, ...]


def _cap(text: str | None, limit: int = _TEXT_CHARS) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown_tasks(view: SessionView) -> list[TaskRecord]:
    """The tasks a snapshot shows, in plan order: all of them, or the ones that need attention first."""
    records = list(view.tasks.values())
    if len(records) <= MAX_LIVE_TASKS:
        return records
    ranked = sorted(records, key=lambda r: _RANK.get(r.status, 3))  # stable: plan order within a rank
    keep = {r.task_id for r in ranked[:MAX_LIVE_TASKS]}
    return [r for r in records if r.task_id in keep]


def _dependencies(view: SessionView, task_id: str) -> tuple[str, ...]:
    planned = view.plan.get(task_id)
    return tuple(planned.dependencies) if planned is not None else ()


def waiting_reason(view: SessionView, record: TaskRecord, running: int) -> str | None:
    """Why a pending task has not started, in words; None for a task that is not waiting."""
    if view.status != "RUNNING" or record.status is not TaskState.PENDING:
        return None
    unmet = [d for d in _dependencies(view, record.task_id)
             if d in view.tasks and view.tasks[d].status is not TaskState.SUCCEEDED]
    if unmet:
        more = f" and {len(unmet) - 3} more" if len(unmet) > 3 else ""
        return f"waits for {', '.join(unmet[:3])}{more} to finish"
    if view.queue_reason:
        return view.queue_reason  # the engine's own word: a limit (max_agents, max_concurrent), CPU, memory, a pause
    if running >= view.max_agents:
        return Slots.session_full_reason(view.max_agents)
    return "ready: waiting for a free run of its agent (its max_concurrent) or of the server's pool"


def _spend(view: SessionView) -> list[dict[str, Any]]:
    """Each measure (tokens, usd, seconds) with what was spent, the budget set and the forecast made."""
    rows = []
    for measure in ("tokens", "usd", "seconds"):
        row = {
            "measure": measure,
            "spent": (view.spent or {}).get(measure),
            "budget": (view.budget or {}).get(measure),
            "forecast": (view.forecast or {}).get(measure),
        }
        if any(row[k] is not None for k in ("spent", "budget", "forecast")):
            rows.append(row)
    return rows


def _timeline(view: SessionView, shown: list[TaskRecord], elapsed: float) -> dict[str, Any]:
    attempts: list[tuple[str, AttemptInfo]] = [(r.task_id, a) for r in shown for a in r.attempts if a.started_at]
    attempts.sort(key=lambda pair: pair[1].started_at)
    omitted = max(0, len(attempts) - MAX_LIVE_ATTEMPTS)
    attempts = attempts[omitted:]  # the newest: what is running now is always among them
    spans = [
        (max(a.started_at - view.created_at, 0.0), max((a.finished_at or time.time()) - view.created_at, 0.0))
        for _, a in attempts
    ]
    lanes = assign_lanes(spans)
    span = max([elapsed, *(end for _, end in spans), 1e-3])
    bars = []
    for (task_id, attempt), (start, end), lane in zip(attempts, spans, lanes, strict=True):
        bars.append({
            "task_id": task_id, "attempt": attempt.number, "agent": attempt.agent, "lane": lane,
            "start": round(start, 3), "end": round(max(end, start), 3), "outcome": attempt_outcome(attempt),
            "exit_code": attempt.exit_code, "error": _cap(first_line(attempt.error, _TEXT_CHARS) if attempt.error
                                                         else None),
        })
    return {
        "span": round(span, 3), "ticks": [[round(at, 3), label] for at, label in ticks(span)],
        "axis_title": axis_title(span), "lanes": max(lanes, default=-1) + 1, "bars": bars,
        "attempts_omitted": omitted,
    }


def _graph(view: SessionView, shown: list[TaskRecord]) -> dict[str, Any]:
    ids = {r.task_id for r in shown}
    nodes = [_Node(r.task_id, tuple(d for d in _dependencies(view, r.task_id) if d in ids)) for r in shown]
    geometry = graph_geometry(nodes)
    links = [(dep, n.task_id) for n in nodes for dep in n.dependencies]
    return {
        "width": geometry.width, "height": round(geometry.height, 1), "node_w": NODE_W, "node_h": NODE_H,
        "bands": [{"layer": layer, "left": round(left, 1), "right": round(right, 1)}
                  for layer, (left, right) in geometry.bands.items()],
        "nodes": [{"task_id": n.task_id, "x": round(geometry.position[n.task_id][0], 1),
                   "y": round(geometry.position[n.task_id][1], 1), "layer": geometry.layers[n.task_id]}
                  for n in nodes],
        "edges": [{"from": dep, "to": task_id, "d": geometry.edge_path(dep, task_id)}
                  for dep, task_id in links[:MAX_LIVE_EDGES]],
        "edges_omitted": max(0, len(links) - MAX_LIVE_EDGES),
    }


def live_snapshot(view: SessionView) -> dict[str, Any]:
    """Everything the live view of one session shows, bounded (MAX_LIVE_TASKS, MAX_LIVE_ATTEMPTS, MAX_LIVE_EDGES)."""
    now = time.time()
    elapsed = (view.finished_at or now) - view.created_at
    shown = _shown_tasks(view)
    running = sum(r.status is TaskState.RUNNING for r in view.tasks.values())
    tasks = []
    for record in shown:
        planned = view.plan.get(record.task_id)
        dependencies = _dependencies(view, record.task_id)
        tasks.append({
            "task_id": record.task_id, "agent": record.attempts[-1].agent if record.attempts else record.agent,
            "status": record.status.value, "status_class": css_name(record.status.value),
            "description": _cap(planned.description if planned is not None else None),
            "dependencies": list(dependencies[:_DEPENDENCIES_SHOWN]),
            "dependencies_omitted": max(0, len(dependencies) - _DEPENDENCIES_SHOWN),
            "attempts": len(record.attempts),
            "progress": record.progress, "message": _cap(record.message),
            "waiting": waiting_reason(view, record, running),
            "error": _cap(first_line(record.error, _TEXT_CHARS)) if record.error else None,
            "started_s": round(record.started_at - view.created_at, 3) if record.started_at else None,
            "finished_s": round(record.finished_at - view.created_at, 3) if record.finished_at else None,
        })
    counts = Counter(r.status.value for r in view.tasks.values())
    return {
        "session_id": view.id, "status": view.status, "status_class": css_name(view.status),
        "task_description": _cap(view.task_description, 2000), "live": view.live,
        "created_at": view.created_at, "finished_at": view.finished_at, "generated_at": now,
        "elapsed_s": round(elapsed, 3), "max_agents": view.max_agents, "peak_parallelism": view.peak_parallelism,
        "queue_reason": view.queue_reason, "error_summary": _cap(view.error_summary, 2000),
        "counts": {state.value: counts.get(state.value, 0) for state in TaskState}, "total_tasks": len(view.tasks),
        "spend": _spend(view), "tasks": tasks, "tasks_omitted": len(view.tasks) - len(shown),
        "timeline": _timeline(view, shown, elapsed), "graph": _graph(view, shown),
    }
