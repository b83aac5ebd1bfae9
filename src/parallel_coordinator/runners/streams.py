"""Reading an agent's output streams live, inside the supervisor: the command protocol's reader, and the
reader for each stream kind.

Runs in pool workers: standard library only.
"""

from __future__ import annotations

from typing import Any

from parallel_coordinator.runners.claude_stream import ClaudeStreamReader
from parallel_coordinator.runners.codex_stream import CodexStreamReader
from parallel_coordinator.runners.gemini_stream import GeminiStreamReader
from parallel_coordinator.runners.progress import Progress, StreamKind, StreamReader, parse_progress_line

# Progress, StreamKind, StreamReader and parse_progress_line live in progress.py; imported from here too.
__all__ = ["CommandStreamReader", "Progress", "StreamKind", "StreamReader", "make_stream_reader", "parse_progress_line"]


class CommandStreamReader:
    """The command agent protocol: stdout is the result, stderr lines may be JSON progress."""

    def on_stdout_line(self, line: str) -> Progress | None:
        return None

    def on_stderr_line(self, line: str) -> Progress | None:
        return parse_progress_line(line)

    def final_event(self) -> dict[str, Any] | None:
        return None

    def tokens_used(self) -> int | None:
        return None


# Each stream kind's reader; a kind not here (there is none) would read as the command protocol.
_READERS: dict[str, type[StreamReader]] = {
    "claude": ClaudeStreamReader, "codex": CodexStreamReader, "gemini": GeminiStreamReader,
}


def make_stream_reader(kind: StreamKind) -> StreamReader:
    return _READERS.get(kind, CommandStreamReader)()
