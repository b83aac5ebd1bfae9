"""The files a task changed: what git sees in its directory (its worktree, or the working directory).

Blocking (it runs git): callers run it from a worker thread. A deleted file is not listed (there is
nothing left to check); an untracked file that is not ignored is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from parallel_coordinator.execution.git import GitFailed, run_git

MAX_FILES = 500  # files listed for the checks; past it the rest are counted in `left_out`
MAX_DIFF_CHARS = 60_000  # what of the diff an agent check is handed
_NEW_FILE_CHARS = 8_000  # what of one untracked file the diff shows


@dataclass(frozen=True)
class ChangedFiles:
    root: str | None  # the repository's top folder, which `files` are relative to
    files: tuple[str, ...] = ()
    left_out: int = 0
    diff: str = ""
    reason: str | None = None  # why nothing could be listed

    def none_found(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"no changed files found{why}"


def changed_files(directory: Path) -> ChangedFiles:
    """Tracked files that differ from HEAD and untracked files, in the repository holding `directory`."""
    try:
        top = run_git(["rev-parse", "--show-toplevel"], cwd=directory).stdout.strip()
    except GitFailed:
        return ChangedFiles(None, reason=f"{str(directory)!r} is not a git repository")
    root = Path(top)
    try:
        status = run_git(["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"], cwd=root).stdout
        diff = run_git(["diff", "--no-color", "--no-ext-diff", "HEAD", "--"], cwd=root, ok=(0, 128)).stdout
    except GitFailed as exc:
        return ChangedFiles(top, reason=f"git could not list the changes: {exc.stderr}")
    files, untracked = [], []
    for entry in status.split("\0"):
        if len(entry) < 4:
            continue
        code, name = entry[:2], entry[3:]
        if "D" in code or not (root / name).is_file():
            continue
        files.append(name)
        if code == "??":
            untracked.append(name)
    diff += "".join(_new_file(root, name) for name in untracked)
    if len(diff) > MAX_DIFF_CHARS:
        diff = diff[:MAX_DIFF_CHARS] + f"\n… (the diff was cut at {MAX_DIFF_CHARS:,} characters)\n"
    files.sort()
    return ChangedFiles(top, tuple(files[:MAX_FILES]), max(0, len(files) - MAX_FILES), diff)


def _new_file(root: Path, name: str) -> str:
    """An untracked file as a diff shows a new one (git diff HEAD leaves untracked files out)."""
    try:
        text = (root / name).read_bytes()[:_NEW_FILE_CHARS].decode("utf-8", errors="replace")
    except OSError:
        return ""
    lines = "".join(f"+{line}\n" for line in text.splitlines())
    return f"diff --git a/{name} b/{name}\nnew file\n--- /dev/null\n+++ b/{name}\n{lines}"
