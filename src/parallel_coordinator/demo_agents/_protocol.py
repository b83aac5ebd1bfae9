"""The command agent protocol as the demo agents speak it: read the request, report progress,
find the target directory and walk its text files, print the result or fail readably.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

MAX_FILE_BYTES = 2 * 1024 * 1024
SKIP_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", "build", "dist",
        "target", ".tox", ".nox", ".eggs", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".idea", "site-packages",
    }
)  # fmt: skip
BINARY_SUFFIXES = frozenset(
    {
        ".png", ".jpg", ".jpeg", ".gif", ".bmp", ".ico", ".webp", ".pdf", ".zip", ".gz", ".tgz",
        ".bz2", ".xz", ".7z", ".tar", ".jar", ".class", ".pyc", ".pyo", ".so", ".dylib", ".dll",
        ".exe", ".o", ".a", ".bin", ".db", ".sqlite", ".sqlite3", ".woff", ".woff2", ".ttf",
        ".otf", ".mp3", ".mp4", ".wav", ".whl", ".npy", ".pkl", ".parquet",
    }
)  # fmt: skip
_OPTION_LINE = re.compile(r"^[ \t]*(?:[-*][ \t]+)?([A-Za-z_]+)[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


class AgentError(Exception):
    """A failure the agent explains on stderr before exiting with status 1."""


@dataclass(frozen=True)
class Request:
    """The one JSON object a command agent reads from stdin."""

    session_id: str = ""
    task_id: str = ""
    agent: str = ""
    description: str = ""
    task_description: str = ""
    context: dict[str, str] = field(default_factory=dict)

    def option(self, *keys: str) -> str | None:
        """The value of the first `key: value` line for one of `keys`: the subtask's own
        description wins over the session's task description."""
        wanted = {key.lower() for key in keys}
        for text in (self.description, self.task_description):
            for match in _OPTION_LINE.finditer(text):
                if match.group(1).lower() in wanted:
                    return match.group(2).strip("`'\"")
        return None


def read_request() -> Request:
    """Parse stdin; an empty stdin (or a terminal, when run by hand) is an empty request."""
    raw = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    if not raw.strip():
        return Request()
    try:
        data = json.loads(raw.decode("utf-8", errors="replace"))
    except ValueError as exc:
        raise AgentError(f"stdin is not one JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise AgentError(f"stdin must be a JSON object, got {type(data).__name__}")
    context = data.get("context") or {}
    if not isinstance(context, dict):
        raise AgentError(f"'context' must map task ids to output text, got {type(context).__name__}")
    return Request(
        session_id=str(data.get("session_id") or ""),
        task_id=str(data.get("task_id") or ""),
        agent=str(data.get("agent") or ""),
        description=str(data.get("description") or ""),
        task_description=str(data.get("task_description") or ""),
        context={str(key): "" if value is None else str(value) for key, value in context.items()},
    )


def progress(percent: float, message: str = "") -> None:
    """One progress line on stderr, as the engine parses it."""
    line = {"progress": round(min(100.0, max(0.0, percent)), 1), "message": message}
    print(json.dumps(line), file=sys.stderr, flush=True)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def target_dir(request: Request) -> Path:
    """The directory named by a `path:` (or `target:`) line, else the working directory."""
    given = request.option("path", "target")
    path = Path(given).expanduser() if given else Path.cwd()
    if not path.is_dir():
        problem = "is not a directory" if path.exists() else "does not exist"
        raise AgentError(
            f"target directory {str(path)!r} {problem}; "
            "name an existing directory with a 'path: <dir>' line in the task description"
        )
    return path.resolve()


@dataclass(frozen=True)
class SourceFile:
    path: Path
    rel: str  # POSIX path relative to the target, for stable file:line references
    text: str

    def lines(self) -> list[str]:
        # split on "\n" only: str.splitlines also breaks on form feeds and would shift line numbers
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [line.removesuffix("\r") for line in lines]


def _candidates(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            path = Path(dirpath, name)
            # symlinks could leave the tree or count a file twice; FIFOs would block a read
            if path.suffix.lower() in BINARY_SUFFIXES or path.is_symlink() or not path.is_file():
                continue
            found.append(path)
    return found


def scan(root: Path) -> Iterator[SourceFile]:
    """Every text file under `root` (first 2 MiB of each), reporting progress from 5 to 90."""
    paths = _candidates(root)
    total = len(paths)
    progress(5, f"found {total} files to read")
    step = max(1, total // 4)
    for index, path in enumerate(paths, start=1):
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_FILE_BYTES)
        except OSError as exc:
            log(f"skipped {path}: {exc.strerror or exc}")
            continue
        if b"\0" not in data[:8192]:
            yield SourceFile(path, path.relative_to(root).as_posix(), data.decode("utf-8", errors="replace"))
        if index % step == 0 and index < total:
            progress(5 + 85 * index / total, f"read {index}/{total} files")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> str:
    """A GitHub-flavoured Markdown table; `right` lists the columns to right-align."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    rule = ["--:" if index in right else "---" for index in range(len(headers))]
    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def run(work: Callable[[Request], str]) -> NoReturn:
    """Run one agent: the request in, progress at 0 and 100, the Markdown result on stdout."""
    try:
        progress(0, "starting")
        result = work(read_request())
    except AgentError as exc:
        log(f"error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    # bytes, so the result is UTF-8 whatever the locale says
    sys.stdout.buffer.write(result.rstrip("\n").encode("utf-8") + b"\n")
    sys.stdout.flush()
    progress(100, "done")
    sys.exit(0)
