"""What the supervisor takes this machine to offer, and PCOORD_PORTABLE=1 turning every Linux mechanism off."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from parallel_coordinator.supervisor.platform import PORTABLE_ENV

SHOW = (
    "import dataclasses, json; from parallel_coordinator.supervisor import platform as p;"
    " print(json.dumps({**dataclasses.asdict(p.MECHANISMS), 'setpriv_wrapper': p.setpriv_pdeathsig(),"
    " 'libc': p.LIBC is not None}))"
)


def mechanisms(portable: str | None) -> dict[str, object]:
    env = {key: value for key, value in os.environ.items() if key != PORTABLE_ENV}
    if portable is not None:
        env[PORTABLE_ENV] = portable
    done = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True, timeout=60, check=True, env=env)
    found: dict[str, object] = json.loads(done.stdout)
    return found


def test_pcoord_portable_turns_every_linux_mechanism_off() -> None:
    assert mechanisms("1") == {
        "portable": True, "prctl": False, "children_files": False, "pidfd": False, "setpriv": False,
        "setpriv_wrapper": None, "libc": False,
    }


@pytest.mark.parametrize("value", ["", "0"])
def test_an_empty_or_zero_pcoord_portable_forces_nothing(value: str) -> None:
    assert mechanisms(value) == mechanisms(None)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="these mechanisms are Linux's")
def test_on_linux_the_supervisor_finds_prctl_the_children_files_and_pidfd() -> None:
    found = mechanisms(None)
    assert (found["portable"], found["prctl"], found["children_files"], found["pidfd"]) == (False, True, True, True)
