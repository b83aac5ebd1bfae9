"""Worktree isolation: each isolated task runs in its own temporary git worktree on its own branch.

Blocking (it runs `git`); call it from a worker thread (`anyio.to_thread.run_sync`), never on the event loop.

Layout: the worktree of attempt 2 of task 't1' in session 's' is `<root>/s/t1-2`, on branch `pcoord/s/t1-2`,
with a small record `<root>/s/t1-2.worktree.json` beside it (worktree_records.py); git itself is run by git.py.

What an agent sees: the repository at HEAD (committed state only, unless `include_uncommitted=True` snapshots
the main checkout's tracked changes and untracked, non-ignored files into a first commit on the branch).
Submodules are not initialised. `summarize` commits whatever the agent left (ignored files excepted) on the
task's branch with a fixed identity, so the work survives `remove_worktree` and can be merged later.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from parallel_coordinator.errors import WorktreeError
from parallel_coordinator.execution.git import (
    COMMIT_IDENTITY,
    NO_SIGN,
    RETRY_DELAYS_S,
    SLOW_S,
    TRANSIENT,
    GitFailed,
    branch_exists,
    git,
    is_repository,
    pause,
    registered_worktrees,
    run_git,
)
from parallel_coordinator.execution.worktree_records import (
    BRANCH_PREFIX,
    RECORD_SUFFIX,
    Worktree,
    record_path,
    session_entries,
    write_record,
)
from parallel_coordinator.state.names import safe_name

# Worktree, WorktreeError and the record names live beside this module; they are imported from here too.
__all__ = [
    "BRANCH_PREFIX", "RECORD_SUFFIX", "Worktree", "WorktreeError", "WorktreeSummary", "create_worktree",
    "prune_orphans", "remove_session_worktrees", "remove_worktree", "safe_name", "summarize",
]


@dataclass(frozen=True)
class WorktreeSummary:
    """What the agent changed relative to the worktree's base commit (untracked files included)."""

    branch: str
    files_changed: int
    insertions: int
    deletions: int
    files: list[str]
    committed: bool  # the branch holds the work as commits beyond base_commit

    def describe(self) -> str:
        if not self.files_changed:
            return f"no changes (branch {self.branch})"
        return f"{self.files_changed} file(s) changed, +{self.insertions} -{self.deletions}, on branch {self.branch}"


def create_worktree(
    working_directory: Path,
    *,
    session_id: str,
    task_id: str,
    attempt: int,
    root: Path,
    include_uncommitted: bool = False,
) -> Worktree:
    """Make a new branch and worktree for one task attempt, at HEAD of `working_directory`'s repository.

    With `include_uncommitted`, the main checkout's uncommitted changes (tracked, and untracked files that are
    not ignored) become one commit on the new branch, which is then the base the summary is measured from.
    The main checkout, its index and its refs are never touched.
    """
    what = f"cannot isolate task {task_id!r}"
    directory = Path(working_directory).expanduser().absolute()
    if not directory.is_dir():
        raise WorktreeError(f"{what}: working directory {str(directory)!r} does not exist or is not a directory")
    try:
        top = Path(git(["rev-parse", "--show-toplevel"], cwd=directory).strip())
        prefix = git(["rev-parse", "--show-prefix"], cwd=directory).strip()
    except GitFailed as exc:
        raise WorktreeError(
            f"{what}: {str(directory)!r} is not inside a git repository (git said: {exc.stderr}); "
            "run `git init` and commit, or do not ask for worktree isolation"
        ) from None
    try:
        head = git(["rev-parse", "--verify", "HEAD^{commit}"], cwd=top).strip()
    except GitFailed as exc:
        raise WorktreeError(
            f"{what}: the repository at {str(top)!r} has no commits yet (git said: {exc.stderr}); commit once first"
        ) from None
    base = _snapshot(top, head, task_id) if include_uncommitted else head

    name = f"{safe_name(task_id)}-{attempt}"
    session = safe_name(session_id)
    path = Path(root).expanduser().absolute() / session / name
    branch = f"{BRANCH_PREFIX}/{session}/{name}"
    worktree = Worktree(
        path=path,
        branch=branch,
        base_commit=base,
        repo_root=top,
        subdir=PurePosixPath(prefix.rstrip("/") or "."),
        task_id=task_id,
    )
    if path.exists() or branch_exists(top, branch):
        raise WorktreeError(
            f"{what}: {str(path)!r} or branch {branch!r} is left over from an earlier run; "
            f"remove it with remove_session_worktrees (or `git worktree remove` and `git branch -D` in {str(top)!r})"
        )
    write_record(worktree)
    delays = iter(RETRY_DELAYS_S)
    while True:
        try:
            git(["worktree", "add", "--quiet", "-b", branch, str(path), base], cwd=top, timeout=SLOW_S)
            return worktree
        except GitFailed as exc:
            # A failed add may leave the new branch and a half-made worktree behind; undo both before
            # trying again (or the retry fails with "branch already exists") and before giving up.
            _undo_partial_add(top, path, branch)
            delay = next(delays, None) if TRANSIENT.search(exc.stderr) else None
            if delay is None:
                record_path(path).unlink(missing_ok=True)
                _remove_if_empty(path.parent)
                raise WorktreeError(
                    f"{what}: could not add a worktree of {str(top)!r} at {str(path)!r} (git said: {exc.stderr})"
                ) from None
            pause(delay)


def summarize(worktree: Worktree) -> WorktreeSummary:
    """Commit what the agent left in the worktree on its branch, and say what changed since `base_commit`.

    Calling it again after no further edits makes no new commit and gives the same summary.
    """
    if not (worktree.path / ".git").exists():
        raise WorktreeError(f"cannot summarize {str(worktree.path)!r}: the worktree is gone")
    cwd = worktree.path
    try:
        git(["add", "--all"], cwd=cwd, retry=True, timeout=SLOW_S)
        if run_git(["diff", "--cached", "--quiet"], cwd=cwd, ok=(0, 1)).returncode == 1:
            label = f"task {worktree.task_id!r}" if worktree.task_id else worktree.branch
            message = f"parallel-coordinator: changes made by {label}"
            git([*COMMIT_IDENTITY, *NO_SIGN, "commit", "--quiet", "--no-verify", "-m", message], cwd=cwd, retry=True)
        numstat = git(["diff", "--numstat", "-z", "--no-renames", worktree.base_commit, "HEAD"], cwd=cwd)
        ahead = int(git(["rev-list", "--count", f"{worktree.base_commit}..HEAD"], cwd=cwd).strip())
    except GitFailed as exc:
        raise WorktreeError(f"cannot summarize the worktree {str(worktree.path)!r} (git said: {exc.stderr})") from None
    files: list[str] = []
    insertions = deletions = 0
    for entry in numstat.split("\0"):
        if not entry:
            continue
        added, deleted, name = entry.split("\t", 2)
        files.append(name)
        insertions += int(added) if added.isdigit() else 0  # "-" for binary files
        deletions += int(deleted) if deleted.isdigit() else 0
    return WorktreeSummary(
        branch=worktree.branch,
        files_changed=len(files),
        insertions=insertions,
        deletions=deletions,
        files=files,
        committed=ahead > 0,
    )


def remove_worktree(worktree: Worktree, *, keep_branch: bool = True) -> None:
    """Remove the worktree folder and git's record of it; uncommitted edits in it are discarded (summarize first).

    The branch is kept when `keep_branch` and it has commits beyond `base_commit` (the work stays reachable),
    and deleted otherwise. Works when the folder or the whole repository was already deleted.
    """
    repo = worktree.repo_root
    if is_repository(repo):
        if worktree.path.exists():
            try:
                git(
                    ["worktree", "remove", "--force", "--force", str(worktree.path)],
                    cwd=repo,
                    retry=True,
                    timeout=SLOW_S,
                )
            except GitFailed:
                shutil.rmtree(worktree.path, ignore_errors=True)  # not (or no longer) a worktree of repo
        try:
            git(["worktree", "prune"], cwd=repo, retry=True)
            if branch_exists(repo, worktree.branch) and not (keep_branch and _has_work(worktree)):
                git(["branch", "--quiet", "-D", worktree.branch], cwd=repo, retry=True)
        except GitFailed as exc:
            raise WorktreeError(
                f"cannot remove the worktree {str(worktree.path)!r} of {str(repo)!r} (git said: {exc.stderr})"
            ) from None
    shutil.rmtree(worktree.path, ignore_errors=True)
    record_path(worktree.path).unlink(missing_ok=True)
    _remove_if_empty(worktree.path.parent)


def remove_session_worktrees(root: Path, session_id: str, repo_roots: Iterable[Path] | None = None) -> int:
    """Remove every worktree of one session (after cancel or crash recovery); returns how many were removed.

    Branches holding work are kept. `repo_roots`, when given, are pruned too: that clears git's records of
    worktrees whose folder and record are both gone.
    """
    session_dir = Path(root).expanduser().absolute() / safe_name(session_id)
    removed = 0
    for worktree in session_entries(session_dir):
        remove_worktree(worktree)
        removed += 1
    for repo in repo_roots or ():
        if is_repository(Path(repo)):
            try:
                git(["worktree", "prune"], cwd=Path(repo), retry=True)
            except GitFailed as exc:
                raise WorktreeError(f"cannot prune worktrees of {str(repo)!r} (git said: {exc.stderr})") from None
    _remove_if_empty(session_dir)
    return removed


def prune_orphans(root: Path) -> list[Path]:
    """Remove broken leftovers under `root`, in every session; returns the worktree paths removed.

    Broken means: the folder was deleted by hand, the repository is gone, or git no longer knows the folder as
    a worktree. Healthy worktrees are left alone: those of live sessions, and those kept by option.
    """
    base = Path(root).expanduser().absolute()
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    registered: dict[Path, set[Path] | None] = {}
    for session_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for worktree in session_entries(session_dir):
            repo = worktree.repo_root
            if is_repository(repo) and worktree.path.is_dir():
                if repo not in registered:
                    registered[repo] = registered_worktrees(repo)
                known = registered[repo]
                if known is None or worktree.path.resolve() in known:
                    continue  # healthy, or git cannot say right now: never remove on a guess
            remove_worktree(worktree)
            removed.append(worktree.path)
        _remove_if_empty(session_dir)
    return removed


# -- internals ---------------------------------------------------------------------------------------------------


def _undo_partial_add(repo: Path, path: Path, branch: str) -> None:
    """Best effort: a branch we just made holds no work, so it can go along with its half-made worktree."""
    for args in (["worktree", "remove", "--force", "--force", str(path)], ["worktree", "prune"]):
        with contextlib.suppress(GitFailed):
            git(args, cwd=repo, retry=True)
    shutil.rmtree(path, ignore_errors=True)
    if branch_exists(repo, branch):
        with contextlib.suppress(GitFailed):
            git(["branch", "--quiet", "-D", branch], cwd=repo, retry=True)


def _snapshot(top: Path, head: str, task_id: str) -> str:
    """A commit on top of HEAD holding the main checkout's uncommitted work, or HEAD when there is none."""
    with tempfile.TemporaryDirectory(prefix="pcoord-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        try:
            git(["read-tree", head], cwd=top, env=env)
            git(["add", "--all", "--", "."], cwd=top, env=env, timeout=SLOW_S)
            tree = git(["write-tree"], cwd=top, env=env).strip()
            if tree == git(["rev-parse", f"{head}^{{tree}}"], cwd=top).strip():
                return head
            message = f"parallel-coordinator: uncommitted changes of {top} when task {task_id!r} started"
            return git([*COMMIT_IDENTITY, "commit-tree", tree, "-p", head, "-m", message], cwd=top).strip()
        except GitFailed as exc:
            raise WorktreeError(
                f"cannot isolate task {task_id!r}: could not snapshot the uncommitted changes of {str(top)!r} "
                f"(git said: {exc.stderr})"
            ) from None


def _has_work(worktree: Worktree) -> bool:
    if not worktree.base_commit:
        return True  # base unknown: keep the branch rather than lose work
    try:
        count = git(
            ["rev-list", "--count", f"{worktree.base_commit}..refs/heads/{worktree.branch}"], cwd=worktree.repo_root
        )
    except GitFailed:
        return True  # cannot tell (base commit gone?): keep the branch rather than lose work
    return int(count.strip() or "0") > 0


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        directory.rmdir()
