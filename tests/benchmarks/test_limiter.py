"""The rate-limit benchmark's limiter: its rule on a given clock, its bound, and the fake `claude` behind it."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from parallel_coordinator.agents.spec import AgentSpec
from parallel_coordinator.runners.base import AttemptOutcome
from parallel_coordinator.runners.claude import ClaudeRunner
from parallel_coordinator.runners.claude_stream import ClaudeStreamReader

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
LIMITED_CLAUDE = BENCHMARKS / "limited_claude"
FLAGS = ["-p", "--output-format", "stream-json", "--verbose"]


def load_limiter() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_limiter", BENCHMARKS / "_limiter.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


limiter = load_limiter()


def test_a_full_bucket_grants_its_size_at_once_then_says_when_the_next_token_comes() -> None:
    rule = limiter.Limiter(concurrent=10, per_minute=4, minute_s=2.0)  # 2 tokens a second

    granted = [rule.request(0.0, hold_s=0.0)[0] is not None for _ in range(5)]
    _, wait, reason = rule.request(0.0, hold_s=0.0)

    assert granted == [True, True, True, True, False]
    assert (wait, reason) == (0.5, "bucket")
    assert rule.request(0.49, hold_s=0.0)[0] is None
    assert rule.request(0.5, hold_s=0.0)[0] is not None


def test_a_full_house_says_when_its_first_run_is_due_to_end_and_a_release_lets_the_next_in() -> None:
    rule = limiter.Limiter(concurrent=2, per_minute=100, minute_s=1.0)
    first, _, _ = rule.request(0.0, hold_s=3.0)
    rule.request(1.0, hold_s=1.0)

    slot, wait, reason = rule.request(1.5, hold_s=1.0)

    assert slot is None
    assert (wait, reason) == (0.5, "concurrency")  # the second run said it would end at 2.0
    rule.release(first)
    assert rule.request(1.5, hold_s=1.0)[0] is not None


def test_the_retry_after_is_in_whole_scaled_seconds_and_never_zero() -> None:
    # A 4 s minute: a scaled second is 1/15 s.
    assert limiter.retry_after_ms(0.0, minute_s=4.0) == 67  # a run past its declared end: any moment now
    assert limiter.retry_after_ms(0.25, minute_s=4.0) == 267  # 3.75 scaled seconds, rounded up to 4
    assert limiter.retry_after_ms(90.0, minute_s=60.0) == 90_000


@pytest.mark.parametrize(
    ("runs", "run_s", "concurrent", "per_minute", "minute_s", "expected"),
    [
        (8, 1.0, 2, 1000, 1.0, 4.0),  # only the slots bind: four waves of two
        (5, 0.5, 10, 2, 2.0, 3.5),  # only the bucket binds: two at once, then one a second
        (64, 0.5, 4, 16, 4.0, 12.5),  # the benchmark's default: slots first, the bucket after 32 runs
    ],
)
def test_the_bound_is_the_makespan_of_a_client_that_starts_each_run_the_moment_it_may(
    runs: int, run_s: float, concurrent: int, per_minute: int, minute_s: float, expected: float
) -> None:
    assert limiter.ideal_makespan(runs, run_s, concurrent, per_minute, minute_s) == pytest.approx(expected)


@pytest.fixture
def served() -> Iterator[str]:
    """A limiter process: one run at once, a bucket of two that does not refill while the test runs."""
    with tempfile.TemporaryDirectory(prefix="lim") as folder:  # a Unix socket path must stay short
        path = str(Path(folder) / "s")
        process = subprocess.Popen(
            [sys.executable, str(BENCHMARKS / "_limiter.py"), path, "1", "2", "3600"], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
            yield path
        finally:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def run_fake(path: str, log: Path) -> tuple[AttemptOutcome, dict[str, Any]]:
    """One run of the limited fake, read as the claude runner reads a run; and its line in the runs log."""
    env = {**os.environ, "FAKE_CLAUDE_LIMITER": path, "FAKE_CLAUDE_LIMITER_HOLD_S": "0",
           "FAKE_CLAUDE_LIMITER_LOG": str(log), "CLAUDE_CODE_MAX_RETRIES": "1"}
    proc = subprocess.run([str(LIMITED_CLAUDE), *FLAGS], input=b"one task\n", capture_output=True, env=env,
                          timeout=60, check=False)
    reader = ClaudeStreamReader()
    for line in proc.stdout.decode().splitlines():
        reader.on_stdout_line(line)
    outcome = AttemptOutcome(reason="exited", exit_code=proc.returncode, final_event=reader.final_event())
    return outcome, json.loads(log.read_text().splitlines()[-1])


def held(path: str) -> int:
    return int(limiter.counts(path)["held"])


def test_the_limited_fake_answers_over_limit_runs_with_claude_codes_429_and_the_limiters_retry_after(
    served: str, tmp_path: Path
) -> None:
    runner, agent, log = ClaudeRunner(), AgentSpec(name="worker", body="Work."), tmp_path / "runs"
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # a run in flight, declared to end in 60 s
    holder.connect(served)
    holder.sendall(b'{"hold_s": 60}\n')
    with holder.makefile("rb") as answer:
        assert json.loads(answer.readline()) == {"granted": True}

    outcome, line = run_fake(served, log)
    refused = runner.interpret(agent, outcome)

    assert outcome.exit_code == 1
    assert refused.rate_limited is True and refused.ok is False
    assert refused.details["api_error_status"] == 429
    assert line["reason"] == "concurrency"
    assert refused.details["retry_after_s"] == line["retry_after_ms"] / 1000
    assert 0 < refused.details["retry_after_s"] <= 60

    holder.close()
    deadline = time.monotonic() + 30
    while held(served) and time.monotonic() < deadline:  # the limiter sees the close on its own time
        pass
    assert held(served) == 0

    outcome, line = run_fake(served, log)
    assert runner.interpret(agent, outcome).ok is True  # the second token of two
    assert line["granted"] is True and line["usage"]["output_tokens"] == 84

    outcome, line = run_fake(served, log)
    assert runner.interpret(agent, outcome).rate_limited is True
    assert line["reason"] == "bucket"
    assert line["retry_after_ms"] > 1_700_000  # two tokens an hour: most of half an hour to go
    assert limiter.counts(served) == {"granted": 2, "bucket": 1, "concurrency": 1, "held": 0}
