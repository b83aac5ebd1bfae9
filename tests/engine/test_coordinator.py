"""The coordinator end to end with real command agents: graphs, overlap, limits, failures, cancellation."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import anyio
import psutil
import pytest

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.errors import (
    CycleError,
    DuplicateTaskError,
    PlanError,
    UnknownAgentError,
    UnknownDependencyError,
    UnknownSessionError,
)
from parallel_coordinator.planning.scheduler import TaskState
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from tests.conftest import ECHO, AgentFactory, alive, on_both_backends, on_both_paths, wait_until

pytestmark = pytest.mark.anyio

# Each instance records when it started, waits until every one of the `expect` instances has
# started (a barrier: it only passes if they really run at the same time), then records its end.
BARRIER = """
    import json, os, sys, time
    request = json.load(sys.stdin)
    spec = json.loads(request["description"].splitlines()[0])
    folder = spec["folder"]
    started = str(time.time())  # taken before the file appears: others may pass the barrier at once
    with open(os.path.join(folder, request["task_id"] + ".tmp"), "w") as f:
        f.write(started)
    os.rename(os.path.join(folder, request["task_id"] + ".tmp"), os.path.join(folder, request["task_id"] + ".start"))
    deadline = time.time() + 60
    while len([f for f in os.listdir(folder) if f.endswith(".start")]) < spec["expect"]:
        if time.time() > deadline:
            sys.exit("barrier never filled: agents did not overlap")
        time.sleep(0.01)
    open(os.path.join(folder, request["task_id"] + ".end"), "w").write(str(time.time()))
    print("passed the barrier")
"""

# Starts a child that ignores SIGTERM, records both pids, reports progress, then hangs.
HANG_WITH_CHILD = """
    import json, os, signal, subprocess, sys, time
    request = json.load(sys.stdin)
    folder = json.loads(request["description"].splitlines()[0])["folder"]
    child = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with open(os.path.join(folder, request["task_id"] + ".pids"), "w") as f:
        json.dump([os.getpid(), child.pid], f)
    print(json.dumps({"progress": 10, "message": "hanging"}), file=sys.stderr, flush=True)
    time.sleep(600)
"""

# Records start and end times, holding its slot until a release file appears.
SERIAL = """
    import json, os, sys, time
    request = json.load(sys.stdin)
    folder = json.loads(request["description"].splitlines()[0])["folder"]
    with open(os.path.join(folder, request["task_id"] + ".times"), "w") as f:
        start = time.time()
        time.sleep(0.05)
        json.dump([start, time.time()], f)
    print("ok")
"""


def options(**overrides: object) -> CoordinateOptions:
    """Options for these tests: one attempt per task unless a test asks for retries."""
    return CoordinateOptions.model_validate({"wait_seconds": 0, "retry_attempts": 1, **overrides})


async def run_to_end(coordinator: Coordinator, subtasks: list[Subtask], **opts: object):  # type: ignore[no-untyped-def]
    planned = coordinator.plan(subtasks, options(**opts))
    session = await coordinator.start("test", planned, options(**opts))
    with anyio.fail_after(60):
        await session.done.wait()
    return session


@on_both_backends
async def test_diamond_graph_hands_each_dependent_its_dependencies_outputs(coordinator: Coordinator) -> None:
    session = await run_to_end(coordinator, [
        Subtask(id="a", description="root", agent_type="echo"),
        Subtask(id="b", description="left", agent_type="echo", dependencies=["a"]),
        Subtask(id="c", description="right", agent_type="echo", dependencies=["a"]),
        Subtask(id="d", description="join", agent_type="echo", dependencies=["b", "c"]),
    ])
    assert session.status == "SUCCESS"
    assert session.tasks["b"].output.strip() == "b done a<a done>"
    assert session.tasks["d"].output.strip() == "d done b<b done a<a done>> c<c done a<a done>>"
    assert session.tasks["d"].started_at >= max(session.tasks[t].finished_at for t in "bc")  # type: ignore[operator]


@on_both_backends
async def test_independent_agents_run_at_the_same_time(coordinator: Coordinator, agents: AgentFactory,
                                                      tmp_path: Path) -> None:
    agents.script("barrier", BARRIER)
    folder = tmp_path / "barrier"
    folder.mkdir()
    spec = json.dumps({"folder": str(folder), "expect": 4})
    session = await run_to_end(
        coordinator, [Subtask(id=f"t{i}", description=f"{spec}\n{i}", agent_type="barrier") for i in range(4)]
    )
    assert session.status == "SUCCESS", session.error_summary
    starts = [float((folder / f"t{i}.start").read_text()) for i in range(4)]
    ends = [float((folder / f"t{i}.end").read_text()) for i in range(4)]
    assert max(starts) < min(ends)  # every agent started before any finished


@on_both_backends
async def test_an_agents_max_concurrent_keeps_its_runs_apart(coordinator: Coordinator, agents: AgentFactory,
                                                            tmp_path: Path) -> None:
    agents.script("serial", SERIAL, max_concurrent=1)
    folder = tmp_path / "serial"
    folder.mkdir()
    spec = json.dumps({"folder": str(folder)})
    session = await run_to_end(
        coordinator, [Subtask(id=f"s{i}", description=f"{spec}\n{i}", agent_type="serial") for i in range(3)]
    )
    assert session.status == "SUCCESS"
    spans = sorted(json.loads((folder / f"s{i}.times").read_text()) for i in range(3))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    assert session.peak_parallelism == 1


@on_both_backends
async def test_a_failed_task_skips_its_dependents_and_keeps_other_results(coordinator: Coordinator) -> None:
    session = await run_to_end(coordinator, [
        Subtask(id="ok", description="fine", agent_type="echo"),
        Subtask(id="bad", description="breaks", agent_type="failer"),
        Subtask(id="after", description="needs bad", agent_type="echo", dependencies=["bad"]),
    ])
    assert session.status == "PARTIAL"
    assert session.tasks["ok"].status is TaskState.SUCCEEDED
    assert session.tasks["bad"].status is TaskState.FAILED
    assert "exited with status 3" in (session.tasks["bad"].error or "")
    assert "disk on fire" in (session.tasks["bad"].error or "")
    assert session.tasks["after"].status is TaskState.SKIPPED
    assert "'bad'" in (session.tasks["after"].error or "")
    assert "bad (failer)" in (session.error_summary or "")


async def test_a_session_where_nothing_succeeds_is_failed(coordinator: Coordinator) -> None:
    session = await run_to_end(coordinator, [Subtask(id="x", description="breaks", agent_type="failer")])
    assert session.status == "FAILED"


@on_both_backends
async def test_an_agent_whose_command_does_not_exist_fails_with_its_name(coordinator: Coordinator,
                                                                        agents: AgentFactory) -> None:
    (agents.root / "ghost.md").write_text(
        "---\nname: ghost\ndescription: x\nrunner: command\ncommand: [no-such-binary-xyz, --flag]\n---\nbody\n"
    )
    session = await run_to_end(coordinator, [Subtask(id="g", description="boo", agent_type="ghost")])
    assert session.tasks["g"].status is TaskState.FAILED
    assert "'no-such-binary-xyz'" in (session.tasks["g"].error or "")


async def test_output_that_is_not_utf8_is_replaced_not_fatal(coordinator: Coordinator,
                                                           agents: AgentFactory) -> None:
    agents.script("binary", "import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe bytes')\n")
    session = await run_to_end(coordinator, [Subtask(id="b", description="x", agent_type="binary")])
    assert session.status == "SUCCESS"
    assert session.tasks["b"].output == "ok \ufffd\ufffd bytes"


@on_both_backends
@on_both_paths
async def test_cancel_kills_every_agent_and_its_children(coordinator: Coordinator, agents: AgentFactory,
                                                        tmp_path: Path) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    folder = tmp_path / "pids"
    folder.mkdir()
    spec = json.dumps({"folder": str(folder)})
    subtasks = [Subtask(id=f"h{i}", description=f"{spec}\n{i}", agent_type="hang") for i in range(3)]
    subtasks.append(Subtask(id="later", description="x", agent_type="echo", dependencies=["h0"]))
    planned = coordinator.plan(subtasks, options())
    session = await coordinator.start("hang", planned, options())
    await wait_until(session, lambda: sum(r.progress is not None for r in session.tasks.values()) == 3)
    pids = [pid for i in range(3) for pid in json.loads((folder / f"h{i}.pids").read_text())]
    assert len(alive(pids)) == 6

    outcome = await coordinator.cancel(session.id)

    assert alive(pids) == []
    assert outcome.status == "CANCELLED"
    assert outcome.cancelled_tasks == 4
    assert outcome.killed_processes == 6
    assert {r.status for r in session.tasks.values()} == {TaskState.CANCELLED}
    again = await coordinator.cancel(session.id)
    assert (again.status, again.cancelled_tasks, again.killed_processes) == ("CANCELLED", 0, 0)


@on_both_backends
async def test_cancelling_one_session_leaves_another_running(coordinator: Coordinator, agents: AgentFactory,
                                                            tmp_path: Path) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    folder = tmp_path / "pids"
    folder.mkdir()
    spec = json.dumps({"folder": str(folder)})
    doomed = await coordinator.start(
        "doomed", coordinator.plan([Subtask(id="d", description=spec, agent_type="hang")], options()), options()
    )
    keeper = await coordinator.start(
        "keeper", coordinator.plan([Subtask(id="k", description=spec, agent_type="hang")], options()), options()
    )
    await wait_until(doomed, lambda: doomed.tasks["d"].progress is not None)
    await wait_until(keeper, lambda: keeper.tasks["k"].progress is not None)
    keeper_pids = json.loads((folder / "k.pids").read_text())

    await coordinator.cancel(doomed.id)

    assert keeper.status == "RUNNING"
    assert keeper.tasks["k"].status is TaskState.RUNNING
    assert alive(keeper_pids) == keeper_pids
    await coordinator.cancel(keeper.id)
    assert alive(keeper_pids) == []


@on_both_backends
@on_both_paths
async def test_a_task_that_outlives_its_timeout_is_killed_and_failed(coordinator: Coordinator,
                                                                    agents: AgentFactory, tmp_path: Path) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    folder = tmp_path / "pids"
    folder.mkdir()
    session = await run_to_end(
        coordinator, [Subtask(id="slow", description=json.dumps({"folder": str(folder)}), agent_type="hang",
                              timeout=1)]
    )
    assert session.tasks["slow"].status is TaskState.FAILED
    assert "timed out after 1 s" in (session.tasks["slow"].error or "")
    assert alive(json.loads((folder / "slow.pids").read_text())) == []


async def test_finished_sessions_survive_a_restart(settings: Settings) -> None:
    async with Coordinator(settings) as first:
        session = await run_to_end(first, [
            Subtask(id="a", description="x", agent_type="echo"),
            Subtask(id="b", description="y", agent_type="failer"),
        ])
    async with Coordinator(settings) as second:
        assert second.get(session.id).status == "PARTIAL"
        stored = second.store.load_session(session.id)
    assert stored is not None and not isinstance(stored, type(session))
    assert stored.status == "PARTIAL"
    by_id = {t.task_id: t for t in stored.tasks}
    assert by_id["a"].output is not None and by_id["a"].output.strip() == "a done"
    assert by_id["b"].status == "failed" and "status 3" in (by_id["b"].error or "")
    assert [a.outcome for a in stored.attempts if a.task_id == "b"] == ["exited"]


@pytest.mark.parametrize(
    ("subtasks", "error", "text"),
    [
        ([Subtask(id="a", description="x", agent_type="ecko")], UnknownAgentError, "did you mean 'echo'?"),
        ([Subtask(id="a", description="x", agent_type="echo", dependencies=["zz"])], UnknownDependencyError,
         "'zz'"),
        ([Subtask(id="a", description="x", agent_type="echo")] * 2, DuplicateTaskError, "'a'"),
        ([Subtask(id="a", description="x", agent_type="echo", dependencies=["a"])], CycleError,
         "'a' depends on itself"),
        ([Subtask(id="a", description="x", agent_type="echo", dependencies=["c"]),
          Subtask(id="b", description="x", agent_type="echo", dependencies=["a"]),
          Subtask(id="c", description="x", agent_type="echo", dependencies=["b"])], CycleError, "->"),
        ([], PlanError, "no subtasks"),
    ],
)
async def test_bad_plans_are_refused_with_the_offending_value(
    coordinator: Coordinator, subtasks: list[Subtask], error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=None) as caught:
        coordinator.plan(subtasks, options())
    assert text in str(caught.value)
    assert coordinator.sessions == {}


async def test_a_cycle_error_names_the_whole_cycle(coordinator: Coordinator) -> None:
    with pytest.raises(CycleError) as caught:
        coordinator.plan([
            Subtask(id="a", description="x", agent_type="echo", dependencies=["c"]),
            Subtask(id="b", description="x", agent_type="echo", dependencies=["a"]),
            Subtask(id="c", description="x", agent_type="echo", dependencies=["b"]),
        ], options())
    assert set(caught.value.cycle) == {"a", "b", "c"}


async def test_an_unknown_session_is_named_in_the_error(coordinator: Coordinator) -> None:
    with pytest.raises(UnknownSessionError, match="'nope'"):
        coordinator.get("nope")


async def test_a_subtask_without_an_agent_is_routed_by_its_description(coordinator: Coordinator,
                                                                      agents: AgentFactory) -> None:
    agents.script("security-auditor", "print('audited')",
                  description="Audits authentication code for vulnerabilities and secrets")
    planned = coordinator.plan(
        [Subtask(id="s", description="check the authentication flow for vulnerabilities")], options()
    )
    assert planned.graph.nodes["s"].agent == "security-auditor"
    assert "authentication" in planned.routing_notes["s"]


async def test_one_client_may_run_only_so_many_sessions_at_once(settings: Settings, agents: AgentFactory,
                                                                 tmp_path: Path) -> None:
    agents.script("hang", HANG_WITH_CHILD)
    settings.max_sessions_per_principal = 1
    spec = json.dumps({"folder": str(tmp_path)})
    async with Coordinator(settings) as coordinator:
        plan = coordinator.plan([Subtask(id="h", description=spec, agent_type="hang")], options())
        first = await coordinator.start("one", plan, options(), owner="alice")
        with pytest.raises(PlanError, match=r"1 sessions of this client are still running"):
            await coordinator.start("two", plan, options(), owner="alice")
        other = await coordinator.start("bob's", plan, options(), owner="bob")
        for session in (first, other):
            await coordinator.cancel(session.id)


async def test_a_closed_coordinator_leaves_no_pool_process_behind(settings: Settings) -> None:
    def ours() -> list[psutil.Process]:
        # The Dask tests' cluster may share this process: only the local pool's processes count here.
        found = []
        for child in psutil.Process().children(recursive=True):
            try:
                if any(word in " ".join(child.cmdline()) for word in ("forkserver", "loky")):
                    found.append(child)
            except psutil.NoSuchProcess:
                continue
        return found

    async with Coordinator(settings) as coordinator:
        session = await run_to_end(coordinator, [Subtask(id="a", description="x", agent_type="echo")])
        assert session.status == "SUCCESS"
        during = ours()
        assert during  # the fork server and the pool's workers
    _, left = psutil.wait_procs(during, timeout=20)
    assert left == []


async def test_what_an_agent_was_seen_to_take_sets_the_critical_path_order(
    coordinator: Coordinator, agents: AgentFactory
) -> None:
    agents.script("quick", ECHO)
    agents.script("slow", ECHO)
    coordinator.estimator.observe("slow", 30.0)
    coordinator.estimator.observe("quick", 0.1)
    options = CoordinateOptions(wait_seconds=0, max_agents=1)
    # Listed first and equal in every other way: without what was learned, "q" would start first.
    subtasks = [
        Subtask(id="q", description="x", agent_type="quick"), Subtask(id="s", description="y", agent_type="slow"),
    ]
    session = await coordinator.start("learned", coordinator.plan(subtasks, options), options)
    with anyio.fail_after(60):
        await session.done.wait()
    assert session.graph.remaining_path("s") == 30.0
    first, second = sorted(session.tasks.values(), key=lambda r: r.started_at or 0.0)
    assert (first.task_id, second.task_id) == ("s", "q")


async def test_a_ready_task_held_by_a_full_session_or_a_busy_agent_says_which_limit_holds_it(
    coordinator: Coordinator, agents: AgentFactory, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    waits_for_gate = f"""
        import os, time
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.02)
    """
    agents.script("gated", waits_for_gate)
    agents.script("gated_one", waits_for_gate, max_concurrent=1)
    async def started(subtasks: list[Subtask], **opts: object):  # type: ignore[no-untyped-def]
        return await coordinator.start("test", coordinator.plan(subtasks, options(**opts)), options(**opts))

    full = await started([Subtask(id=f"f{i}", description="x", agent_type="gated") for i in range(3)], max_agents=2)
    busy = await started([Subtask(id=f"b{i}", description="x", agent_type="gated_one") for i in range(2)])
    await wait_until(full, lambda: len(full.running()) == 2 and full.queue_reason is not None)
    assert full.queue_reason == "all 2 of the session's agent slots are busy (max_agents)"
    assert coordinator.snapshot(full).ready == 1
    await wait_until(busy, lambda: len(busy.running()) == 1 and busy.queue_reason is not None)
    assert busy.queue_reason == "agent 'gated_one' runs 1 at once, its max_concurrent"
    gate.touch()
    for session in (full, busy):
        with anyio.fail_after(30):
            await session.done.wait()
        assert session.status == "SUCCESS" and session.queue_reason is None
