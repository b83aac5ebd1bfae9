"""`GET /dashboard` on the HTTP transport: the page, its stream of snapshots (server-sent events), and cancel.

The stream sends the session list and the chosen session's snapshot (views.live_snapshot) when they
change: woken by the coordinator's events, at most four times a second, and once a second besides
for what no event announces (a session another server on this state directory runs).
"""

from __future__ import annotations

import html
import json
import logging
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.events import SessionEvent
from parallel_coordinator.errors import UnknownSessionError
from parallel_coordinator.server.dashboard_auth import DashboardAuth, cookie_name, same_origin_change
from parallel_coordinator.server.live_pages import dashboard_page
from parallel_coordinator.views import live_snapshot
from parallel_coordinator.views._layout import css_name

log = logging.getLogger(__name__)

MAX_STREAMS = 16  # open dashboards at once, per server: each costs a snapshot per change
MAX_STREAMS_PER_PRINCIPAL = 8  # so that one token's forgotten tabs cannot lock every other token out
_MIN_GAP_S = 0.25  # events are coalesced: at most four sends a second per stream
_RECHECK_S = 1.0  # what no event announces (the store's list, another server's session) is read this often
# Another server's session is read whole from the store (~0.4 s at 10,000 tasks): one read serves every stream
# watching it for this long, instead of one read per stream per tick.
_STORED_SNAPSHOT_S = 2.0
_SESSIONS_LISTED = 50
_SECURITY_HEADERS = {
    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
_UNAUTHORIZED = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Token needed</title></head>
<body><h1>The dashboard needs the server's bearer token</h1>
<p>Open <code>/dashboard?token=&lt;token&gt;</code> once, with the same token as <code>/mcp</code>
(<code>PCOORD_TOKEN</code>, or the one <code>pcoord serve --transport http</code> generated and kept in the
state directory): the browser then keeps a cookie and the address loses the token.
With a stdio server, <code>pcoord dashboard</code> opens a dashboard for you.</p></body></html>"""


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&\s]*")


class _RedactTokens(logging.Filter):
    """The access log shows `/dashboard?token=…` without the token: a log is read by more people than the URL."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_TOKEN_IN_QUERY.sub(r"\1…", a) if isinstance(a, str) else a for a in record.args)
        return True


class Stopping:
    """Set when the HTTP server is asked to stop, so that event streams end by themselves before it cuts them."""

    def __init__(self) -> None:
        self.is_set = False

    def set(self) -> None:
        self.is_set = True


def _forward_page(target: str) -> HTMLResponse:
    """A page that sends the browser on to `target` itself, where a redirect would not do: a navigation started
    by another site, or by a file (`pcoord dashboard`'s launcher), stays cross-site through every redirect, and
    the browser then withholds the SameSite=Strict cookie just set. From this page, the next one is same-site."""
    page = (f'<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={html.escape(target)}">'
            f'<title>Parallel Coordinator dashboard</title><a href="{html.escape(target)}">the dashboard</a>\n')
    return HTMLResponse(page, headers={**_SECURITY_HEADERS, "Content-Security-Policy": "default-src 'none'"})


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Dashboard:
    """The dashboard's routes around the running coordinator; `see_all` shows every session of the state
    directory (`pcoord dashboard`, a local viewer), otherwise each principal sees its own."""

    def __init__(
        self, coordinator: Callable[[], Coordinator | None], auth: DashboardAuth, *, see_all: bool,
        stopping: Stopping | None = None,
    ) -> None:
        self._coordinator, self._auth, self._see_all = coordinator, auth, see_all
        self._stopping = stopping or Stopping()
        self.streams = 0
        self._streams_of: Counter[str] = Counter()  # open streams per principal
        # (session id, scope) -> (when it was made, its event): at most one entry per open stream, see _snapshot
        self._snapshots: dict[tuple[str, str | None], tuple[float, str, bool]] = {}
        self._listings: dict[str | None, tuple[float, str]] = {}  # scope -> (when, its list): one per token at most
        access = logging.getLogger("uvicorn.access")
        if not any(isinstance(f, _RedactTokens) for f in access.filters):
            access.addFilter(_RedactTokens())

    def routes(self) -> list[Route]:
        return [
            Route("/dashboard", self.page, methods=["GET"]),
            Route("/dashboard/events", self.events, methods=["GET"]),
            Route("/dashboard/sessions/{session_id}/cancel", self.cancel, methods=["POST"]),
        ]

    def _scope(self, principal: str) -> str | None:
        return None if self._see_all else principal

    async def page(self, request: Request) -> Response:
        token = request.query_params.get("token")
        if token is not None:
            name = self._auth.by_token(token)
            if name is None:
                return HTMLResponse(_UNAUTHORIZED, 401, headers={**_SECURITY_HEADERS, "WWW-Authenticate": "Bearer"})
            # Once: the token leaves the address bar (and the history) for a cookie scripts cannot read.
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            answer = _forward_page("/dashboard" + (f"?{rest}" if rest else ""))
            answer.set_cookie(cookie_name(request), self._auth.cookie_for(name), path="/dashboard", httponly=True,
                              samesite="strict", secure=request.url.scheme == "https")
            return answer
        if self._auth.principal(request) is None:
            return HTMLResponse(_UNAUTHORIZED, 401, headers={**_SECURITY_HEADERS, "WWW-Authenticate": "Bearer"})
        body, policy = dashboard_page()
        return HTMLResponse(body, headers={**_SECURITY_HEADERS, "Content-Security-Policy": policy})

    async def events(self, request: Request) -> Response:
        principal = self._auth.principal(request)
        if principal is None:
            return JSONResponse({"error": "bearer token or dashboard cookie required"}, 401, headers=_SECURITY_HEADERS)
        coordinator = self._coordinator()
        if coordinator is None:
            return JSONResponse({"error": "the coordinator is not running yet"}, 503, headers=_SECURITY_HEADERS)
        if self.streams >= MAX_STREAMS:
            return JSONResponse({"error": f"{MAX_STREAMS} dashboards are open on this server, the most at once;"
                                 " close one"}, 503, headers=_SECURITY_HEADERS)
        if self._streams_of[principal] >= MAX_STREAMS_PER_PRINCIPAL:
            return JSONResponse({"error": f"{MAX_STREAMS_PER_PRINCIPAL} dashboards are open with this token, the"
                                 " most at once for one; close one"}, 503, headers=_SECURITY_HEADERS)
        session_id = request.query_params.get("session") or None
        body = self._stream(coordinator, principal, session_id)
        return StreamingResponse(body, media_type="text/event-stream",
                                 headers={**_SECURITY_HEADERS, "X-Accel-Buffering": "no"})

    async def _stream(self, coordinator: Coordinator, principal: str, session_id: str | None) -> AsyncIterator[str]:
        scope = self._scope(principal)
        self.streams += 1
        self._streams_of[principal] += 1
        wake = [anyio.Event()]

        def changed(_: SessionEvent) -> None:
            wake[0].set()

        unsubscribe = coordinator.events.subscribe(changed)
        try:
            yield "retry: 2000\n\n"
            listed, ended_sent = "", False
            while not self._stopping.is_set:  # looked at at least once a second (_RECHECK_S)
                sessions = self._sessions(coordinator, scope)
                if sessions != listed:
                    listed = sessions
                    yield f"event: sessions\ndata: {sessions}\n\n"
                if session_id is not None and not ended_sent:
                    try:
                        event, ended_sent = self._snapshot(coordinator, scope, session_id)
                    except UnknownSessionError as exc:
                        yield _sse("problem", {"message": str(exc)})
                        session_id = None
                    else:
                        yield event  # an ended session is sent once: it changes no more
                with anyio.move_on_after(_RECHECK_S):
                    await wake[0].wait()
                wake[0] = anyio.Event()
                await anyio.sleep(_MIN_GAP_S)
        finally:
            unsubscribe()
            self.streams -= 1
            self._streams_of[principal] -= 1
            if not self._streams_of[principal]:
                del self._streams_of[principal]

    def _snapshot(self, coordinator: Coordinator, scope: str | None, session_id: str) -> tuple[str, bool]:
        """The session's snapshot event and whether it has ended, shared by the streams that watch it: made
        again after _MIN_GAP_S for a session this server runs, after _STORED_SNAPSHOT_S for one read from the store."""
        key, now = (session_id, scope), time.monotonic()
        fresh_for = _MIN_GAP_S if session_id in coordinator.sessions else _STORED_SNAPSHOT_S
        made = self._snapshots.get(key)
        if made is not None and now - made[0] < fresh_for:
            return made[1], made[2]
        view = coordinator.get(session_id, scope, estimate=False)  # the live view shows no time left
        event, ended = _sse("snapshot", live_snapshot(view)), view.status != "RUNNING"
        self._snapshots[key] = (now, event, ended)
        while len(self._snapshots) > max(self.streams, 1):  # no more than the streams that may want them
            del self._snapshots[min(self._snapshots, key=lambda k: self._snapshots[k][0])]
        return event, ended

    def _sessions(self, coordinator: Coordinator, scope: str | None) -> str:
        """The sessions list this scope sees, read from the store once per _MIN_GAP_S for all its streams."""
        now = time.monotonic()
        made = self._listings.get(scope)
        if made is not None and now - made[0] < _MIN_GAP_S:
            return made[1]
        listing = self._list_sessions(coordinator, scope)
        self._listings[scope] = (now, listing)
        return listing

    def _list_sessions(self, coordinator: Coordinator, scope: str | None) -> str:
        rows = []
        for sid, status, text, created in coordinator.list_sessions(scope, _SESSIONS_LISTED):
            live = coordinator.sessions.get(sid)
            current = live.status if live is not None else status  # the store may lag a live session by a write
            rows.append({"session_id": sid, "status": current, "status_class": css_name(current),
                         "created_at": created, "task_description": text[:200], "live": live is not None})
        return json.dumps({"sessions": rows}, separators=(",", ":"))

    async def cancel(self, request: Request) -> Response:
        principal = self._auth.principal(request)
        if principal is None:
            return JSONResponse({"error": "bearer token or dashboard cookie required"}, 401, headers=_SECURITY_HEADERS)
        if not same_origin_change(request):
            return JSONResponse({"error": "a cancel must come from the dashboard page itself"}, 403,
                                headers=_SECURITY_HEADERS)
        coordinator = self._coordinator()
        if coordinator is None:
            return JSONResponse({"error": "the coordinator is not running yet"}, 503, headers=_SECURITY_HEADERS)
        session_id = request.path_params["session_id"]
        try:
            outcome = await coordinator.cancel(session_id, self._scope(principal))
        except UnknownSessionError as exc:
            return JSONResponse({"error": str(exc)}, 404, headers=_SECURITY_HEADERS)
        log.info("session %s cancelled from the dashboard", session_id)
        return JSONResponse({
            "session_id": outcome.session_id, "status": outcome.status, "cancelled_tasks": outcome.cancelled_tasks,
            "killed_processes": outcome.killed_processes, "note": outcome.note,
        }, headers=_SECURITY_HEADERS)
