"""The session view as an MCP App (io.modelcontextprotocol/ui): what a real client sees of it, and the app itself
in headless Chromium inside a minimal host page that answers ui/initialize and proxies tools/call to the server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from playwright.async_api import expect

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.server import create_server
from parallel_coordinator.tools.session_view import SESSION_VIEW_URI
from tests.conftest import AgentFactory, alive, wait_until
from tests.report.test_report import HOSTILE
from tests.server.browser import browser_page, css_string, needs_chromium, screenshot_path
from tests.views.test_live_snapshot import TALKER

pytestmark = pytest.mark.anyio

APP_MIME_TYPE = "text/html;profile=mcp-app"


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as connected:
        yield connected


async def test_the_session_tools_point_at_the_app_and_the_app_is_served_as_an_mcp_app(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    for name in ("coordinate_task", "get_progress_status"):
        assert tools[name].meta == {"ui": {"resourceUri": SESSION_VIEW_URI}}, name
    # The app's own tool is for the app: hosts keep it from the model.
    assert tools["get_session_view"].meta == {"ui": {"resourceUri": SESSION_VIEW_URI, "visibility": ["app"]}}
    listed = {str(r.uri): r for r in (await client.list_resources()).resources}
    assert listed[SESSION_VIEW_URI].mime_type == APP_MIME_TYPE
    read = await client.read_resource(SESSION_VIEW_URI)
    [content] = read.contents
    assert content.mime_type == APP_MIME_TYPE
    html = getattr(content, "text", "")
    assert html.startswith("<!DOCTYPE html>") and 'id="session-view"' in html
    assert "connect-src 'none'" in html and "unsafe-inline" not in html  # it talks to nothing but its host


async def test_the_text_answers_stay_those_of_a_client_without_the_extension(client: Client) -> None:
    # The app gets its data from its own tool: the answers every client reads carry nothing of it.
    answer = await client.call_tool("coordinate_task", {"task_description": "x", "options": {"dry_run": True}})
    assert answer.structured_content is not None
    assert "timeline" not in json.dumps(answer.structured_content) and "graph" not in answer.structured_content


# A minimal MCP Apps host: the app in a sandboxed frame, ui/initialize answered, the tool's result handed over,
# and every tools/call passed to the test's real MCP client (window.callTool, exposed by Playwright).
HOST = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>test host</title></head>
<body><iframe id="app" sandbox="allow-scripts" style="width:1240px;height:900px;border:0"></iframe>
<script>
  var frame = document.getElementById("app");
  window.seen = [];
  function post(message) { frame.contentWindow.postMessage(message, "*"); }
  window.addEventListener("message", async function (event) {
    if (event.source !== frame.contentWindow) { return; }
    var message = event.data;
    window.seen.push(message.method || "response");
    if (message.method === "ui/initialize") {
      post({jsonrpc: "2.0", id: message.id, result: {protocolVersion: message.params.protocolVersion,
        hostInfo: {name: "test-host", version: "1"}, hostCapabilities: {serverTools: {}},
        hostContext: {theme: "light", displayMode: "inline"}}});
    } else if (message.method === "ui/notifications/initialized") {
      post({jsonrpc: "2.0", method: "ui/notifications/tool-input", params: {arguments: window.toolArguments}});
      post({jsonrpc: "2.0", method: "ui/notifications/tool-result", params: window.toolResult});
    } else if (message.method === "tools/call") {
      var result = await window.callTool(message.params.name, message.params.arguments);
      post({jsonrpc: "2.0", id: message.id, result: result});
    } else if (message.method === "ui/notifications/size-changed") {
      frame.style.height = Math.min(message.params.height, 4000) + "px";
    }
  });
  window.startApp = function (html, toolArguments, toolResult) {
    window.toolArguments = toolArguments;
    window.toolResult = toolResult;
    frame.srcdoc = html;
  };
</script></body></html>"""


@needs_chromium
async def test_the_app_in_a_host_draws_the_session_live_and_cancels_it_through_the_host(
    coordinator: Coordinator, client: Client, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("talker", TALKER)
    released, held = tmp_path / "released", tmp_path / "held"
    arguments = {
        "task_description": "followed inside the conversation",
        "subtasks": [
            {"id": HOSTILE, "description": json.dumps({"gate": str(released)}), "agent_type": "talker"},
            {"id": "long", "description": json.dumps({"gate": str(held)}), "agent_type": "talker"},
            {"id": "last", "description": "after long", "agent_type": "echo", "dependencies": ["long"]},
        ],
        "options": {"wait_seconds": 0},
    }
    started = await client.call_tool("coordinate_task", arguments)
    assert started.structured_content is not None
    session_id = started.structured_content["session_id"]
    session = coordinator.sessions[session_id]
    html = getattr((await client.read_resource(SESSION_VIEW_URI)).contents[0], "text", "")
    calls: list[str] = []

    async def call_tool(name: str, tool_arguments: dict[str, Any]) -> dict[str, Any]:
        calls.append(name)
        result = await client.call_tool(name, tool_arguments)
        return result.model_dump(mode="json", by_alias=True, exclude_none=True)

    async with browser_page() as page:
        await page.route("http://host.test/**", lambda route: route.fulfill(body=HOST, content_type="text/html"))
        await page.expose_function("callTool", call_tool)
        await page.goto("http://host.test/host.html")
        await page.evaluate("([html, args, result]) => window.startApp(html, args, result)",
                            [html, arguments, started.model_dump(mode="json", by_alias=True, exclude_none=True)])
        app = page.frame_locator("#app")
        view = app.locator("#session-view")
        await expect(view).to_have_attribute("data-session", session_id)
        for running in (HOSTILE, "long"):
            await expect(app.locator(f"#graph g[data-task={css_string(running)}]")).to_have_attribute(
                "data-status", "running")
        waiting = app.locator('#live-tasks tr[data-task="last"] td.waiting')
        await expect(waiting).to_have_text("waits for long to finish")
        released.touch()
        await expect(app.locator(f"#graph g[data-task={css_string(HOSTILE)}]")).to_have_attribute(
            "data-status", "succeeded")
        await expect(app.locator(f"#live-tasks tr[data-task={css_string(HOSTILE)}] td.id")).to_have_text(HOSTILE)
        await page.screenshot(path=screenshot_path("mcp-app-running.png"), full_page=True)
        assert "ui/initialize" in await page.evaluate("window.seen")
        assert set(calls) == {"get_session_view"}  # read-only until the user asks for more

        await wait_until(session, lambda: all(r.pid is not None for r in session.running()))
        pids = [r.pid for r in session.running() if r.pid is not None]
        assert pids and alive(pids) == pids
        await app.locator('[data-part="cancel"]').click()  # asks first, inline: nothing is sent yet
        assert "cancel_execution" not in calls
        await app.locator('[data-part="confirm-cancel"]').click()
        await expect(view).to_have_attribute("data-status", "CANCELLED")
        await expect(app.locator('[data-part="cancel-result"]')).to_contain_text("CANCELLED")
        await expect(app.locator('#graph g[data-task="last"]')).to_have_attribute("data-status", "cancelled")
        await page.screenshot(path=screenshot_path("mcp-app-cancelled.png"), full_page=True)
        assert await app.locator("body").get_attribute("data-errors") is None
    assert "cancel_execution" in calls and session.status == "CANCELLED"
    assert alive(pids) == []
