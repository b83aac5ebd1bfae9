"""A real shard in a process of its own, linked to a small hub in the test, and agents that report to the test.

The hub speaks the coordinator's end of supervisor/link.py by hand: it checks the shard's JSON hello,
then sends and reads frames (`encode`, `FrameReader`). The shard runs as `run_shard` does in a pool
worker, in a child process: it becomes the subreaper of its agents' trees and reaps their orphans,
which must not happen to the test process. Agents started with `Desk.argv` connect to the test's desk,
say who they are (their pids), and hold until the test releases them: a barrier without sleeps.
Every wait here is bounded (socket timeouts, process waits).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from parallel_coordinator.runners.base import AttemptOutcome, Invocation
from parallel_coordinator.supervisor import SupervisorJob
from parallel_coordinator.supervisor.link import FrameReader, encode

WAIT_S = 30.0  # the bound on every wait for the shard or an agent (a failing test fails, it does not hang)
SECRET = "the-test-hub-secret"

SHARD = "import sys\nfrom parallel_coordinator.supervisor import run_shard\nrun_shard(*sys.argv[1:4])\n"

# An agent that reports to the desk and holds. Its options (JSON): "children" forked first, each holding
# with its output sent to /dev/null (so it keeps no pipe of the agent's open); "ignore_term": the agent and
# its children ignore SIGTERM; "say": a line printed to stdout before it reports; "flood": bytes written to
# stdout before it reports, after which it goes on writing until released (at most "flood_bound" bytes in
# all, then it just holds); "exit": its exit code. When released it prints the line it was sent.
AGENT = """
import json, os, signal, socket, sys
desk, name, options = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if options.get("ignore_term"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
children = []
for _ in range(options.get("children", 0)):
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        while True:
            signal.pause()
    children.append(pid)
if "say" in options:
    print(options["say"], flush=True)
chunk = b"x" * 65535 + b"\\n"
written = 0
while written < options.get("flood", 0):
    written += os.write(1, chunk)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(desk)
sock.sendall(json.dumps({"name": name, "pids": [os.getpid(), *children]}).encode() + b"\\n")
if options.get("flood"):
    sock.setblocking(False)
    while written < options.get("flood_bound", 1 << 31):
        try:
            sock.recv(1, socket.MSG_PEEK)  # released (or the desk is gone)
            break
        except BlockingIOError:
            pass
        written += os.write(1, chunk)
    sock.setblocking(True)
line = sock.makefile("r").readline()
print(line.strip(), flush=True)
sys.exit(options.get("exit", 0))
"""


def job(tmp_path: Path, attempt_id: str, argv: list[str], **options: Any) -> SupervisorJob:
    return SupervisorJob(attempt_id, Invocation(argv), str(tmp_path / "artefacts" / attempt_id), **options)


@dataclass
class Arrival:
    """An agent that reported to the desk: its processes (the agent first) and its connection, to release it."""

    name: str
    procs: list[psutil.Process]  # taken while they hold: a pid may name someone else once it is reaped
    conn: socket.socket

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]


class Desk:
    """Where agents report; each holds until released."""

    def __init__(self, directory: Path) -> None:
        self.script = directory / "agent.py"
        self.script.write_text(AGENT)
        self.path = str(directory / "desk.sock")
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(256)
        self.listener.settimeout(WAIT_S)
        self.arrived: dict[str, Arrival] = {}

    def argv(self, name: str, **options: Any) -> list[str]:
        return [sys.executable, str(self.script), self.path, name, json.dumps(options)]

    def wait_for(self, count: int) -> dict[str, Arrival]:
        """The next `count` agents to report, by name; none of them goes on before the test releases it."""
        new: dict[str, Arrival] = {}
        for _ in range(count):
            conn, _ = self.listener.accept()
            conn.settimeout(WAIT_S)
            hello = json.loads(conn.makefile("r").readline())
            new[hello["name"]] = Arrival(hello["name"], [psutil.Process(pid) for pid in hello["pids"]], conn)
        self.arrived.update(new)
        return new

    def release(self, name: str, line: str) -> None:
        self.arrived[name].conn.sendall(line.encode() + b"\n")

    def procs(self) -> list[psutil.Process]:
        return [proc for arrival in self.arrived.values() for proc in arrival.procs]

    def close(self) -> None:
        for arrival in self.arrived.values():
            arrival.conn.close()
        self.listener.close()


@dataclass
class LinkedShard:
    """The hub's end of one shard's link, and the shard's process."""

    proc: subprocess.Popen[bytes]
    conn: socket.socket
    events: list[dict[str, Any]] = field(default_factory=list)  # everything the shard sent, in order
    _reader: FrameReader = field(default_factory=FrameReader)
    _unread: int = 0

    def send(self, *messages: Any) -> None:
        """Send messages in one write, so the shard reads them in one turn of its loop."""
        self.conn.sendall(b"".join(encode(message) for message in messages))

    def close_link(self) -> None:
        """The coordinator's end goes away for reading what it sends; we still read what the shard says."""
        self.conn.shutdown(socket.SHUT_WR)

    def _read_more(self) -> bool:
        data = self.conn.recv(1 << 20)
        self.events.extend(self._reader.feed(data))
        return bool(data)

    def outcomes(self) -> dict[str, AttemptOutcome]:
        return {e["attempt"]: e["outcome"] for e in self.events if e.get("event") == "outcome"}

    def wait_outcomes(self, *attempt_ids: str) -> dict[str, AttemptOutcome]:
        """The outcomes of `attempt_ids`, once all arrived (other events are kept in `events`)."""
        while not set(attempt_ids) <= set(self.outcomes()):
            if not self._read_more():
                raise AssertionError(f"the shard closed its link before the outcomes of {attempt_ids}")
        outcomes = self.outcomes()
        return {attempt_id: outcomes[attempt_id] for attempt_id in attempt_ids}

    def wait_event(self, attempt_id: str, kind: str) -> dict[str, Any]:
        """The first `kind` event of `attempt_id`, once it arrived."""
        while True:
            for event in self.events:
                if event.get("attempt") == attempt_id and event.get("event") == kind:
                    return event
            if not self._read_more():
                raise AssertionError(f"the shard closed its link before a {kind!r} event of {attempt_id}")

    def started(self) -> dict[str, int]:
        """The agents the shard said it started: attempt id -> pid."""
        return {e["attempt"]: e["pid"] for e in self.events if e.get("event") == "started"}

    def wait_end(self) -> int:
        """Read the link to its end, then wait for the shard's process to exit; its exit code."""
        while self._read_more():
            pass
        return self.proc.wait(WAIT_S)


@contextmanager
def linked_shard(directory: Path) -> Iterator[LinkedShard]:
    """A shard process linked to a hub listening in `directory`; at the end, the shard and its agents are gone."""
    path = str(directory / "hub.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(WAIT_S)
    proc = subprocess.Popen([sys.executable, "-c", SHARD, path, SECRET, "s1"])
    try:
        conn, _ = listener.accept()
        conn.settimeout(WAIT_S)
        hello = b""
        while not hello.endswith(b"\n"):
            hello += conn.recv(1)
        assert json.loads(hello) == {"shard": "s1", "secret": SECRET, "worker_pid": proc.pid}
        shard = LinkedShard(proc, conn)
        try:
            yield shard
        finally:
            left = _descendants(proc.pid)  # what still runs of it, its lifeline keeper included
            conn.close()  # the coordinator is gone: the shard kills whatever still runs
            proc.wait(WAIT_S)
            assert_gone(list(shard.started().values()), left)
    finally:
        listener.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT_S)


def assert_gone(sessions: list[int], procs: Sequence[psutil.Process] = ()) -> None:
    """Nothing runs of the given agents' sessions (each agent leads its own), nor of `procs` (which may have left)."""
    watched = [p for p in psutil.process_iter() if _session_of(p.pid) in sessions] + list(procs)
    deadline = time.monotonic() + WAIT_S
    while (alive := [p for p in watched if running(p)]) and time.monotonic() < deadline:
        psutil.wait_procs(alive, timeout=0.05)  # wakes early once one is reaped; a zombie counts as dead
    assert alive == [], f"still running: {alive}"


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def running(proc: psutil.Process) -> bool:
    """Whether `proc` (this very process, not a later one with its pid) runs and is not a zombie."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None
