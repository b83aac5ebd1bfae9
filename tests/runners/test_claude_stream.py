"""ClaudeStreamReader on transcripts of the real Claude Code 2.1.330 and on the fake `claude`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from parallel_coordinator.runners.claude_stream import SUMMARY_KEY, ClaudeStreamReader
from parallel_coordinator.runners.streams import Progress, make_stream_reader

FAKE_CLAUDE = Path(__file__).resolve().parents[1] / "fakes" / "claude"
ARGV = [str(FAKE_CLAUDE), "-p", "--output-format", "stream-json", "--verbose", "--max-turns", "5"]

# Captured from `claude -p --output-format stream-json --verbose` 2.1.330: logged out (temp HOME, no
# ANTHROPIC_API_KEY); against a loopback Messages API stub answering 529; and the same stub
# answering with a Glob tool call.
REAL_LOGGED_OUT = r'''
{"type":"system","subtype":"init","cwd":"/tmp/tmp.mZLxzpHhVY","session_id":"ff3e71f4-a11e-4bdc-a9d7-3df371598b27","tools":["Grep","Read"],"mcp_servers":[],"model":"claude-sonnet-5-5","permissionMode":"default","slash_commands":["deep-research","design","design-sync","dataviz","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","doctor","loop","claude-api","workflow-authoring","run","run-skill-generator","plugin-authoring","agents","auto-mode-setup","autocompact","clear","color","compact","config","output-style","context","effort","fast","focus","heapdump","init","mcp","model","__remote-workflow","workflow-launch-exec","reload-plugins","reload-skills","rename","security-review","usage","insights","recap","goal","design-consent","design-revoke","list-agents","team-onboarding"],"terminal_slash_commands":["doctor","color","focus","reload-plugins"],"apiKeySource":"none","claude_code_version":"2.1.330","output_style":"default","agents":["claude","Explore","general-purpose","Plan","statusline-setup"],"skills":["deep-research","design","design-sync","dataviz","update-config","verify","debug","code-review","simplify","batch","fewer-permission-prompts","doctor","loop","claude-api","workflow-authoring","run","run-skill-generator","plugin-authoring"],"plugins":[{"name":"cc-plugin-agents-md","path":"builtin","source":"cc-plugin-agents-md@builtin"},{"name":"cc-plugin-telemetry","path":"builtin","source":"cc-plugin-telemetry@builtin"},{"name":"cc-plugin-privacy","path":"builtin","source":"cc-plugin-privacy@builtin"},{"name":"cc-plugin-plugin-authoring","path":"builtin","source":"cc-plugin-plugin-authoring@builtin"}],"capabilities":["interrupt_receipt_v1","interrupt_cancel_queued_v1","interrupt_send_now_v1","interrupt_requeue_taken_v1","msg_lifecycle_v1","request_marker_lists_v1","ask_user_question_unanswered_v1","lifecycle_wakeup_source_v1","sdk_mcp_tools_list_changed","sdk_mcp_manifests","mcp_read_resource_v1","mcp_tool_ui_meta_v1","ui_surface_v1","mcp_call_result_not_for_model_v1","mcp_call_check_permissions_v1","voice_call_talk_line_v1","withdrawn_files_note_v2","withdrawn_tools_v1","ui_pane_widget_v1","reload_plugins_refuse_if_busy_v1","get_usage_detached_v1","silent_resend_files_v1"],"analytics_disabled":false,"product_feedback_disabled":false,"served_by_anthropic":true,"uuid":"6b013052-27a7-4eea-b6d2-8fbe070b167b","memory_paths":{"auto":"/tmp/tmp.JBt1OxHhu6/.claude/projects/-tmp-tmp-mZLxzpHhVY/memory/"},"original_cwd":"/tmp/tmp.mZLxzpHhVY","additional_directories":[],"messaging_socket_path":"/tmp/cc-socks/10019.sock","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","per_turn_effort_active":true,"ultrathink_available":false,"ultrathink_typed_raises":false,"view_mode":"default"}
{"type":"assistant","message":{"diagnostics":null,"id":"46be1168-88f1-4e28-95d1-3d6704e34ce8","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"output_tokens_details":null,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null,"fallback_credit":null},"content":[{"type":"text","text":"Not logged in · Please run /login"}],"context_management":null},"parent_tool_use_id":null,"session_id":"ff3e71f4-a11e-4bdc-a9d7-3df371598b27","uuid":"80b2d560-2019-4e4b-a8bb-b15e448f58da","timestamp":"2026-11-24T10:26:45.623Z","error":"authentication_failed","is_api_error_message":true}
{"duration_api_ms":0,"stop_reason":"stop_sequence","session_id":"ff3e71f4-a11e-4bdc-a9d7-3df371598b27","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{},"permission_denials":[],"terminal_reason":"api_error","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":true,"num_turns":1,"subtype":"success","api_error_status":null,"result":"Not logged in · Please run /login","type":"result","duration_ms":113,"uuid":"d5fb2dcb-1241-4ee6-8a4a-8f2858e957a9","queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{}}
'''.strip().splitlines()  # noqa: E501

REAL_OVERLOADED = r'''
{"type":"system","subtype":"api_retry","attempt":1,"max_retries":2,"retry_delay_ms":562,"error_status":529,"error":"overloaded","session_id":"a44ca81b-5f18-4b4c-979a-928ace88b227","uuid":"18abd31e-b807-4594-8d28-a76a2e7b34d2"}
{"type":"system","subtype":"api_retry","attempt":2,"max_retries":2,"retry_delay_ms":1162,"error_status":529,"error":"overloaded","session_id":"a44ca81b-5f18-4b4c-979a-928ace88b227","uuid":"145cd618-4bf9-4cdc-b87c-01f0efb25223"}
{"type":"assistant","message":{"diagnostics":null,"id":"0f3fe332-48bd-4de5-a430-729001897aa4","container":null,"model":"<synthetic>","role":"assistant","stop_details":null,"stop_reason":"stop_sequence","stop_sequence":"","type":"message","usage":{"output_tokens_details":null,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":null,"cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":null,"iterations":null,"speed":null,"fallback_credit":null},"content":[{"type":"text","text":"API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:18529)."}],"context_management":null},"parent_tool_use_id":null,"session_id":"a44ca81b-5f18-4b4c-979a-928ace88b227","uuid":"244b430c-edf3-4bb9-9bad-7f16741dd6ca","timestamp":"2026-11-24T10:20:18.446Z","error":"server_error","is_api_error_message":true,"api_error_status":529,"api_error_type":"overloaded_error"}
{"duration_api_ms":0,"stop_reason":"stop_sequence","session_id":"a44ca81b-5f18-4b4c-979a-928ace88b227","total_cost_usd":0,"usage":{"output_tokens_details":{"thinking_tokens":0},"input_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":0,"server_tool_use":{"web_search_requests":0,"web_fetch_requests":0},"service_tier":"standard","cache_creation":{"ephemeral_1h_input_tokens":0,"ephemeral_5m_input_tokens":0},"inference_geo":"","iterations":[],"speed":"standard","fallback_credit":null},"modelUsage":{},"permission_denials":[],"terminal_reason":"api_error","fast_mode_state":"off","fast_mode_disabled_reason":"sdk_opt_in_required","subagent_stats":{"spawned":0,"requested":{"background":0,"foreground":0,"unset":0},"started_in_background":0,"max_depth":0,"spawned_by_subagents":0,"completed":0,"failed":0,"killed":{"parent":0,"user":0,"system":0},"refused":{"depth_limit":0,"concurrency_limit":0,"budget":0},"by_type":{}},"safety_stops":0,"is_error":true,"num_turns":1,"subtype":"success","api_error_status":529,"api_error_type":"overloaded_error","result":"API Error: 529 Overloaded. This is a server-side issue, usually temporary — try again in a moment. If it persists, check your inference gateway (127.0.0.1:18529).","type":"result","duration_ms":1853,"uuid":"2b5e8fae-1ed7-41c5-807a-ed0a623937e6","queued_turn_count":0,"result_index":0,"model_usage_since_last_result":{}}
'''.strip().splitlines()  # noqa: E501

REAL_TOOL_TURN = r'''
{"type":"assistant","message":{"id":"msg_stub1","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"text","text":"I'll look for Markdown files."}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"9b7f9296-0578-47dc-b81c-884cd184f5e8","uuid":"dd208a43-2e6c-4570-bc72-a75734217f40","timestamp":"2026-11-24T10:20:43.929Z","request_id":"req_stub1"}
{"type":"assistant","message":{"id":"msg_stub1","type":"message","role":"assistant","model":"claude-sonnet-5-5","content":[{"type":"tool_use","id":"toolu_stub1","name":"Glob","input":{"pattern":"*.md"}}],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1200,"cache_creation_input_tokens":300,"cache_read_input_tokens":4000,"output_tokens":1},"context_management":null},"parent_tool_use_id":null,"session_id":"9b7f9296-0578-47dc-b81c-884cd184f5e8","uuid":"18315ccb-5670-44c2-8570-758d3b02c574","timestamp":"2026-11-24T10:20:43.931Z","request_id":"req_stub1"}
{"type":"user","message":{"role":"user","content":[{"tool_use_id":"toolu_stub1","type":"tool_result","content":"README.md"}]},"parent_tool_use_id":null,"session_id":"9b7f9296-0578-47dc-b81c-884cd184f5e8","uuid":"1d3614ab-c2c6-4483-9d54-018377ca3a60","timestamp":"2026-11-24T10:20:43.969Z","tool_use_result":{"filenames":["README.md"],"durationMs":19,"numFiles":1,"truncated":false,"totalMatches":1,"countIsComplete":true},"tool_result_meta":[{"id":"toolu_stub1","permission_decision":{"decision":"accept","source":"config","reason_type":"rule"}}]}
'''.strip().splitlines()  # noqa: E501


def feed(reader: ClaudeStreamReader, lines: list[str]) -> list[Progress]:
    return [p for p in map(reader.on_stdout_line, lines) if p is not None]


def run_fake(scenario: str, prompt: str = "Check the docs.\n") -> tuple[int, list[str], str]:
    env = {**os.environ, "FAKE_CLAUDE_SCENARIO": scenario, "CLAUDE_CODE_MAX_RETRIES": "3"}
    proc = subprocess.run(ARGV, input=prompt.encode(), capture_output=True, env=env, timeout=60, check=False)
    return proc.returncode, proc.stdout.decode().splitlines(), proc.stderr.decode()


def test_make_stream_reader_gives_a_claude_reader_for_the_claude_stream() -> None:
    assert isinstance(make_stream_reader("claude"), ClaudeStreamReader)


def test_the_real_logged_out_transcript_ends_in_an_error_result_despite_its_success_subtype() -> None:
    reader = ClaudeStreamReader()
    messages = [p.message for p in feed(reader, REAL_LOGGED_OUT)]

    assert messages == [
        "started, model claude-sonnet-5-5",
        "API error: Not logged in · Please run /login",
        "failed after 1 turn: Not logged in · Please run /login",
    ]
    final = reader.final_event()
    assert final is not None
    assert final["type"] == "result" and final["subtype"] == "success" and final["is_error"] is True
    summary = final[SUMMARY_KEY]
    assert summary["api_errors"] == ["authentication_failed"]
    assert summary["last_text"] is None, "an API error message is not the agent's work"
    assert summary["rate_limited"] is False and summary["overloaded"] is False


def test_real_api_retries_on_529_become_progress_and_mark_the_run_overloaded() -> None:
    reader = ClaudeStreamReader()
    messages = [p.message for p in feed(reader, REAL_OVERLOADED)]

    assert messages[:2] == [
        "API retry 1/2 after 529 overloaded, next try in 0.6 s",
        "API retry 2/2 after 529 overloaded, next try in 1.2 s",
    ]
    summary = reader.summary()
    assert summary["overloaded"] is True
    assert summary["api_retries"] == 2
    assert summary["last_api_error"] == "529 overloaded"


def test_a_real_tool_call_is_reported_with_its_turn_and_tool() -> None:
    reader = ClaudeStreamReader()
    messages = [p.message for p in feed(reader, REAL_TOOL_TURN)]

    # Text and tool call arrive as two events of one API message: still turn 1.
    assert messages == ["turn 1: I'll look for Markdown files.", "turn 1: Glob *.md"]
    summary = reader.summary()
    assert summary["turns"] == 1
    assert summary["tools_used"] == {"Glob": 1}
    assert summary["last_usage"]["cache_read_input_tokens"] == 4000


def test_the_first_answer_gives_the_prefix_and_is_marked_as_the_first_response() -> None:
    reader = ClaudeStreamReader()
    progress = feed(reader, REAL_TOOL_TURN)

    assert reader.summary()["prefix"] == {
        "input_tokens": 1200, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 4000,
    }
    assert [p.first_response for p in progress] == [True, False], "only the first event of the first answer"


def test_an_api_error_message_is_no_first_response_and_gives_no_prefix() -> None:
    reader = ClaudeStreamReader()
    progress = feed(reader, REAL_LOGGED_OUT)

    assert reader.summary()["prefix"] is None
    assert not any(p.first_response for p in progress)


def test_lines_that_are_not_json_are_ignored_and_counted() -> None:
    reader = ClaudeStreamReader()

    assert reader.on_stdout_line("Warning: something on stdout") is None
    assert reader.on_stdout_line("{not json") is None
    assert reader.on_stdout_line("") is None
    assert reader.on_stdout_line("[1, 2]") is None
    assert reader.final_event() is None
    assert reader.summary()["non_json_lines"] == 3


def test_stderr_log_lines_are_not_progress_but_json_progress_lines_are() -> None:
    reader = ClaudeStreamReader()

    assert reader.on_stderr_line("[DEBUG] loading settings") is None
    assert reader.on_stderr_line('{"progress": 40, "message": "indexing"}') == Progress(40.0, "indexing")


def test_a_stream_cut_off_before_its_result_still_yields_the_summary() -> None:
    reader = ClaudeStreamReader()
    feed(reader, REAL_TOOL_TURN)

    final = reader.final_event()

    assert final is not None
    assert "type" not in final
    assert final[SUMMARY_KEY]["last_tool"] == "Glob"
    assert final[SUMMARY_KEY]["last_text"] == "I'll look for Markdown files."


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("allowed", None),
        ("allowed_warning", "rate limit allowed_warning (five_hour), resets 2026-11-24 15:00 UTC"),
    ],
)
def test_rate_limit_events_are_reported_unless_all_is_well(status: str, expected: str | None) -> None:
    reader = ClaudeStreamReader()
    info = {"status": status, "resetsAt": 1795532400, "rateLimitType": "five_hour"}
    line = json.dumps({"type": "rate_limit_event", "rate_limit_info": info, "uuid": "u", "session_id": "s"})

    progress = reader.on_stdout_line(line)

    assert (progress.message if progress else None) == expected
    assert reader.summary()["rate_limited"] is False


def test_a_rejected_rate_limit_event_marks_the_run_rate_limited() -> None:
    reader = ClaudeStreamReader()
    reader.on_stdout_line(
        '{"type":"rate_limit_event","rate_limit_info":{"status":"rejected","rateLimitType":"seven_day"},'
        '"uuid":"u","session_id":"s"}'
    )

    assert reader.summary()["rate_limited"] is True
    assert reader.summary()["rate_limit_info"]["rateLimitType"] == "seven_day"


def test_the_real_overloaded_transcript_keeps_claude_codes_last_announced_retry_delay() -> None:
    reader = ClaudeStreamReader()
    feed(reader, REAL_OVERLOADED)

    assert reader.summary()["retry_delay_ms"] == 1162  # the second api_retry's wait, the last one
    assert reader.summary()["rejected_until"] is None


def test_a_retry_after_a_connection_error_is_not_a_wait_the_api_asked_for() -> None:
    reader = ClaudeStreamReader()
    reader.on_stdout_line(json.dumps({
        "type": "system", "subtype": "api_retry", "attempt": 1, "max_retries": 10, "retry_delay_ms": 550,
        "error_status": None, "error": "unknown", "session_id": "s", "uuid": "u",
    }))

    assert reader.summary()["retry_delay_ms"] is None


def test_a_rejected_rate_limit_event_keeps_when_its_window_resets() -> None:
    reader = ClaudeStreamReader()
    for status, resets in (("rejected", 1795532400), ("allowed", 1795536000)):
        info = {"status": status, "resetsAt": resets, "rateLimitType": "five_hour"}
        reader.on_stdout_line(json.dumps({"type": "rate_limit_event", "rate_limit_info": info}))

    assert reader.summary()["rejected_until"] == 1795532400  # an allowed event later does not move it


def test_the_fake_success_transcript_reads_as_two_turns_and_a_result() -> None:
    code, lines, _ = run_fake("success", "Check the docs.\n")
    reader = ClaudeStreamReader()
    messages = [p.message for p in feed(reader, lines)]

    assert code == 0
    assert messages[0] == "started, model claude-opus-5-5"
    assert "turn 1: Glob **/*.md" in messages
    assert messages[-1] == "finished after 2 turns"
    assert all(p.percent is None for p in feed(ClaudeStreamReader(), lines)), "no invented percentages"
    final = reader.final_event()
    assert final is not None and final["is_error"] is False
    assert final["result"].startswith("fake claude done: Check the docs.")
    assert final[SUMMARY_KEY]["turns"] == 2


@pytest.mark.parametrize(
    ("scenario", "rate_limited", "overloaded", "last_api_error"),
    [("rate_limit", True, False, "429 rate_limit"), ("overloaded", False, True, "529 overloaded")],
)
def test_the_fake_api_failures_are_seen_as_retries_then_an_error_result(
    scenario: str, rate_limited: bool, overloaded: bool, last_api_error: str
) -> None:
    code, lines, _ = run_fake(scenario)
    reader = ClaudeStreamReader()
    messages = [p.message or "" for p in feed(reader, lines)]

    assert code == 1
    assert sum(m.startswith("API retry") for m in messages) == 3
    summary = reader.summary()
    assert (summary["rate_limited"], summary["overloaded"]) == (rate_limited, overloaded)
    assert summary["last_api_error"] == last_api_error
    final = reader.final_event()
    assert final is not None and final["is_error"] is True


def test_the_fake_crash_leaves_no_result_event_and_logs_to_stderr() -> None:
    code, lines, stderr = run_fake("crash")
    reader = ClaudeStreamReader()
    feed(reader, lines)

    assert code == 2
    assert "TypeError" in stderr
    assert reader.final_event() == {SUMMARY_KEY: reader.summary()}
