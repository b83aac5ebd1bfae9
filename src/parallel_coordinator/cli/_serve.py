"""`pcoord serve`: the MCP server over stdio, or over HTTP with bearer tokens."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import anyio
from rich.console import Console
from rich.text import Text

from parallel_coordinator.cli._exits import EXIT_OK, EXIT_USAGE
from parallel_coordinator.cli._state import effective_settings
from parallel_coordinator.config.settings import Settings

log = logging.getLogger(__name__)


def serve_settings(args: argparse.Namespace) -> Settings:
    """The effective settings with serve's --backend and --scheduler laid over them."""
    settings = effective_settings()
    if args.backend is not None:
        settings.backend = args.backend
    if args.scheduler is not None:
        settings.dask_scheduler = args.scheduler
    return settings


def serve(args: argparse.Namespace) -> int:
    from parallel_coordinator.server import create_server

    settings = serve_settings(args)
    for note in settings.config_notes:  # once, as the server starts: other commands show them in `pcoord config`
        log.warning("%s", note)
    if settings.dask_scheduler is not None and settings.backend != "dask":
        Console(stderr=True).print(Text.assemble(
            ("error:", "red"), f" a Dask scheduler ({settings.dask_scheduler!r}) is set, but the backend is "
            f"{settings.backend!r}: add --backend dask",
        ), highlight=False)
        return EXIT_USAGE
    if args.transport == "stdio":
        from parallel_coordinator.server.stdio import serve_stdio

        anyio.run(serve_stdio, create_server(settings))
        return EXIT_OK
    return serve_http(args, settings)


def serve_http(args: argparse.Namespace, settings: Settings) -> int:
    from parallel_coordinator.server import create_server
    from parallel_coordinator.server.http import is_loopback, parse_tokens, resolve_token

    errors = Console(stderr=True)
    if not is_loopback(args.host):
        if not args.allow_remote:
            errors.print(Text.assemble(("error:", "red"), f" {args.host!r} is not a loopback address; pass"
                                       " --allow-remote to expose the server beyond this machine"))
            return EXIT_USAGE
        if not os.environ.get("PCOORD_TOKEN"):
            errors.print("[red]error:[/red] a server reachable from other machines needs PCOORD_TOKEN set")
            return EXIT_USAGE
    try:
        token, generated = resolve_token(settings.state_dir)
        tokens = {"default": token} | parse_tokens(os.environ.get("PCOORD_TOKENS", ""))
    except ValueError as exc:
        errors.print(Text.assemble(("error:", "red"), f" {exc}"))
        return EXIT_USAGE
    from parallel_coordinator.execution.environment import scrub_server_credentials
    from parallel_coordinator.server.http_serving import listening_socket, serve_http_app

    scrub_server_credentials()  # read once: from here on no agent, worker or cluster process inherits them
    # --port 0: bind here, so the address printed and put in the auth metadata is the one the system picked.
    bound = listening_socket(args.host) if args.port == 0 else None
    port = bound.getsockname()[1] if bound is not None else args.port
    base_url = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{port}"  # an IPv6 address in brackets
    if bound is not None:
        errors.print(f"listening on {base_url}/mcp", highlight=False)
    if generated:
        config = {"mcpServers": {"parallel-coordinator": {
            "type": "http", "url": f"{base_url}/mcp", "headers": {"Authorization": f"Bearer {token}"}}}}
        errors.print(f"generated a bearer token (kept in {settings.state_dir}); client configuration:", highlight=False)
        print(json.dumps(config, indent=2), file=sys.stderr)
    from parallel_coordinator.server.dashboard import Stopping

    stopping = Stopping()
    server = create_server(settings, tokens=tokens, base_url=base_url, prometheus=args.prometheus, stopping=stopping)
    try:
        serve_http_app(server, host=args.host, port=port, max_request_bytes=settings.max_request_bytes,
                       stopping=stopping, bound=bound)
    finally:
        if bound is not None:
            bound.close()
    return EXIT_OK

