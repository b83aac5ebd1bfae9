"""One agent's watch, driven directly in this process as the shard loop drives it: a timeout and a token
budget end the agent with its whole tree killed, long lines are cut, and finishing never waits.

The agents are real processes started as spawn.py starts them (a session of their own, piped output),
reporting to a desk (shard_hub.py) before the watch begins. This process is no subreaper: an orphan would
leave these trees, so the agents here keep their children (test_process_tree.py has the orphans).
"""

from __future__ import annotations

import json
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from parallel_coordinator.runners.base import AttemptOutcome, Invocation
from parallel_coordinator.runners.claude_stream import SUMMARY_KEY
from parallel_coordinator.supervisor import SupervisorJob
from parallel_coordinator.supervisor.agent_watch import _MAX_LINE, AgentWatch, LineSplitter
from parallel_coordinator.supervisor.process_tree import Family
from tests.supervisor.shard_hub import WAIT_S, Desk, assert_gone, running


class Watched:
    """An agent started as spawn.py starts one, and its watch, begun once the agent has reported."""

    def __init__(self, tmp_path: Path, argv: list[str], **options: Any) -> None:
        self.artefacts = tmp_path / "artefacts"
        self.artefacts.mkdir()
        stream = options.pop("stream", "command")
        self.job = SupervisorJob("a1", Invocation(argv, stream=stream), str(self.artefacts), **options)
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.family = Family()
        self.family.leaders.add(self.proc.pid)
        self.selector = selectors.DefaultSelector()
        self.events: list[dict[str, Any]] = []

    def begin(self) -> AgentWatch:
        """The watch, registered on the selector; its timeout counts from now."""
        self.watch = AgentWatch(self.job, self.proc, self.family, self.artefacts, time.time(), self.events.append)
        self.watch.register(self.selector)
        return self.watch

    def until_it_must_end(self) -> None:
        """Turn the loop as the shard does (select, read, tick) until the watch says the agent must end."""
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for key, _ in self.selector.select(0.05):
                self.watch.on_ready(key.data[1], self.selector)
            if self.watch.tick(time.monotonic(), periodic=True, sample=True):
                return
        raise AssertionError(f"the watch did not end its agent within {WAIT_S} s")

    def finish(self, members: list[psutil.Process]) -> AttemptOutcome:
        """Begin the finish, then poll it until it gives the outcome (waiting a little on the members between)."""
        self.watch.begin_finish(self.selector, time.monotonic())
        deadline = time.monotonic() + WAIT_S
        while (outcome := self.watch.poll_finished(time.monotonic())) is None:
            assert time.monotonic() < deadline, "the watch never reported its agent's end"
            # Not the leader: psutil would reap it, and its exit status is its Popen's.
            psutil.wait_procs([m for m in members if m.pid != self.proc.pid], timeout=0.02)
        return outcome

    def close(self) -> None:
        self.selector.close()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def watched() -> Iterator[list[Watched]]:
    started: list[Watched] = []
    yield started
    for one in started:
        one.close()


def test_a_timeout_ends_the_agent_as_timeout_with_its_whole_tree_killed(
    tmp_path: Path, desk: Desk, watched: list[Watched]
) -> None:
    agent = Watched(tmp_path, desk.argv("a1", children=1, ignore_term=True), timeout_s=0.1)
    watched.append(agent)
    members = desk.wait_for(1)["a1"].procs
    agent.begin()
    agent.until_it_must_end()
    outcome = agent.finish(members)
    assert (outcome.reason, outcome.error, outcome.killed_processes, outcome.exit_code) == (
        "timeout", "timed out after 0.1 s; its process tree was killed", 2, -9
    )
    assert_gone([agent.proc.pid], members)


def test_a_claude_stream_past_its_token_budget_ends_as_budget_with_its_whole_tree_killed(
    tmp_path: Path, desk: Desk, watched: list[Watched]
) -> None:
    usage = {"input_tokens": 1200, "cache_read_input_tokens": 3000, "output_tokens": 800}
    turn = {"type": "assistant", "message": {"id": "m1", "usage": usage, "content": []}}
    argv = desk.argv("a1", children=1, say=json.dumps(turn))
    agent = Watched(tmp_path, argv, stream="claude", token_budget=1000)
    watched.append(agent)
    members = desk.wait_for(1)["a1"].procs  # it has written its turn and holds
    agent.begin()
    agent.until_it_must_end()
    outcome = agent.finish(members)
    assert (outcome.reason, outcome.error, outcome.killed_processes) == (
        "budget", "token budget exceeded: 5,000 tokens > 1,000; the run was stopped", 2
    )
    assert_gone([agent.proc.pid], members)


def test_the_first_response_mark_reaches_the_coordinator_though_a_newer_message_replaced_it(
    tmp_path: Path, watched: list[Watched]
) -> None:
    first = {"type": "assistant", "message": {"id": "m1", "usage": {"input_tokens": 9}, "content": [
        {"type": "text", "text": "Looking."}]}}
    second = {"type": "assistant", "message": {"id": "m1", "usage": {"input_tokens": 9}, "content": [
        {"type": "tool_use", "id": "t1", "name": "Glob", "input": {"pattern": "*.md"}}]}}
    script = (f"import sys, time; sys.stdout.write({json.dumps(first)!r} + '\\n' + {json.dumps(second)!r} + '\\n');"
              " sys.stdout.flush(); time.sleep(30)")
    agent = Watched(tmp_path, [sys.executable, "-c", script], stream="claude")
    watched.append(agent)
    watch = agent.begin()
    deadline = time.monotonic() + WAIT_S
    while not agent.events and time.monotonic() < deadline:
        for key, _ in agent.selector.select(0.05):
            watch.on_ready(key.data[1], agent.selector)
        watch.tick(time.monotonic(), periodic=True, sample=False)

    assert agent.events, "no progress was posted"
    assert agent.events[0]["message"] == "turn 1: Glob *.md"  # one post for both lines, the newer message
    assert agent.events[0]["first_response"] is True


def test_the_line_splitter_cuts_a_line_longer_than_the_max_and_keeps_the_next_one_whole() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"a" * (_MAX_LINE + 10) + b"\nnext\npart") == ["a" * _MAX_LINE, "next"]
    assert splitter.flush() == ["part"]


def test_a_long_line_is_cut_alike_however_its_chunks_arrive() -> None:
    line = b"head" + b"a" * (2 * _MAX_LINE) + b"tail\n"
    whole = LineSplitter().feed(line)
    chunked = LineSplitter()
    pieces = [chunked.feed(line[i:i + 65536]) for i in range(0, len(line), 65536)]
    chunked_cuts = [cut for piece in pieces for cut in piece]
    assert [(cut[:4], len(cut)) for cut in chunked_cuts] == [("head", _MAX_LINE)]
    assert chunked_cuts == whole


def test_a_huge_claude_tool_result_line_still_reads_as_an_event(
    tmp_path: Path, watched: list[Watched]
) -> None:
    """Tool results can be megabytes: the reader knows one by its opening, which the cut must keep."""
    opening, closing = '{"type":"user","message":{"content":[{"type":"tool_result","content":"', '"}]}}'
    code = f"import sys; sys.stdout.write({opening!r} + 'a' * {3 * _MAX_LINE} + {closing!r} + '\\n')"
    agent = Watched(tmp_path, [sys.executable, "-c", code], stream="claude")
    watched.append(agent)
    agent.begin()
    agent.until_it_must_end()
    outcome = agent.finish([])
    assert outcome.final_event is not None
    assert (outcome.reason, outcome.final_event[SUMMARY_KEY]["non_json_lines"]) == ("exited", 0)


def test_begin_finish_returns_at_once_and_the_outcome_comes_only_once_the_whole_tree_is_dead(
    tmp_path: Path, desk: Desk, watched: list[Watched]
) -> None:
    agent = Watched(tmp_path, desk.argv("a1", children=50, ignore_term=True))
    watched.append(agent)
    members = desk.wait_for(1)["a1"].procs
    agent.begin().stop("cancelled", "cancelled")
    assert agent.watch.tick(time.monotonic(), periodic=True, sample=True)
    agent.watch.begin_finish(agent.selector, time.monotonic())
    assert agent.proc.returncode is None  # it killed the tree but waited for nothing, reaped nothing
    deadline = time.monotonic() + WAIT_S
    while (outcome := agent.watch.poll_finished(time.monotonic())) is None:  # polled as the loop would
        assert time.monotonic() < deadline
    # Never before the tree is dead: the leader is reaped and not one of its 50 children (killed at the same
    # moment, dying in some order) still runs.
    assert (agent.proc.returncode, [m for m in members if running(m)]) == (-9, [])
    assert (outcome.reason, outcome.killed_processes) == ("cancelled", 51)
