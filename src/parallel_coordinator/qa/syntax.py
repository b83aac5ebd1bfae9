"""syntax_check's work on each changed file: the checker installed for its language, or an in-process parse.

Runs inside the check's supervised process (check_job.py), never in the server. A language whose
checker is not installed, or that has none here, is unchecked with the reason: never passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from parallel_coordinator.qa.verdicts import SYNTAX, CheckResult, Verdict, overall

FILE_TIMEOUT_S = 120.0  # one file's checker; a checker that hangs is reported, not waited on for ever
_OUTPUT_CHARS = 600


@dataclass(frozen=True)
class Language:
    name: str
    # argv before the file name, tried in order: the first whose program is installed checks it
    checkers: tuple[tuple[str, ...], ...] = ()
    parse: Callable[[str], object] | None = None  # an in-process parser instead of a program


def _json(text: str) -> object:
    return json.loads(text)


def _yaml(text: str) -> object:
    return list(yaml.safe_load_all(text))


def _toml(text: str) -> object:
    return tomllib.loads(text)


LANGUAGES: dict[str, Language] = {
    ".py": Language("Python", (("python3", "-m", "py_compile"), ("python", "-m", "py_compile"))),
    ".pyi": Language("Python", (("python3", "-m", "py_compile"), ("python", "-m", "py_compile"))),
    ".js": Language("JavaScript", (("node", "--check"),)),
    ".mjs": Language("JavaScript", (("node", "--check"),)),
    ".cjs": Language("JavaScript", (("node", "--check"),)),
    ".sh": Language("shell", (("bash", "-n"),)),
    ".bash": Language("shell", (("bash", "-n"),)),
    ".rb": Language("Ruby", (("ruby", "-c"),)),
    ".go": Language("Go", (("gofmt", "-l", "-e"),)),
    ".php": Language("PHP", (("php", "-l"),)),
    ".json": Language("JSON", parse=_json),
    ".yaml": Language("YAML", parse=_yaml),
    ".yml": Language("YAML", parse=_yaml),
    ".toml": Language("TOML", parse=_toml),
}
# Prose, data and binary files: nothing to parse, so they are skipped (and said so), not unchecked.
NO_SYNTAX = frozenset({
    ".md", ".markdown", ".txt", ".rst", ".csv", ".tsv", ".log", ".lock", ".svg", ".png", ".jpg", ".jpeg",
    ".gif", ".ico", ".pdf", ".gitignore", ".gitattributes",
})


def check_files(root: Path, files: Sequence[str]) -> CheckResult:
    """Every file's verdict folded into one: a failure fails, anything unchecked keeps it from passing."""
    verdicts: list[Verdict] = []
    findings, notes = [], []
    with tempfile.TemporaryDirectory(prefix="pcoord-qa-") as scratch:
        for name in files:
            verdict, detail = check_file(root / name, Path(scratch))
            if verdict == "not_run":
                notes.append(f"{name}: skipped ({detail})")
                continue
            verdicts.append(verdict)
            if verdict == "fail":
                findings.append(f"{name}: {detail}")
            elif verdict == "unchecked":
                notes.append(f"{name}: unchecked ({detail})")
    if not verdicts:
        return CheckResult(SYNTAX, "unchecked", notes=[*notes, "no changed file has a syntax to check"])
    passed = verdicts.count("pass")
    summary = f"{passed} of {len(verdicts)} files passed"
    return CheckResult(SYNTAX, overall(verdicts), findings=findings, notes=[summary, *notes])


def check_file(path: Path, scratch: Path) -> tuple[Verdict, str]:
    """(verdict, why) for one file; "not_run" for a file with no syntax to check."""
    suffix = path.suffix.lower() or path.name.lower()
    language = LANGUAGES.get(suffix)
    if language is None:
        if suffix in NO_SYNTAX:
            return "not_run", "no syntax to check"
        return "unchecked", f"no syntax checker for {suffix!r} files"
    if language.parse is not None:
        try:
            language.parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            return "fail", f"cannot read it as UTF-8 text: {exc}"
        except (ValueError, yaml.YAMLError) as exc:  # JSONDecodeError and TOMLDecodeError are ValueErrors
            return "fail", f"{language.name}: {' '.join(str(exc).split())}"[:_OUTPUT_CHARS]
        return "pass", f"parsed as {language.name}"
    for argv in language.checkers:
        program = shutil.which(argv[0])
        if program is not None:
            return _run(language, [program, *argv[1:], str(path)], scratch)
    wanted = " or ".join(f"`{argv[0]}`" for argv in language.checkers)
    return "unchecked", f"no {language.name} checker installed (looked for {wanted} on PATH)"


def _run(language: Language, argv: list[str], scratch: Path) -> tuple[Verdict, str]:
    # py_compile writes bytecode beside the source: send it to scratch, so the checked tree stays as it was.
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(scratch)}
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=FILE_TIMEOUT_S, env=env,
            stdin=subprocess.DEVNULL, check=False,
        )
    except subprocess.TimeoutExpired:
        return "unchecked", f"`{Path(argv[0]).name}` gave no answer within {FILE_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return "unchecked", f"`{Path(argv[0]).name}` could not run: {exc}"
    said = " ".join((done.stderr + done.stdout).split())
    # Each checker exits non-zero on a syntax error (gofmt -l -e: 2); a file gofmt would only reformat passes.
    if done.returncode != 0:
        return "fail", f"{language.name} ({Path(argv[0]).name}): {said or f'exit status {done.returncode}'}"[
            :_OUTPUT_CHARS
        ]
    return "pass", f"{Path(argv[0]).name} found no error"
