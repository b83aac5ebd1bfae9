"""Git plumbing for worktrees: `git` run with a clean environment and a time bound, git's transient lock
errors tried again. Blocking: callers run it from a worker thread, never on the event loop.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# The identity of the commits we make, so they work on machines with no git identity configured.
COMMIT_IDENTITY = ("-c", "user.name=Parallel Coordinator", "-c", "user.email=parallel-coordinator@localhost")
NO_SIGN = ("-c", "commit.gpgsign=false")
# Git takes locks on refs, config and `.git/worktrees`; concurrent adds of one repository can also see
# another add's half-made admin folder ("failed to read .../commondir"). Both pass when tried again.
TRANSIENT = re.compile(r"lock|file exists|failed to read .*(commondir|gitdir)", re.IGNORECASE)
RETRY_DELAYS_S = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0)
QUICK_S = 60.0
SLOW_S = 300.0  # checking out or removing a large tree


class GitFailed(Exception):
    """A git command failed; `stderr` carries git's own words for the WorktreeError that reports it."""

    def __init__(self, args: Sequence[str], stderr: str) -> None:
        super().__init__(f"git {' '.join(args)}: {stderr}")
        self.stderr = stderr


def _environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    # Never inherit a repository or index from our caller (e.g. when run from a git hook); never prompt.
    env = {k: v for k, v in os.environ.items() if k not in {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"}}
    env.update({"GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "LANGUAGE": "C"})
    env.update(extra or {})
    return env


def run_git(
    args: Sequence[str],
    *,
    cwd: Path,
    ok: Sequence[int] = (0,),
    retry: bool = False,
    timeout: float = QUICK_S,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    delays = iter(RETRY_DELAYS_S if retry else ())
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
            raise GitFailed(args, f"no answer within {timeout:.0f}s") from None
        except OSError as exc:  # git missing, or cwd vanished
            raise GitFailed(args, str(exc)) from None
        if done.returncode in ok:
            return done
        stderr = done.stderr.strip() or f"exit status {done.returncode}"
        delay = next(delays, None) if TRANSIENT.search(stderr) else None
        if delay is None:
            raise GitFailed(args, stderr)
        pause(delay)


def pause(delay: float) -> None:
    time.sleep(delay * random.uniform(0.5, 1.5))  # jitter, so racing git commands do not retry in step


def git(
    args: Sequence[str],
    *,
    cwd: Path,
    retry: bool = False,
    timeout: float = QUICK_S,
    env: Mapping[str, str] | None = None,
) -> str:
    return run_git(args, cwd=cwd, retry=retry, timeout=timeout, env=env).stdout


def is_repository(path: Path) -> bool:
    if not path.is_dir():
        return False
    try:
        git(["rev-parse", "--git-dir"], cwd=path)
    except GitFailed:
        return False
    return True


def branch_exists(repo: Path, branch: str) -> bool:
    ref = f"refs/heads/{branch}"
    return run_git(["rev-parse", "--verify", "--quiet", ref], cwd=repo, ok=(0, 1)).returncode == 0


def registered_worktrees(repo: Path) -> set[Path] | None:
    try:
        listing = git(["worktree", "list", "--porcelain", "-z"], cwd=repo, retry=True)
    except GitFailed:
        return None
    return {Path(item[len("worktree ") :]).resolve() for item in listing.split("\0") if item.startswith("worktree ")}
