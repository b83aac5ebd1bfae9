"""Worktree isolation: each isolated task runs in its own temporary git worktree on its own branch.

Blocking (it runs `git`); call it from a worker thread (`anyio.to_thread.run_sync`), never on the event loop.

Layout: the worktree of attempt 2 of task 't1' in session 's' is `<root>/s/t1-2`, on branch `pcoord/s/t1-2`,
with a small record `<root>/s/t1-2.worktree.json` written before git is asked for anything, so cleanup still
knows the repository and branch when the folder was deleted by hand or a crash interrupted `create_worktree`.

What an agent sees: the repository at HEAD (committed state only, unless `include_uncommitted=True` snapshots
the main checkout's tracked changes and untracked, non-ignored files into a first commit on the branch).
Submodules are not initialised. `summarize` commits whatever the agent left (ignored files excepted) on the
task's branch with a fixed identity, so the work survives `remove_worktree` and can be merged later.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.state.private_files import private_dir, write_private

# The identity of the commits we make, so they work on machines with no git identity configured.
_IDENTITY = ("-c", "user.name=Parallel Coordinator", "-c", "user.email=parallel-coordinator@localhost")
_NO_SIGN = ("-c", "commit.gpgsign=false")
BRANCH_PREFIX = "pcoord"
RECORD_SUFFIX = ".worktree.json"
# Git takes locks on refs, config and `.git/worktrees`; concurrent adds of one repository can also see
# another add's half-made admin folder ("failed to read .../commondir"). Both pass when tried again.
_TRANSIENT = re.compile(r"lock|file exists|failed to read .*(commondir|gitdir)", re.IGNORECASE)
_RETRY_DELAYS_S = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
_QUICK_S = 60.0
_SLOW_S = 300.0  # checking out or removing a large tree


class WorktreeError(CoordinatorError):
    """A worktree could not be created, summarized or removed; the message carries git's own words."""


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


def safe_name(name: str) -> str:
    """A path- and ref-safe form of `name`, unique per name: anything altered gets a short hash of the original.

    Only `[a-z0-9_-]` survive, so the result is safe on case-insensitive file systems and in ref names.
    """
    cleaned = re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-_")[:40].strip("-_")
    if cleaned == name and cleaned:
        return cleaned
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else f"x-{digest}"


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
        top = Path(_git(["rev-parse", "--show-toplevel"], cwd=directory).strip())
        prefix = _git(["rev-parse", "--show-prefix"], cwd=directory).strip()
    except _GitFailed as exc:
        raise WorktreeError(
            f"{what}: {str(directory)!r} is not inside a git repository (git said: {exc.stderr}); "
            "run `git init` and commit, or do not ask for worktree isolation"
        ) from None
    try:
        head = _git(["rev-parse", "--verify", "HEAD^{commit}"], cwd=top).strip()
    except _GitFailed as exc:
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
    if path.exists() or _branch_exists(top, branch):
        raise WorktreeError(
            f"{what}: {str(path)!r} or branch {branch!r} is left over from an earlier run; "
            f"remove it with remove_session_worktrees (or `git worktree remove` and `git branch -D` in {str(top)!r})"
        )
    _write_record(worktree)
    delays = iter(_RETRY_DELAYS_S)
    while True:
        try:
            _git(["worktree", "add", "--quiet", "-b", branch, str(path), base], cwd=top, timeout=_SLOW_S)
            return worktree
        except _GitFailed as exc:
            # A failed add may leave the new branch and a half-made worktree behind; undo both before
            # trying again (or the retry fails with "branch already exists") and before giving up.
            _undo_partial_add(top, path, branch)
            delay = next(delays, None) if _TRANSIENT.search(exc.stderr) else None
            if delay is None:
                _record_path(path).unlink(missing_ok=True)
                _remove_if_empty(path.parent)
                raise WorktreeError(
                    f"{what}: could not add a worktree of {str(top)!r} at {str(path)!r} (git said: {exc.stderr})"
                ) from None
            _pause(delay)


def summarize(worktree: Worktree) -> WorktreeSummary:
    """Commit what the agent left in the worktree on its branch, and say what changed since `base_commit`.

    Calling it again after no further edits makes no new commit and gives the same summary.
    """
    if not (worktree.path / ".git").exists():
        raise WorktreeError(f"cannot summarize {str(worktree.path)!r}: the worktree is gone")
    cwd = worktree.path
    try:
        _git(["add", "--all"], cwd=cwd, retry=True, timeout=_SLOW_S)
        if _run(["diff", "--cached", "--quiet"], cwd=cwd, ok=(0, 1)).returncode == 1:
            label = f"task {worktree.task_id!r}" if worktree.task_id else worktree.branch
            message = f"parallel-coordinator: changes made by {label}"
            _git([*_IDENTITY, *_NO_SIGN, "commit", "--quiet", "--no-verify", "-m", message], cwd=cwd, retry=True)
        numstat = _git(["diff", "--numstat", "-z", "--no-renames", worktree.base_commit, "HEAD"], cwd=cwd)
        ahead = int(_git(["rev-list", "--count", f"{worktree.base_commit}..HEAD"], cwd=cwd).strip())
    except _GitFailed as exc:
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
    if _is_repository(repo):
        if worktree.path.exists():
            try:
                _git(
                    ["worktree", "remove", "--force", "--force", str(worktree.path)],
                    cwd=repo,
                    retry=True,
                    timeout=_SLOW_S,
                )
            except _GitFailed:
                shutil.rmtree(worktree.path, ignore_errors=True)  # not (or no longer) a worktree of repo
        try:
            _git(["worktree", "prune"], cwd=repo, retry=True)
            if _branch_exists(repo, worktree.branch) and not (keep_branch and _has_work(worktree)):
                _git(["branch", "--quiet", "-D", worktree.branch], cwd=repo, retry=True)
        except _GitFailed as exc:
            raise WorktreeError(
                f"cannot remove the worktree {str(worktree.path)!r} of {str(repo)!r} (git said: {exc.stderr})"
            ) from None
    shutil.rmtree(worktree.path, ignore_errors=True)
    _record_path(worktree.path).unlink(missing_ok=True)
    _remove_if_empty(worktree.path.parent)


def remove_session_worktrees(root: Path, session_id: str, repo_roots: Iterable[Path] | None = None) -> int:
    """Remove every worktree of one session (after cancel or crash recovery); returns how many were removed.

    Branches holding work are kept. `repo_roots`, when given, are pruned too: that clears git's records of
    worktrees whose folder and record are both gone.
    """
    session_dir = Path(root).expanduser().absolute() / safe_name(session_id)
    removed = 0
    for worktree in _session_entries(session_dir):
        remove_worktree(worktree)
        removed += 1
    for repo in repo_roots or ():
        if _is_repository(Path(repo)):
            try:
                _git(["worktree", "prune"], cwd=Path(repo), retry=True)
            except _GitFailed as exc:
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
        for worktree in _session_entries(session_dir):
            repo = worktree.repo_root
            if _is_repository(repo) and worktree.path.is_dir():
                if repo not in registered:
                    registered[repo] = _registered_worktrees(repo)
                known = registered[repo]
                if known is None or worktree.path.resolve() in known:
                    continue  # healthy, or git cannot say right now: never remove on a guess
            remove_worktree(worktree)
            removed.append(worktree.path)
        _remove_if_empty(session_dir)
    return removed


# -- internals ---------------------------------------------------------------------------------------------------


class _GitFailed(Exception):
    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"git {' '.join(args)}: {stderr}")
        self.stderr = stderr


def _environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # Never inherit a repository or index from our caller (e.g. when run from a git hook); never prompt.
    env = {k: v for k, v in os.environ.items() if k not in {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"}}
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"})
    env.update(extra or {})
    return env


def _run(
    args: Sequence[str],
    *,
    cwd: Path,
    ok: Sequence[int] = (0,),
    retry: bool = False,
    timeout: float = _QUICK_S,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    delays = iter(_RETRY_DELAYS_S if retry else ())
    while True:
        try:
            done = subprocess.run(
                ["git", *args],
                cwd=cwd,
                check=False,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=_environment(env),
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise _GitFailed(args, f"no answer within {timeout:.0f}s") from None
        except OSError as exc:  # git missing, or cwd vanished
            raise _GitFailed(args, str(exc)) from None
        if done.returncode in ok:
            return done
        stderr = done.stderr.strip() or f"exit status {done.returncode}"
        delay = next(delays, None) if _TRANSIENT.search(stderr) else None
        if delay is None:
            raise _GitFailed(args, stderr)
        _pause(delay)


def _pause(delay: float) -> None:
    time.sleep(delay * random.uniform(0.5, 1.5))  # jitter, so racing git commands do not retry in step


def _undo_partial_add(repo: Path, path: Path, branch: str) -> None:
    """Best effort: a branch we just made holds no work, so it can go along with its half-made worktree."""
    for args in (["worktree", "remove", "--force", "--force", str(path)], ["worktree", "prune"]):
        with contextlib.suppress(_GitFailed):
            _git(args, cwd=repo, retry=True)
    shutil.rmtree(path, ignore_errors=True)
    if _branch_exists(repo, branch):
        with contextlib.suppress(_GitFailed):
            _git(["branch", "--quiet", "-D", branch], cwd=repo, retry=True)


def _git(
    args: Sequence[str],
    *,
    cwd: Path,
    retry: bool = False,
    timeout: float = _QUICK_S,
    env: Mapping[str, str] | None = None,
) -> str:
    return _run(args, cwd=cwd, retry=retry, timeout=timeout, env=env).stdout


def _snapshot(top: Path, head: str, task_id: str) -> str:
    """A commit on top of HEAD holding the main checkout's uncommitted work, or HEAD when there is none."""
    with tempfile.TemporaryDirectory(prefix="pcoord-index-") as scratch:
        env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        try:
            _git(["read-tree", head], cwd=top, env=env)
            _git(["add", "--all", "--", "."], cwd=top, env=env, timeout=_SLOW_S)
            tree = _git(["write-tree"], cwd=top, env=env).strip()
            if tree == _git(["rev-parse", f"{head}^{{tree}}"], cwd=top).strip():
                return head
            message = f"parallel-coordinator: uncommitted changes of {top} when task {task_id!r} started"
            return _git([*_IDENTITY, "commit-tree", tree, "-p", head, "-m", message], cwd=top).strip()
        except _GitFailed as exc:
            raise WorktreeError(
                f"cannot isolate task {task_id!r}: could not snapshot the uncommitted changes of {str(top)!r} "
                f"(git said: {exc.stderr})"
            ) from None


def _is_repository(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        _git(["rev-parse", "--git-dir"], cwd=path)
    except _GitFailed:
        return False
    return True


def _branch_exists(repo: Path, branch: str) -> bool:
    ref = f"refs/heads/{branch}"
    return _run(["rev-parse", "--verify", "--quiet", ref], cwd=repo, ok=(0, 1)).returncode == 0


def _has_work(worktree: Worktree) -> bool:
    if not worktree.base_commit:
        return True  # base unknown: keep the branch rather than lose work
    try:
        count = _git(
            ["rev-list", "--count", f"{worktree.base_commit}..refs/heads/{worktree.branch}"], cwd=worktree.repo_root
        )
    except _GitFailed:
        return True  # cannot tell (base commit gone?): keep the branch rather than lose work
    return int(count.strip() or "0") > 0


def _registered_worktrees(repo: Path) -> set[Path] | None:
    try:
        listing = _git(["worktree", "list", "--porcelain", "-z"], cwd=repo, retry=True)
    except _GitFailed:
        return None
    return {Path(item[len("worktree ") :]).resolve() for item in listing.split("\0") if item.startswith("worktree ")}


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def _write_record(worktree: Worktree) -> None:
    record = {
        "path": str(worktree.path),
        "branch": worktree.branch,
        "base_commit": worktree.base_commit,
        "repo_root": str(worktree.repo_root),
        "subdir": str(worktree.subdir),
        "task_id": worktree.task_id,
    }
    target = _record_path(worktree.path)
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


def _read_record(record: Path) -> Worktree | None:
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


def _session_entries(session_dir: Path) -> list[Worktree]:
    """Every worktree of one session folder: from its record, or, for a folder with no record, from its `.git`."""
    if not session_dir.is_dir():
        return []
    entries: dict[Path, Worktree] = {}
    for record in sorted(session_dir.glob("*" + RECORD_SUFFIX)):
        worktree = _read_record(record)
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
            repo_root=_repository_of(folder),
            task_id="",
        )
    return list(entries.values())


def _repository_of(folder: Path) -> Path:
    """The main checkout a worktree folder belongs to, read from its `.git` file; a non-path when unknown."""
    try:
        line = (folder / ".git").read_text(encoding="utf-8").strip()
    except OSError:
        return folder / ".unknown-repository"
    gitdir = Path(line.removeprefix("gitdir:").strip())
    # <repo>/.git/worktrees/<name>  ->  <repo>
    return gitdir.parent.parent.parent if gitdir.parent.name == "worktrees" else folder / ".unknown-repository"


def _remove_if_empty(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not empty, or already gone
        directory.rmdir()
