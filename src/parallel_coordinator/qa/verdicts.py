"""A QA check's verdict, the built-in checks' names, and what a failed pipeline tells the next attempt.

Plain data: the checks' processes write verdicts as JSON (check_job.py), the engine keeps them with the
task, and the views show them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["pass", "fail", "unchecked", "not_run"]
VERDICTS: tuple[Verdict, ...] = ("pass", "fail", "unchecked", "not_run")

SYNTAX, SECURITY = "syntax_check", "security_scan"
PERFORMANCE, DOCUMENTATION = "performance_test", "documentation_check"
BUILTIN_CHECKS = (SYNTAX, SECURITY, PERFORMANCE, DOCUMENTATION)
CONFIGURED_CHECKS = (PERFORMANCE, DOCUMENTATION)  # commands the configuration names (qa.commands)

MAX_LINES = 20  # findings and notes kept per check; the rest are counted
_LINE_CHARS = 400
_FEEDBACK_CHARS = 4000  # what of the findings reaches the next attempt's prompt


@dataclass
class CheckResult:
    check: str
    verdict: Verdict
    duration_s: float = 0.0
    findings: list[str] = field(default_factory=list)  # what is wrong: the retry is told these
    notes: list[str] = field(default_factory=list)  # what was not checked, and why; what was skipped

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check, "verdict": self.verdict, "duration_s": round(self.duration_s, 3),
            "findings": bounded(self.findings), "notes": bounded(self.notes),
        }


def bounded(lines: Sequence[str]) -> list[str]:
    """At most MAX_LINES lines of at most _LINE_CHARS each; a last line counts what was left out."""
    kept = [line if len(line) <= _LINE_CHARS else line[: _LINE_CHARS - 1] + "…" for line in lines[:MAX_LINES]]
    if len(lines) > MAX_LINES:
        kept.append(f"…and {len(lines) - MAX_LINES:,} more")
    return kept


def overall(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict for many parts: any failure fails, and only all parts passing is a pass."""
    if not verdicts:
        return "unchecked"
    if "fail" in verdicts:
        return "fail"
    return "pass" if all(v == "pass" for v in verdicts) else "unchecked"


def rejection(results: Sequence[dict[str, Any]]) -> str | None:
    """Why the checks reject the attempt (the next attempt's feedback), or None when none failed."""
    failed = [r for r in results if r.get("verdict") == "fail"]
    if not failed:
        return None
    parts = []
    for result in failed:
        findings = "\n".join(f"- {line}" for line in result.get("findings") or ["(no findings given)"])
        parts.append(f"QA check {result['check']} failed:\n{findings}")
    text = "\n\n".join(parts)
    return text if len(text) <= _FEEDBACK_CHARS else text[: _FEEDBACK_CHARS - 1] + "…"
