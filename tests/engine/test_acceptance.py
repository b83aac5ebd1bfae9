"""Acceptance of a run that says it succeeded: its output against the schema, its claim of work against what it did."""

from __future__ import annotations

from parallel_coordinator.engine.acceptance import (
    asks_for_change,
    check_output,
    parse_json_output,
    unverified_work,
)
from parallel_coordinator.schemas.inputs import schema_error

SCHEMA = {
    "type": "object",
    "properties": {"verdict": {"enum": ["pass", "fail"]}, "issues": {"type": "array", "items": {"type": "string"}}},
    "required": ["verdict"],
}


def test_a_schema_that_is_not_one_is_refused_naming_why() -> None:
    assert schema_error(SCHEMA) is None
    assert schema_error(["not", "an", "object"]) == "must be a JSON Schema object, got list"
    error = schema_error({"type": "strin"})
    assert error is not None and "is not a valid JSON Schema" in error and "'strin'" in error


def test_the_json_is_the_whole_output_or_its_last_fenced_block() -> None:
    assert parse_json_output(' {"verdict": "pass"} \n') == ({"verdict": "pass"}, None)
    text = 'First a draft:\n```json\n{"verdict": "fail"}\n```\nThen the answer:\n```json\n{"verdict": "pass"}\n```\n'
    assert parse_json_output(text) == ({"verdict": "pass"}, None)
    value, error = parse_json_output("All good, I think.")
    assert value is None and error is not None and "not JSON" in error


def test_a_valid_output_is_accepted_with_its_value_and_the_clis_own_structured_output_wins() -> None:
    accepted = check_output(SCHEMA, '{"verdict": "pass", "issues": []}')
    assert accepted.accepted and accepted.output_json == {"verdict": "pass", "issues": []}
    from_cli = check_output(SCHEMA, "I checked it.", structured={"verdict": "fail", "issues": ["x"]})
    assert from_cli.accepted and from_cli.output_json == {"verdict": "fail", "issues": ["x"]}


def test_an_invalid_output_is_refused_saying_where_and_what() -> None:
    refused = check_output(SCHEMA, '{"verdict": "maybe"}')
    assert not refused.accepted
    assert refused.error is not None and refused.error.startswith("output_schema: at verdict: 'maybe' is not one of")
    missing = check_output(SCHEMA, '{"issues": []}')
    assert missing.error == "output_schema: at (the top level): 'verdict' is a required property"
    assert check_output(SCHEMA, "no json here").error is not None


def test_a_change_asked_for_is_told_by_its_verbs() -> None:
    assert asks_for_change("Implement the parser") and asks_for_change("fixes the flaky test")
    assert not asks_for_change("Summarise what the module does")


def test_success_with_no_tool_call_or_an_unchanged_worktree_is_flagged_when_the_task_asks_for_a_change() -> None:
    flags = unverified_work("Fix the bug in parse()", has_tools=True, tool_uses=0, worktree={"files_changed": 0})
    assert [flag.split(":")[0] for flag in flags] == ["no_tool_use", "no_change"]
    assert unverified_work("Fix the bug", has_tools=True, tool_uses=3, worktree={"files_changed": 2}) == []
    # No tools to use, a runner that does not count tool calls, a question rather than a change: nothing to flag.
    assert unverified_work("Fix the bug", has_tools=False, tool_uses=0, worktree=None) == []
    assert unverified_work("Fix the bug", has_tools=True, tool_uses=None, worktree=None) == []
    assert unverified_work("Explain the bug", has_tools=True, tool_uses=0, worktree={"files_changed": 0}) == []


def test_a_ref_that_leads_nowhere_or_off_the_machine_is_refused_naming_it() -> None:
    assert schema_error({"$defs": {"v": {"type": "string"}}, "properties": {"a": {"$ref": "#/$defs/v"}}}) is None
    dangling = schema_error({"$ref": "#/$defs/Verdikt"})
    assert dangling is not None and "'#/$defs/Verdikt' that does not resolve" in dangling
    remote = schema_error({"$ref": "https://example.com/schema.json"})
    assert remote is not None and "never fetched" in remote


def test_formats_are_checked() -> None:
    schema = {"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}
    assert check_output(schema, '{"mail": "a@example.com"}').accepted
    refused = check_output(schema, '{"mail": "nope"}')
    assert not refused.accepted and "is not a 'email'" in (refused.error or "")
