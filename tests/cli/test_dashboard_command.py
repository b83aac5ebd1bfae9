"""`pcoord dashboard`: a local dashboard over the state directory, showing and cancelling a session another
process runs, and stopping cleanly on Ctrl-C with a page still open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx2
import pytest

from parallel_coordinator.state.store import Store
from tests.cli.test_cli import environment, hanging_plan
from tests.conftest import AgentFactory, alive
from tests.server.test_dashboard import events

pytestmark = pytest.mark.anyio


@dataclass
class Running:
    run: subprocess.Popen[str]  # `pcoord run` of a plan whose agent hangs
    dashboard: subprocess.Popen[str]  # `pcoord dashboard --no-browser` on the same state directory
    pids: list[int]  # the agent's processes
    session_id: str
    address: str  # the address the dashboard printed


@pytest.fixture
def running(tmp_path: Path, agents: AgentFactory) -> Iterator[Running]:
    fifo, plan = hanging_plan(tmp_path, agents)
    env = {**os.environ, **environment(tmp_path, agents)}
    env.pop("PCOORD_TOKEN", None)
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "run", str(plan), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as run, subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "dashboard", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as dashboard:
        try:
            pids = json.loads(fifo.read_text())  # blocks until the agent is up
            store = Store(tmp_path / "state" / "state.db")
            ((session_id, _, _, _),) = store.recent_sessions()
            store.close()
            assert dashboard.stdout is not None
            line = dashboard.stdout.readline()  # blocks until it prints its address
            assert line.startswith(f"dashboard of {tmp_path / 'state'}: http://127.0.0.1:"), line
            yield Running(run, dashboard, pids, session_id, line.split(": ", 1)[1].strip())
        finally:
            for process in (run, dashboard):
                if process.poll() is None:  # a failed test: Ctrl-C ends each, and the agent with the run
                    process.send_signal(signal.SIGINT)


async def test_the_dashboard_shows_and_cancels_a_session_another_process_runs_and_stops_on_ctrl_c(
    running: Running,
) -> None:
    session_id, address = running.session_id, running.address
    base = address.split("/dashboard")[0]
    async with httpx2.AsyncClient(timeout=60) as http:
        assert (await http.get(address)).status_code == 200  # the token becomes the cookie
        async with events(http, f"{base}/dashboard/events?session={session_id}") as stream:
            with anyio.fail_after(60):
                async for event, data in stream:
                    if event == "snapshot" and data["counts"]["running"] == 1:  # type: ignore[index]
                        break
                    if event == "sessions":
                        assert [s["session_id"] for s in data["sessions"]] == [session_id]  # type: ignore[attr-defined]
        answer = await http.post(f"{base}/dashboard/sessions/{session_id}/cancel",
                                 headers={"X-Pcoord-Dashboard": "cancel"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "CANCELLED", answer.json()
        stdout, stderr = running.run.communicate(timeout=60)
        assert running.run.returncode == 1, stderr
        assert json.loads(stdout)["status"] == "CANCELLED"
        assert alive(running.pids) == []

        # Ctrl-C with a page still following: the dashboard ends its stream and stops, exit 0.
        async with events(http, f"{base}/dashboard/events?session={session_id}") as stream:
            await anext(stream)
            running.dashboard.send_signal(signal.SIGINT)
            _, errors = running.dashboard.communicate(timeout=30)
    assert running.dashboard.returncode == 0, errors
    assert "Traceback" not in errors


# A browser that waits for its page, as BROWSER=firefox (not yet running) or a console browser (w3m, lynx) does:
# webbrowser.open() returns only when it exits. It is given a local page that sends it on, as a browser follows it.
WAITING_BROWSER = """#!{python}
import html, http.cookiejar, os, re, stat, sys, urllib.error, urllib.parse, urllib.request
print(f"the browser was started with {{sys.argv[1:]}}", file=sys.stderr, flush=True)
launcher = urllib.parse.urlparse(sys.argv[1])
mode = stat.S_IMODE(os.stat(launcher.path).st_mode)
page = open(launcher.path, encoding="utf-8").read()
target = html.unescape(re.search(r'url=([^"]+)"', page).group(1))
try:  # with cookies, as a browser: the redirect's cookie opens the page
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(target, timeout=10)
    answer = "a page"
except urllib.error.HTTPError as exc:
    answer = f"HTTP {{exc.code}}"
except OSError as exc:
    answer = f"no answer ({{exc}})"
print(f"the browser got {{answer}} through a page of mode {{mode:o}}", file=sys.stderr, flush=True)
"""


def test_a_browser_that_waits_for_its_page_gets_it_and_its_command_line_carries_no_token(tmp_path: Path) -> None:
    browser = tmp_path / "browser"
    browser.write_text(WAITING_BROWSER.format(python=sys.executable))
    browser.chmod(0o755)
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "HOME": str(tmp_path / "home"),
           "BROWSER": str(browser)}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "dashboard"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as dashboard:
        assert dashboard.stderr is not None and dashboard.stdout is not None
        try:
            token = dashboard.stdout.readline().split("token=")[1].strip()
            started = next(line for line in dashboard.stderr if line.startswith("the browser was started with"))
            said = next(line for line in dashboard.stderr if line.startswith("the browser got"))
        finally:
            dashboard.send_signal(signal.SIGINT)
            dashboard.communicate(timeout=30)
    # Every local user can read a command line: the browser's names an owner-only page, not the token.
    assert token not in started and "dashboard-" in started
    assert not list((tmp_path / "state").glob("dashboard-*.html"))  # gone with the run, and its token with it
    assert said.strip() == "the browser got a page through a page of mode 600"
