"""The built-in checks as supervised commands: what each runs, and its verdict read from how the command ended.

syntax_check and security_scan run check_job.py on the changed files; performance_test and
documentation_check run the command the configuration names (qa.commands), in the task's directory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

from parallel_coordinator.qa.changes import ChangedFiles
from parallel_coordinator.qa.verdicts import VERDICTS, CheckResult, Verdict
from parallel_coordinator.runners.base import AttemptOutcome, Invocation, describe_exit

_TAIL_LINES = 30  # of a configured command's output, shown as its findings


def file_check(check: str, changes: ChangedFiles) -> Invocation:
    """check_job.py over the changed files (the caller has made sure there are some)."""
    request = {"check": check, "root": changes.root, "files": list(changes.files)}
    return Invocation(
        argv=[sys.executable, "-m", "parallel_coordinator.qa.check_job"], stdin=json.dumps(request).encode(),
    )


def read_file_check(check: str, outcome: AttemptOutcome, changes: ChangedFiles) -> CheckResult:
    if outcome.reason != "exited" or outcome.exit_code != 0:
        return CheckResult(check, "unchecked", notes=[f"the check's process did not finish: {describe_exit(outcome)}"])
    try:
        answer = json.loads(outcome.stdout)
        verdict: Verdict = next((known for known in VERDICTS if known == answer["verdict"]), "unchecked")
        result = CheckResult(check, verdict, findings=list(answer["findings"]), notes=list(answer["notes"]))
    except (ValueError, KeyError, TypeError):
        return CheckResult(check, "unchecked", notes=[f"the check's process gave no verdict: {outcome.stdout[:300]!r}"])
    if changes.left_out:
        result.notes.append(f"{changes.left_out:,} more changed files were not checked (at most the first 500)")
    return result


def configured_command(command: str | Sequence[str]) -> Invocation:
    """A command the configuration names: a string runs through `sh -c` (it is the user's own), a list as argv."""
    argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
    return Invocation(argv=argv)


def read_command(check: str, command: str | Sequence[str], outcome: AttemptOutcome) -> CheckResult:
    shown = command if isinstance(command, str) else " ".join(command)
    tail = (outcome.stdout.strip().splitlines() + outcome.stderr_tail.strip().splitlines())[-_TAIL_LINES:]
    if outcome.reason == "exited" and outcome.exit_code == 0:
        return CheckResult(check, "pass", notes=[f"`{shown}` exited with status 0"])
    if outcome.reason in ("exited", "timeout", "stalled", "memory"):
        return CheckResult(check, "fail", findings=[f"`{shown}` {describe_exit(outcome).splitlines()[0]}", *tail])
    return CheckResult(check, "unchecked", notes=[f"`{shown}` did not run to its end: {describe_exit(outcome)}"])


def not_configured(check: str, commands: Mapping[str, object]) -> CheckResult | None:
    if commands.get(check):
        return None
    return CheckResult(check, "not_run", notes=[f"not configured: set qa.commands.{check} in the configuration file"])
