"""Burst batching: small tasks of one agent share one run (one start-up, one system prompt), split back after.

Pure text in and out. Which runners batch is theirs to say (`Runner.batches`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from parallel_coordinator.planning.graph import TaskNode

BURST_BATCH_SIZE = 8
_BATCH_MARKER = re.compile(r"^=== task: (.+?) ===[ \t]*$", re.MULTILINE)


def batch_prompt(nodes: Sequence[TaskNode]) -> str:
    sections = "\n\n".join(f"=== task: {n.id} ===\n{n.description}" for n in nodes)
    return (
        f"You have {len(nodes)} small tasks. Answer every one, in the order given. Begin each answer with a"
        " line of its own that repeats its marker exactly, for example `=== task: "
        f"{nodes[0].id} ===`, and put nothing else on that line.\n\n{sections}"
    )


def split_batch(answer: str, task_ids: Sequence[str]) -> dict[str, str]:
    """Each task's part of a batched answer, by its marker line; tasks without one are left out."""
    wanted = set(task_ids)
    found = list(_BATCH_MARKER.finditer(answer))
    parts: dict[str, str] = {}
    for marker, following in zip(found, [*found[1:], None], strict=True):
        task_id = marker.group(1).strip()
        if task_id in wanted and task_id not in parts:
            end = following.start() if following else len(answer)
            parts[task_id] = answer[marker.end():end].strip("\n")
    return parts


def combined_node(nodes: Sequence[TaskNode], default_timeout_s: float) -> TaskNode:
    """The one node a batch runs as: every member's prompt and dependencies, the longest timeout, one attempt."""
    first = nodes[0]
    return TaskNode(
        id=first.id, description=batch_prompt(nodes), agent=first.agent,
        dependencies=tuple(dict.fromkeys(d for n in nodes for d in n.dependencies)),
        priority=min(n.priority for n in nodes),
        timeout_s=max((n.timeout_s or default_timeout_s) for n in nodes),
        max_attempts=1,
    )


def batch_note(agent: str, batch: Sequence[str], answered: int) -> str:
    return (
        f"batched {len(batch)} tasks of {agent} in one run ({', '.join(batch)}); {answered} answered there"
        + (f", tokens and cost counted on {batch[0]!r}" if answered else "")
    )
