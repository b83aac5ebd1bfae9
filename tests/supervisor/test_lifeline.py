"""The lifeline keeper: a keeper that died is replaced by one that guards every session the shard still
runs, not only those started after it.

The shard is a process of its own here (a script), so that the test can SIGKILL it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psutil

SHARD = """
import json, os, signal, subprocess, sys, time
from parallel_coordinator.supervisor import lifeline
first = subprocess.Popen(["sh", "-c", "sleep 600 & echo $!; wait"], start_new_session=True, stdout=subprocess.PIPE)
lifeline.guard(first.pid)
child = int(first.stdout.readline())
dead = lifeline.keeper_pid()
os.kill(dead, signal.SIGKILL)
os.waitpid(dead, 0)
second = subprocess.Popen(["sleep", "600"], start_new_session=True)
lifeline.guard(second.pid)  # finds the keeper gone and starts another
print(json.dumps([first.pid, child, second.pid, lifeline.keeper_pid()]), flush=True)
time.sleep(600)
"""


def test_a_replaced_keeper_still_kills_the_sessions_guarded_before_it_when_the_shard_dies() -> None:
    with subprocess.Popen([sys.executable, "-c", SHARD], stdout=subprocess.PIPE, text=True) as shard:
        assert shard.stdout is not None
        *agents, keeper = json.loads(shard.stdout.readline())
        held = [psutil.Process(pid) for pid in [*agents, keeper]]  # held: a pid may be reused once reaped
        os.kill(shard.pid, signal.SIGKILL)
        shard.wait()
    _, still_alive = psutil.wait_procs(held, timeout=20)
    assert still_alive == []
