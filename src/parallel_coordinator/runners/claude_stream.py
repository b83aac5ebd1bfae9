"""Reading `claude -p --output-format stream-json --verbose` live: progress, the result event, a summary.

Runs in pool workers: standard library only.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from parallel_coordinator.runners.progress import PREFIX_KEYS, Progress, parse_progress_line

#: Key under which `final_event()` carries the reader's own summary of the stream (see `summary()`).
SUMMARY_KEY = "_pcoord"

_MESSAGE_LIMIT = 200
_LAST_TEXT_LIMIT = 4000
# Tool input keys worth showing next to the tool's name, most telling first.
_TOOL_HINT_KEYS = ("file_path", "path", "pattern", "command", "url", "query", "description", "subagent_type")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class ClaudeStreamReader:
    """Fed each line of a headless Claude Code run; turns stream-json events into Progress.

    `final_event()` is the last `result` event with `summary()` merged in under `SUMMARY_KEY`;
    when the stream ended without one (killed, crashed) it is `{SUMMARY_KEY: summary()}` alone,
    and None when not one stream-json event was read.
    """

    def __init__(self) -> None:
        self._result: dict[str, Any] | None = None
        self._events = 0
        self._non_json_lines = 0
        self._model: str | None = None
        self._session_id: str | None = None
        self._message_ids: set[str] = set()
        self._usage_by_message: dict[str, dict[str, Any]] = {}
        self._turns = 0
        self._tool_uses = 0
        self._tools_used: dict[str, int] = {}
        self._last_tool: str | None = None
        self._last_usage: dict[str, Any] | None = None
        self._prefix: dict[str, int] | None = None
        self._last_text: str | None = None
        self._api_errors: list[str] = []
        self._api_retries = 0
        self._last_api_error: str | None = None
        self._rate_limited = False
        self._overloaded = False
        self._rate_limit_info: dict[str, Any] | None = None
        self._retry_delay_ms: float | None = None
        self._rejected_until: float | None = None

    # -- StreamReader protocol -------------------------------------------------------------

    def on_stdout_line(self, line: str) -> Progress | None:
        text = line.strip()
        if not text.startswith("{"):
            if text:
                self._non_json_lines += 1
            return None
        # Tool results can be megabytes of file text and tell us nothing: skip parsing them.
        if text.startswith('{"type":"user"'):
            self._events += 1
            return None
        try:
            event = json.loads(text)
        except ValueError:
            self._non_json_lines += 1
            return None
        if not isinstance(event, dict):
            self._non_json_lines += 1
            return None
        self._events += 1
        return self._on_event(event)

    def on_stderr_line(self, line: str) -> Progress | None:
        # claude's stderr is log text; a JSON progress line (a wrapper script's) still counts.
        return parse_progress_line(line)

    def final_event(self) -> dict[str, Any] | None:
        if self._result is not None:
            return {**self._result, SUMMARY_KEY: self.summary()}
        if self._events:
            return {SUMMARY_KEY: self.summary()}
        return None

    # -- what the stream told us -----------------------------------------------------------

    def tokens_used(self) -> int:
        """Tokens the run has used so far: every API response's input (cached or not) and output."""
        total = 0
        for usage in self._usage_by_message.values():
            for key in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens"):
                value = usage.get(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    total += value
        return total

    def summary(self) -> dict[str, Any]:
        """What the reader counted, JSON-ready.

        model, session_id; turns (distinct assistant messages), tool_uses, tools_used {name: n},
        last_tool; last_usage (the last assistant message's usage); prefix (the first turn's prompt as
        the API counted it: input_tokens, cache_creation_input_tokens, cache_read_input_tokens; None
        until a first answer arrived): what the run paid before any work; last_text (the last assistant
        text that was not an API error: partial work when a run is cut off); api_retries,
        last_api_error ("529 overloaded"); rate_limited (429 or a rejected rate_limit_event),
        overloaded (529); rate_limit_info (the last rate_limit_event's); retry_delay_ms (the last
        wait Claude Code announced before retrying a 429 or 529: at least the API's Retry-After, when
        it sent one); rejected_until (epoch seconds: the resetsAt of the last rejected
        rate_limit_event); api_errors (the `error` codes of API error messages, e.g.
        "authentication_failed"); non_json_lines.
        """
        return {
            "model": self._model,
            "session_id": self._session_id,
            "turns": self._turns,
            "tool_uses": self._tool_uses,
            "tools_used": dict(self._tools_used),
            "last_tool": self._last_tool,
            "last_usage": self._last_usage,
            "prefix": self._prefix,
            "last_text": self._last_text,
            "api_retries": self._api_retries,
            "last_api_error": self._last_api_error,
            "rate_limited": self._rate_limited,
            "overloaded": self._overloaded,
            "rate_limit_info": self._rate_limit_info,
            "retry_delay_ms": self._retry_delay_ms,
            "rejected_until": self._rejected_until,
            "api_errors": list(self._api_errors),
            "non_json_lines": self._non_json_lines,
        }

    # -- events ----------------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> Progress | None:
        kind = event.get("type")
        if isinstance(event.get("session_id"), str):
            self._session_id = event["session_id"]
        if kind == "system":
            subtype = event.get("subtype")
            if subtype == "init":
                return self._on_init(event)
            if subtype == "api_retry":
                return self._on_api_retry(event)
            return None
        if kind == "assistant":
            return self._on_assistant(event)
        if kind == "rate_limit_event":
            return self._on_rate_limit(event)
        if kind == "result":
            return self._on_result(event)
        return None

    def _on_init(self, event: dict[str, Any]) -> Progress:
        model = event.get("model")
        self._model = model if isinstance(model, str) else None
        return Progress(message=f"started, model {self._model}" if self._model else "started")

    def _note_status(self, status: Any, code: Any) -> None:
        if status == 429 or code in ("rate_limit", "rate_limit_error"):
            self._rate_limited = True
        if status == 529 or code in ("overloaded", "overloaded_error"):
            self._overloaded = True

    def _on_api_retry(self, event: dict[str, Any]) -> Progress:
        self._api_retries += 1
        status, error = event.get("error_status"), event.get("error")
        self._note_status(status, error)
        cause = " ".join(str(part) for part in (status, error) if part is not None) or "an error"
        self._last_api_error = cause
        attempt, limit = event.get("attempt"), event.get("max_retries")
        counter = f" {attempt}/{limit}" if attempt is not None and limit is not None else ""
        delay = _number(event.get("retry_delay_ms"))
        if delay is not None and delay >= 0 and (status in (429, 529) or error in ("rate_limit", "overloaded")):
            self._retry_delay_ms = delay
        wait = f", next try in {delay / 1000:.1f} s" if delay is not None else ""
        return Progress(message=_clip(f"API retry{counter} after {cause}{wait}", _MESSAGE_LIMIT))

    def _on_assistant(self, event: dict[str, Any]) -> Progress | None:
        message = event.get("message")
        if not isinstance(message, dict):
            return None
        # One API response arrives as several events (one per content block) sharing an id.
        message_id = message.get("id")
        if not isinstance(message_id, str) or message_id not in self._message_ids:
            self._turns += 1
            if isinstance(message_id, str):
                self._message_ids.add(message_id)
        turn = self._turns
        if isinstance(message.get("usage"), dict):
            self._last_usage = message["usage"]
            if isinstance(message_id, str):
                self._usage_by_message[message_id] = message["usage"]
        blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
        texts = [b.get("text") for b in blocks if b.get("type") == "text"]
        text = " ".join(t for t in texts if isinstance(t, str))
        if event.get("is_api_error_message") or event.get("error"):
            code = event.get("error")
            if isinstance(code, str):
                self._api_errors.append(code)
            self._note_status(event.get("api_error_status"), code)
            self._note_status(None, event.get("api_error_type"))
            return Progress(message=_clip(f"API error: {text or code}", _MESSAGE_LIMIT))
        first_response = self._prefix is None and isinstance(message.get("usage"), dict)
        if first_response:
            self._prefix = {key: _count(message["usage"].get(key)) for key in PREFIX_KEYS}
        progress = self._turn_progress(turn, text, blocks)
        return replace(progress, first_response=True) if first_response else progress

    def _turn_progress(self, turn: int, text: str, blocks: list[dict[str, Any]]) -> Progress:
        tools = [b for b in blocks if b.get("type") == "tool_use"]
        for block in tools:
            name = str(block.get("name") or "tool")
            self._tool_uses += 1
            self._tools_used[name] = self._tools_used.get(name, 0) + 1
            self._last_tool = name
        if text.strip():
            self._last_text = text[-_LAST_TEXT_LIMIT:]
        if tools:
            labels = ", ".join(map(_tool_label, tools))
            return Progress(message=_clip(f"turn {turn}: {labels}", _MESSAGE_LIMIT))
        if text.strip():
            return Progress(message=_clip(f"turn {turn}: {text}", _MESSAGE_LIMIT))
        return Progress(message=f"turn {turn}")

    def _on_rate_limit(self, event: dict[str, Any]) -> Progress | None:
        info = event.get("rate_limit_info")
        if not isinstance(info, dict):
            return None
        self._rate_limit_info = info
        status = info.get("status")
        resets = _number(info.get("resetsAt"))
        if status == "rejected":
            self._rate_limited = True
            self._rejected_until = resets if resets is not None else self._rejected_until
        if status == "allowed":
            return None
        kind = info.get("rateLimitType")
        when = ""
        if resets is not None:
            when = ", resets " + datetime.fromtimestamp(resets, UTC).strftime("%Y-%m-%d %H:%M UTC")
        label = f" ({kind})" if kind else ""
        return Progress(message=_clip(f"rate limit {status}{label}{when}", _MESSAGE_LIMIT))

    def _on_result(self, event: dict[str, Any]) -> Progress:
        self._result = event
        self._note_status(event.get("api_error_status"), event.get("api_error_type"))
        turns = event.get("num_turns")
        after = f" after {turns} turn{'' if turns == 1 else 's'}" if isinstance(turns, int) else ""
        if event.get("is_error"):
            return Progress(message=_clip(f"failed{after}: {result_error_text(event)}", _MESSAGE_LIMIT))
        return Progress(message=f"finished{after}")


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _tool_label(block: dict[str, Any]) -> str:
    name = str(block.get("name") or "tool")
    args = block.get("input")
    if isinstance(args, dict):
        for key in _TOOL_HINT_KEYS:
            value = args.get(key)
            if isinstance(value, str) and value.strip():
                return f"{name} {_clip(value, 60)}"
    return name


def result_error_text(event: dict[str, Any]) -> str:
    """The failure text of a `result` event: its `result`, else its `errors`, else its subtype."""
    text = event.get("result")
    if isinstance(text, str) and text.strip():
        return text.strip()
    errors = event.get("errors")
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    return f"claude ended with {event.get('subtype') or 'an error'}"
