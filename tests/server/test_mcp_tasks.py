"""MCP tasks (io.modelcontextprotocol/tasks): a client that declares the extension gets a task handle."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from mcp import Client
from mcp.client.extension import ClaimContext, ClientExtension, ResultClaim
from mcp_types import CallToolResult, Request, RequestParams, Result
from pydantic import ConfigDict

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory, alive, wait_until
from tests.engine.test_coordinator import HANG_WITH_CHILD

pytestmark = pytest.mark.anyio

TASKS = "io.modelcontextprotocol/tasks"


class TaskHandle(Result):
    model_config = ConfigDict(extra="allow")
    result_type: Literal["task"]
    task_id: str
    status: str


class TaskState(Result):
    model_config = ConfigDict(extra="allow")
    task_id: str
    status: str
    result: dict[str, Any] | None = None
    status_message: str | None = None


class TaskIdParams(RequestParams):
    task_id: str


class TaskRequest(Request[TaskIdParams, str]):
    pass


class TasksClient(ClientExtension):
    """A minimal requester side of the extension: follow the task to its end, as a client would."""

    identifier = TASKS

    def __init__(self) -> None:
        self.handles: list[TaskHandle] = []
        self.polls: list[TaskState] = []

    def claims(self) -> list[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=TaskHandle, resolve=self.follow)]

    async def follow(self, handle: TaskHandle, ctx: ClaimContext) -> CallToolResult:
        self.handles.append(handle)
        while True:
            state = await ctx.session.send_request(
                TaskRequest(method="tasks/get", params=TaskIdParams(task_id=handle.task_id)), TaskState
            )
            self.polls.append(state)
            if state.status != "working":
                assert state.result is not None
                return CallToolResult.model_validate(state.result)
            await anyio.sleep(0.05)  # the client's polling pace (the server suggests pollIntervalMs)


DIAMOND = [
    {"id": "a", "description": "root", "agent_type": "echo"},
    {"id": "b", "description": "left", "agent_type": "echo", "dependencies": ["a"]},
    {"id": "c", "description": "right", "agent_type": "echo", "dependencies": ["a"]},
    {"id": "d", "description": "join", "agent_type": "echo", "dependencies": ["b", "c"]},
]


async def test_a_client_that_declares_tasks_gets_a_handle_and_follows_it_to_the_result(
    coordinator: Coordinator,
) -> None:
    tasks = TasksClient()
    async with Client(create_server(coordinator=coordinator), extensions=[tasks]) as client:
        result = await client.call_tool("coordinate_task", {
            "task_description": "diamond as a task", "subtasks": DIAMOND, "options": {"wait_seconds": 600},
        })
    assert len(tasks.handles) == 1  # answered with a handle at once, not after the 600 s wait
    assert tasks.handles[0].status == "working"
    assert result.structured_content is not None and result.structured_content["status"] == "SUCCESS"
    assert result.structured_content["session_id"] == tasks.handles[0].task_id
    assert tasks.polls[-1].status == "completed"


async def test_a_client_without_the_extension_keeps_the_plain_behaviour(coordinator: Coordinator) -> None:
    async with Client(create_server(coordinator=coordinator)) as client:
        result = await client.call_tool("coordinate_task", {
            "task_description": "plain", "subtasks": DIAMOND, "options": {"wait_seconds": 60},
        })
    assert result.structured_content is not None and result.structured_content["status"] == "SUCCESS"


async def test_tasks_cancel_stops_the_session_and_kills_its_agents(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    spec = json.dumps({"folder": str(tmp_path)})
    async with Client(create_server(coordinator=coordinator), extensions=[TasksClient()]) as client:
        handle = await client.session.call_tool("coordinate_task", {
            "task_description": "hang", "subtasks": [{"id": "h", "description": spec, "agent_type": "hang"}],
        }, allow_claimed=True)
        assert isinstance(handle, TaskHandle)
        session = coordinator.sessions[handle.task_id]
        await wait_until(session, lambda: session.tasks["h"].progress is not None)
        pids = json.loads((tmp_path / "h.pids").read_text())
        cancelled = await client.session.send_request(
            TaskRequest(method="tasks/cancel", params=TaskIdParams(task_id=handle.task_id)), TaskState
        )
        assert cancelled.status == "cancelled"
        assert alive(pids) == []
        with pytest.raises(Exception, match="unknown task 'nope'"):
            await client.session.send_request(
                TaskRequest(method="tasks/get", params=TaskIdParams(task_id="nope")), TaskState
            )


async def test_a_handshake_era_client_gets_the_plain_result_even_if_it_advertises_tasks(
    coordinator: Coordinator,
) -> None:
    async with Client(create_server(coordinator=coordinator), mode="legacy", extensions=[TasksClient()]) as client:
        result = await client.call_tool("coordinate_task", {
            "task_description": "legacy", "subtasks": DIAMOND, "options": {"wait_seconds": 60},
        })
    assert result.structured_content is not None and result.structured_content["status"] == "SUCCESS"
