"""The supervisor on its own: how it starts an agent (setpriv in front, a preexec_fn where there is
no setpriv, or the POSIX gate where there is no prctl), what it reports when the agent cannot start,
and that the agent dies with it.

Each supervisor runs in a process of its own, as in a pool worker: it makes its process a child
subreaper and reaps every child it has, which must not happen to the test process.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from parallel_coordinator.supervisor import spawn
from parallel_coordinator.supervisor.platform import MECHANISMS, PORTABLE_ENV
from tests.conftest import alive

SUPERVISE = """
import dataclasses, json, sys
from parallel_coordinator import supervisor
from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.supervisor import spawn
mode, argv, artefacts, hub, cwd = sys.argv[1:6]
if mode == "preexec_fn":
    spawn.pdeathsig_wrapper = lambda: None
job = supervisor.SupervisorJob("a1", Invocation(json.loads(argv)), artefacts, cwd=cwd or None)
print(json.dumps(dataclasses.asdict(supervisor.supervise(job))))
"""


@pytest.fixture(params=["setpriv", "preexec_fn", "gate"])
def spawn_path(request: pytest.FixtureRequest) -> str:
    """How the supervisor starts its agent; "gate" is the POSIX path, which PCOORD_PORTABLE=1 chooses on Linux."""
    if request.param != "gate" and not MECHANISMS.prctl:
        pytest.skip("PR_SET_PDEATHSIG is Linux's (and PCOORD_PORTABLE=1 turns it off)")
    if request.param == "setpriv" and spawn.pdeathsig_wrapper() is None:
        pytest.skip("no setpriv with --pdeathsig here")
    return str(request.param)


def supervisor_env(spawn_path: str) -> dict[str, str]:
    return {**os.environ, PORTABLE_ENV: "1"} if spawn_path == "gate" else dict(os.environ)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[str]:
    """A listening socket that accepts supervisors and keeps their connections open."""
    path = str(tmp_path / "hub.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield path
    listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
    listener.close()
    thread.join(5)
    for conn in held:
        conn.close()


def supervise(spawn_path: str, hub: str, tmp_path: Path, argv: list[str], cwd: str = "") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SUPERVISE, spawn_path, json.dumps(argv), str(tmp_path / "artefacts"), hub, cwd],
        capture_output=True, text=True, timeout=60, check=True, env=supervisor_env(spawn_path),
    )
    outcome: dict[str, Any] = json.loads(done.stdout)
    return outcome


def test_an_agent_runs_in_its_own_session_and_its_output_is_captured(
    spawn_path: str, hub: str, tmp_path: Path
) -> None:
    code = "import os; print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())"
    outcome = supervise(spawn_path, hub, tmp_path, [sys.executable, "-c", code])
    assert (outcome["reason"], outcome["exit_code"], outcome["stdout"].strip()) == ("exited", 0, "True True")


def test_a_command_found_on_path_keeps_its_argv0(spawn_path: str, hub: str, tmp_path: Path) -> None:
    outcome = supervise(spawn_path, hub, tmp_path, ["sh", "-c", 'echo "$0"'])
    assert outcome["stdout"].strip() == "sh"


@pytest.mark.parametrize("argv0", ["no-such-command-here", "/no/such/path"])
def test_a_missing_command_is_a_spawn_failure(spawn_path: str, hub: str, tmp_path: Path, argv0: str) -> None:
    outcome = supervise(spawn_path, hub, tmp_path, [argv0])
    assert (outcome["reason"], outcome["error"]) == ("spawn_failed", f"command not found: {argv0!r}")


def test_a_file_that_is_not_executable_is_a_spawn_failure(spawn_path: str, hub: str, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    outcome = supervise(spawn_path, hub, tmp_path, [str(script)])
    assert (outcome["reason"], outcome["error"]) == ("spawn_failed", f"cannot start {str(script)!r}: Permission denied")


def test_a_missing_working_directory_is_a_spawn_failure(spawn_path: str, hub: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")
    outcome = supervise(spawn_path, hub, tmp_path, ["true"], cwd=missing)
    assert (outcome["reason"], outcome["error"]) == ("spawn_failed", f"working directory not found: {missing!r}")


def test_the_agent_dies_with_a_killed_supervisor(spawn_path: str, hub: str, tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: nothing but the kernel is left to kill the agent when its supervisor is SIGKILLed."""
    fifo = tmp_path / "pid.fifo"
    os.mkfifo(fifo)
    code = f"import os, time; open({str(fifo)!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    argv = [sys.executable, "-c", code]
    with subprocess.Popen([
        sys.executable, "-c", SUPERVISE, spawn_path, json.dumps(argv), str(tmp_path / "artefacts"), hub, "",
    ], stdout=subprocess.DEVNULL, env=supervisor_env(spawn_path)) as supervising:
        agent = psutil.Process(int(fifo.read_text()))  # held: its pid may be reused once it is reaped
        assert agent.ppid() == supervising.pid
        os.kill(supervising.pid, signal.SIGKILL)
        supervising.wait()
    _, still_alive = psutil.wait_procs([agent], timeout=10)
    assert still_alive == []


def test_the_agents_child_that_ignores_sigterm_dies_with_a_killed_supervisor(
    spawn_path: str, hub: str, tmp_path: Path
) -> None:
    """The lifeline keeper kills the agent's whole session, on every path (PR_SET_PDEATHSIG, where there
    is one, kills the agent alone: the keeper is what reaches its children)."""
    fifo = tmp_path / "pids.fifo"
    os.mkfifo(fifo)
    code = (
        "import json, os, signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c',"
        " 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        f"open({str(fifo)!r}, 'w').write(json.dumps([os.getpid(), child.pid]))\n"
        "time.sleep(600)\n"
    )
    argv = [sys.executable, "-c", code]
    with subprocess.Popen([
        sys.executable, "-c", SUPERVISE, spawn_path, json.dumps(argv), str(tmp_path / "artefacts"), hub, "",
    ], stdout=subprocess.DEVNULL, env=supervisor_env(spawn_path)) as supervising:
        tree = [psutil.Process(pid) for pid in json.loads(fifo.read_text())]
        os.kill(supervising.pid, signal.SIGKILL)
        supervising.wait()
    _, still_alive = psutil.wait_procs(tree, timeout=20)
    assert still_alive == []


def test_an_orphan_the_agent_left_behind_is_killed_when_the_agent_exits(
    spawn_path: str, hub: str, tmp_path: Path
) -> None:
    """A subreaper finds the orphan among its descendants; without one (the POSIX path), in the agent's session."""
    script = "(trap '' TERM; exec sleep 600) >/dev/null 2>&1 & echo $!"
    outcome = supervise(spawn_path, hub, tmp_path, ["sh", "-c", script])
    orphan = int(outcome["stdout"])
    assert (outcome["reason"], outcome["killed_processes"]) == ("exited", 1)
    assert alive([orphan]) == []
