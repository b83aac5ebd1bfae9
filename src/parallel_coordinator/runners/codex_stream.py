"""Reading `codex exec --json` live: progress from its JSONL events, the last agent message, usage, errors.

The events (Codex CLI 0.169): thread.started, turn.started, item.started / item.updated / item.completed
(agent_message, reasoning, command_execution, file_change, mcp_tool_call, web_search, todo_list, error),
turn.completed {usage}, turn.failed {error}, and error {message} (a transient "Reconnecting..." or fatal).
Runs in pool workers: standard library only.
"""

from __future__ import annotations

import re
from typing import Any

from parallel_coordinator.runners.progress import Progress
from parallel_coordinator.runners.stream_text import JsonlStreamReader, clip, count, tool_label

STREAM = "codex"
_KEPT_ERRORS = 20  # the first fatal errors and warnings kept; a run retrying for hours must not grow this
_KEPT_FILES = 200
# What codex says when the account is out of requests: it retried 429s, or the plan's limit is spent.
_RATE_LIMITED = re.compile(r"\b429\b|too many requests|usage limit|quota exceeded|rate.?limit", re.IGNORECASE)


class CodexStreamReader(JsonlStreamReader):
    """Fed each line of a `codex exec --json` run; `final_event()` is its summary (see `summary()`)."""

    def __init__(self) -> None:
        super().__init__()
        self._thread_id: str | None = None
        self._turns = 0
        self._completed = False
        self._failure: str | None = None
        self._errors: list[str] = []
        self._warnings: list[str] = []
        self._reconnects = 0
        self._last_reconnect: str | None = None
        self._rate_limited = False
        self._usage: dict[str, Any] | None = None
        self._final_text: str | None = None
        self._last_text: str | None = None
        self._tool_uses = 0
        self._tools_used: dict[str, int] = {}
        self._files_changed: list[str] = []

    # -- StreamReader protocol -------------------------------------------------------------

    def tokens_used(self) -> int | None:
        """Input (cached included) plus output tokens: codex reports them once, when its turn completes."""
        if self._usage is None:
            return None
        return (count(self._usage.get("input_tokens")) or 0) + (count(self._usage.get("output_tokens")) or 0)

    def summary(self) -> dict[str, Any]:
        """What the stream said, JSON-ready: thread_id, completed, failure (turn.failed's message), errors
        (fatal error events), warnings (error items), reconnects and last_reconnect, rate_limited, usage,
        final_text (the last agent message of a completed turn), last_text (the last agent message seen),
        tool_uses, tools_used {kind: n}, files_changed, turns, non_json_lines."""
        return {
            "stream": STREAM,
            "thread_id": self._thread_id,
            "completed": self._completed,
            "failure": self._failure,
            "errors": list(self._errors),
            "warnings": list(self._warnings),
            "reconnects": self._reconnects,
            "last_reconnect": self._last_reconnect,
            "rate_limited": self._rate_limited,
            "usage": self._usage,
            "final_text": self._final_text,
            "last_text": self._last_text,
            "tool_uses": self._tool_uses,
            "tools_used": dict(self._tools_used),
            "files_changed": list(self._files_changed),
            "turns": self._turns,
            "non_json_lines": self._non_json_lines,
        }

    # -- events ----------------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> Progress | None:
        kind = event.get("type")
        if kind == "thread.started":
            thread = event.get("thread_id")
            self._thread_id = thread if isinstance(thread, str) else None
            return Progress(message="started")
        if kind == "turn.started":
            self._turns += 1
            return Progress(message="working")
        if kind == "turn.completed":
            usage = event.get("usage")
            self._usage = usage if isinstance(usage, dict) else {}
            self._completed = True
            self._final_text = self._last_text
            used = self.tokens_used()
            return Progress(message=f"finished, {used:,} tokens" if used else "finished")
        if kind == "turn.failed":
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self._failure = str(message or "turn failed")
            self._note_limit(self._failure)
            return Progress(message=clip(f"failed: {self._failure}"))
        if kind == "error":
            return self._on_error(str(event.get("message") or "error"))
        if kind in ("item.started", "item.updated", "item.completed"):
            item = event.get("item")
            return self._on_item(kind, item) if isinstance(item, dict) else None
        return None

    def _on_error(self, message: str) -> Progress:
        self._note_limit(message)
        if message.startswith("Reconnecting"):
            self._reconnects += 1
            self._last_reconnect = message
            return Progress(message=clip(message))
        if len(self._errors) < _KEPT_ERRORS:
            self._errors.append(message)
        return Progress(message=clip(f"error: {message}"))

    def _note_limit(self, message: str) -> None:
        if _RATE_LIMITED.search(message):
            self._rate_limited = True

    def _on_item(self, kind: str, item: dict[str, Any]) -> Progress | None:
        item_type = str(item.get("type") or "item")
        done = kind == "item.completed"
        if item_type == "agent_message":
            text = item.get("text")
            if isinstance(text, str) and text.strip():
                self._last_text = text
                return Progress(message=clip(text))
            return None
        if item_type == "reasoning":
            text = item.get("text")
            return Progress(message=clip(f"thinking: {text}")) if isinstance(text, str) and text.strip() else None
        if item_type == "error":
            message = str(item.get("message") or "")
            if done and len(self._warnings) < _KEPT_ERRORS:
                self._warnings.append(message)
            return Progress(message=clip(f"warning: {message}")) if message else None
        if item_type == "todo_list":
            items = [i for i in item.get("items") or [] if isinstance(i, dict)]
            finished = sum(1 for i in items if i.get("completed"))
            return Progress(
                percent=100.0 * finished / len(items) if items else None,
                message=f"plan: {finished}/{len(items)} steps done",
            )
        if done:
            self._tool_uses += 1
            self._tools_used[item_type] = self._tools_used.get(item_type, 0) + 1
        if item_type == "file_change" and done:
            paths = [str(c.get("path")) for c in item.get("changes") or [] if isinstance(c, dict)]
            # At most _KEPT_FILES paths: a run rewriting a whole tree must not grow the summary without bound.
            self._files_changed = list(dict.fromkeys([*self._files_changed, *paths]))[:_KEPT_FILES]
            return Progress(message=clip(f"changed {', '.join(paths) or 'files'}"))
        return Progress(message=clip(_item_label(item_type, item)))


def _item_label(item_type: str, item: dict[str, Any]) -> str:
    if item_type == "command_execution":
        status = item.get("status")
        code = item.get("exit_code")
        ending = f" (exit {code})" if status != "in_progress" and code is not None else ""
        return f"$ {item.get('command') or ''}{ending}"
    if item_type == "mcp_tool_call":
        return tool_label(f"{item.get('server')}.{item.get('tool')}", item.get("arguments"))
    if item_type == "web_search":
        return f"searching: {item.get('query') or ''}"
    return item_type.replace("_", " ")
