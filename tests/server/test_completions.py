"""completion/complete for session ids (and a session's task ids), through a real in-memory MCP client."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp_types import PromptReference, ResourceTemplateReference

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.server import create_server
from parallel_coordinator.server.completions import MAX_VALUES

pytestmark = pytest.mark.anyio

SESSION_TEMPLATE = ResourceTemplateReference(uri="pcoord://sessions/{session_id}")
TASK_TEMPLATE = ResourceTemplateReference(uri="pcoord://sessions/{session_id}/tasks/{task_id}")
# Both protocol eras: the handshake (what Claude Code's stdio servers speak) and 2026-07-28.
eras = pytest.mark.parametrize("mode", ["legacy", "auto"])  # in process, "auto" speaks 2026-07-28


async def finished_sessions(coordinator: Coordinator, count: int) -> list[str]:
    """The ids of `count` ended sessions of one echo task each, newest first (past the first, each reuses
    the first one's result, so no agent runs)."""
    options = CoordinateOptions(wait_seconds=0, reuse_results="server")
    ids = []
    for _ in range(count):
        plan = coordinator.plan([Subtask(id="t", description="same", agent_type="echo")], options)
        session = await coordinator.start("completed", plan, options)
        await coordinator.wait(session, 60)
        assert session.done.is_set()
        ids.append(session.id)
    return ids[::-1]


def server_with_a_session_prompt(coordinator: Coordinator) -> MCPServer[Coordinator]:
    server = create_server(coordinator=coordinator)

    @server.prompt(name="review_session", description="Review what a session produced.")
    def review_session(session_id: str) -> str:
        return f"Read pcoord://sessions/{session_id} and review it."

    return server


@eras
async def test_the_session_template_completes_the_callers_session_ids_newest_first(
    coordinator: Coordinator, mode: str
) -> None:
    ids = await finished_sessions(coordinator, 3)
    async with Client(create_server(coordinator=coordinator), mode=mode) as client:
        assert client.server_capabilities.completions is not None
        everything = (await client.complete(SESSION_TEMPLATE, {"name": "session_id", "value": ""})).completion
        assert everything.values == ids and everything.total == 3 and everything.has_more is False
        prefix = ids[1][:6]
        typed = (await client.complete(SESSION_TEMPLATE, {"name": "session_id", "value": prefix})).completion
        assert typed.values == [sid for sid in ids if sid.startswith(prefix)] and ids[1] in typed.values
        none = (await client.complete(SESSION_TEMPLATE, {"name": "session_id", "value": "zz-no-such"})).completion
        assert none.values == [] and none.total == 0


async def test_at_most_a_hundred_values_come_back_and_has_more_says_so(coordinator: Coordinator) -> None:
    ids = await finished_sessions(coordinator, MAX_VALUES + 1)
    async with Client(create_server(coordinator=coordinator)) as client:
        capped = (await client.complete(SESSION_TEMPLATE, {"name": "session_id", "value": ""})).completion
    assert capped.values == ids[:MAX_VALUES]
    assert capped.total == MAX_VALUES + 1 and capped.has_more is True


@eras
async def test_the_task_template_completes_session_ids_and_then_the_sessions_task_ids(
    coordinator: Coordinator, mode: str
) -> None:
    options = CoordinateOptions(wait_seconds=0)
    plan = coordinator.plan([Subtask(id=name, description="x", agent_type="echo") for name in ("api", "app", "db")],
                            options)
    session = await coordinator.start("three", plan, options)
    async with Client(create_server(coordinator=coordinator), mode=mode) as client:
        sessions = (await client.complete(TASK_TEMPLATE, {"name": "session_id", "value": ""})).completion
        assert sessions.values == [session.id]
        tasks = (await client.complete(TASK_TEMPLATE, {"name": "task_id", "value": "a"}, {"session_id": session.id}))
        assert tasks.completion.values == ["api", "app"]
        unknown = await client.complete(TASK_TEMPLATE, {"name": "task_id", "value": ""}, {"session_id": "nope"})
        assert unknown.completion.values == []
        # Without the session, there is no knowing which tasks.
        assert (await client.complete(TASK_TEMPLATE, {"name": "task_id", "value": ""})).completion.values == []


@eras
async def test_a_prompt_argument_named_session_id_completes_and_other_arguments_do_not(
    coordinator: Coordinator, mode: str
) -> None:
    ids = await finished_sessions(coordinator, 2)
    async with Client(server_with_a_session_prompt(coordinator), mode=mode) as client:
        review = PromptReference(name="review_session")
        offered = (await client.complete(review, {"name": "session_id", "value": ""})).completion
        assert offered.values == ids
        task = await client.complete(PromptReference(name="parallelize"), {"name": "task", "value": "a"})
        assert task.completion.values == []


async def test_an_unknown_prompt_or_template_completes_to_nothing_rather_than_failing(coordinator: Coordinator) -> None:
    await finished_sessions(coordinator, 1)
    async with Client(create_server(coordinator=coordinator)) as client:
        # The public conformance suite asks this of every server, and expects an empty answer.
        suites = PromptReference(name="test_prompt_with_arguments")
        unknown = await client.complete(suites, {"name": "arg1", "value": "t"})
        assert unknown.completion.values == []
        other = ResourceTemplateReference(uri="test://{session_id}")
        assert (await client.complete(other, {"name": "session_id", "value": ""})).completion.values == []
