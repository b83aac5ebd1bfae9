"""security_scan's work on the changed files: the bundled secret scanner, then bandit and semgrep when installed.

Runs inside the check's supervised process (check_job.py). The secret scanner always runs, so a clean
scan is a pass; a scanner that is not installed is named in the notes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from parallel_coordinator.demo_agents.secret_scan import find_secrets, redacted_line
from parallel_coordinator.qa.verdicts import SECURITY, CheckResult

SCANNER_TIMEOUT_S = 600.0
MAX_FILE_BYTES = 2 * 1024 * 1024  # larger files are not read whole by the secret scanner (said in the notes)
_SEMGREP_RULES = (".semgrep.yml", ".semgrep.yaml", ".semgrep")  # semgrep's own registry needs the network
_BANDIT_FAILS = {"MEDIUM", "HIGH"}


def scan_files(root: Path, files: Sequence[str]) -> CheckResult:
    findings, notes = secrets_in(root, files)
    python = [name for name in files if name.endswith(".py")]
    for scanner in (_bandit, _semgrep):
        found, said = scanner(root, files, python)
        findings += found
        notes += said
    return CheckResult(SECURITY, "fail" if findings else "pass", findings=findings, notes=notes)


def secrets_in(root: Path, files: Sequence[str]) -> tuple[list[str], list[str]]:
    findings, notes = [], []
    for name in files:
        path = root / name
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                notes.append(f"{name}: over {MAX_FILE_BYTES // 2**20} MB, not scanned for secrets")
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            notes.append(f"{name}: could not be read ({exc.strerror})")
            continue
        found = find_secrets(text)
        for finding in found:
            excerpt = redacted_line(text, found, finding.at)
            findings.append(f"{name}:{finding.line}: possible {finding.rule.kind}: {excerpt}")
    notes.insert(0, f"secret scanner: {len(files)} files, {len(findings)} possible secrets")
    return findings, notes


def _bandit(root: Path, files: Sequence[str], python: Sequence[str]) -> tuple[list[str], list[str]]:
    program = shutil.which("bandit")
    if program is None:
        return [], ["bandit is not installed (pip install bandit): Python code not scanned by it"]
    if not python:
        return [], ["bandit: no changed Python file"]
    done = _run([program, "-q", "-f", "json", *python], root)
    if isinstance(done, str):
        return [], [f"bandit {done}"]
    try:
        issues = json.loads(done.stdout).get("results", [])
    except (ValueError, AttributeError):
        return [], [f"bandit gave no report (exit status {done.returncode}): {done.stderr.strip()[:300]}"]
    failing = [i for i in issues if i.get("issue_severity") in _BANDIT_FAILS]
    found = [
        f"{i.get('filename')}:{i.get('line_number')}: bandit {i.get('test_id')} ({i.get('issue_severity')}):"
        f" {i.get('issue_text')}" for i in failing
    ]
    return found, [f"bandit: {len(issues)} issues, {len(failing)} of medium or high severity"]


def _semgrep(root: Path, files: Sequence[str], python: Sequence[str]) -> tuple[list[str], list[str]]:
    program = shutil.which("semgrep")
    if program is None:
        return [], ["semgrep is not installed: not run"]
    rules = next((root / name for name in _SEMGREP_RULES if (root / name).exists()), None)
    if rules is None:
        return [], [f"semgrep: no local rules ({', '.join(_SEMGREP_RULES)}) in the repository: not run"]
    done = _run([program, "scan", "--quiet", "--json", "--metrics", "off", "--config", str(rules), *files], root)
    if isinstance(done, str):
        return [], [f"semgrep {done}"]
    try:
        results = json.loads(done.stdout).get("results", [])
    except (ValueError, AttributeError):
        return [], [f"semgrep gave no report (exit status {done.returncode}): {done.stderr.strip()[:300]}"]
    found = [
        f"{r.get('path')}:{(r.get('start') or {}).get('line')}: semgrep {r.get('check_id')}:"
        f" {(r.get('extra') or {}).get('message', '')}" for r in results
    ]
    return found, [f"semgrep: {len(results)} findings with {rules.name}"]


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str] | str:
    try:
        return subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, errors="replace", timeout=SCANNER_TIMEOUT_S,
            stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired:
        return f"gave no answer within {SCANNER_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return f"could not run: {exc}"
