"""The cli package offers one thing, the entry point that pyproject's scripts name."""

from __future__ import annotations

import tomllib
from pathlib import Path

import parallel_coordinator.cli as cli

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())


def test_the_cli_package_names_main_alone_and_the_scripts_point_at_it() -> None:
    assert cli.__all__ == ["main"]
    assert callable(cli.main)
    assert set(PYPROJECT["project"]["scripts"].values()) == {"parallel_coordinator.cli:main"}
