"""The bundled demo agents, run as real subprocesses over the command agent protocol."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Built at run time so this file never holds a string a secret scanner would flag; for the same
# reason the fixture's markers are written "TO@DO" and `write` removes the "@".
AWS_KEY = "AKIA" + "QWERTYUIOPASDFGH"
API_KEY = "q8Zr2LmX" + "9vTt4KpW7yNc3BdF"
KEY_BODY = "MIIEowIBAAKCAQEA" + "7bq9VxW2kP0rJ4nT"
ANALYSERS = ("loc", "todos", "complexity", "secret_scan")

CORE_PY = '''\
"""Core module."""

# TO@DO: split this module
import os

LABEL = "TO@DO list"


def simple(x):
    return x + 1


def branchy(items, flag):
    total = 0
    for item in items:
        if item > 0 and flag:
            total += item
        elif item < 0:
            total -= item
    while total > 100:
        total //= 2
    try:
        os.stat("/")
    except OSError:
        pass
    return [i for i in items if i]  # FIX@ME: handle None


class Box:
    def get(self):
        # plain comment
        if self.x:
            return 1
        return 0
'''


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace("@", ""), encoding="utf-8")


def build_tree(root: Path) -> Path:
    write(root / "pkg" / "core.py", CORE_PY)
    write(
        root / "pkg" / "util.py",
        f'AWS_ACCESS_KEY_ID = "{AWS_KEY}"\n\n\n'
        "def load(path):\n    # HA@CK: ignore encoding errors\n"
        "    with open(path) as handle:\n        return handle.read()\n",
    )
    write(
        root / "web" / "app.js",
        f'// TO@DO: debounce the handler\nconst apiKey = "{API_KEY}";\n\n'
        "/* XX@X: legacy\n   browsers */\nfunction handler(event) {\n  return event.target;\n}\n",
    )
    # low-entropy and placeholder values are not secrets
    write(
        root / "config" / "settings.toml",
        '# settings\npassword = "aaaaaaaaaaaaaaaaaaaa"\ntoken = "your-token-goes-here-123"\n',
    )
    write(
        root / "deploy" / "id_rsa",
        f"-----BEGIN RSA {'PRIVATE'} KEY-----\n{KEY_BODY}\n-----END RSA {'PRIVATE'} KEY-----\n",
    )
    # none of these may be read: VCS, dependencies, build output, bytecode, binary data
    write(root / ".git" / "config", f"# TO@DO: never listed\nkey = {AWS_KEY}\n")
    write(root / "node_modules" / "lib" / "index.js", "// TO@DO: not ours\n")
    write(root / "build" / "out.py", "def generated():\n    pass  # FIX@ME: not ours\n")
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "__pycache__" / "core.cpython-311.pyc").write_bytes(b"\x00# TO" + b"DO: bytecode\n")
    (root / "pkg" / "blob.dat").write_bytes(b"\x00\x01# TO" + b"DO: binary\n" + AWS_KEY.encode())
    return root


def run_agent(
    module: str, description: str, context: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    request = {
        "session_id": "s-test",
        "task_id": module,
        "agent": module,
        "description": description,
        "task_description": "Analyse a small source tree",
        "context": context or {},
    }
    return subprocess.run(
        [sys.executable, "-m", f"parallel_coordinator.demo_agents.{module}"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        timeout=60,
        check=False,
    )


def progress_lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("tree"))


@pytest.fixture(scope="module")
def outputs(tree: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return {module: run_agent(module, f"Analyse.\npath: {tree}\nthreshold: 5") for module in ANALYSERS}


@pytest.mark.parametrize("module", ANALYSERS)
def test_each_analyser_exits_zero_with_a_markdown_section_and_valid_progress(
    module: str, outputs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = outputs[module]
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("## ")
    percents = [line["progress"] for line in progress_lines(done.stderr)]
    assert len(percents) >= 3
    assert all(isinstance(p, int | float) and 0 <= p <= 100 for p in percents)
    assert percents == sorted(percents)
    assert (percents[0], percents[-1]) == (0, 100)


def test_loc_counts_code_comment_and_blank_lines_per_language(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    out = outputs["loc"].stdout
    assert "| Python | 2 | 28 | 3 | 10 | 41 |" in out
    assert "| JavaScript | 1 | 4 | 3 | 1 | 8 |" in out
    assert "| TOML | 1 | 2 | 1 | 0 | 3 |" in out
    assert "| **Total** | 4 | 34 | 7 | 11 | 52 |" in out
    assert "34 lines of code in 4 files across 3 languages" in out
    assert "1 other text file not counted" in out


def test_todos_lists_comment_markers_with_location_and_skips_ignored_and_binary_files(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    out = outputs["todos"].stdout
    assert "5 markers in 3 files: 2 TODO, 1 FIXME, 1 XXX, 1 HACK." in out
    assert "| `pkg/core.py:3` | TODO | split this module |" in out
    assert "| `pkg/core.py:26` | FIXME | handle None |" in out
    assert "| `pkg/util.py:5` | HACK | ignore encoding errors |" in out
    assert "| `web/app.js:1` | TODO | debounce the handler |" in out
    assert "| `web/app.js:4` | XXX | legacy |" in out
    assert "TODO list" not in out  # in a string, not a comment
    for ignored in ("never listed", "not ours", "bytecode", "binary"):
        assert ignored not in out


def test_complexity_ranks_functions_and_counts_those_over_the_threshold(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    out = outputs["complexity"].stdout
    assert "4 functions in 2 Python files; average complexity 3.5; 1 above 5." in out
    assert "Most complex: `branchy` (9) at `pkg/core.py:13`." in out
    assert "| 1 | `branchy` | `pkg/core.py:13` | 9 |" in out
    assert "| `Box.get` | `pkg/core.py:30` | 2 |" in out
    assert "| `load` | `pkg/util.py:4` | 2 |" in out
    assert "| 4 | `simple` | `pkg/core.py:9` | 1 |" in out
    assert "generated" not in out  # build/ is skipped


def test_complexity_threshold_defaults_to_ten(tree: Path) -> None:
    done = run_agent("complexity", f"path: {tree}")
    assert done.returncode == 0, done.stderr
    assert "average complexity 3.5; 0 above 10." in done.stdout


def test_secret_scan_reports_each_secret_redacted_and_never_prints_it(
    outputs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    done = outputs["secret_scan"]
    assert "3 possible secrets in 3 files" in done.stdout
    assert '| `pkg/util.py:1` | AWS access key id | `AWS_ACCESS_KEY_ID = "AKIA[REDACTED]"` |' in done.stdout
    assert '| `web/app.js:2` | hard-coded credential | `const apiKey = "[REDACTED]";` |' in done.stdout
    assert "| `deploy/id_rsa:1` | private key |" in done.stdout
    for secret in (AWS_KEY, AWS_KEY[4:], API_KEY, KEY_BODY):
        assert secret not in done.stdout
        assert secret not in done.stderr
    assert "settings.toml" not in done.stdout  # placeholder and low-entropy values


def test_secret_scan_redacts_a_secret_that_continues_onto_a_line_with_another(tmp_path: Path) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    write(tmp_path / "ci.yml", f'api_token:\n  "{API_KEY}"  # old: {token}\n')
    done = run_agent("secret_scan", f"path: {tmp_path}")
    assert done.returncode == 0, done.stderr
    assert "| `ci.yml:1` | hard-coded credential | `api_token:` |" in done.stdout
    assert '| `ci.yml:2` | GitHub token | `"[REDACTED]"  # old: ghp_[REDACTED]` |' in done.stdout
    assert API_KEY not in done.stdout
    assert token[4:] not in done.stdout


def test_an_agent_without_a_path_line_analyses_its_working_directory(tree: Path) -> None:
    done = run_agent("todos", "List the TODO notes.", cwd=tree / "web")
    assert done.returncode == 0, done.stderr
    assert "2 markers in 1 file: 1 TODO, 1 XXX." in done.stdout
    assert "| `app.js:1` | TODO | debounce the handler |" in done.stdout


@pytest.mark.parametrize("module", ANALYSERS)
def test_a_missing_target_directory_fails_with_the_path_on_stderr(module: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    done = run_agent(module, f"path: {missing}")
    assert done.returncode != 0
    assert str(missing) in done.stderr
    assert done.stdout == ""


def test_report_merges_present_sections_and_names_the_missing_ones(
    tree: Path, outputs: dict[str, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    report_file = tmp_path / "out" / "report.md"
    context = {
        "complexity": outputs["complexity"].stdout,
        "loc": outputs["loc"].stdout,
        "todos": "",  # that task failed and left no output
    }
    done = run_agent("report", f"Merge.\npath: {tree}\noutput: {report_file}", context)
    assert done.returncode == 0, done.stderr
    report = done.stdout
    assert report.startswith("# Code analysis report\n")
    assert f"**Target:** `{tree}`" in report
    summary = report.split("## Summary\n", 1)[1].split("\n## ", 1)[0]
    assert "- **Lines of code:** 34 lines of code in 4 files across 3 languages" in summary
    assert "- **Python complexity:** 4 functions in 2 Python files" in summary
    assert "- **TODO inventory:** not available" in summary
    assert "- **Secret scan:** not available" in summary
    assert "- Task `todos` returned no output." in summary
    # sections follow in the standard order, whatever the context order
    assert report.index("\n## Lines of code\n") < report.index("\n## Python complexity\n")
    assert "| **Total** | 4 | 34 | 7 | 11 | 52 |" in report
    assert "| 1 | `branchy` | `pkg/core.py:13` | 9 |" in report
    assert report_file.read_text(encoding="utf-8") == report
    assert progress_lines(done.stderr)[-1]["progress"] == 100


def test_report_titles_a_section_without_a_heading_by_its_task_id() -> None:
    context = {"notes": "Everything looks fine.\n\n# Details\n\nNothing else."}
    done = run_agent("report", "Merge.", context)
    assert done.returncode == 0, done.stderr
    assert "- **notes:** Everything looks fine." in done.stdout
    assert "## notes\n\nEverything looks fine.\n\n### Details\n" in done.stdout
