"""Result reuse: identical tasks (same agent, description and context) run once, within a session or
across the server's sessions; a twin still running is waited for rather than run again."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import anyio

from parallel_coordinator.engine.session import RECHECK_S, CachedResult, Session
from parallel_coordinator.planning.graph import TaskNode
from parallel_coordinator.runners.base import RunResult
from parallel_coordinator.state.retained import ServerResultCache


def cache_key(agent: str, description: str, context: dict[str, str]) -> str:
    payload = json.dumps([agent, description, sorted(context.items())], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResultReuse:
    def __init__(self) -> None:
        self.server_cache = ServerResultCache()

    async def find(self, session: Session, node: TaskNode) -> tuple[str | None, RunResult | None]:
        """The cache key this task's result should be published under, and a result to reuse instead of running."""
        mode = session.policy.reuse_results
        if mode == "off" or node.replica_of is not None:  # replicas are independent runs by design: never merged
            return None, None
        context = {dep: session.tasks[dep].kept.identity() for dep in node.dependencies}
        schema = json.dumps(node.output_schema, sort_keys=True) if node.output_schema is not None else ""
        key = cache_key(node.agent, node.description + schema, context)
        source: tuple[str, RunResult] | None = None
        twin = session.result_cache.get(key)
        if twin is not None:
            record = session.tasks[node.id]
            record.waiting_for = twin.task_id  # runs no agent meanwhile: shown as waiting, not active
            session.notify()
            while not twin.done.is_set() and session.stop_reason is None:
                with anyio.move_on_after(RECHECK_S):
                    await twin.done.wait()
            record.waiting_for = None
            if twin.result is not None and twin.result.ok:
                source = (twin.task_id, twin.result)
        elif mode == "server":
            source = self.server_cache.get(key)
        if source is None:
            if twin is None:
                session.result_cache[key] = CachedResult(node.id)
            return key, None
        origin, result = source
        session.notes.append(f"task {node.id!r} reused the result of {origin!r} (same agent, description and context)")
        return None, RunResult(
            ok=True, output=result.output, kept=result.kept, output_json=result.output_json, qa=result.qa,
            details={"reason": "reused", "from": origin},
        )

    def publish(self, session: Session, key: str, task_id: str, result: RunResult) -> None:
        """Hand a finished task's result to its waiting twins, and to later sessions when reuse is server-wide.

        Twins get the output as it is now kept (its head and file), never a whole copy in memory.
        """
        kept = session.tasks[task_id].kept
        result = dataclasses.replace(result, output=kept.head, kept=kept)
        entry = session.result_cache.get(key)
        if entry is not None and entry.task_id == task_id:
            entry.result = result
            entry.done.set()
        if result.ok and session.policy.reuse_results == "server":
            self.server_cache.put(key, f"{session.id}/{task_id}", result)
