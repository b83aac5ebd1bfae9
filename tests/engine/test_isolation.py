"""Agents in their own git worktrees: parallel coders never touch the same files, and nothing is left behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory
from tests.engine.test_failures import finish

pytestmark = pytest.mark.anyio

# Writes the same file every time: two of these in one checkout would overwrite each other.
CODER = """
    import json, os, sys
    request = json.load(sys.stdin)
    with open("notes.txt", "w") as f:
        f.write(f"written by {request['task_id']}\\n")
    os.remove("README.md")
    print("edited", os.getcwd())
"""

GIT = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def make_repo(path: Path) -> Path:
    path.mkdir()
    (path / "README.md").write_text("hello\n")
    for argv in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "first"]):
        subprocess.run(argv, cwd=path, check=True, env={**GIT, "PATH": "/usr/bin:/bin", "HOME": str(path)})
    return path


async def test_isolated_coders_each_get_a_worktree_and_a_branch_with_their_work(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("coder", CODER, isolation="worktree")
    repo = make_repo(tmp_path / "repo")
    session = await finish(coordinator, [
        Subtask(id=f"c{i}", description=f"edit the notes ({i})", agent_type="coder") for i in range(3)
    ], CoordinateOptions(wait_seconds=0, working_directory=str(repo)))
    assert session.status == "SUCCESS", session.error_summary
    branches = []
    for i in range(3):
        record = session.tasks[f"c{i}"]
        tree = record.worktree
        assert tree is not None and tree["committed"] is True and tree["path"] is None
        assert sorted(tree["files"]) == ["README.md", "notes.txt"]  # type: ignore[arg-type]
        assert str(repo) not in record.output  # it ran elsewhere
        branch = str(tree["branch"])
        assert git(repo, "show", f"{branch}:notes.txt") == f"written by c{i}\n"
        branches.append(branch)
    assert len(set(branches)) == 3
    assert (repo / "README.md").read_text() == "hello\n" and not (repo / "notes.txt").exists()
    assert git(repo, "worktree", "list").count("\n") == 1  # only the main checkout is left


async def test_isolation_outside_a_git_repository_fails_the_task_naming_the_directory(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    session = await finish(coordinator, [Subtask(id="t", description="x", agent_type="echo")],
                           CoordinateOptions(wait_seconds=0, isolation="worktree", working_directory=str(plain)))
    record = session.tasks["t"]
    assert record.status is TaskState.FAILED
    assert str(plain) in (record.error or "") and len(record.attempts) == 1


async def test_kept_worktrees_stay_for_a_person_to_look_at(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("coder", CODER)
    repo = make_repo(tmp_path / "repo")
    session = await finish(coordinator, [Subtask(id="k", description="x", agent_type="coder")], CoordinateOptions(
        wait_seconds=0, working_directory=str(repo), isolation="worktree", keep_worktrees=True))
    tree = session.tasks["k"].worktree
    assert tree is not None and tree["path"] is not None
    assert (Path(str(tree["path"])) / "notes.txt").read_text() == "written by k\n"


HANG_IN_TREE = """
    import json, sys, time
    request = json.load(sys.stdin)
    open("started", "w").write("yes")
    print(json.dumps({"progress": 5}), file=sys.stderr, flush=True)
    time.sleep(600)
"""


async def test_cancelling_an_isolated_task_leaves_no_worktree_behind(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    from tests.conftest import wait_until

    agents.script("stuck", HANG_IN_TREE, isolation="worktree")
    repo = make_repo(tmp_path / "repo")
    options = CoordinateOptions(wait_seconds=0, working_directory=str(repo))
    session = await coordinator.start("stuck", coordinator.plan(
        [Subtask(id="s", description="x", agent_type="stuck")], options), options)
    await wait_until(session, lambda: session.tasks["s"].progress is not None)
    assert git(repo, "worktree", "list").count("\n") == 2
    await coordinator.cancel(session.id)
    assert git(repo, "worktree", "list").count("\n") == 1
    assert session.tasks["s"].status is TaskState.CANCELLED
