"""Short text for progress messages, shared by the stream readers of the codex and gemini runners.

Runs in pool workers: standard library only.
"""

from __future__ import annotations

import json
from typing import Any

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
