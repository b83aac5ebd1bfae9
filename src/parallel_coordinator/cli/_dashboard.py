"""`pcoord dashboard`: the live dashboard for a stdio user, on a local HTTP server over the state directory.

It serves every session of the state directory: the ones stored, and the ones other servers on it
(a stdio `pcoord serve`, `pcoord run`) are running, read from the store as they write it and
cancelled through it, as `pcoord cancel` does. A fresh token each time, on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import html
import logging
import secrets
import sys
import threading
import webbrowser
from pathlib import Path

from parallel_coordinator.cli._exits import EXIT_OK
from parallel_coordinator.cli._state import effective_settings
from parallel_coordinator.state.private_files import private_dir, write_private

log = logging.getLogger(__name__)

_HOST = "127.0.0.1"


def _open_browser(target: str) -> None:
    if not webbrowser.open(target):
        log.warning("no browser could be opened here: open the address above yourself")


def write_launcher(directory: Path, port: int, url: str) -> Path:
    """An owner-only page that sends the browser on to `url`: the browser is started with this file's path,
    because a command line is readable by every local user (ps, /proc/PID/cmdline) and the token is not."""
    launcher = private_dir(directory) / f"dashboard-{port}.html"
    page = (f'<!DOCTYPE html><meta http-equiv="refresh" content="0;url={html.escape(url)}">'
            "<title>Parallel Coordinator dashboard</title>\n")
    write_private(launcher, page.encode())
    return launcher


def open_dashboard(port: int, open_browser: bool) -> int:
    from parallel_coordinator.execution.environment import scrub_server_credentials
    from parallel_coordinator.server import create_server
    from parallel_coordinator.server.dashboard import Stopping
    from parallel_coordinator.server.http_serving import listening_socket, serve_http_app

    settings = effective_settings()
    bound = listening_socket(_HOST, port)  # the browser's request waits in its backlog until the server runs
    port = bound.getsockname()[1]
    token = secrets.token_urlsafe(32)  # this run's only: it dies with the process
    scrub_server_credentials()
    base_url = f"http://{_HOST}:{port}"
    stopping = Stopping()
    server = create_server(settings, tokens={"dashboard": token}, base_url=base_url, dashboard_sees_all=True,
                           stopping=stopping)
    url = f"{base_url}/dashboard?token={token}"
    print(f"dashboard of {settings.state_dir}: {url}", flush=True)
    print("(the address carries this run's token: share it only with whom may cancel your sessions;"
          " Ctrl-C stops the dashboard)", file=sys.stderr, flush=True)
    launcher = write_launcher(settings.state_dir, port, url) if open_browser else None
    if launcher is not None:
        # Beside the server, not before it: a browser webbrowser waits for (BROWSER=firefox, a console browser)
        # would hold the start until it exits, and its request waits in the backlog for a server not yet running.
        threading.Thread(target=_open_browser, args=(launcher.as_uri(),), name="open the dashboard",
                         daemon=True).start()
    try:
        serve_http_app(server, host=_HOST, port=port, max_request_bytes=settings.max_request_bytes,
                       stopping=stopping, bound=bound)
    finally:
        bound.close()
        if launcher is not None:
            launcher.unlink(missing_ok=True)  # its token dies with this run: so does the page that carries it
    return EXIT_OK
