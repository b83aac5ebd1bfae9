"""Whether a run that says it succeeded is accepted: its output against the subtask's schema, its claim of
work against what it did.

Pure: the engine asks after every successful attempt. An output that does not validate is a failed attempt
like any other, retried under the normal policy, and the reason reaches the next attempt as feedback. A
claim of work with no sign of it (no tool call from an agent that has tools, an isolated worktree left
unchanged) is flagged; the session's `on_flagged` option can make a flag a failure too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

# A task "asks for a change" when it says so with one of these verbs (implement, fixes, added, ...).
_CHANGE = re.compile(
    r"\b(implement|fix|add|change|update|edit|write|create|refactor|remove|delete|rename|modify|migrate|patch|"
    r"replace|install|upgrade|convert|port|generate)\w*\b",
    re.IGNORECASE,
)
_FENCED_JSON = re.compile(r"```(?:json)?\s*\n(.*?)\n```", re.DOTALL)
_ERROR_CHARS = 600  # what of a validation error travels (to the next attempt's prompt, to the result)


def asks_for_change(description: str) -> bool:
    return _CHANGE.search(description) is not None


@dataclass
class Acceptance:
    accepted: bool
    error: str | None = None  # why not, for the result and as the next attempt's feedback
    retryable: bool = True  # False when another attempt cannot help
    output_json: Any = None
    flags: list[str] = field(default_factory=list)


def parse_json_output(text: str) -> tuple[Any, str | None]:
    """The JSON an agent answered with: the whole output, else its last fenced ```json block."""
    stripped = text.strip()
    try:
        return json.loads(stripped), None
    except ValueError:
        pass
    for block in reversed(_FENCED_JSON.findall(stripped)):
        try:
            return json.loads(block), None
        except ValueError:
            continue
    return None, "the output is not JSON (neither the whole text nor a ```json block in it)"


def check_output(schema: dict[str, Any], output: str, structured: Any = None) -> Acceptance:
    """Validate the run's structured output (the CLI's own, when it has one) or the JSON in its text."""
    value, error = (structured, None) if structured is not None else parse_json_output(output)
    if error is not None:
        return Acceptance(False, f"output_schema: {error}")
    cls = validator_for(schema, default=Draft202012Validator)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)  # "format": "email" and the like are checked too
    try:
        problem = best_match(validator.iter_errors(value))
    except Exception as exc:  # a schema that cannot be applied: the task's error, never the server's
        return Acceptance(False, f"output_schema could not be applied: {exc}"[:_ERROR_CHARS], retryable=False)
    if problem is not None:
        where = "/".join(str(part) for part in problem.absolute_path) or "(the top level)"
        return Acceptance(False, f"output_schema: at {where}: {problem.message}"[:_ERROR_CHARS])
    return Acceptance(True, output_json=value)


def unverified_work(
    description: str, *, has_tools: bool, tool_uses: object, worktree: dict[str, Any] | None
) -> list[str]:
    """Signs that a run claimed work it did not do; `tool_uses` is what the runner counted, if it counts."""
    if not asks_for_change(description):
        return []
    flags = []
    if has_tools and isinstance(tool_uses, int) and not isinstance(tool_uses, bool) and tool_uses == 0:
        flags.append("no_tool_use: it made no tool call, although it has tools and the task asks for a change")
    if worktree is not None and worktree.get("files_changed") == 0 and "error" not in worktree:
        flags.append("no_change: its worktree has no change, although the task asks for one")
    return flags


def feedback_section(error: str) -> str:
    """What the next attempt is told about the last one's rejection (appended to its description)."""
    return f"\n\n## Your previous attempt was not accepted\n\n{error}\n\nCorrect this in your answer."


def schema_instruction(schema: dict[str, Any]) -> str:
    """For runners that cannot enforce a schema themselves: the schema, in the task's own words."""
    return (
        "\n\n## Answer format\n\nAnswer with one JSON value, and nothing else, that matches this JSON Schema:\n\n"
        f"```json\n{json.dumps(schema, indent=2)}\n```"
    )
