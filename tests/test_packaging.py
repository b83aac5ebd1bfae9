"""The package as users install it: a wheel built from the repository, installed into a fresh venv, and server.json."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "parallel_coordinator"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=240, **kwargs  # type: ignore[call-overload]
    )
    assert done.returncode == 0, f"{argv} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def clean_environment(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that could make the venv find the repository's copy."""
    env = {
        key: value for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"} and not key.startswith("PCOORD_")
    }
    return {**env, **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a clean copy: an in-tree build would write build/ into the checkout and could ship
    # modules left in a stale build/lib from an earlier build.
    work = tmp_path_factory.mktemp("build")
    source = work / "source"
    source.mkdir()
    for name in ["pyproject.toml", "README.md", *(p.name for p in ROOT.glob("LICEN[CS]E*"))]:
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", work / "dist", source,
        env=clean_environment())
    (built,) = (work / "dist").glob("parallel_coordinator-*.whl")
    return built


def test_the_wheel_carries_every_module_the_bundled_agents_and_py_typed(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(
            f"parallel_coordinator-{PYPROJECT['project']['version']}.dist-info/entry_points.txt"
        ).decode()
    expected = {
        path.relative_to(PACKAGE.parent).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert expected - names == set()
    bundled = sorted(path.name for path in (PACKAGE / "agents" / "bundled").glob("*.md"))
    assert "report-writer.md" in bundled
    assert {f"parallel_coordinator/agents/bundled/{name}" for name in bundled} <= names
    assert {"parallel_coordinator/py.typed", "parallel_coordinator/demo_agents/_protocol.py"} <= names
    assert {"parallel_coordinator/report/report.css", "parallel_coordinator/report/report.js"} <= names
    assert "pcoord = parallel_coordinator.cli:main" in entry_points
    assert "parallel-coordinator = parallel_coordinator.cli:main" in entry_points


@pytest.mark.timeout(600)
def test_pcoord_demo_runs_from_the_wheel_installed_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    bin_dir = venv / "bin"
    # Dependencies come from the index like a user's install; the package itself only from the wheel.
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, env=clean_environment())

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = clean_environment(PCOORD_STATE_DIR=str(tmp_path / "state"), HOME=str(tmp_path / "home"))
    where = run(bin_dir / "python", "-c", "import parallel_coordinator; print(parallel_coordinator.__file__)",
                cwd=outside, env=env)
    assert Path(where.stdout.strip()).is_relative_to(venv)

    version = PYPROJECT["project"]["version"]
    assert version in run(bin_dir / "parallel-coordinator", "--version", cwd=outside, env=env).stdout
    assert version in run(bin_dir / "python", "-m", "parallel_coordinator", "--version", cwd=outside, env=env).stdout

    target = tmp_path / "project"
    (target / "pkg").mkdir(parents=True)
    (target / "pkg" / "core.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    done = run(bin_dir / "pcoord", "demo", "--target", target, cwd=outside, env=env)
    assert "SUCCESS" in done.stdout
    report = Path(done.stdout.split("report: ")[1].split()[0])
    assert report.is_relative_to(tmp_path / "state")
    assert str(target) in report.read_text()


def test_server_json_describes_this_distribution_at_this_version() -> None:
    manifest = json.loads((ROOT / "server.json").read_text())
    project = PYPROJECT["project"]
    assert manifest["version"] == project["version"]
    assert re.fullmatch(r"[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+", manifest["name"])
    assert 1 <= len(manifest["description"]) <= 100  # the registry's limit
    (package,) = manifest["packages"]
    assert (package["registryType"], package["identifier"]) == ("pypi", project["name"])
    assert package["version"] == project["version"]
    assert package["transport"] == {"type": "stdio"}
    assert [argument["value"] for argument in package["packageArguments"]] == ["serve"]
    assert {variable["name"] for variable in package["environmentVariables"]} >= {
        "PCOORD_STATE_DIR", "PCOORD_AGENT_DIRS", "PCOORD_CLAUDE_BIN", "PCOORD_TOKEN", "PCOORD_CONFIG",
    }
