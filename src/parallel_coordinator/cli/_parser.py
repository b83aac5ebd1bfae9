"""Every `pcoord` command and flag, as argparse reads them."""

from __future__ import annotations

import argparse
from pathlib import Path

import shtab

from parallel_coordinator import __version__

# A session argument completes to the recent sessions' ids, asked of pcoord itself at completion time.
SESSION_IDS = shtab.cmd("pcoord status --ids 2>/dev/null")
COMPLETION_SHELLS = ("bash", "zsh")

PLAN_FORMAT = """\
a plan file has coordinate_task's fields (YAML, or JSON):
  task_description: Review the service          # required
  strategy: auto                                # optional: auto, parallel, pipeline, hybrid, burst
  subtasks:                                     # optional: without them the planner splits the task
    - id: lint                                  # unique in the plan
      description: Lint src/                    # what the agent is told
      agent_type: code-reviewer                 # an agent of `pcoord agents` (optional: routed if left out)
      dependencies: []                          # ids whose outputs it receives
  options: {max_agents: 4, dry_run: false}      # optional: coordinate_task's options
exit status: 0 SUCCESS, 1 PARTIAL or FAILED, 130 interrupted (Ctrl-C cancels and kills the agents)"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pcoord", description="Parallel Coordinator: run one task on many agents at once (an MCP server)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details to stderr")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                       help="stdio (default: a client starts the server) or http (streamable HTTP at /mcp)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="with --transport http: the address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=8765, help="with --transport http: the port (default %(default)s)")
    serve.add_argument(
        "--backend", choices=["local", "dask"], default=None,
        help="where agents run: the local process pool (default) or a Dask cluster",
    )
    serve.add_argument(
        "--scheduler", default=None,
        help="with --backend dask: the scheduler's address, e.g. tcp://10.0.0.5:8786 (default: a local cluster)",
    )
    serve.add_argument(
        "--allow-remote", action="store_true",
        help="with --transport http: allow binding to a non-loopback address (needs PCOORD_TOKEN)",
    )
    serve.add_argument("--prometheus", action="store_true", help="with --transport http: serve /metrics")

    agents = commands.add_parser("agents", help="list the agents found and every file skipped or repaired")
    agents.add_argument("--json", action="store_true", help="print JSON instead of a table")

    init = commands.add_parser(
        "init", help="write a first agent file into ./.claude/agents, ready to edit (never over an existing one)"
    )
    init.add_argument(
        "--runner", choices=["claude", "command"], default="claude",
        help="claude (default: needs a logged-in `claude`) or command (a Python script beside it; no Claude needed)",
    )
    init.add_argument(
        "--name", default=None, help="the agent's name and file name (default: first-agent, or first-command-agent)"
    )

    run = commands.add_parser(
        "run", help="run a plan file (YAML or JSON) with live progress", epilog=PLAN_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "plan", type=Path, help="the plan file, or - to read the plan (YAML or JSON) from stdin"
    ).complete = shtab.FILE  # type: ignore[attr-defined]
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument(
        "--output", type=Path, default=None, metavar="DIR",
        help="write every task's whole output to DIR/<task>.txt (and the synthesis to DIR/_synthesis.txt)",
    ).complete = shtab.DIRECTORY  # type: ignore[attr-defined]

    plan = commands.add_parser(
        "plan", help="plan a task (or check a plan file) without running it; prints a plan file for `pcoord run`"
    )
    plan.add_argument(
        "task", help="a plan file (YAML or JSON), or the task itself in plain words"
    ).complete = shtab.FILE  # type: ignore[attr-defined]
    plan.add_argument("--json", action="store_true", help="print JSON instead of YAML")

    status = commands.add_parser("status", help="a session's state (without SESSION: the recent sessions)")
    status.add_argument(
        "session", nargs="?", help="the session id (default: list the recent sessions)"
    ).complete = SESSION_IDS  # type: ignore[attr-defined]
    status.add_argument("--json", action="store_true", help="print get_progress_status's JSON")
    status.add_argument("--ids", action="store_true",
                        help="print only the recent sessions' ids, newest first, one per line (scripts, completion)")

    watch = commands.add_parser("watch", help="follow a session live (it may run in another `pcoord serve`)")
    watch.add_argument("session", help="the session id").complete = SESSION_IDS  # type: ignore[attr-defined]

    cancel = commands.add_parser(
        "cancel", help="cancel a running session and kill its agents, whichever process on this state directory runs it"
    )
    cancel.add_argument(
        "session", help="the session id (`pcoord status` lists the recent sessions)"
    ).complete = SESSION_IDS  # type: ignore[attr-defined]

    dashboard = commands.add_parser(
        "dashboard", help="open the live dashboard of this state directory's sessions in the browser (a local server)"
    )
    dashboard.add_argument("--port", type=int, default=0, help="the port on 127.0.0.1 (default: a free one)")
    dashboard.add_argument("--no-browser", action="store_true", help="print the address, open no browser")

    metrics = commands.add_parser("metrics", help="machine health and figures over recent agent runs")
    metrics.add_argument("--json", action="store_true", help="print get_performance_metrics's JSON")

    report = commands.add_parser("report", help="write a self-contained HTML report of a session")
    report.add_argument("session", help="the session id").complete = SESSION_IDS  # type: ignore[attr-defined]
    report.add_argument(
        "-o", "--output", type=Path, default=None, help="file to write (default: state dir)"
    ).complete = shtab.FILE  # type: ignore[attr-defined]

    config = commands.add_parser("config", help="the effective settings and where each came from")
    config.add_argument("--json", action="store_true", help="print JSON instead of a table")

    gc = commands.add_parser(
        "gc", help="remove old sessions and their files now, by the retention limits (a server does it hourly)"
    )
    gc.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    gc.add_argument("--json", action="store_true", help="print JSON instead of plain words")

    demo = commands.add_parser("demo", help="a real parallel run on bundled agents, through the MCP server")
    demo.add_argument(
        "--target", type=Path, default=None, help="source tree to analyse (default: here)"
    ).complete = shtab.DIRECTORY  # type: ignore[attr-defined]

    completion = commands.add_parser(
        "completion", help="print the shell completion script for bash or zsh",
        description="Print a completion script. bash: add `eval \"$(pcoord completion bash)\"` to ~/.bashrc. "
        "zsh: `pcoord completion zsh > \"${fpath[1]}/_pcoord\"`, then start a new shell.",
    )
    completion.add_argument("shell", choices=COMPLETION_SHELLS, help="the shell to complete in: bash or zsh")
    return parser
