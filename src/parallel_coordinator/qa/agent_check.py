"""An agent named as a QA check: it is handed the task's output and diff, and answers pass or fail with reasons.

Its answer is held to VERDICT_SCHEMA like any subtask's output_schema: a claude agent gets it as
--json-schema, any other runner's answer is parsed and validated (engine/acceptance.py check_output).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from parallel_coordinator.errors import PlanError
from parallel_coordinator.qa.changes import ChangedFiles
from parallel_coordinator.qa.verdicts import BUILTIN_CHECKS, CheckResult

if TYPE_CHECKING:
    from parallel_coordinator.agents import AgentCatalog, AgentSpec

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["pass", "fail"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["verdict", "reasons"],
}
_OUTPUT_CHARS = 40_000  # of the task's output, handed to the check


def check_agents(checks: Iterable[str], catalog: AgentCatalog) -> dict[str, AgentSpec]:
    """The agents options.qa names; a name that is neither a built-in check nor an agent is a plan error."""
    agents = {}
    for name in checks:
        if name in BUILTIN_CHECKS:
            continue
        spec = catalog.get(name)
        if spec is None:
            known = [*BUILTIN_CHECKS, *catalog.names()]
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PlanError(
                f"options.qa names {name!r}, which is neither a built-in check ({', '.join(BUILTIN_CHECKS)}) nor"
                f" an agent{hint}"
            )
        agents[name] = spec
    return agents


def check_description(task_description: str) -> str:
    return (
        "You are a quality check on another agent's work. Your context holds `output` (what it answered) and"
        " `diff` (the files it changed, as a git diff). Decide whether the work does what its task asks,"
        " correctly and safely. Answer with a JSON object: \"verdict\" is \"pass\" or \"fail\", and \"reasons\""
        " lists why, one short sentence each (for a fail: what must be fixed).\n\n## The task it was given\n\n"
        + task_description
    )


def check_context(output: str, changes: ChangedFiles) -> dict[str, str]:
    shown = output if len(output) <= _OUTPUT_CHARS else output[:_OUTPUT_CHARS] + "\n… (cut)"
    return {"output": shown, "diff": changes.diff or f"({changes.none_found()})"}


def read_answer(check: str, answered: Any, error: str | None) -> CheckResult:
    """The check's verdict from its validated answer, or unchecked (with why) when it gave none."""
    if error is not None:
        return CheckResult(check, "unchecked", notes=[f"the check agent gave no verdict: {error}"])
    reasons = [str(reason) for reason in answered.get("reasons", [])]
    if answered["verdict"] == "fail":
        return CheckResult(check, "fail", findings=reasons or ["(it gave no reason)"])
    return CheckResult(check, "pass", notes=reasons)
