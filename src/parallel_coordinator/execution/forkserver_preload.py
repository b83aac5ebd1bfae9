"""Imported only inside the local pool's fork server (multiprocessing's `forkserver`), never elsewhere.

Starting a loky worker the default way (a fresh interpreter importing loky, psutil and the
supervisor) costs ~125 ms of CPU: 64 workers took 4-8 s on 2 cores before the first agent could
start. The fork server imports all that once; each worker is then a fork of it (a few ms).

multiprocessing would also re-run the coordinator's `__main__` script in every forked worker (the
console script imports the CLI, the MCP SDK and pydantic). Our pool tasks are importable module
functions that never need the parent's `__main__`, so in this process, and only here, the
preparation step skips it.
"""

from __future__ import annotations

import multiprocessing.spawn as _spawn
from collections.abc import Mapping
from typing import Any

import loky.process_executor  # noqa: F401  (preloaded for every worker)

import parallel_coordinator.supervisor.spawn

parallel_coordinator.supervisor.spawn.pdeathsig_wrapper()  # looked up once here, inherited by every worker

_MAIN_KEYS = ("init_main_from_path", "init_main_from_name")
_prepare = _spawn.prepare


def _prepare_without_main(data: Mapping[str, Any]) -> None:
    _prepare({key: value for key, value in data.items() if key not in _MAIN_KEYS})


_spawn.prepare = _prepare_without_main
