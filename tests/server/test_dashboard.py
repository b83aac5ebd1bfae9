"""`GET /dashboard` over a real HTTP server: the token once then a cookie, the event stream, cancel that only
the page itself can send, each token's own sessions, and a bound on open streams that frees on disconnect."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest

from parallel_coordinator.server.dashboard import MAX_STREAMS, MAX_STREAMS_PER_PRINCIPAL
from tests.conftest import AgentFactory
from tests.server.test_http import OTHER, TOKEN, connect, free_port, running_http_server
from tests.server.test_subscriptions import gated_agent

THIRD = "a-third-token-5555555555"

pytestmark = pytest.mark.anyio


@pytest.fixture
def server(tmp_path: Path, agents: AgentFactory) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`pcoord serve --transport http` with two tokens; yields its URL and the process (its output unread: uvicorn
    writes its access log to stdout, a few lines that fit the pipe)."""
    gated_agent(agents, tmp_path / "gate")
    port = free_port()
    env = {**os.environ, "PCOORD_STATE_DIR": str(tmp_path / "state"), "PCOORD_AGENT_DIRS": str(agents.root),
           "PCOORD_TOKEN": TOKEN, "PCOORD_TOKENS": f"bob={OTHER},carol={THIRD}"}
    with subprocess.Popen(
        [sys.executable, "-m", "parallel_coordinator", "serve", "--transport", "http", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("the HTTP server exited before it listened")
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            process.terminate()
            process.wait(timeout=30)


async def start_gated(url: str, token: str = TOKEN) -> str:
    http, client = connect(url, token)
    async with http, client:
        started = await client.call_tool("coordinate_task", {
            "task_description": "seen live", "subtasks": [{"id": "a", "description": "x", "agent_type": "gated"}],
            "options": {"wait_seconds": 0},
        })
    assert started.structured_content is not None
    return str(started.structured_content["session_id"])


@asynccontextmanager
async def events(http: httpx2.AsyncClient, url: str) -> AsyncIterator[AsyncIterator[tuple[str, dict[str, object]]]]:
    """The (event, data) pairs of one dashboard stream, as they come."""
    async with http.stream("GET", url) as response:
        assert response.status_code == 200, await response.aread()

        async def pairs() -> AsyncIterator[tuple[str, dict[str, object]]]:
            event = ""
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    yield event, json.loads(line[6:])

        yield pairs()


async def test_the_token_is_taken_once_from_the_address_and_kept_as_a_strict_http_only_cookie(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, process = server
    async with httpx2.AsyncClient(timeout=30) as http:
        assert (await http.get(f"{url}/dashboard")).status_code == 401
        assert (await http.get(f"{url}/dashboard", params={"token": "not-the-token-at-all"})).status_code == 401
        answer = await http.get(f"{url}/dashboard", params={"token": TOKEN, "session": "abc"})
        # A page that moves on by itself, not a redirect: the browser sends a Strict cookie to the next page only
        # when the navigation to it starts on this site (test_dashboard_browser, the launcher).
        assert answer.status_code == 200 and 'content="0;url=/dashboard?session=abc"' in answer.text
        assert TOKEN not in answer.text
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert TOKEN not in cookie
        page = await http.get(f"{url}/dashboard")  # the cookie the forwarding page set
        assert page.status_code == 200 and 'id="session-view"' in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["referrer-policy"] == "no-referrer"
    process.terminate()
    process.wait(timeout=30)
    assert process.stdout is not None and process.stderr is not None
    log = process.stdout.read() + process.stderr.read()
    assert "GET /dashboard?token=" in log and TOKEN not in log  # the access log names the request, not the token


def second_server(tmp_path: Path, agents: AgentFactory, token: str) -> AbstractContextManager[str]:
    """Another `pcoord serve --transport http` on this host, with a state directory of its own and one token."""
    env = {"PCOORD_STATE_DIR": str(tmp_path / "second-state"), "PCOORD_AGENT_DIRS": str(agents.root),
           "PCOORD_TOKEN": token, "PCOORD_TOKENS": ""}
    return running_http_server(env)


# A browser keeps cookies per host, not per port: each server's cookie must not replace another's on the host.
async def test_a_second_servers_dashboard_on_the_same_host_leaves_the_first_ones_cookie_working(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path, agents: AgentFactory,
) -> None:
    first, _ = server
    with second_server(tmp_path, agents, OTHER) as second:
        async with httpx2.AsyncClient(timeout=30) as browser:  # one cookie jar, as one browser has
            assert (await browser.get(f"{first}/dashboard", params={"token": TOKEN})).status_code == 200
            assert (await browser.get(f"{second}/dashboard", params={"token": OTHER})).status_code == 200
            assert (await browser.get(f"{second}/dashboard")).status_code == 200
            assert (await browser.get(f"{first}/dashboard")).status_code == 200  # its tab, reloaded


async def test_a_cookie_proves_nothing_to_another_server_even_one_with_the_same_token(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path, agents: AgentFactory,
) -> None:
    first, _ = server
    with second_server(tmp_path, agents, TOKEN) as second:
        async with httpx2.AsyncClient(timeout=30) as http:
            answer = await http.get(f"{first}/dashboard", params={"token": TOKEN})
            _, _, value = answer.headers["set-cookie"].split(";")[0].partition("=")
            second_port = second.rsplit(":", 1)[1]
            assert (await http.get(f"{first}/dashboard")).status_code == 200
            http.cookies.clear()
            http.cookies.set(f"pcoord_dashboard_{second_port}", value)  # the first's cookie, replayed to the second
            assert (await http.get(f"{second}/dashboard")).status_code == 401


async def test_the_stream_sends_the_sessions_and_the_chosen_sessions_snapshots_as_it_runs(
    server: tuple[str, subprocess.Popen[str]], tmp_path: Path
) -> None:
    url, _ = server
    session_id = await start_gated(url)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http, events(
        http, f"{url}/dashboard/events?session={session_id}"
    ) as stream:
        with anyio.fail_after(60):
            seen: list[str] = []
            async for event, data in stream:
                if event == "sessions":
                    assert [s["session_id"] for s in data["sessions"]] == [session_id]  # type: ignore[attr-defined]
                elif event == "snapshot":
                    statuses = [t["status"] for t in data["tasks"]]  # type: ignore[attr-defined]
                    seen += [status for status in statuses if not seen or seen[-1] != status]
                    if statuses == ["running"]:
                        (tmp_path / "gate").touch()
                    if data["status"] == "SUCCESS":
                        break
    assert seen[-1] == "succeeded" and "running" in seen


async def test_a_cancel_needs_the_pages_header_and_no_foreign_origin_and_then_stops_the_session(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = server
    session_id = await start_gated(url)
    cancel = f"{url}/dashboard/sessions/{session_id}/cancel"
    async with httpx2.AsyncClient(timeout=60) as http:
        await http.get(f"{url}/dashboard", params={"token": TOKEN})  # the cookie
        async with events(http, f"{url}/dashboard/events?session={session_id}") as stream:
            with anyio.fail_after(60):
                async for event, data in stream:  # until its agent runs: the cancel has one to kill
                    if event == "snapshot" and data["counts"]["running"] == 1:  # type: ignore[index]
                        break
        assert (await http.post(cancel)).status_code == 403
        foreign = {"X-Pcoord-Dashboard": "cancel", "Origin": "http://evil.example"}
        assert (await http.post(cancel, headers=foreign)).status_code == 403
        cross_site = {"X-Pcoord-Dashboard": "cancel", "Sec-Fetch-Site": "cross-site"}
        assert (await http.post(cancel, headers=cross_site)).status_code == 403
        answer = await http.post(cancel, headers={"X-Pcoord-Dashboard": "cancel", "Origin": url})
        assert answer.status_code == 200, answer.text
        assert (answer.json()["status"], answer.json()["cancelled_tasks"]) == ("CANCELLED", 1)


async def test_another_token_sees_none_of_the_sessions_and_cannot_cancel_them(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = server
    session_id = await start_gated(url)
    headers = {"Authorization": f"Bearer {OTHER}"}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with events(http, f"{url}/dashboard/events?session={session_id}") as stream:
            with anyio.fail_after(30):
                received = [await anext(stream), await anext(stream)]
        assert received[0] == ("sessions", {"sessions": []})
        assert received[1][0] == "problem" and f"unknown session '{session_id}'" in str(received[1][1])
        answer = await http.post(f"{url}/dashboard/sessions/{session_id}/cancel",
                                 headers={"X-Pcoord-Dashboard": "cancel"})
        assert answer.status_code == 404
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as http:
        answer = await http.post(f"{url}/dashboard/sessions/{session_id}/cancel",
                                 headers={"X-Pcoord-Dashboard": "cancel"})
        assert answer.json()["status"] == "CANCELLED"


async def open_stream(http: httpx2.AsyncClient, url: str) -> tuple[httpx2.Response, AsyncIterator[str]]:
    """A dashboard stream that has started, and its lines (kept: a dropped line iterator closes its response).
    A place a stream closed a moment ago may take a moment to free."""
    with anyio.fail_after(30):
        while True:
            response = await http.send(http.build_request("GET", f"{url}/dashboard/events"), stream=True)
            if response.status_code == 200:
                lines = response.aiter_lines()
                await anext(lines)  # the server is streaming to it: its place is taken
                return response, lines
            await response.aclose()


async def test_open_streams_are_bounded_per_token_and_per_server_and_a_closed_one_frees_its_place(
    server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, _ = server
    limits = httpx2.Limits(max_connections=MAX_STREAMS + 4)

    def client(token: str) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits)

    assert MAX_STREAMS == 2 * MAX_STREAMS_PER_PRINCIPAL  # two tokens fill the server
    for _ in range(2):  # twice: were a closed stream's place not given back, the second round could not open
        async with client(TOKEN) as alice, client(OTHER) as bob, client(THIRD) as carol:
            opened = [await open_stream(alice, url) for _ in range(MAX_STREAMS_PER_PRINCIPAL)]
            refused = await alice.get(f"{url}/dashboard/events")
            assert refused.status_code == 503 and "with this token" in refused.json()["error"]
            opened += [await open_stream(bob, url) for _ in range(MAX_STREAMS_PER_PRINCIPAL)]
            refused = await carol.get(f"{url}/dashboard/events")  # a token with none open: the server is full
            assert refused.status_code == 503 and "on this server, the most at once" in refused.json()["error"]
            for response, _ in opened:
                await response.aclose()
