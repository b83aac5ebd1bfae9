"""syntax_check and security_scan on real files with the checkers installed here, and what each says when a
checker is missing; the changed files of a real git checkout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from parallel_coordinator.qa.changes import changed_files
from parallel_coordinator.qa.security import scan_files
from parallel_coordinator.qa.syntax import check_file, check_files
from tests.engine.test_isolation import make_repo

AWS_KEY = "AKIA" + "Q3EGRZ7XKJ5PLM2W"


@pytest.mark.parametrize(
    ("name", "good", "bad", "said"),
    [
        ("data.json", '{"a": 1}', '{"a": 1,}', "JSON: Expecting property name"),
        ("conf.yaml", "a: [1, 2]\n", "a: [1, 2\n", "YAML: while parsing"),
        ("pyproject.toml", 'name = "x"\n', "name = \n", "TOML: Invalid value"),
        ("run.sh", "echo hi\n", "if then fi\n", "shell (bash)"),
        ("app.py", "x = 1\n", "def f(:\n", "Python (python3)"),
    ],
)
def test_each_language_passes_valid_text_and_fails_broken_text_with_the_checker_s_words(
    tmp_path: Path, name: str, good: str, bad: str, said: str
) -> None:
    (tmp_path / name).write_text(good)
    assert check_file(tmp_path / name, tmp_path)[0] == "pass"
    (tmp_path / name).write_text(bad)
    verdict, detail = check_file(tmp_path / name, tmp_path)
    assert verdict == "fail" and detail.startswith(said), detail


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed here")
def test_javascript_is_checked_by_node_when_it_is_installed(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("function f( {\n")
    verdict, detail = check_file(tmp_path / "a.js", tmp_path)
    assert verdict == "fail" and detail.startswith("JavaScript (node): ") and "SyntaxError" in detail


def test_a_language_whose_checker_is_not_on_path_is_unchecked_naming_what_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    (tmp_path / "a.rb").write_text("puts 1\n")
    (tmp_path / "a.js").write_text("let x = 1\n")
    assert check_file(tmp_path / "a.rb", tmp_path) == (
        "unchecked", "no Ruby checker installed (looked for `ruby` on PATH)")
    assert check_file(tmp_path / "a.js", tmp_path)[0] == "unchecked"


def test_one_broken_file_fails_the_check_and_names_it_and_python_leaves_no_bytecode_beside_it(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text("x = 1\n")
    (tmp_path / "bad.py").write_text("x = (\n")
    result = check_files(tmp_path, ["bad.py", "good.py"])
    assert result.verdict == "fail"
    assert [line.split(":")[0] for line in result.findings] == ["bad.py"]
    assert "1 of 2 files passed" in result.notes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.py", "good.py"]


def test_security_scan_reports_a_secret_redacted_with_its_line_and_passes_clean_files(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("import os\nKEY = os.environ['KEY']\n")
    assert scan_files(tmp_path, ["clean.py"]).verdict == "pass"
    (tmp_path / "leak.py").write_text(f'\n\nkey = "{AWS_KEY}"\n')
    result = scan_files(tmp_path, ["clean.py", "leak.py"])
    assert result.verdict == "fail"
    assert result.findings == ['leak.py:3: possible AWS access key id: key = "AKIA[REDACTED]"']


def test_the_changed_files_of_a_checkout_are_its_edits_and_new_files_not_its_deletions(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / "README.md").write_text("changed\n")
    (repo / "src").mkdir()
    (repo / "src" / "new.py").write_text("x = 1\n")
    changes = changed_files(repo / "src")  # from a subfolder: paths are the repository's own
    assert changes.root == str(repo) and changes.files == ("README.md", "src/new.py")
    assert "-hello" in changes.diff and "+changed" in changes.diff and "+++ b/src/new.py" in changes.diff
    (repo / "README.md").unlink()
    assert changed_files(repo).files == ("src/new.py",)
    plain = tmp_path / "plain"
    plain.mkdir()
    assert changed_files(plain).none_found() == f"no changed files found ({str(plain)!r} is not a git repository)"
