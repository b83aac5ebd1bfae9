"""Agents that misbehave: crashes, flaky runs, fallbacks, memory hogs, floods, rate limits, time limits.

Every test ends by checking with psutil that none of the agents' processes is left behind.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from pathlib import Path

import anyio
import psutil
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.admission import MachineGate
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.engine.session import Session
from parallel_coordinator.errors import PlanError
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import AgentFactory, alive, on_both_backends, wait_until
from tests.engine.test_claude_agents import FAKE_CLAUDE, REVIEWER
from tests.engine.test_coordinator import HANG_WITH_CHILD

pytestmark = pytest.mark.anyio

# Fails until it has been run `succeed_on` times, counting runs in a file.
FLAKY = """
    import json, os, sys
    request = json.load(sys.stdin)
    spec = json.loads(request["description"])
    with open(spec["counter"], "a+") as f:
        f.seek(0)
        runs = len(f.read()) + 1
        f.write("x")
    if runs < spec["succeed_on"]:
        sys.exit(f"flaky failure number {runs}")
    print(f"succeeded on run {runs}")
"""

# Records its pid, then holds far more memory than its limit allows.
MEMORY_HOG = """
    import json, os, sys, time
    request = json.load(sys.stdin)
    with open(request["description"], "w") as f:
        f.write(str(os.getpid()))
    hoard = bytearray(400 * 1024 * 1024)
    for i in range(0, len(hoard), 4096):
        hoard[i] = 1
    time.sleep(600)
"""

# Creates its marker file, then waits until `n` markers exist: n of them provably run at once.
BARRIER = """
    import json, os, sys, time
    folder, name, n = json.load(sys.stdin)["description"].split()
    open(os.path.join(folder, name), "w").close()
    while len(os.listdir(folder)) < int(n):
        time.sleep(0.01)
    print(name)
"""

FLOOD = """
    import sys
    chunk = b"y" * (1 << 20)
    for _ in range(64):
        sys.stdout.buffer.write(chunk)
    sys.stderr.write("x" * (8 << 20))
"""


def no_retry(**overrides: object) -> CoordinateOptions:
    return CoordinateOptions.model_validate({"wait_seconds": 0, **overrides})


async def finish(coordinator: Coordinator, subtasks: list[Subtask], options: CoordinateOptions) -> Session:
    session = await coordinator.start("failures", coordinator.plan(subtasks, options), options)
    with anyio.fail_after(90):
        await session.done.wait()
    return session


def quick(max_attempts: int) -> dict[str, object]:
    return {"max_attempts": max_attempts, "backoff_seconds": 0.01}


@on_both_backends
async def test_a_flaky_agent_is_retried_until_it_succeeds_and_every_attempt_is_recorded(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("flaky", FLAKY)
    spec = json.dumps({"counter": str(tmp_path / "runs"), "succeed_on": 3})
    session = await finish(coordinator, [
        Subtask.model_validate({"id": "f", "description": spec, "agent_type": "flaky", "retry_policy": quick(3)}),
    ], no_retry())
    record = session.tasks["f"]
    assert session.status == "SUCCESS"
    assert record.output.strip() == "succeeded on run 3"
    assert [(a.number, a.exit_code) for a in record.attempts] == [(1, 1), (2, 1), (3, 0)]
    assert "flaky failure number 2" in (record.attempts[1].error or "")
    assert all(a.finished_at and a.finished_at >= a.started_at for a in record.attempts)


@on_both_backends
async def test_a_task_that_keeps_failing_moves_to_its_fallback_agent(coordinator: Coordinator) -> None:
    session = await finish(coordinator, [
        Subtask.model_validate({"id": "t", "description": "x", "agent_type": "failer", "retry_policy": quick(2),
                                "fallback_agents": ["echo"]}),
    ], no_retry())
    record = session.tasks["t"]
    assert session.status == "SUCCESS"
    assert [a.agent for a in record.attempts] == ["failer", "failer", "echo"]
    assert record.output.strip() == "t done"
    assert coordinator.active_agents == 0


async def test_the_agents_own_fallbacks_apply_when_the_subtask_names_none(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("fragile", "import sys\nsys.exit('always broken')\n", fallback_agents=["echo"])
    session = await finish(coordinator, [Subtask(id="t", description="x", agent_type="fragile")],
                           no_retry(retry_attempts=1))
    assert [a.agent for a in session.tasks["t"].attempts] == ["fragile", "echo"]
    assert session.status == "SUCCESS"


async def test_a_missing_command_is_not_retried(coordinator: Coordinator, agents: AgentFactory) -> None:
    (agents.root / "ghost.md").write_text(
        "---\nname: ghost\ndescription: x\nrunner: command\ncommand: [no-such-binary-xyz]\n---\nbody\n"
    )
    session = await finish(coordinator, [Subtask(id="g", description="x", agent_type="ghost")], no_retry())
    assert len(session.tasks["g"].attempts) == 1


async def test_stop_on_failure_ends_the_session_at_the_first_final_failure(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    spec = json.dumps({"folder": str(tmp_path)})
    options = no_retry(retry_attempts=1, on_failure="stop")
    session = await coordinator.start("stop", coordinator.plan([
        Subtask(id="hang", description=spec, agent_type="hang"),
        Subtask(id="bad", description="x", agent_type="failer", dependencies=["gate"]),
        Subtask(id="gate", description="x", agent_type="echo"),
        Subtask(id="never", description="x", agent_type="echo", dependencies=["hang"]),
    ], options), options)
    await wait_until(session, lambda: session.tasks["hang"].progress is not None)
    pids = json.loads((tmp_path / "hang.pids").read_text())
    with anyio.fail_after(60):
        await session.done.wait()
    assert session.status == "PARTIAL"
    assert session.tasks["bad"].status is TaskState.FAILED
    assert session.tasks["hang"].status is TaskState.CANCELLED
    assert session.tasks["never"].status is TaskState.CANCELLED
    assert "stopped at the first failure: task 'bad' failed" in (session.error_summary or "")
    assert alive(pids) == []


@on_both_backends
async def test_a_memory_hog_is_killed_alone_and_the_pool_stays_healthy(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hog", MEMORY_HOG)
    pid_file = tmp_path / "hog.pid"
    session = await finish(coordinator, [
        Subtask(id="hog", description=str(pid_file), agent_type="hog"),
        Subtask(id="fine", description="x", agent_type="echo"),
    ], no_retry(retry_attempts=1, max_memory_per_agent="100MB"))
    error = session.tasks["hog"].error or ""
    assert session.tasks["hog"].status is TaskState.FAILED
    assert error.startswith("memory limit exceeded: ") and error.endswith(" MB > 100 MB")
    assert int(error.split(": ")[1].split(" MB")[0]) > 100
    assert session.tasks["fine"].status is TaskState.SUCCEEDED
    assert alive([int(pid_file.read_text())]) == []
    after = await finish(coordinator, [Subtask(id="next", description="x", agent_type="echo")], no_retry())
    assert after.status == "SUCCESS"


@on_both_backends
async def test_an_agent_flooding_its_output_is_cut_and_the_whole_output_kept_on_disk(
    settings: Settings, agents: AgentFactory
) -> None:
    agents.script("flood", FLOOD)
    settings.output_cap_bytes = 1 << 20
    async with Coordinator(settings) as coordinator:
        session = await finish(coordinator, [Subtask(id="f", description="x", agent_type="flood")], no_retry())
    record = session.tasks["f"]
    assert record.status is TaskState.SUCCEEDED
    # The server holds only the head; the length is the whole output's, and the file holds all of it.
    assert record.output.startswith("y" * 1000)
    assert len(record.output) < 2 << 20
    assert record.output_chars == 64 << 20 and record.output_cut is False
    assert record.output_path is not None
    artefact = Path(record.output_path)
    assert artefact.name == "stdout" and artefact.stat().st_size == 64 << 20
    assert (artefact.parent / "stderr").stat().st_size == 8 << 20


async def test_a_session_timeout_ends_it_with_the_results_so_far(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    spec = json.dumps({"folder": str(tmp_path)})
    session = await finish(coordinator, [
        Subtask(id="quick", description="x", agent_type="echo"),
        Subtask(id="slow", description=spec, agent_type="hang"),
        Subtask(id="later", description="x", agent_type="echo", dependencies=["slow"]),
    ], no_retry(timeout=2))
    assert session.status == "PARTIAL"
    assert session.tasks["quick"].status is TaskState.SUCCEEDED
    assert session.tasks["slow"].status is TaskState.CANCELLED
    assert session.tasks["later"].status is TaskState.CANCELLED
    assert "session timed out after 2 s" in (session.error_summary or "")
    assert alive(json.loads((tmp_path / "slow.pids").read_text())) == []


async def test_a_rate_limited_claude_run_backs_off_and_does_not_use_up_attempts(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (agents.root / "reviewer.md").write_text(REVIEWER)
    sequence = tmp_path / "sequence"
    sequence.write_text("rate_limit\nsuccess\n")
    monkeypatch.setenv("PCOORD_CLAUDE_BIN", str(FAKE_CLAUDE))
    monkeypatch.setenv("FAKE_CLAUDE_SEQUENCE", str(sequence))
    monkeypatch.setenv("CLAUDE_CODE_MAX_RETRIES", "1")
    monkeypatch.setenv("FAKE_CLAUDE_RETRY_AFTER_MS", "50")  # the API's Retry-After, in the api_retry line
    session = await finish(coordinator, [
        Subtask.model_validate({"id": "r", "description": "review", "agent_type": "reviewer",
                                "retry_policy": quick(1)}),
    ], no_retry())
    record = session.tasks["r"]
    assert session.status == "SUCCESS", session.error_summary
    assert [a.outcome for a in record.attempts] == ["rate_limited", "exited"]
    throttle = coordinator.throttles["claude"]
    assert throttle.rate_limits == 1
    assert throttle.asked_s == 0.05  # the pause was the stream's, not a guess of our own
    assert throttle.limit < throttle.max_limit  # backed off, and growing back one success at a time


async def test_new_agents_wait_while_memory_is_short_and_the_reason_is_visible(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    memory = psutil.virtual_memory()
    # More than is available, less than the machine has: it waits while another agent runs.
    between = (memory.available + memory.total) // 2 // (1 << 20)
    options = no_retry(max_memory_per_agent=between * 2)
    spec = json.dumps({"folder": str(tmp_path)})
    session = await coordinator.start("queued", coordinator.plan([
        Subtask(id="h", description=spec, agent_type="hang"),
        Subtask(id="q", description="x", agent_type="echo", resources_required={"memory_mb": between},
                dependencies=[]),
    ], options), options)
    await wait_until(session, lambda: session.queue_reason is not None)
    assert session.queue_reason is not None and session.queue_reason.startswith("waiting for memory:")
    assert session.tasks["q"].status is TaskState.PENDING
    outcome = await coordinator.cancel(session.id)
    assert outcome.cancelled_tasks == 2


async def test_a_task_needing_more_memory_than_is_free_still_runs_when_nothing_else_does(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    memory = psutil.virtual_memory()
    between = (memory.available + memory.total) // 2 // (1 << 20)
    options = no_retry(max_memory_per_agent=between * 2)
    session = await finish(coordinator, [
        Subtask(id="q", description="x", agent_type="echo", resources_required={"memory_mb": between}),
    ], options)
    assert session.status == "SUCCESS"


async def test_a_task_needing_more_memory_than_the_machine_has_is_refused_at_plan_time(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    more_than_the_machine = psutil.virtual_memory().total // (1 << 20) * 2
    options = no_retry(max_memory_per_agent=more_than_the_machine * 2)
    subtask = Subtask(id="q", description="x", agent_type="echo",
                      resources_required={"memory_mb": more_than_the_machine})
    with pytest.raises(PlanError, match=rf"task 'q' declares memory_mb {more_than_the_machine}.*machine has"):
        coordinator.plan([subtask], options)


async def test_cancel_kills_sixteen_running_agents_and_their_children(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    spec = json.dumps({"folder": str(tmp_path)})
    options = no_retry()
    session = await coordinator.start("many", coordinator.plan(
        [Subtask(id=f"h{i:02d}", description=f"{spec}\n{i}", agent_type="hang") for i in range(16)], options),
        options)
    await wait_until(session, lambda: all(r.progress is not None for r in session.tasks.values()), limit_s=60)
    pids = [p for f in tmp_path.glob("*.pids") for p in json.loads(f.read_text())]
    assert len(alive(pids)) == 32
    outcome = await coordinator.cancel(session.id)
    assert outcome.killed_processes == 32
    assert alive(pids) == []


class _FixedCpu:
    """Our processes' CPU as psutil would report it, fixed: the gate's reading without burning a core."""

    def __init__(self, percent: float) -> None:
        self.percent = percent

    def cpu_percent(self) -> float:
        return self.percent


async def test_new_agents_wait_while_our_agents_use_too_much_cpu_but_one_always_runs(
    settings: Settings, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    settings.max_cpu_usage = 50
    gate = MachineGate(max_cpu_usage=settings.max_cpu_usage, own_cpu=_FixedCpu(95.0))
    async with Coordinator(settings, gate=gate) as coordinator:
        options = no_retry()
        burning = await coordinator.start("burn", coordinator.plan(
            [Subtask(id="b", description=json.dumps({"folder": str(tmp_path)}), agent_type="hang")], options),
            options)
        with anyio.fail_after(30):
            while coordinator.gate.own_cpu_percent <= settings.max_cpu_usage:
                await coordinator.next_machine_sample()
        session = await coordinator.start("busy", coordinator.plan(
            [Subtask(id=f"e{i}", description=str(i), agent_type="echo") for i in range(2)], options), options)
        await wait_until(session, lambda: (session.queue_reason or "").startswith("waiting for CPU: our agents use"))
        assert len(burning.running()) == 1
        assert session.scheduler.ready_count() == 2
        await coordinator.cancel(session.id)
        await coordinator.cancel(burning.id)


def _outside_burners(count: int) -> list[int]:
    """CPU-burning loops that are not ours: started through a shell that exits, so init adopts them."""
    shell = subprocess.run(
        ["sh", "-c", " ".join([f"{sys.executable} -c 'while True: pass' >/dev/null 2>&1 & echo $!;"] * count)],
        capture_output=True, text=True, check=True,
    )
    return [int(pid) for pid in shell.stdout.split()]


async def test_a_machine_busy_with_other_programs_still_runs_our_agents_in_parallel(
    settings: Settings, agents: AgentFactory, tmp_path: Path
) -> None:
    agents.script("barrier", BARRIER)
    settings.max_cpu_usage = 80
    folder = tmp_path / "markers"
    folder.mkdir()
    burners = _outside_burners(psutil.cpu_count() or 1)
    try:
        async with Coordinator(settings) as coordinator:
            coordinator.gate.sample_cpu()
            # Four agents that finish only once all four run at once.
            session = await finish(coordinator, [
                Subtask(id=f"b{i}", description=f"{folder} b{i} 4", agent_type="barrier") for i in range(4)
            ], no_retry(max_agents=4))
        assert session.status == "SUCCESS" and session.peak_parallelism == 4
    finally:
        for pid in burners:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
