"""Reading `gemini -o stream-json` live: progress from its JSONL events, the answer, the stats, errors.

The events (Gemini CLI 0.61): init {session_id, model}, message {role, content, delta}, tool_use
{tool_name, tool_id, parameters}, tool_result {tool_id, status, output, error}, error {severity,
message} (a warning, or a quota error it retries), and result {status, error?, stats}.
Runs in pool workers: standard library only.
"""

from __future__ import annotations

import re
from typing import Any

from parallel_coordinator.runners.progress import Progress
from parallel_coordinator.runners.stream_text import JsonlStreamReader, clip, count, tool_label

STREAM = "gemini"
_TEXT_LIMIT = 4 * 1024 * 1024  # characters of answer kept, as the supervisor's stdout cap: no unbounded growth
_KEPT_WARNINGS = 20
_RATE_LIMITED = re.compile(r"\b429\b|RESOURCE_EXHAUSTED|quota|rate.?limit", re.IGNORECASE)


class GeminiStreamReader(JsonlStreamReader):
    """Fed each line of a `gemini -o stream-json` run; `final_event()` is its summary (see `summary()`).

    The answer is the assistant text after the last tool call, as the CLI's own `-o json` answer is.
    """

    def __init__(self) -> None:
        super().__init__()
        self._session_id: str | None = None
        self._model: str | None = None
        self._result: dict[str, Any] | None = None
        self._text: list[str] = []
        self._text_chars = 0
        self._text_cut = False
        self._last_text: str | None = None
        self._tool_uses = 0
        self._tools_used: dict[str, int] = {}
        self._tool_errors = 0
        self._warnings: list[str] = []
        self._rate_limited = False

    # -- StreamReader protocol -------------------------------------------------------------

    def tokens_used(self) -> int | None:
        """Every token of the run (prompt, answer, thoughts, tools): gemini reports them in its result."""
        stats = self._stats()
        if stats is None:
            return None
        total = count(stats.get("total_tokens"))
        if total is not None:
            return total
        return (count(stats.get("input_tokens")) or 0) + (count(stats.get("output_tokens")) or 0)

    def summary(self) -> dict[str, Any]:
        """What the stream said, JSON-ready: session_id, model, result (the result event: status, error,
        stats), answer (the text after the last tool call) and answer_cut, last_text, tool_uses,
        tools_used {name: n}, tool_errors, warnings (error events), rate_limited, non_json_lines."""
        return {
            "stream": STREAM,
            "session_id": self._session_id,
            "model": self._model,
            "result": self._result,
            "answer": "".join(self._text),
            "answer_cut": self._text_cut,
            "last_text": self._last_text,
            "tool_uses": self._tool_uses,
            "tools_used": dict(self._tools_used),
            "tool_errors": self._tool_errors,
            "warnings": list(self._warnings),
            "rate_limited": self._rate_limited,
            "non_json_lines": self._non_json_lines,
        }

    # -- events ----------------------------------------------------------------------------

    def _stats(self) -> dict[str, Any] | None:
        stats = (self._result or {}).get("stats")
        return stats if isinstance(stats, dict) else None

    def _on_event(self, event: dict[str, Any]) -> Progress | None:
        kind = event.get("type")
        if kind == "init":
            session, model = event.get("session_id"), event.get("model")
            self._session_id = session if isinstance(session, str) else None
            self._model = model if isinstance(model, str) else None
            return Progress(message=f"started, model {self._model}" if self._model else "started")
        if kind == "message":
            return self._on_message(event)
        if kind == "tool_use":
            name = str(event.get("tool_name") or "tool")
            self._tool_uses += 1
            self._tools_used[name] = self._tools_used.get(name, 0) + 1
            self._keep_answer_so_far()
            return Progress(message=clip(f"tool {self._tool_uses}: {tool_label(name, event.get('parameters'))}"))
        if kind == "tool_result":
            if event.get("status") == "error":
                self._tool_errors += 1
                error = event.get("error")
                message = error.get("message") if isinstance(error, dict) else None
                return Progress(message=clip(f"tool failed: {message or event.get('tool_id')}"))
            return None
        if kind == "error":
            message = str(event.get("message") or "")
            if _RATE_LIMITED.search(message):
                self._rate_limited = True
            if len(self._warnings) < _KEPT_WARNINGS:
                self._warnings.append(message)
            return Progress(message=clip(f"{event.get('severity') or 'error'}: {message}"))
        if kind == "result":
            return self._on_result(event)
        return None

    def _on_message(self, event: dict[str, Any]) -> Progress | None:
        content = event.get("content")
        if event.get("role") != "assistant" or not isinstance(content, str) or not content:
            return None
        if self._text_chars < _TEXT_LIMIT:
            kept = content[: _TEXT_LIMIT - self._text_chars]
            self._text.append(kept)
            self._text_chars += len(kept)
            self._text_cut = self._text_cut or len(kept) < len(content)
        else:
            self._text_cut = True
        return Progress(message=clip(f"writing: {content}"))

    def _keep_answer_so_far(self) -> None:
        # A tool call starts a new answer; what was written before it stays as the last partial text.
        if self._text:
            self._last_text = "".join(self._text)[-4000:]
        self._text, self._text_chars, self._text_cut = [], 0, False

    def _on_result(self, event: dict[str, Any]) -> Progress:
        self._result = event
        error = event.get("error")
        if event.get("status") == "error":
            message = error.get("message") if isinstance(error, dict) else None
            if _RATE_LIMITED.search(str(message or "")) or (
                isinstance(error, dict) and str(error.get("type")) in ("TerminalQuotaError", "RetryableQuotaError")
            ):
                self._rate_limited = True
            return Progress(message=clip(f"failed: {message or 'error'}"))
        used = self.tokens_used()
        return Progress(message=f"finished, {used:,} tokens" if used else "finished")
