"""The dashboard in headless Chromium, on a real HTTP server running a real session: it fills in as agents start
and end, shows hostile ids as text, and its cancel button asks first, then stops the session and its agents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.async_api import Dialog, Page, expect

from parallel_coordinator.cli._dashboard import write_launcher
from tests.conftest import AgentFactory, alive
from tests.report.test_report import HOSTILE
from tests.server.browser import browser_page, css_string, needs_chromium, screenshot_path
from tests.server.test_http import TOKEN, connect, running_http_server
from tests.views.test_live_snapshot import TALKER

pytestmark = [pytest.mark.anyio, needs_chromium]


@pytest.fixture
def served(tmp_path: Path, agents: AgentFactory) -> Iterator[str]:
    agents.script("talker", TALKER)
    env = {"PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root), "PCOORD_TOKEN": TOKEN}
    with running_http_server(env) as url:
        yield url


def task(page: Page, where: str, task_id: str) -> object:
    return page.locator(f"{where}[data-task={css_string(task_id)}]")


def talkers(agents: AgentFactory) -> list[psutil.Process]:
    """Every process running the talker agent's script, wherever it was started from."""
    script = str(agents.root / "talker.py")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if script in (process.info["cmdline"] or []):
            found.append(process)
    return found


async def test_pcoord_dashboards_launcher_page_brings_the_browser_into_the_dashboard_without_the_token(
    served: str, tmp_path: Path
) -> None:
    port = int(served.rsplit(":", 1)[1])
    launcher = write_launcher(tmp_path / "launcher-state", port, f"{served}/dashboard?token={TOKEN}")
    async with browser_page() as page:
        await page.goto(launcher.as_uri())  # as `pcoord dashboard` starts the browser: a file, then our page
        await expect(page).to_have_title("Parallel Coordinator · dashboard")
        assert page.url == f"{served}/dashboard"
        await page.go_back()  # neither the file nor the tokened address stays in the history
        assert page.url == "about:blank"


async def test_the_dashboard_follows_a_session_live_and_its_cancel_asks_then_kills_the_agents(
    served: str, agents: AgentFactory, tmp_path: Path
) -> None:
    released, held = tmp_path / "released", tmp_path / "held"
    http, client = connect(served, TOKEN)
    async with http, client:
        started = await client.call_tool("coordinate_task", {
            "task_description": "watched <b>live</b> in the browser",
            "subtasks": [
                {"id": HOSTILE, "description": json.dumps({"gate": str(released)}), "agent_type": "talker"},
                {"id": "after", "description": "after the hostile one", "agent_type": "echo",
                 "dependencies": [HOSTILE]},
                {"id": "long", "description": json.dumps({"gate": str(held)}), "agent_type": "talker"},
                {"id": "last", "description": "after long", "agent_type": "echo", "dependencies": ["long"]},
            ],
            "options": {"wait_seconds": 0},
        })
        assert started.structured_content is not None
        session_id = started.structured_content["session_id"]

        async with browser_page() as page:
            await page.goto(f"{served}/dashboard?token={TOKEN}&session={session_id}")
            await page.wait_for_url(f"{served}/dashboard?session={session_id}")  # the forwarding page moved on
            assert TOKEN not in page.url and page.url.endswith(f"/dashboard?session={session_id}")
            view = page.locator("#session-view")
            await expect(view).to_have_attribute("data-session", session_id)
            sessions = page.locator(f"#sessions tr[data-session={css_string(session_id)}]")
            await expect(sessions).to_have_attribute("data-status", "RUNNING")

            # Both talkers run and say how far they got; `last` waits for `long`, and says so.
            for running in (HOSTILE, "long"):
                await expect(task(page, "#graph g", running)).to_have_attribute("data-status", "running")
                await expect(task(page, "#live-tasks tr", running).locator("td.message")).to_contain_text(
                    "reading the files")
            await expect(task(page, "#live-tasks tr", "last").locator("td.waiting")).to_have_text(
                "waits for long to finish")
            await expect(page.locator("#timeline rect.attempt.outcome-running")).to_have_count(2)
            await page.screenshot(path=screenshot_path("dashboard-running.png"), full_page=True)

            # The hostile one ends: its node turns green, its dependent runs and ends too.
            released.touch()
            hostile_node = task(page, "#graph g", HOSTILE)
            await expect(hostile_node).to_have_attribute("data-status", "succeeded")
            await expect(task(page, "#graph g", "after")).to_have_attribute("data-status", "succeeded")
            fill = await hostile_node.locator("rect").evaluate("rect => getComputedStyle(rect).fill")
            assert fill == "rgb(47, 158, 91)"  # the report's green (report.css)
            await expect(page.locator("#timeline rect.attempt.outcome-succeeded")).to_have_count(2)
            await page.screenshot(path=screenshot_path("dashboard-progress.png"), full_page=True)

            # Hostile text is text: shown as typed, nothing of it ran or became an element.
            await expect(task(page, "#live-tasks tr", HOSTILE).locator("td.id")).to_have_text(HOSTILE)
            await expect(page.locator(".description")).to_have_text("watched <b>live</b> in the browser")
            assert await page.locator("img, b").count() == 0
            assert await page.evaluate("document.body.getAttribute('data-errors')") is None

            pids = [a["pid"] for a in (await client.call_tool("get_progress_status", {"session_id": session_id}))
                    .structured_content["agents_active"]]  # type: ignore[index]
            assert len(pids) == 1 and alive(pids) == pids

            # Cancel asks first: said no, nothing happens.
            asked: list[str] = []

            async def decline(dialog: Dialog) -> None:
                asked.append(dialog.message)
                await dialog.dismiss()

            page.once("dialog", decline)
            await page.locator('[data-part="cancel"]').click()
            assert asked and session_id in asked[0]
            assert await page.locator('[data-part="cancel-result"]').text_content() == ""

            async def accept(dialog: Dialog) -> None:
                await dialog.accept()

            page.once("dialog", accept)
            await page.locator('[data-part="cancel"]').click()
            await expect(view).to_have_attribute("data-status", "CANCELLED")
            await expect(page.locator('[data-part="cancel-result"]')).to_contain_text("CANCELLED")
            await expect(page.locator('[data-part="cancel"]')).to_be_hidden()
            await expect(task(page, "#graph g", "last")).to_have_attribute("data-status", "cancelled")
            await page.screenshot(path=screenshot_path("dashboard-cancelled.png"), full_page=True)

        status = await client.call_tool("get_progress_status", {"session_id": session_id})
        assert status.structured_content is not None and status.structured_content["status"] == "CANCELLED"
    assert alive(pids) == [] and talkers(agents) == []
