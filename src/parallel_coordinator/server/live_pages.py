"""The live view's HTML pages: the dashboard and the MCP App, each one self-contained document.

Both inline the report's style sheet and the same renderer (static/session_view.js) around the same
markup (static/session_view.html); only the script that feeds it snapshots differs. Nothing is fetched
from anywhere: the Content-Security-Policy allows only the inlined style and scripts, by their hashes.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib.resources import files

from mcp.server.apps import Apps

_STATIC = "parallel_coordinator.server"
_REPORT = "parallel_coordinator.report"


@cache
def _asset(package: str, name: str) -> str:
    """A file shipped as package data; a handful of small files, so the cache stays tiny."""
    folder = files(package) if package == _REPORT else files(package).joinpath("static")
    return folder.joinpath(name).read_text(encoding="utf-8")


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _page(title: str, top: str, scripts: list[str], *, connect: str) -> tuple[str, str]:
    style = _asset(_REPORT, "report.css") + _asset(_STATIC, "live.css")
    policy = (
        f"default-src 'none'; style-src {_hash(style)}; script-src {' '.join(_hash(s) for s in scripts)}; "
        f"connect-src {connect}; img-src data:; base-uri 'none'; form-action 'none'"
    )
    inline = "".join(f"<script>{script}</script>\n" for script in scripts)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
{top}{_asset(_STATIC, "session_view.html")}{inline}</body>
</html>
"""
    return page, policy


_DASHBOARD_TOP = """<div class="sessions">
<p class="kicker">Parallel Coordinator · dashboard · <span id="connection" class="connection">connecting…</span></p>
<table><thead><tr><th scope="col">Status</th><th scope="col">Session</th><th scope="col">Started</th>
<th scope="col">Task</th></tr></thead><tbody id="sessions"></tbody></table>
</div>
"""


@cache
def dashboard_page() -> tuple[str, str]:
    """(the dashboard's HTML, its Content-Security-Policy): it talks to its own origin only."""
    scripts = [_asset(_STATIC, "session_view.js"), _asset(_STATIC, "dashboard.js")]
    return _page("Parallel Coordinator · dashboard", _DASHBOARD_TOP, scripts, connect="'self'")


@cache
def app_page() -> str:
    """The MCP App's HTML: it talks to nothing but its host, by postMessage."""
    scripts = [_asset(_STATIC, "session_view.js"), _asset(_STATIC, "mcp_app.js")]
    top = '<p class="app-state" id="app-state">waiting for the host…</p>\n'
    return _page("Parallel Coordinator · session", top, scripts, connect="'none'")[0]


def session_app(uri: str) -> Apps:
    """The MCP Apps extension with the session view as its one `ui://` resource (text/html;profile=mcp-app)."""
    apps = Apps()
    apps.add_html_resource(
        uri, app_page(), name="session view", title="Parallel Coordinator session",
        description="A coordinate_task session drawn live: timeline, dependency graph, progress, queue, spend, cancel.",
        prefers_border=True,
    )
    return apps
