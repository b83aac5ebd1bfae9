"""One attempt's QA pipeline: every check the session names, at once, each with its verdict and duration.

The checks' processes are started through `CheckJobs` (the engine's: supervised, limited and cancelled
like agents); this module decides what each check runs and reads its verdict.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio

from parallel_coordinator.qa.agent_check import check_context, check_description, read_answer
from parallel_coordinator.qa.builtin import (
    configured_command,
    file_check,
    not_configured,
    read_command,
    read_file_check,
)
from parallel_coordinator.qa.changes import ChangedFiles, changed_files
from parallel_coordinator.qa.verdicts import BUILTIN_CHECKS, CONFIGURED_CHECKS, CheckResult
from parallel_coordinator.runners.base import AttemptOutcome, Invocation


class CheckJobs(Protocol):
    """How the checks' processes run: the engine's supervision, for one attempt."""

    commands: Mapping[str, str | Sequence[str]]  # qa.commands from the configuration

    async def command(self, invocation: Invocation, cwd: str | None) -> AttemptOutcome:
        """Run a command as a supervised job; returns once it has been reaped."""
        ...

    async def agent(self, name: str, description: str, context: dict[str, str]) -> tuple[Any, str | None]:
        """Run the agent `name` once; (its answer validated against VERDICT_SCHEMA, or why there is none)."""
        ...


async def run_checks(
    checks: Sequence[str], jobs: CheckJobs, *, directory: str | None, output: str, task_description: str
) -> list[CheckResult]:
    """The checks' results in the order named; `directory` is where the task worked (its worktree, if isolated)."""
    where = Path(directory) if directory else Path.cwd()
    changes = await anyio.to_thread.run_sync(changed_files, where)
    results: dict[int, CheckResult] = {}

    async def one(index: int, check: str) -> None:
        started = time.monotonic()
        if check in BUILTIN_CHECKS:
            result = await _builtin(check, jobs, changes, directory)
        else:
            answer, error = await jobs.agent(
                check, check_description(task_description), check_context(output, changes)
            )
            result = read_answer(check, answer, error)
        result.duration_s = time.monotonic() - started
        results[index] = result

    async with anyio.create_task_group() as group:
        for index, check in enumerate(dict.fromkeys(checks)):
            group.start_soon(one, index, check, name=f"qa {check}")
    return [results[index] for index in sorted(results)]


async def _builtin(check: str, jobs: CheckJobs, changes: ChangedFiles, directory: str | None) -> CheckResult:
    if check in CONFIGURED_CHECKS:
        missing = not_configured(check, jobs.commands)
        if missing is not None:
            return missing
        command = jobs.commands[check]
        return read_command(check, command, await jobs.command(configured_command(command), directory))
    if not changes.files:
        return CheckResult(check, "unchecked", notes=[changes.none_found()])
    return read_file_check(check, await jobs.command(file_check(check, changes), changes.root), changes)
