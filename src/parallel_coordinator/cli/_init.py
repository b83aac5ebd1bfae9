"""`pcoord init`: write a first agent file into ./.claude/agents, ready to edit, never over an existing file.

A command agent comes with a small stdlib script beside it that speaks the command agent protocol,
so it runs at once, with no Claude login.
"""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console

from parallel_coordinator.cli._exits import EXIT_OK
from parallel_coordinator.errors import AgentFileError, shortened

# A file name on every system and a name Claude Code accepts: lowercase letters, digits and hyphens.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

_CLAUDE_AGENT = """\
---
name: {name}
description: Reviews the files a task names for bugs; routing reads this line, so say what tasks it takes.
tools: Read, Grep, Glob
---

You are a careful code reviewer. Read the files the task names, then answer with a short list of
the problems you found, each with its file and line and a one-line fix. Say so when you find none.
"""

_COMMAND_AGENT = """\
---
name: {name}
description: Echoes its task and the first line of each dependency's output; a start for a program agent.
runner: command
command: ["{{python}}", "{{agent_dir}}/{name}.py"]
timeout: 120
---

Runs {name}.py beside this file, with no Claude login: the script reads the task as one JSON object
on stdin and prints its result. Edit the script, or point `command` at any program.
"""

_COMMAND_SCRIPT = '''\
"""The {name} agent: the command agent protocol, in the standard library only.

stdin: one JSON object {{session_id, task_id, agent, description, task_description, context}},
where context maps each dependency's task id to its output. stdout: the result. stderr: logs, and
lines like {{"progress": 50, "message": "..."}}. Exit 0 for success, anything else for a failure.
"""

import json
import sys


def progress(percent: float, message: str) -> None:
    print(json.dumps({{"progress": percent, "message": message}}), file=sys.stderr, flush=True)


def main() -> int:
    request = json.load(sys.stdin)
    progress(10, "read the task")
    lines = [f"task {{request['task_id']}}: {{request['description']}}"]
    for task_id, output in request.get("context", {{}}).items():
        first = output.strip().splitlines()[0] if output.strip() else "(no output)"
        lines.append(f"after {{task_id}}: {{first}}")
    progress(100, "done")
    print("\\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def _files(name: str, runner: str, where: Path) -> dict[Path, str]:
    if runner == "command":
        return {
            where / f"{name}.md": _COMMAND_AGENT.format(name=name),
            where / f"{name}.py": _COMMAND_SCRIPT.format(name=name),
        }
    return {where / f"{name}.md": _CLAUDE_AGENT.format(name=name)}


def init_agent(runner: str, name: str | None) -> int:
    name = name if name is not None else ("first-command-agent" if runner == "command" else "first-agent")
    if not _NAME.fullmatch(name):
        raise AgentFileError(
            f"agent name {shortened(name)} is not usable as a file name: use lowercase letters, digits and "
            "hyphens (at most 64), starting with a letter or digit, e.g. --name code-reviewer"
        )
    where = Path.cwd() / ".claude" / "agents"
    files = _files(name, runner, where)
    for path in files:
        if path.exists() or path.is_symlink():
            raise AgentFileError(
                f"{path} already exists and was left as it is; edit it, or choose another --name"
            )
    where.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        with path.open("x", encoding="utf-8") as handle:  # "x": never over a file made since the check
            handle.write(text)
    console = Console()
    for path in files:
        console.print(f"wrote {path}", highlight=False, soft_wrap=True)
    if runner == "claude":
        console.print("it runs through Claude Code: it needs a logged-in `claude` (run `claude` once to log in)")
    else:
        console.print("it runs its script with this Python: no Claude needed")
    console.print(
        f"next: `pcoord agents` lists it; a plan with `agent_type: {name}` runs it with `pcoord run PLAN`",
        highlight=False, soft_wrap=True,
    )
    return EXIT_OK
