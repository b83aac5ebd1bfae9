"""What a stream reader reports, and the reader's Protocol: shared by every runner's reader (streams.py).

Runs in pool workers: standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

StreamKind = Literal["command", "claude", "codex", "gemini"]
# A run's prefix, its first turn's prompt, as a reader reports it (RunResult.details["prefix"]): tokens
# uncached, written to the prompt cache, read from it.
PREFIX_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


@dataclass(frozen=True)
class Progress:
    """A progress update read from an agent's stream: percent (0-100) and/or a short message.

    `first_response` marks the model's first answer: from then on the run's prompt is in the API's
    prompt cache, for other runs of the same prompt to read (engine/warmup.py).
    """

    percent: float | None = None
    message: str | None = None
    first_response: bool = False


class StreamReader(Protocol):
    """Fed every complete line an agent writes; returns a Progress when the line carries one."""

    def on_stdout_line(self, line: str) -> Progress | None: ...

    def on_stderr_line(self, line: str) -> Progress | None: ...

    def final_event(self) -> dict[str, Any] | None:
        """The structured result the stream ended with, if the runner's format has one."""
        ...

    def tokens_used(self) -> int | None:
        """Tokens used so far, if the runner's format reports them."""
        ...


def parse_progress_line(line: str) -> Progress | None:
    """A stderr line that is a JSON object with a numeric `progress` (0-100) and optional `message`."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    value = obj.get("progress")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    message = obj.get("message")
    return Progress(
        percent=min(100.0, max(0.0, float(value))),
        message=str(message)[:200] if message is not None else None,
    )
