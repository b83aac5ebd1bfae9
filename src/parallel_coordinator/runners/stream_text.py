"""What the stream readers of the codex and gemini runners share: short text for progress messages, and the
JSON-lines reading itself (JsonlStreamReader).

Runs in pool workers: standard library only.
"""

from __future__ import annotations

import json
from typing import Any

from parallel_coordinator.runners.progress import Progress, parse_progress_line

MESSAGE_LIMIT = 200
# Tool argument keys worth showing next to the tool's name, most telling first.
_HINT_KEYS = ("file_path", "absolute_path", "path", "dir_path", "pattern", "command", "url", "query", "description")


def clip(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line of at most `limit` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tool_label(name: str, args: Any) -> str:
    """The tool's name and its most telling argument: "read_file src/app.py"."""
    if isinstance(args, dict):
        for key in _HINT_KEYS:
            value = args.get(key)
            if isinstance(value, str) and value.strip():
                return f"{name} {clip(value, 60)}"
    return name


def parse_event(line: str) -> dict[str, Any] | None:
    """A JSONL line as an event object, or None for anything else (log text, a cut line)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        event = json.loads(text)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def count(value: Any) -> int | None:
    """A token count from an event: an int, not a bool; None otherwise."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class JsonlStreamReader:
    """What the readers of agent CLIs that write one JSON event a line share (codex, gemini): events and
    stray lines counted, stderr read for a wrapper's JSON progress, the summary as the final event."""

    def __init__(self) -> None:
        self._events = 0
        self._non_json_lines = 0

    def on_stdout_line(self, line: str) -> Progress | None:
        event = parse_event(line)
        if event is None:
            if line.strip():
                self._non_json_lines += 1
            return None
        self._events += 1
        return self._on_event(event)

    def on_stderr_line(self, line: str) -> Progress | None:
        return parse_progress_line(line)  # the CLI's stderr is its log; a wrapper's JSON progress still counts

    def final_event(self) -> dict[str, Any] | None:
        return self.summary() if self._events else None

    def _on_event(self, event: dict[str, Any]) -> Progress | None:
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        raise NotImplementedError
