"""Scenes for test_process_tree.py, each run in a process of its own that plays a shard's part: it becomes
the subreaper (where it can), starts agents as a shard does (spawn.py), and uses Family and ProcessTree on
them. `python -m tests.supervisor.tree_scenes SCENE` prints what the scene saw as one JSON line, with every
process it knew of ("known": pid and create time); whatever the scene started is killed before it ends.

Agents talk to their scene on stdout, one JSON line at each step, and hold (signal.pause) in between.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import psutil

from parallel_coordinator.runners.base import Invocation
from parallel_coordinator.supervisor import SupervisorJob
from parallel_coordinator.supervisor.platform import MECHANISMS
from parallel_coordinator.supervisor.process_tree import Family, ProcessTree
from parallel_coordinator.supervisor.spawn import become_subreaper, start_agent

# Forks a child that forks a grandchild, then lets the child exit: the grandchild is an orphan.
LEAVES_AN_ORPHAN = """
import json, os, signal
r, w = os.pipe()
child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        while True:
            signal.pause()
    os.write(w, b"%d" % grandchild)
    os._exit(0)
os.waitpid(child, 0)
print(json.dumps({"orphan": int(os.read(r, 32))}), flush=True)
while True:
    signal.pause()
"""

HAS_A_CHILD = """
import json, os, signal
child = os.fork()
if child == 0:
    while True:
        signal.pause()
print(json.dumps({"child": child}), flush=True)
while True:
    signal.pause()
"""

# The grandchild calls setsid on SIGUSR1; its parent then exits, so it is an orphan in a session of its own.
LEAVES_ITS_SESSION_WHEN_TOLD = """
import json, os, signal
left_r, left_w = os.pipe()
pid_r, pid_w = os.pipe()
middle = os.fork()
if middle == 0:
    if os.fork() == 0:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        os.write(pid_w, b"%d" % os.getpid())
        signal.sigwait({signal.SIGUSR1})
        os.setsid()
        os.write(left_w, b"x")
        while True:
            signal.pause()
    os.read(left_r, 1)
    os._exit(0)
print(json.dumps({"leaver": int(os.read(pid_r, 32))}), flush=True)
os.waitpid(middle, 0)
print(json.dumps({"orphaned": True}), flush=True)
while True:
    signal.pause()
"""

# A child that leaves the agent's session at once, then the agent exits: a leftover no tree names.
LEAVES_A_STRAY = """
import json, os, signal, sys
r, w = os.pipe()
stray = os.fork()
if stray == 0:
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.write(w, b"x")
    while True:
        signal.pause()
os.read(r, 1)
print(json.dumps({"stray": stray}), flush=True)
"""

# On SIGUSR1 (blocked until it waits for it), a child that leaves the agent's process group but keeps its
# session; then the agent exits.
LEAVES_ITS_GROUP_WHEN_TOLD = """
import json, os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print(json.dumps({"ready": True}), flush=True)
signal.sigwait({signal.SIGUSR1})
r, w = os.pipe()
child = os.fork()
if child == 0:
    os.setpgid(0, 0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.write(w, b"x")
    while True:
        signal.pause()
os.read(r, 1)
print(json.dumps({"child": child}), flush=True)
"""

# Its grandchild exits once its child has: an orphan that ends as a zombie of the subreaper.
LEAVES_A_DEAD_ORPHAN = """
import json, os
r, w = os.pipe()
child = os.fork()
if child == 0:
    grandchild = os.fork()
    if grandchild == 0:
        os.close(w)
        os.read(r, 1)  # end of file once the child is gone
        os._exit(0)
    os._exit(0)
os.close(r)
os.waitpid(child, 0)
print(json.dumps({"orphan": 0}), flush=True)
"""


class Scene:
    """A shard's part: the subreaper of agents started as spawn.py starts them, and their Family."""

    def __init__(self) -> None:
        become_subreaper()
        self.family = Family()
        self.agents: dict[str, subprocess.Popen[bytes]] = {}
        self.trees: dict[str, ProcessTree] = {}
        self.known: list[tuple[int, float]] = []  # every process of the scene's agents: (pid, create time)

    def note(self, *pids: int) -> None:
        for pid in pids:
            with contextlib.suppress(psutil.NoSuchProcess):
                self.known.append((pid, psutil.Process(pid).create_time()))

    def start(self, name: str, code: str) -> None:
        proc = start_agent(SupervisorJob(name, Invocation([sys.executable, "-c", code]), os.devnull), None)
        assert not isinstance(proc, str), proc
        self.family.leaders.add(proc.pid)
        self.agents[name] = proc
        self.trees[name] = ProcessTree(proc.pid, self.family)
        self.note(proc.pid)

    def hears(self, name: str) -> dict[str, Any]:
        """The agent's next step, read from its stdout (the test bounds the whole scene's time)."""
        stdout = self.agents[name].stdout
        assert stdout is not None
        said: dict[str, Any] = json.loads(stdout.readline())
        return said

    def reaped(self, name: str) -> int:
        """Reap the agent's leader, as its watch would, and tell its tree; its exit code."""
        code = self.agents[name].wait()
        self.trees[name].leader_reaped = True
        self.family.leaders.discard(self.agents[name].pid)
        return code

    def end(self) -> None:
        for name, tree in self.trees.items():
            tree.kill()
            self.reaped(name)
        self.family.kill_orphans()
        self.family.reap_orphans()
        for pid, created in self.known:  # whatever escaped the scene's trees (a failed scene) goes too
            with contextlib.suppress(psutil.NoSuchProcess):
                if psutil.Process(pid).create_time() == created:
                    os.kill(pid, signal.SIGKILL)


def trees_hold_their_own(scene: Scene) -> dict[str, Any]:
    """Two agents, two sessions: killing one agent's tree kills its orphan and nothing of the other's."""
    scene.start("a", LEAVES_AN_ORPHAN)
    scene.start("b", HAS_A_CHILD)
    a, b = scene.agents["a"].pid, scene.agents["b"].pid
    orphan, child = scene.hears("a")["orphan"], scene.hears("b")["child"]
    scene.note(orphan, child)
    seen = {"subreaper": MECHANISMS.prctl, "orphan_is_the_shards": psutil.Process(orphan).ppid() == os.getpid()}
    seen["killed_a"] = scene.trees["a"].kill()
    scene.reaped("a")
    seen["a_running_after_its_kill"] = _running_after_a_moment([a, orphan])
    seen["b_running_then"] = _running_after_a_moment([b, child], timeout=0) == [b, child]
    seen["killed_b"] = scene.trees["b"].kill()
    scene.reaped("b")
    seen["b_running_after_its_kill"] = _running_after_a_moment([b, child])
    return seen


def a_member_that_left_its_session_stays_one(scene: Scene) -> dict[str, Any]:
    scene.start("a", LEAVES_ITS_SESSION_WHEN_TOLD)
    leaver = scene.hears("a")["leaver"]
    scene.note(leaver)
    tree = scene.trees["a"]
    tree.refresh()  # a tick that saw it as a member
    os.kill(leaver, signal.SIGUSR1)
    assert scene.hears("a") == {"orphaned": True}
    seen: dict[str, Any] = {"in_a_session_of_its_own": os.getsid(leaver) == leaver}
    tree.refresh(rescan=True)  # a later tick, that reads the shard's children and sessions afresh
    seen["killed"] = tree.kill()
    scene.reaped("a")
    seen["running_after_the_kill"] = _running_after_a_moment([leaver])
    return seen


def a_stray_is_killed_once_no_agent_runs(scene: Scene) -> dict[str, Any]:
    scene.start("a", LEAVES_A_STRAY)
    stray = scene.hears("a")["stray"]
    scene.note(stray)
    seen: dict[str, Any] = {"exit_code": scene.reaped("a")}
    seen["stray_is_the_shards"] = psutil.Process(stray).ppid() == os.getpid()
    seen["killed_by_its_tree"] = scene.trees["a"].kill()  # its tree no longer names it
    seen["running_before"] = _running_after_a_moment([stray], timeout=0)
    scene.family.kill_orphans()
    seen["running_after"] = _running_after_a_moment([stray])
    return seen


def an_orphan_born_since_the_last_look_dies_with_its_tree(scene: Scene) -> dict[str, Any]:
    """The leader has exited and its child, out of the leader's process group, is an orphan the tree never saw."""
    scene.start("a", LEAVES_ITS_GROUP_WHEN_TOLD)
    assert scene.hears("a") == {"ready": True}
    tree = scene.trees["a"]
    tree.refresh()  # the tree's last look: no child yet
    os.kill(scene.agents["a"].pid, signal.SIGUSR1)
    child = scene.hears("a")["child"]
    scene.note(child)
    _wait_exited(scene.agents["a"].pid)
    tree.leader_exited_at = time.monotonic()  # as the watch marks it once it sees the exit
    seen: dict[str, Any] = {"killed": tree.kill()}
    seen["running_after_the_kill"] = _running_after_a_moment([child])
    return seen


def reaping_orphans_leaves_the_leaders(scene: Scene) -> dict[str, Any]:
    scene.start("exits", "import sys; sys.exit(7)")
    scene.start("b", LEAVES_A_DEAD_ORPHAN)
    scene.hears("b")
    _wait_exited(scene.agents["exits"].pid)  # it has exited, and nobody reaped it yet
    orphans = scene.family.orphans(fresh=True)
    for pid in orphans:
        _wait_exited(pid)
    scene.family.reap_orphans()
    seen = {"orphans": len(orphans), "left_unreaped": [pid for pid in orphans if _unreaped(pid)],
            "exit_code": scene.reaped("exits")}
    return seen


def _wait_exited(pid: int) -> None:
    """Until our child `pid` has exited, leaving it unreaped."""
    if hasattr(os, "waitid"):
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return
    process = psutil.Process(pid)  # no waitid (macOS): watch its state instead
    while process.status() != psutil.STATUS_ZOMBIE:
        select.select([], [], [], 0.01)


def _unreaped(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _running_after_a_moment(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Which of `pids` still run (zombies do not), after waiting up to `timeout` for them to end."""
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            procs.append(psutil.Process(pid))
    deadline = time.monotonic() + timeout
    while True:
        running = [p.pid for p in procs if _runs(p)]
        if not running or time.monotonic() >= deadline:
            return running
        psutil.wait_procs([p for p in procs if p.pid in running], timeout=0.05)


def _runs(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


SCENES: dict[str, Callable[[Scene], dict[str, Any]]] = {
    scene.__name__: scene for scene in (
        trees_hold_their_own, a_member_that_left_its_session_stays_one, a_stray_is_killed_once_no_agent_runs,
        an_orphan_born_since_the_last_look_dies_with_its_tree, reaping_orphans_leaves_the_leaders,
    )
}

if __name__ == "__main__":
    played = Scene()
    try:
        seen = SCENES[sys.argv[1]](played)
    finally:
        played.end()
    print(json.dumps({**seen, "known": played.known}))
