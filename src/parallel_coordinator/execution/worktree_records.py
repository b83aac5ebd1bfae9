"""Which worktrees exist: the `Worktree` value, and the small JSON record kept beside each worktree folder.

The record is written before git is asked for anything, so cleanup still knows a worktree's repository and
branch when its folder was deleted by hand or a crash interrupted its creation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from parallel_coordinator.errors import WorktreeError
from parallel_coordinator.state.private_files import private_dir, write_private

BRANCH_PREFIX = "pcoord"
RECORD_SUFFIX = ".worktree.json"


@dataclass(frozen=True)
class Worktree:
    """One task attempt's worktree. `cwd` is where the agent runs (the same subdirectory as asked for)."""

    path: Path
    branch: str
    base_commit: str
    repo_root: Path
    subdir: PurePosixPath = field(default=PurePosixPath("."))
    task_id: str = ""

    @property
    def cwd(self) -> Path:
        return self.path / self.subdir


def record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def write_record(worktree: Worktree) -> None:
    record = {
        "path": str(worktree.path),
        "branch": worktree.branch,
        "base_commit": worktree.base_commit,
        "repo_root": str(worktree.repo_root),
        "subdir": str(worktree.subdir),
        "task_id": worktree.task_id,
    }
    target = record_path(worktree.path)
    scratch = target.with_name(target.name + ".tmp")
    for _ in range(5):  # a concurrent removal may rmdir the (then empty) session folder under us
        private_dir(target.parent)
        try:
            write_private(scratch, json.dumps(record, ensure_ascii=False).encode("utf-8"))
            scratch.replace(target)
            return
        except FileNotFoundError:
            continue
    raise WorktreeError(f"cannot write {str(target)!r}: its folder keeps disappearing")


def read_record(record: Path) -> Worktree | None:
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        return Worktree(
            path=Path(data["path"]),
            branch=str(data["branch"]),
            base_commit=str(data["base_commit"]),
            repo_root=Path(data["repo_root"]),
            subdir=PurePosixPath(data.get("subdir", ".")),
            task_id=str(data.get("task_id", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def session_entries(session_dir: Path) -> list[Worktree]:
    """Every worktree of one session folder: from its record, or, for a folder with no record, from its `.git`."""
    if not session_dir.is_dir():
        return []
    entries: dict[Path, Worktree] = {}
    for record in sorted(session_dir.glob("*" + RECORD_SUFFIX)):
        worktree = read_record(record)
        path = session_dir / record.name[: -len(RECORD_SUFFIX)]
        if worktree is None or worktree.path != path:
            record.unlink(missing_ok=True)  # unreadable, or moved with its folder: the folder is handled below
            continue
        entries[path] = worktree
    for folder in sorted(p for p in session_dir.iterdir() if p.is_dir() and p not in entries):
        entries[folder] = Worktree(
            path=folder,
            branch=f"{BRANCH_PREFIX}/{session_dir.name}/{folder.name}",
            base_commit="",  # unknown: _has_work keeps the branch
            repo_root=repository_of(folder),
            task_id="",
        )
    return list(entries.values())


def repository_of(folder: Path) -> Path:
    """The main checkout a worktree folder belongs to, read from its `.git` file; a non-path when unknown."""
    try:
        line = (folder / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return folder / ".unknown-repository"
    gitdir = Path(line.removeprefix("gitdir:").strip())
    # <repo>/.git/worktrees/<name>  ->  <repo>
    return gitdir.parent.parent.parent if gitdir.parent.name == "worktrees" else folder / ".unknown-repository"
