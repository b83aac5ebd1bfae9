"""Rate limits (issue 14): N claude tasks against a local limiter, Parallel Coordinator beside a naive fan-out.

The limiter (_limiter.py) lets a few runs in at once and takes one token a run from a bucket that
refills per "minute"; a run it refuses ends at once with Claude Code's 429 in stream-json, carrying the
limiter's Retry-After (benchmarks/limited_claude, a wrapper of tests/fakes/claude). Time is scaled down:
a limiter "minute" lasts --minute seconds (4 by default, 15 times faster than a real one) and a granted
run holds its slot --run seconds. Each round starts a fresh limiter (full bucket) for each alternative:
  ours   one session of N claude tasks through the real engine (an in-process Coordinator, its own
         state, PCOORD_CLAUDE_BIN at the fake), default options and retry settings;
  naive  N processes of the same fake started at once, no back-off, no retry.
The table gives medians over the rounds: makespan, its ratio to the limiter's own lower bound (the
makespan of a client that asks the very moment a run could be granted and pays nothing to start one,
_limiter.ideal_makespan), tasks lost (no successful result), runs started and refused, the most 429s one
task met, and the prompt tokens of every run (each run's result usage is kept per round, `Round.usages`:
a new column is one more entry in `figures`).
`--without-retry-after` adds ours against refusals whose stream names no wait (the throttle's own guess).
Run: .venv/bin/python benchmarks/rate_limit.py [--tasks 64] [--rounds 3] [--concurrent 4]
     [--per-minute 16] [--minute 4] [--run 0.5] [--without-retry-after]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from _common import header, median, report_leftovers, table, temp_root
from _limiter import counts, ideal_makespan

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask

HERE = Path(__file__).resolve().parent
LIMITED_CLAUDE = HERE / "limited_claude"
LIMITER = HERE / "_limiter.py"
FLAGS = ["-p", "--output-format", "stream-json", "--verbose"]  # what a naive script runs
INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")  # every prompt token
FIRST_RESPONSE_S = 0.15  # the fake API's time to a first token (scaled like the limiter's minute)
WORKER = "---\nname: worker\ndescription: benchmark claude agent\n---\nYou do one small task.\n"


@dataclass
class Limits:
    concurrent: int
    per_minute: int
    minute_s: float
    run_s: float

    def bound(self, tasks: int) -> float:
        return ideal_makespan(tasks, self.run_s, self.concurrent, self.per_minute, self.minute_s)


@dataclass
class Round:
    makespan_s: float
    lost: int
    refused: int  # runs the limiter turned away (each one a 429 run)
    worst: int  # the most 429s one task met (the engine gives a task up after max_rate_limit_retries, 10)
    usages: list[dict[str, Any]] = field(default_factory=list)  # every run's result usage, refused ones too

    @property
    def runs(self) -> int:
        return len(self.usages)

    def tokens(self, key: str) -> int:
        return sum(int(u.get(key) or 0) for u in self.usages)


def launcher(root: Path) -> Path:
    """An executable `claude` that runs the limited fake on this interpreter without `site` (`python3` on PATH
    may be a pyenv shim, and site's .pth files cost more than the fake itself): fake runs stay cheap, so
    the table measures back-off rather than Python's start-up."""
    path = root / "claude"
    path.write_text(
        f"#!{sys.executable} -S\nimport runpy\nrunpy.run_path({str(LIMITED_CLAUDE)!r}, run_name='__main__')\n"
    )
    path.chmod(0o755)
    return path


@contextmanager
def limiter(root: Path, name: str, limits: Limits, retry_after: bool = True) -> Iterator[dict[str, str]]:
    """A fresh limiter process (full bucket); yields the environment that points fake runs at it.

    Without `retry_after` a refused run's stream names no wait (no api_retry line before its 429).
    """
    sock, log = root / f"{name}.sock", root / f"{name}.runs"
    rates = [str(limits.concurrent), str(limits.per_minute), str(limits.minute_s)]
    process = subprocess.Popen([sys.executable, str(LIMITER), str(sock), *rates], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield {
            "FAKE_CLAUDE_LIMITER": str(sock), "FAKE_CLAUDE_LIMITER_LOG": str(log),
            # The API's prompt cache, fresh each round (the fake's model of it): a run's first response
            # takes FIRST_RESPONSE_S, and only then can other runs read the prefix it wrote. The slot is
            # held that much less, so that a run still takes run_s in all.
            "FAKE_CLAUDE_CACHE_DIR": str(root / f"{name}.cache"), "FAKE_CLAUDE_FIRST_RESPONSE_S": str(FIRST_RESPONSE_S),
            "FAKE_CLAUDE_LIMITER_HOLD_S": str(max(limits.run_s - FIRST_RESPONSE_S, 0.0)),
            # A refused run reports one retry (with the limiter's Retry-After) and ends: the CLI gave up.
            "CLAUDE_CODE_MAX_RETRIES": "1" if retry_after else "0",
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def finish(env: dict[str, str], makespan_s: float, lost: int, worst: int) -> Round:
    log = Path(env["FAKE_CLAUDE_LIMITER_LOG"])
    runs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    refused = sum(counts(env["FAKE_CLAUDE_LIMITER"]).get(reason, 0) for reason in ("bucket", "concurrency"))
    return Round(makespan_s, lost, refused, worst, [run["usage"] or {} for run in runs])


def naive(root: Path, limits: Limits, tasks: int, claude: Path, number: int) -> Round:
    """All tasks at once as plain processes; whatever the limiter refuses is lost."""
    with limiter(root, f"naive{number}", limits) as env:
        started = time.monotonic()
        processes = [
            subprocess.Popen([str(claude), *FLAGS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, env={**os.environ, **env})
            for _ in range(tasks)
        ]
        ok = 0
        for i, process in enumerate(processes):
            out, _ = process.communicate(f"task {i}\n".encode())
            lines = out.decode(errors="replace").strip().splitlines()
            last = json.loads(lines[-1]) if lines else {}
            ok += last.get("type") == "result" and not last.get("is_error")
        return finish(env, time.monotonic() - started, tasks - ok, worst=1 if ok < tasks else 0)


def ours(
    root: Path, limits: Limits, tasks: int, claude: Path, number: int, retry_after: bool = True, warmup: bool = True,
) -> Round:
    """One session of `tasks` claude tasks through the engine, a fresh coordinator (so a fresh throttle);
    `warmup`: the prompt-cache warm-up (options.cache_warmup)."""
    agents = root / "agents"
    agents.mkdir(exist_ok=True)
    (agents / "worker.md").write_text(WORKER)
    name = f"ours{number}{'' if retry_after else '-blind'}{'' if warmup else '-cold'}"
    with limiter(root, name, limits, retry_after) as env:
        saved = {key: os.environ.get(key) for key in [*env, "PCOORD_CLAUDE_BIN"]}
        os.environ.update(env, PCOORD_CLAUDE_BIN=str(claude))  # agents inherit the server's environment
        settings = Settings(
            state_dir=root / f"state{number}", agent_dirs=[(agents, "env")], max_cpu_usage=100,
            performance_logging=False,
        )
        subtasks = [
            # A fake run needs ~20 MB, not the 400 MB a real Claude Code is assumed to before one has run.
            Subtask(id=f"t{i}", description=f"task {i}", agent_type="worker", resources_required={"memory_mb": 50})
            for i in range(tasks)
        ]
        result: list[tuple[float, int, int]] = []

        async def main() -> None:
            async with Coordinator(settings) as coordinator:
                options = CoordinateOptions(
                    max_agents=tasks, wait_seconds=0, reuse_results="off", cache_warmup=warmup, approved=True,
                )
                plan = coordinator.plan(subtasks, options)
                started = time.monotonic()
                session = await coordinator.start("rate limits", plan, options)
                await session.done.wait()
                makespan = time.monotonic() - started
                lost = sum(r.status is not TaskState.SUCCEEDED for r in session.tasks.values())
                worst = max(sum(a.outcome == "rate_limited" for a in r.attempts) for r in session.tasks.values())
                result.append((makespan, lost, worst))

        try:
            anyio.run(main)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return finish(env, *result[0])


def figures(bound: float) -> dict[str, Callable[[list[Round]], float]]:
    """The table's columns, each a figure of one alternative's rounds (a column is one more entry here)."""
    return {
        "makespan s": lambda done: median(r.makespan_s for r in done),
        "x bound": lambda done: median(r.makespan_s for r in done) / bound,
        "tasks lost": lambda done: median(r.lost for r in done),
        "runs": lambda done: median(r.runs for r in done),
        "429s": lambda done: median(r.refused for r in done),
        "most 429s a task": lambda done: max(r.worst for r in done),
        "input tokens": lambda done: median(sum(r.tokens(key) for key in INPUT_KEYS) for r in done),
        "cache-creation tokens": lambda done: median(r.tokens("cache_creation_input_tokens") for r in done),
        "cache-read tokens": lambda done: median(r.tokens("cache_read_input_tokens") for r in done),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrent", type=int, default=4, help="runs the limiter lets in at once")
    parser.add_argument("--per-minute", type=int, default=16, help="the bucket: its size, and its refill a minute")
    parser.add_argument("--minute", type=float, default=4.0, help="seconds a limiter minute lasts")
    parser.add_argument("--run", type=float, default=0.5, help="seconds a granted run holds its slot")
    parser.add_argument("--without-retry-after", action="store_true",
                        help="also ours against streams that name no wait (our own guess: slower)")
    args = parser.parse_args()
    limits = Limits(args.concurrent, args.per_minute, args.minute, args.run)
    bound = limits.bound(args.tasks)
    header("rate_limit", tasks=args.tasks, rounds=args.rounds, concurrent=limits.concurrent,
           per_minute=limits.per_minute, minute_s=limits.minute_s, run_s=limits.run_s)
    print(f"limiter's lower bound on the makespan: {bound:.2f} s")
    root = temp_root("rate")
    claude = launcher(root)
    logging.getLogger("parallel_coordinator").setLevel(logging.ERROR)  # each 429 is a warning: hundreds of lines
    alternatives: dict[str, Callable[[int], Round]] = {
        "Parallel Coordinator": lambda n: ours(root, limits, args.tasks, claude, n),
        "naive fan-out": lambda n: naive(root, limits, args.tasks, claude, n),
    }
    alternatives["ours, no cache warm-up"] = lambda n: ours(root, limits, args.tasks, claude, n, warmup=False)
    if args.without_retry_after:
        alternatives["ours, no Retry-After"] = lambda n: ours(root, limits, args.tasks, claude, n, retry_after=False)
    rounds: dict[str, list[Round]] = {name: [] for name in alternatives}
    for number in range(args.rounds):
        order = list(alternatives) if number % 2 == 0 else list(reversed(alternatives))  # interleaved
        for name in order:
            rounds[name].append(alternatives[name](number))
    for name, done in rounds.items():
        print(f"{name}, each round: " + ", ".join(f"{r.makespan_s:.1f} s ({r.lost} lost)" for r in done))
    columns = figures(bound)
    table(["alternative", *columns], [[name, *(column(done) for column in columns.values())]
                                      for name, done in rounds.items()])
    report_leftovers()


if __name__ == "__main__":
    main()
