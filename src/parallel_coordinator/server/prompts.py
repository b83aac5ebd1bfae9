"""The `parallelize` prompt: teaches a calling assistant to write a good subtasks graph for this server."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context, MCPServer

from parallel_coordinator.tools._context import coordinator_of

GUIDE = """\
Split this task into subtasks for the `coordinate_task` tool of Parallel Coordinator, which runs
them on many agents at once.

Task: {task}

How to write the `subtasks` graph:
1. Make each subtask one self-contained job for one agent, with a short `id` ("api", "tests") and a
   `description` that says exactly what to produce; the agent sees only its own description, the
   overall task and the outputs of its dependencies.
2. Pick `agent_type` from the agents below by what they are for. Leave it out only when none fits:
   the server then routes the subtask by its description.
3. Add a dependency only when a subtask needs another's output. Everything without dependencies
   runs at once, so a wide graph finishes sooner than a long chain. No cycles.
4. Give `priority` 1 to what is urgent and `expected_duration` (seconds) when you know it: the
   scheduler starts long chains first.
5. End with one subtask that depends on the others and merges their results, when the user wants
   one answer.
6. Call coordinate_task with `options.dry_run: true` first to check the plan, then without it. If
   it answers RUNNING, follow it with get_progress_status(session_id, wait_seconds=45): some clients
   (Claude Desktop) drop a call that lasts a minute.

Agents available ({count}):
{agents}
"""


def register_prompts(server: MCPServer[Any]) -> None:
    @server.prompt(
        name="parallelize",
        description="How to turn a task into a good subtasks graph for coordinate_task, with the agents available.",
    )
    async def parallelize(task: str, ctx: Context[Any, Any]) -> str:
        catalog = await coordinator_of(ctx).catalog()
        lines = [
            f"- {agent.name}: {agent.description.strip().splitlines()[0][:160] if agent.description.strip() else ''}"
            for agent in sorted(catalog.agents.values(), key=lambda a: a.name)
        ]
        return GUIDE.format(task=task, count=len(lines), agents="\n".join(lines) or "(none found)")
