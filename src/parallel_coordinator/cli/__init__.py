"""The `pcoord` command line: parse the arguments, hand each command to the module that runs it, report our errors.

Results go to stdout; live progress and logs go to stderr. `serve` writes nothing of its own to
stdout: in stdio mode that is the protocol wire.
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.text import Text

from parallel_coordinator.cli._exits import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from parallel_coordinator.cli._inventory import list_agents, show_config, show_metrics
from parallel_coordinator.cli._parser import build_parser
from parallel_coordinator.cli._plans import show_plan
from parallel_coordinator.cli._run import run_plan
from parallel_coordinator.cli._serve import serve
from parallel_coordinator.cli._sessions import (
    cancel_session,
    collect_garbage,
    show_status,
    watch_session,
    write_session_report,
)
from parallel_coordinator.errors import CoordinatorError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "agents":
            return list_agents(args.json)
        if args.command == "init":
            from parallel_coordinator.cli._init import init_agent

            return init_agent(args.runner, args.name)
        if args.command == "run":
            return run_plan(args.plan, args.json, args.output)
        if args.command == "plan":
            return show_plan(args.task, args.json)
        if args.command == "status":
            return show_status(args.session, args.json, args.ids)
        if args.command == "watch":
            return watch_session(args.session)
        if args.command == "cancel":
            return cancel_session(args.session)
        if args.command == "dashboard":
            from parallel_coordinator.cli._dashboard import open_dashboard

            return open_dashboard(args.port, not args.no_browser)
        if args.command == "metrics":
            return show_metrics(args.json)
        if args.command == "report":
            return write_session_report(args.session, args.output)
        if args.command == "config":
            return show_config(args.json)
        if args.command == "gc":
            return collect_garbage(args.dry_run, args.json)
        if args.command == "completion":
            import shtab

            print(shtab.complete(build_parser(), shell=args.shell))
            return EXIT_OK
        if args.command == "demo":
            from parallel_coordinator.cli.demo import run_demo

            return run_demo(args.target)
    except CoordinatorError as exc:
        Console(stderr=True).print(Text.assemble(("error:", "red"), f" {exc}"))  # it quotes caller text: not markup
        return EXIT_FAILED
    except BaseExceptionGroup as group:
        # Task groups wrap what fails inside them, e.g. a backend that cannot start under the server.
        matched, _ = group.split(CoordinatorError)
        if matched is None:
            raise
        first: BaseException = matched
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        Console(stderr=True).print(Text.assemble(("error:", "red"), f" {first}"))
        return EXIT_FAILED
    return EXIT_USAGE
