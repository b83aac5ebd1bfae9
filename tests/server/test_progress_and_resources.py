"""Seeing the work through MCP: progress notifications, session and output resources, update events."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.server import create_server
from tests.conftest import AgentFactory

pytestmark = pytest.mark.anyio

# Reports progress three times, each after its dependency-free siblings may have moved on.
STEPPER = """
    import json, sys
    request = json.load(sys.stdin)
    for percent in (25, 50, 75):
        print(json.dumps({"progress": percent, "message": f"step {percent}"}), file=sys.stderr, flush=True)
    print(f"{request['task_id']} finished")
"""


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as connected:
        yield connected


async def test_a_waiting_call_sends_progress_for_every_task_start_and_end_in_order(
    client: Client, agents: AgentFactory
) -> None:
    agents.script("stepper", STEPPER)
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    subtasks = [
        {"id": "a", "description": "x", "agent_type": "stepper"},
        {"id": "b", "description": "x", "agent_type": "stepper", "dependencies": ["a"]},
        {"id": "c", "description": "x", "agent_type": "stepper", "dependencies": ["b"]},
    ]
    result = await client.call_tool(
        "coordinate_task", {"task_description": "chain", "subtasks": subtasks, "options": {"wait_seconds": 60}},
        progress_callback=on_progress,
    )
    assert result.structured_content is not None and result.structured_content["status"] == "SUCCESS"
    values = [u[0] for u in updates]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert all(total == 3 for _, total, _ in updates)
    assert updates[-1][0] == 3 and updates[-1][2] == "3/3 done, 0 running"
    messages = [m for _, _, m in updates]
    # Each of the three tasks was seen running and then counted done.
    for done, task in enumerate("abc"):
        running = next(i for i, m in enumerate(messages) if m and f"stepper {task}" in m)
        assert messages[running].startswith(f"{done}/3 done, 1 running: stepper {task}")
    assert len(updates) >= 7  # start and end of each task, and the final one


async def test_a_call_without_a_progress_token_gets_no_notifications_and_still_works(client: Client) -> None:
    result = await client.call_tool("coordinate_task", {
        "task_description": "plain", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
        "options": {"wait_seconds": 60},
    })
    assert result.structured_content is not None and result.structured_content["status"] == "SUCCESS"


async def test_a_long_output_is_cut_and_its_uri_returns_the_whole_text(client: Client, agents: AgentFactory) -> None:
    agents.script("verbose", "print('line of text ' * 20_000)")
    result = await client.call_tool("coordinate_task", {
        "task_description": "long", "subtasks": [{"id": "v 1/\u00e9", "description": "x", "agent_type": "verbose"}],
        "options": {"wait_seconds": 60, "result_chars": 100},
    })
    assert result.structured_content is not None
    task = result.structured_content["results"][0]
    assert task["output_truncated"] is True and len(task["output"]) == 100
    whole = await client.read_resource(task["output_uri"])
    text = whole.contents[0].text  # type: ignore[union-attr]
    assert len(text) == task["output_chars"] == len("line of text ") * 20_000 + 1


async def test_a_task_id_holding_a_percent_escape_is_read_back_as_itself(client: Client) -> None:
    result = await client.call_tool("coordinate_task", {
        "task_description": "ids", "subtasks": [{"id": "50%41", "description": "x", "agent_type": "echo"}],
        "options": {"wait_seconds": 60},
    })
    assert result.structured_content is not None
    task = result.structured_content["results"][0]
    whole = await client.read_resource(task["output_uri"])  # decoded once: '50%41', not '50A'
    assert whole.contents[0].text.startswith("50%41 done")  # type: ignore[union-attr]


async def test_the_total_cap_keeps_many_results_small(client: Client, agents: AgentFactory) -> None:
    agents.script("verbose", "print('z' * 5_000)")
    result = await client.call_tool("coordinate_task", {
        "task_description": "wide",
        "subtasks": [{"id": f"t{i}", "description": "x", "agent_type": "verbose"} for i in range(20)],
        "options": {"wait_seconds": 60, "total_result_chars": 10_000},
    })
    assert result.structured_content is not None
    outputs = [r["output"] for r in result.structured_content["results"]]
    assert sum(len(o) for o in outputs) == 10_000
    assert all(r["output_uri"] for r in result.structured_content["results"])


async def test_a_session_is_a_resource_with_the_same_json_as_progress_status(client: Client) -> None:
    result = await client.call_tool("coordinate_task", {
        "task_description": "r", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
        "options": {"wait_seconds": 60},
    })
    assert result.structured_content is not None
    session_id = result.structured_content["session_id"]
    resource = await client.read_resource(f"pcoord://sessions/{session_id}")
    as_resource = json.loads(resource.contents[0].text)  # type: ignore[union-attr]
    status = (await client.call_tool("get_progress_status", {"session_id": session_id})).structured_content
    assert status is not None
    for key in ("session_id", "status", "total_tasks", "completed", "failed"):
        assert as_resource[key] == status[key]
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert templates == {"pcoord://sessions/{session_id}", "pcoord://sessions/{session_id}/tasks/{task_id}"}


async def test_reading_an_unknown_session_resource_names_it(client: Client) -> None:
    with pytest.raises(Exception, match="nope"):
        await client.read_resource("pcoord://sessions/nope")


async def test_a_huge_unknown_session_or_task_in_a_resource_uri_is_named_shortened(client: Client) -> None:
    # Under the SDK's own URI bound (64 KiB; past it, the SDK refuses the URI itself, quoting it whole).
    with pytest.raises(MCPError) as unknown_session:
        await client.read_resource(f"pcoord://sessions/{'s' * 60_000}")
    assert "(60,000 characters)" in str(unknown_session.value) and len(str(unknown_session.value)) < 1_000
    result = await client.call_tool("coordinate_task", {
        "task_description": "r", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
        "options": {"wait_seconds": 60},
    })
    assert result.structured_content is not None
    with pytest.raises(MCPError) as unknown_task:
        await client.read_resource(f"pcoord://sessions/{result.structured_content['session_id']}/tasks/{'t' * 60_000}")
    assert "has no task 'tttt" in str(unknown_task.value) and len(str(unknown_task.value)) < 1_000


async def test_listeners_are_told_when_a_session_and_its_task_outputs_change(
    client: Client, coordinator: Coordinator
) -> None:
    seen: list[str] = []
    options = CoordinateOptions(wait_seconds=0)
    plan = coordinator.plan([Subtask(id="a", description="x", agent_type="echo")], options)
    session = await coordinator.start("listened", plan, options)
    session_uri = f"pcoord://sessions/{session.id}"
    task_uri = f"pcoord://sessions/{session.id}/tasks/a"
    async with client.listen(resource_subscriptions=[session_uri, task_uri]) as subscription:
        with anyio.fail_after(30):
            async for event in subscription:
                seen.append(str(event.uri))  # type: ignore[union-attr]
                if task_uri in seen and session.done.is_set():
                    break
    assert task_uri in seen and session_uri in seen


async def test_every_task_event_is_logged_as_json_lines(client: Client, coordinator: Coordinator) -> None:
    result = await client.call_tool("coordinate_task", {
        "task_description": "logged",
        "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"},
                     {"id": "b", "description": "x", "agent_type": "failer", "dependencies": ["a"]},
                     {"id": "c", "description": "x", "agent_type": "echo", "dependencies": ["b"]}],
        "options": {"wait_seconds": 60, "retry_attempts": 1},
    })
    assert result.structured_content is not None
    log = Path(coordinator.settings.logs_dir) / f"{result.structured_content['session_id']}.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = [(e["kind"], e.get("task_id"), e.get("status")) for e in events if e["kind"] != "progress"]
    assert kinds[0] == ("session_started", None, None)
    assert kinds[-1] == ("session_ended", None, "PARTIAL")
    assert ("task_ended", "a", "succeeded") in kinds
    assert ("attempt_ended", "b", "exited") in kinds
    assert ("task_ended", "b", "failed") in kinds
    assert ("task_ended", "c", "skipped") in kinds
    assert all(isinstance(e["ts"], float) for e in events)
