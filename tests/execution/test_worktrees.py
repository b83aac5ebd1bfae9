"""Worktree isolation against real git repositories made in tmp_path (no mocks)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from parallel_coordinator.errors import CoordinatorError
from parallel_coordinator.execution.worktrees import (
    Worktree,
    WorktreeError,
    create_worktree,
    prune_orphans,
    remove_session_worktrees,
    remove_worktree,
    safe_name,
    summarize,
)

COMMIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


@pytest.fixture(autouse=True)
def no_git_identity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git sees no user or system configuration, so our commits must bring their own identity."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    for name in [*COMMIT_IDENTITY, "EMAIL", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"]:
        monkeypatch.delenv(name, raising=False)


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, **COMMIT_IDENTITY}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "--quiet", "--initial-branch=main")
    (path / "src").mkdir()
    (path / "src" / "app.py").write_text("one\ntwo\nthree\n")
    (path / "README.md").write_text("# demo\n")
    (path / "old.txt").write_text("to be deleted\nsoon\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", "--all")
    git(path, "commit", "--quiet", "-m", "initial")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "state" / "worktrees"


def worktree_paths(repo: Path) -> set[Path]:
    listing = git(repo, "worktree", "list", "--porcelain")
    return {Path(line.split(" ", 1)[1]).resolve() for line in listing.splitlines() if line.startswith("worktree ")}


def branches(repo: Path) -> set[str]:
    return set(git(repo, "branch", "--format=%(refname:short)").split())


def run_agent(cwd: Path, code: str) -> None:
    """A real subprocess standing in for a coding agent: it edits files in its working directory."""
    subprocess.run([sys.executable, "-c", code], cwd=cwd, check=True, timeout=60)


AGENT_EDITS = """
from pathlib import Path
Path("src/app.py").write_text("one\\nTWO\\nthree\\nfour\\n")
Path("old.txt").unlink()
Path("new.txt").write_text("brand new\\n")
Path("debug.log").write_text("ignored\\n")
"""


def test_an_agents_edits_are_summarized_and_committed_on_its_branch(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    assert wt.cwd == wt.path
    assert wt.path == root.absolute() / "s1" / "t1-1"
    assert wt.branch == "pcoord/s1/t1-1"
    assert wt.base_commit == git(repo, "rev-parse", "HEAD").strip()

    run_agent(wt.cwd, AGENT_EDITS)
    summary = summarize(wt)

    assert summary.branch == "pcoord/s1/t1-1"
    assert sorted(summary.files) == ["new.txt", "old.txt", "src/app.py"]
    assert (summary.files_changed, summary.insertions, summary.deletions) == (3, 3, 3)
    assert summary.committed
    assert "3 file(s) changed, +3 -3" in summary.describe()
    assert git(repo, "show", f"{wt.branch}:new.txt") == "brand new\n"
    assert git(repo, "log", "-1", "--format=%an", wt.branch).strip() == "Parallel Coordinator"
    assert git(repo, "status", "--porcelain") == ""  # the main checkout never saw the edits
    assert (repo / "old.txt").exists()


def test_summarizing_twice_without_new_edits_makes_no_new_commit(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    run_agent(wt.cwd, AGENT_EDITS)
    first = summarize(wt)
    tip = git(repo, "rev-parse", wt.branch)
    assert summarize(wt) == first
    assert git(repo, "rev-parse", wt.branch) == tip


def test_an_agent_that_changes_nothing_gets_an_empty_uncommitted_summary(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    summary = summarize(wt)
    assert (summary.files_changed, summary.files, summary.committed) == (0, [], False)
    assert summary.describe() == "no changes (branch pcoord/s1/t1-1)"


def test_commits_the_agent_made_itself_count_in_the_summary(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    (wt.cwd / "README.md").write_text("# demo\nmore\n")
    git(wt.cwd, "commit", "--quiet", "-am", "agent commit")
    summary = summarize(wt)
    assert (summary.files, summary.insertions, summary.deletions, summary.committed) == (["README.md"], 1, 0, True)


def test_a_subdirectory_working_directory_runs_in_the_same_subdirectory_of_the_worktree(repo: Path, root: Path) -> None:
    wt = create_worktree(repo / "src", session_id="s1", task_id="t1", attempt=1, root=root)
    assert wt.repo_root == repo.resolve()
    assert wt.cwd == wt.path / "src"
    assert (wt.cwd / "app.py").read_text() == "one\ntwo\nthree\n"


def test_uncommitted_changes_of_the_main_checkout_are_not_copied_by_default(repo: Path, root: Path) -> None:
    (repo / "README.md").write_text("# edited but not committed\n")
    (repo / "untracked.txt").write_text("here\n")
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    assert (wt.cwd / "README.md").read_text() == "# demo\n"
    assert not (wt.cwd / "untracked.txt").exists()


def test_include_uncommitted_snapshots_them_into_the_base_and_leaves_the_main_checkout_alone(
    repo: Path, root: Path
) -> None:
    (repo / "README.md").write_text("# edited but not committed\n")
    (repo / "untracked.txt").write_text("here\n")
    (repo / "noise.log").write_text("ignored files stay behind\n")
    git(repo, "add", "README.md")
    status_before = git(repo, "status", "--porcelain")
    head = git(repo, "rev-parse", "HEAD").strip()

    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root, include_uncommitted=True)

    assert (wt.cwd / "README.md").read_text() == "# edited but not committed\n"
    assert (wt.cwd / "untracked.txt").read_text() == "here\n"
    assert not (wt.cwd / "noise.log").exists()
    assert wt.base_commit != head
    assert git(repo, "rev-parse", f"{wt.base_commit}^").strip() == head
    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "rev-parse", "HEAD").strip() == head
    (wt.cwd / "mine.txt").write_text("agent\n")
    assert summarize(wt).files == ["mine.txt"]  # the snapshot is the base, not the agent's work


def test_include_uncommitted_with_a_clean_checkout_starts_at_head(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root, include_uncommitted=True)
    assert wt.base_commit == git(repo, "rev-parse", "HEAD").strip()


def test_eight_worktrees_of_one_repository_created_at_once_all_succeed_and_are_independent(
    repo: Path, root: Path
) -> None:
    count = 8
    start = threading.Barrier(count, timeout=30)

    def create(index: int) -> Worktree:
        start.wait()
        return create_worktree(repo, session_id="s1", task_id=f"t{index}", attempt=1, root=root)

    with ThreadPoolExecutor(count) as pool:
        trees = list(pool.map(create, range(count)))

    assert len({wt.path for wt in trees}) == len({wt.branch for wt in trees}) == count
    assert {wt.path.resolve() for wt in trees} <= worktree_paths(repo)
    for index, wt in enumerate(trees):
        (wt.cwd / f"only-{index}.txt").write_text(f"{index}\n")
    for index, wt in enumerate(trees):
        assert summarize(wt).files == [f"only-{index}.txt"]

    start = threading.Barrier(count, timeout=30)

    def remove(wt: Worktree) -> None:
        start.wait()
        remove_worktree(wt)

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(remove, trees))
    assert worktree_paths(repo) == {repo.resolve()}
    assert {wt.branch for wt in trees} <= branches(repo)  # each holds work, so each is kept


def test_removing_a_worktree_deletes_its_folder_and_git_forgets_it(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    assert wt.path.resolve() in worktree_paths(repo)
    (wt.cwd / "scratch.txt").write_text("uncommitted work is discarded\n")
    remove_worktree(wt)
    assert not wt.path.exists()
    assert wt.path.resolve() not in worktree_paths(repo)
    assert list(root.iterdir()) == []  # the empty session folder goes too


def test_an_empty_branch_is_deleted_and_a_branch_with_work_is_kept(repo: Path, root: Path) -> None:
    empty = create_worktree(repo, session_id="s1", task_id="empty", attempt=1, root=root)
    busy = create_worktree(repo, session_id="s1", task_id="busy", attempt=1, root=root)
    (busy.cwd / "work.txt").write_text("work\n")
    summarize(busy)
    remove_worktree(empty)
    remove_worktree(busy)
    assert empty.branch not in branches(repo)
    assert busy.branch in branches(repo)


def test_keep_branch_false_deletes_a_branch_even_with_work(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    (wt.cwd / "work.txt").write_text("work\n")
    summarize(wt)
    remove_worktree(wt, keep_branch=False)
    assert wt.branch not in branches(repo)


def test_session_cleanup_works_after_a_worktree_folder_was_deleted_by_hand(repo: Path, root: Path) -> None:
    gone = create_worktree(repo, session_id="s1", task_id="gone", attempt=1, root=root)
    kept = create_worktree(repo, session_id="s1", task_id="kept", attempt=1, root=root)
    other = create_worktree(repo, session_id="s2", task_id="gone", attempt=1, root=root)
    shutil.rmtree(gone.path)

    assert remove_session_worktrees(root, "s1") == 2

    assert worktree_paths(repo) == {repo.resolve(), other.path.resolve()}
    assert not (root / "s1").exists()
    assert {gone.branch, kept.branch}.isdisjoint(branches(repo))
    assert other.cwd.is_dir()


def test_session_cleanup_works_after_the_repository_was_deleted(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    shutil.rmtree(repo)
    assert remove_session_worktrees(root, "s1") == 1
    assert not wt.path.exists()
    assert not root.exists() or list(root.iterdir()) == []


def test_session_cleanup_removes_a_worktree_whose_record_was_lost_and_keeps_its_branch(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    (root / "s1" / "t1-1.worktree.json").unlink()
    assert remove_session_worktrees(root, "s1", repo_roots=[repo]) == 1
    assert worktree_paths(repo) == {repo.resolve()}
    assert wt.branch in branches(repo)  # base unknown, so the branch is kept rather than risk losing work


def test_session_cleanup_with_repo_roots_forgets_worktrees_whose_folder_and_record_are_gone(
    repo: Path, root: Path
) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    shutil.rmtree(root / "s1")
    assert remove_session_worktrees(root, "s1", repo_roots=[repo]) == 0
    assert wt.path.resolve() not in worktree_paths(repo)


def test_cleaning_an_unknown_session_removes_nothing(root: Path) -> None:
    assert remove_session_worktrees(root, "never-ran") == 0


def test_prune_orphans_removes_broken_leftovers_and_leaves_healthy_worktrees(tmp_path: Path, root: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    doomed_repo = make_repo(tmp_path / "doomed")
    healthy = create_worktree(repo, session_id="s1", task_id="healthy", attempt=1, root=root)
    deleted_by_hand = create_worktree(repo, session_id="s1", task_id="by-hand", attempt=1, root=root)
    repo_gone = create_worktree(doomed_repo, session_id="s2", task_id="t1", attempt=1, root=root)
    shutil.rmtree(deleted_by_hand.path)
    shutil.rmtree(doomed_repo)

    removed = prune_orphans(root)

    assert sorted(removed) == sorted([deleted_by_hand.path, repo_gone.path])
    assert healthy.cwd.is_dir()
    assert worktree_paths(repo) == {repo.resolve(), healthy.path.resolve()}
    assert not (root / "s2").exists()
    assert prune_orphans(root) == []


def test_prune_orphans_removes_a_folder_git_no_longer_knows(repo: Path, root: Path) -> None:
    wt = create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    git(repo, "worktree", "remove", "--force", str(wt.path))
    wt.path.mkdir()
    (wt.path / "stray.txt").write_text("left behind\n")
    assert prune_orphans(root) == [wt.path]
    assert not wt.path.exists()


def test_prune_orphans_of_a_missing_root_is_empty(tmp_path: Path) -> None:
    assert prune_orphans(tmp_path / "nowhere") == []


def test_a_directory_outside_any_repository_is_a_worktree_error_naming_it(tmp_path: Path, root: Path) -> None:
    plain = tmp_path / "plain dir"
    plain.mkdir()
    with pytest.raises(WorktreeError, match="is not inside a git repository") as caught:
        create_worktree(plain, session_id="s1", task_id="t1", attempt=1, root=root)
    assert isinstance(caught.value, CoordinatorError)
    assert repr(str(plain)) in str(caught.value)
    assert "'t1'" in str(caught.value)
    assert "git said: fatal: not a git repository" in str(caught.value)


def test_a_missing_working_directory_is_a_worktree_error_naming_it(tmp_path: Path, root: Path) -> None:
    with pytest.raises(WorktreeError, match="does not exist") as caught:
        create_worktree(tmp_path / "missing", session_id="s1", task_id="t1", attempt=1, root=root)
    assert str(tmp_path / "missing") in str(caught.value)


def test_a_repository_without_commits_is_a_worktree_error(tmp_path: Path, root: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    git(fresh, "init", "--quiet")
    with pytest.raises(WorktreeError, match="has no commits yet"):
        create_worktree(fresh, session_id="s1", task_id="t1", attempt=1, root=root)


def test_a_leftover_branch_from_an_earlier_run_is_reported_not_overwritten(repo: Path, root: Path) -> None:
    git(repo, "branch", "pcoord/s1/t1-1")
    with pytest.raises(WorktreeError, match="left over from an earlier run"):
        create_worktree(repo, session_id="s1", task_id="t1", attempt=1, root=root)
    assert not (root / "s1" / "t1-1.worktree.json").exists()


HOSTILE_IDS = [
    "with space",
    "a/b/c",
    "../../escape",
    "ünïcødé 🚀",
    "-starts-with-dash",
    ".hidden",
    "ends.lock",
    "a..b",
    "at@{u}",
    "back\\slash",
    "T1",
    "t1",
    "x" * 300,
    "",
    "tab\tand\nnewline",
    "~^:?*[",
]


def test_hostile_task_ids_get_distinct_safe_worktrees_inside_root(repo: Path, root: Path) -> None:
    trees = [
        create_worktree(repo, session_id="session / ü", task_id=task_id, attempt=1, root=root)
        for task_id in HOSTILE_IDS
    ]
    assert len({wt.path for wt in trees}) == len({wt.branch for wt in trees}) == len(HOSTILE_IDS)
    assert len({wt.path.name.lower() for wt in trees}) == len(HOSTILE_IDS)  # also on case-insensitive disks
    session_dir = root.absolute() / safe_name("session / ü")
    for wt in trees:
        assert wt.path.parent == session_dir
        assert wt.cwd.is_dir()
        git(repo, "check-ref-format", f"refs/heads/{wt.branch}")
    for task_id, wt in zip(HOSTILE_IDS, trees, strict=True):
        (wt.cwd / "out.txt").write_text(task_id or "empty")
        assert summarize(wt).files == ["out.txt"]
    assert remove_session_worktrees(root, "session / ü") == len(HOSTILE_IDS)
    assert worktree_paths(repo) == {repo.resolve()}

