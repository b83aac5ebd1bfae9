"""The exit descriptor: readable once a child exits, on each mechanism (a pidfd on Linux, kqueue on
macOS, one SIGCHLD descriptor for the whole shard elsewhere), and `leader_exited` tells the exit
without taking the exit status from the Popen that owns it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from parallel_coordinator.supervisor.platform import PORTABLE_ENV

# Starts a child that waits for a line on its stdin, then exits 7. The descriptor must stay quiet until
# the line is sent, turn readable after, and leave the exit status for Popen.
WATCH = """
import json, os, select, subprocess, sys
from parallel_coordinator.supervisor.exits import child_exits_fd, exit_fd, leader_exited
from parallel_coordinator.supervisor.platform import MECHANISMS
shared = child_exits_fd() if sys.platform == "linux" and not MECHANISMS.pidfd else None
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(7)"],
                         stdin=subprocess.PIPE)
fd = exit_fd(child.pid) if shared is None else shared
quiet = fd is not None and select.select([fd], [], [], 0.2)[0] == [] and not leader_exited(child)
child.stdin.write(b"go\\n"); child.stdin.flush()
woke = fd is not None and select.select([fd], [], [], 30)[0] == [fd]
while not leader_exited(child):
    select.select([], [], [], 0.01)
print(json.dumps({"had_fd": fd is not None, "quiet": quiet, "woke": woke, "code": child.wait()}))
"""


@pytest.mark.parametrize("portable", ["", "1"], ids=["native", "portable"])
def test_the_exit_descriptor_turns_readable_when_the_child_exits_and_popen_still_gets_its_status(
    portable: str,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WATCH], capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, PORTABLE_ENV: portable},
    )
    assert json.loads(done.stdout) == {"had_fd": True, "quiet": True, "woke": True, "code": 7}
