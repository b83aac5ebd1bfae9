"""Running an invocation as the supervisor would and reading its streams with a runner's reader (tests only)."""

from __future__ import annotations

import importlib.machinery
import re
import subprocess
import time
import types
from pathlib import Path
from typing import Any

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, TaskRequest
from parallel_coordinator.runners.streams import Progress, StreamReader

FAKES = Path(__file__).resolve().parents[1] / "fakes"


def make_agent(**fields: Any) -> AgentSpec:
    fields.setdefault("name", "coder")
    fields.setdefault("body", "You write small, tested changes.\nBe brief.")
    return AgentSpec(**fields)


def make_request(**fields: Any) -> TaskRequest:
    defaults: dict[str, Any] = {
        "session_id": "s1", "task_id": "t3", "description": "Add the missing test.",
        "task_description": "Improve the test suite.", "context": {},
    }
    return TaskRequest(**{**defaults, **fields})


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def run(
    invocation: Invocation, reader: StreamReader, cwd: Path, env: dict[str, str], timeout: float = 90
) -> tuple[AttemptOutcome, list[Progress]]:
    """Start the process, feed its output to `reader` line by line, and build the outcome from both."""
    started = time.time()
    proc = subprocess.run(
        invocation.argv, input=invocation.stdin, capture_output=True, env={**env, **invocation.env}, cwd=cwd,
        timeout=timeout, check=False,
    )
    stdout = proc.stdout.decode("utf-8", errors="replace")
    stderr = proc.stderr.decode("utf-8", errors="replace")
    progress = [p for p in map(reader.on_stdout_line, stdout.splitlines()) if p is not None]
    progress += [p for p in map(reader.on_stderr_line, stderr.splitlines()) if p is not None]
    outcome = AttemptOutcome(
        reason="exited", exit_code=proc.returncode, stdout=stdout, stdout_bytes=len(proc.stdout),
        stderr_tail="\n".join(stderr.splitlines()[-20:]), final_event=reader.final_event(),
        tokens_used=reader.tokens_used(), started_at=started, finished_at=time.time(),
    )
    return outcome, progress


def options_in_help(help_text: str) -> set[str]:
    """Every option a CLI's --help lists, short and long ("-m", "--model")."""
    found: set[str] = set()
    for line in help_text.splitlines():
        match = re.match(r"\s+(?:(-[A-Za-z]), )?(--[a-z0-9-]+)", line)
        if match:
            found.update(name for name in match.groups() if name)
    return found


def fake_options(name: str, *tables: str) -> set[str]:
    """The options a fake CLI accepts: the keys of its option tables, read from the script itself."""
    loader = importlib.machinery.SourceFileLoader(f"fake_{name}", str(FAKES / name))
    module = types.ModuleType(loader.name)
    loader.exec_module(module)
    return {option for table in tables for option in getattr(module, table)}
