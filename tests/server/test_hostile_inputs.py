"""Random and hostile coordinate_task inputs through a real in-memory MCP client: a clear error or a valid plan.

Each property runs in a worker thread and calls back into the event loop that owns one Coordinator and one
Client, so every example hits the same server; after the run the server must still list agents and run a task.
"""

from __future__ import annotations

import itertools
import random
import re
import typing
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import hypothesis
import networkx as nx
import pytest
from hypothesis import HealthCheck, example
from hypothesis import strategies as st
from mcp import Client
from mcp.types import CallToolResult
from pydantic import BaseModel, ValidationError

from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.schemas import CoordinateOptions, CoordinationResult, RetryPolicy, Subtask
from parallel_coordinator.server import create_server

pytestmark = pytest.mark.anyio

TOOL = "coordinate_task"
GENERIC = f"Error executing tool {TOOL}"
KNOWN_AGENTS = ("echo", "failer")
STRATEGIES = ("auto", "parallel", "pipeline", "hybrid", "burst")


def examples(count: int) -> hypothesis.settings:
    # database=None: nothing is written into the repository; deadline=None: big graphs take a second.
    return hypothesis.settings(
        max_examples=count, deadline=None, database=None, print_blob=False,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


# ----------------------------------------------------------------------------------------------------------------
# The server, and the one way every example is sent and judged


@pytest.fixture
async def client(coordinator: Coordinator) -> AsyncIterator[Client]:
    async with Client(create_server(coordinator=coordinator)) as connected:
        yield connected


def text_of(result: CallToolResult) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def with_dry_run(arguments: dict[str, Any]) -> dict[str, Any]:
    """The same arguments with options.dry_run forced on, so a valid plan never starts a process."""
    options = arguments.get("options")
    if options is None or isinstance(options, dict):
        return {**arguments, "options": {**(options or {}), "dry_run": True}}
    return arguments  # options that are not an object fail validation before anything can run


def send(client: Client, arguments: dict[str, Any]) -> CallToolResult:
    """Call coordinate_task from a property's worker thread, on the event loop that owns the client."""
    return anyio.from_thread.run(client.call_tool, TOOL, with_dry_run(arguments))


def error_text(result: CallToolResult) -> str:
    """The text of a tool error, checked to say more than the SDK's generic crash message."""
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    text = text_of(result)
    assert text.strip(), "the tool error has no text"
    assert text.removeprefix(GENERIC).strip(" :\n"), f"a crash hidden behind the generic message: {text!r}"
    return text


def plan_of(result: CallToolResult) -> CoordinationResult:
    """A successful dry run: structured content that validates as a CoordinationResult with a plan."""
    assert not result.is_error, text_of(result)
    assert result.structured_content is not None
    answer = CoordinationResult.model_validate(result.structured_content)
    assert answer.plan is not None
    return answer


def problem_with(result: CallToolResult) -> str | None:
    """What keeps a result from being a clear tool error or a valid result, if anything: the requirement itself."""
    if result.is_error:
        text = text_of(result)
        return None if text.removeprefix(GENERIC).strip(" :\n") else f"a crash behind the generic message: {text!r}"
    try:
        answer = CoordinationResult.model_validate(result.structured_content)
    except ValidationError as exc:
        return f"a success that is not a CoordinationResult: {exc}"
    return None if answer.plan is not None else "a dry run without a plan"


def judge(result: CallToolResult) -> None:
    assert (problem := problem_with(result)) is None, problem


async def in_worker_thread(prop: Callable[[], None]) -> None:
    """Run a @given property: Hypothesis drives examples synchronously, so it must not block the event loop."""
    await anyio.to_thread.run_sync(prop)


async def assert_still_serving(client: Client) -> None:
    listing = await client.call_tool("list_agents", {})
    assert not listing.is_error, text_of(listing)
    run = await client.call_tool(TOOL, {
        "task_description": "still serving?",
        "subtasks": [{"id": "ping", "description": "ping", "agent_type": "echo"}],
        "options": {"wait_seconds": 60},
    })
    assert not run.is_error, text_of(run)
    assert run.structured_content is not None and run.structured_content["status"] == "SUCCESS"


# ----------------------------------------------------------------------------------------------------------------
# Strategies: ids, graphs, garbage


def is_valid(model: type[BaseModel], data: Any) -> bool:
    try:
        model.model_validate(data)
    except ValidationError:
        return False
    return True


HOSTILE_IDS = st.one_of(
    st.text(min_size=1, max_size=10),  # any unicode: control characters, whitespace, combining marks
    st.text(st.characters(categories=["So", "Sk", "Zs", "Cf", "Mn"]), min_size=1, max_size=4),  # emoji, spaces
    st.sampled_from(["", " ", "\t", "a\nb", "\x00", "\x7f", "\x85", "\u2028", "\u200b", "\ufeff", "🙂", "👨‍👩‍👧",
                     "a -> b", "'", '"', "\\", "null", "None", "0", " a ", "t3"]),
    st.integers(195, 205).map(lambda n: "é" * n),  # around the 200-character limit
    st.integers(1, 3).map(lambda n: "x" * (200 * n)),  # well past it
)


def repaired(task_id: str) -> str:
    """The nearest valid id: control characters dropped, a blank one given a letter, cut to 200 characters."""
    task_id = re.sub(r"[\x00-\x1f\x7f]", "", task_id)[:200]
    return task_id if task_id.strip() else f"t{task_id}"[:200]


# Mapped, not filtered: long lists of filtered ids would be rejected and cycles would come out short.
VALID_IDS = HOSTILE_IDS.map(repaired).filter(lambda task_id: is_valid(Subtask, {"id": task_id, "description": "x"}))
AGENTS = st.one_of(st.sampled_from([*KNOWN_AGENTS, None]), HOSTILE_IDS)


HOSTILITIES = ("bad ids", "no subtasks", "duplicates", "ghosts", "cycles", "self", "bad agents", "fallbacks")


@st.composite
def random_graphs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str]:
    """Subtasks with random ids and dependencies: duplicates, missing and self dependencies, any cycles.

    A third of the graphs are clean, a third may only have cycles, a third mix the other hostilities at random.
    """
    mode = draw(st.sampled_from(["clean", "cycles", "mixed"]))
    on = {"clean": set(), "cycles": {"cycles"}}.get(mode) or draw(st.sets(st.sampled_from(HOSTILITIES), min_size=1))
    ids = distinct(draw(st.lists(HOSTILE_IDS if "bad ids" in on else VALID_IDS,
                                 min_size=0 if "no subtasks" in on else 1, max_size=12)))
    if ids and "duplicates" in on:
        ids.insert(draw(st.integers(0, len(ids))), draw(st.sampled_from(ids)))
    ghosts = draw(st.lists(HOSTILE_IDS, min_size=1, max_size=2)) if "ghosts" in on else []
    agents = AGENTS if "bad agents" in on else st.sampled_from([*KNOWN_AGENTS, None])
    subtasks = []
    for position, task_id in enumerate(ids):
        targets = [other for other in (ids if "cycles" in on else ids[:position]) if other != task_id]
        pools = ([st.sampled_from(targets)] if targets else []) + ([st.sampled_from(ghosts)] if ghosts else [])
        deps = draw(st.lists(st.one_of(pools), max_size=3)) if pools else []
        if "self" in on and draw(st.booleans()):
            deps.insert(draw(st.integers(0, len(deps))), task_id)
        sub: dict[str, Any] = {"id": task_id, "description": draw(st.text(min_size=1, max_size=20))}
        if (agent := draw(agents)) is not None:
            sub["agent_type"] = agent
        if deps or draw(st.booleans()):
            sub["dependencies"] = deps
        if "fallbacks" in on and draw(st.booleans()):
            sub["fallback_agents"] = draw(st.lists(AGENTS.filter(lambda a: a is not None), max_size=2))
        subtasks.append(sub)
    return subtasks, draw(st.sampled_from(STRATEGIES))


def chained(subtasks: list[dict[str, Any]], strategy: str) -> list[list[str]]:
    """The dependencies each subtask ends up with: "pipeline" also hangs each one on the one before it."""
    result = []
    for position, sub in enumerate(subtasks):
        deps = list(sub.get("dependencies", []))
        if strategy == "pipeline" and position and subtasks[position - 1]["id"] not in deps:
            deps.append(subtasks[position - 1]["id"])
        result.append(deps)
    return result


def distinct(ids: list[str]) -> list[str]:
    """The same ids with each repeat given a suffix: drawing unique lists of random text rejects too much."""
    seen: set[str] = set()
    for position, task_id in enumerate(ids):
        while task_id in seen:
            task_id = f"{task_id[:190]}#{position}"
        seen.add(task_id)
        ids[position] = task_id
    return ids


@st.composite
def planted_cycles(draw: st.DrawFn) -> tuple[list[str], list[dict[str, Any]]]:
    """A cycle of length 1 to 50 shuffled into an acyclic graph that hangs off it and adds no other cycle."""
    length = draw(st.sampled_from(range(1, 51)))  # uniform: long cycles as often as short ones
    ids = distinct(draw(st.lists(VALID_IDS, min_size=length, max_size=length + 20)))
    cycle, rest = ids[:length], ids[length:]
    subtasks = [{"id": task_id, "description": "x", "agent_type": "echo", "dependencies": [cycle[i - 1]]}
                for i, task_id in enumerate(cycle)]
    for position, task_id in enumerate(rest):
        deps = draw(st.lists(st.sampled_from(cycle + rest[:position]), max_size=3, unique=True))
        subtasks.append({"id": task_id, "description": "x", "agent_type": "echo", "dependencies": deps})
    return cycle, draw(st.permutations(subtasks))


ABSURD = [0, -1, -(10**9), 10**9, 2**63, 10**300, 10**400, -(10**400), 1e308, -1e308, 5e-324, 0.5, -0.0,
          float("nan"), float("inf"), float("-inf"), True, False]
NUMERIC_WORDS = ["NaN", "nan", "inf", "-Infinity", "1e309", "-1", "0", "3", "512MB", "1.5 GB", "0MB", "9" * 400,
                 "lots", "", " "]
ABSURD_NUMBERS = st.sampled_from(ABSURD) | st.integers() | st.floats()
GARBAGE = st.recursive(
    st.none() | st.booleans() | ABSURD_NUMBERS | st.sampled_from(NUMERIC_WORDS) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def base_arguments() -> dict[str, Any]:
    """A valid two-task plan that touches every field, for the garbage to land in."""
    return {
        "task_description": "ship it",
        "strategy": "auto",
        "subtasks": [
            {"id": "a", "description": "first", "agent_type": "echo", "priority": 1, "timeout": 30,
             "expected_duration": 2, "fallback_agents": ["failer"], "resources_required": {"cpu": 1}},
            {"id": "b", "description": "second", "agent_type": "echo", "dependencies": ["a"],
             "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}},
        ],
        "options": {"max_agents": 2, "timeout": 600, "retry_attempts": 1, "priority_mode": "speed",
                    "wait_seconds": 1, "max_memory_per_agent": "256MB", "token_budget_per_agent": 1000},
    }


# Where garbage can land: a path of keys and indexes into base_arguments().
SUBTASK_FIELDS = sorted(Subtask.model_fields)
PATHS: list[tuple[str | int, ...]] = [
    ("task_description",), ("subtasks",), ("strategy",), ("options",),
    *[("subtasks", 1, name) for name in SUBTASK_FIELDS], *[("subtasks", 0, name) for name in SUBTASK_FIELDS],
    ("subtasks", 0), ("subtasks", 1, "dependencies", 0), ("subtasks", 0, "fallback_agents", 0),
    *[("subtasks", 1, "retry_policy", name) for name in sorted(RetryPolicy.model_fields)],
    *[("options", name) for name in sorted(CoordinateOptions.model_fields) if name != "dry_run"],
]


def numeric_fields(model: type[BaseModel]) -> list[str]:
    """The fields that take a number, so that new ones are covered as the models grow."""
    return [name for name, field in model.model_fields.items()
            if {int, float} & {*typing.get_args(field.annotation), field.annotation}]


NUMERIC_PATHS: list[tuple[str | int, ...]] = [
    *[("subtasks", 0, name) for name in numeric_fields(Subtask)],
    *[("subtasks", 1, "retry_policy", name) for name in numeric_fields(RetryPolicy)],
    *[("options", name) for name in numeric_fields(CoordinateOptions)],
]


def put(arguments: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    """Set arguments[path] = value, unless an earlier mutation already removed the way there."""
    node: Any = arguments
    for key in path[:-1]:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return
    if isinstance(node, dict) or (isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node)):
        node[path[-1]] = value


@st.composite
def garbled_arguments(draw: st.DrawFn) -> dict[str, Any]:
    arguments = base_arguments()
    if draw(st.booleans()):
        del arguments["subtasks"]  # the whole task goes to one routed agent
    for path in draw(st.lists(st.sampled_from(PATHS), min_size=1, max_size=3)):
        put(arguments, path, draw(GARBAGE))
    return arguments


# ----------------------------------------------------------------------------------------------------------------
# Properties


async def test_random_graphs_get_a_plan_or_an_error_that_names_the_offending_value(client: Client) -> None:
    listing = await client.call_tool("list_agents", {})
    assert listing.structured_content is not None
    known = {agent["name"] for agent in listing.structured_content["agents"]}
    assert known >= set(KNOWN_AGENTS)

    @hypothesis.given(random_graphs())
    @examples(250)
    def prop(graph: tuple[list[dict[str, Any]], str]) -> None:
        subtasks, strategy = graph
        result = send(client, {"task_description": "random graph", "subtasks": subtasks, "strategy": strategy})

        invalid = [i for i, sub in enumerate(subtasks) if not is_valid(Subtask, sub)]
        if invalid:
            assert f"subtasks.{invalid[0]}." in error_text(result)
            return
        if not subtasks:
            assert "no subtasks" in error_text(result)
            return

        ids = [sub["id"] for sub in subtasks]
        deps = chained(subtasks, strategy)
        if strategy == "parallel" and any(sub.get("dependencies") for sub in subtasks):
            assert "strategy 'parallel' runs subtasks independently" in error_text(result)
            return
        agents = [sub["agent_type"] for sub in subtasks if "agent_type" in sub]
        offenders = {a for a in [*agents, *(a for sub in subtasks for a in sub.get("fallback_agents", []))]
                     if a not in known}
        offenders |= {task_id for task_id, count in Counter(ids).items() if count > 1}
        offenders |= {d for own in deps for d in own if d not in ids}
        offenders |= {task_id for task_id, own in zip(ids, deps, strict=True) if task_id in own}
        graph: nx.DiGraph = nx.DiGraph()
        graph.add_edges_from((d, task_id) for task_id, own in zip(ids, deps, strict=True) for d in own if d in ids)
        on_cycles = {n for scc in nx.strongly_connected_components(graph) if len(scc) > 1 for n in scc}

        if offenders:
            text = error_text(result)
            assert any(repr(value) in text for value in offenders), (text, offenders)
        elif on_cycles:
            text = error_text(result)
            assert "cycle" in text and any(task_id in text for task_id in on_cycles), text
        else:
            plan = plan_of(result).plan or []
            assert [task.task_id for task in plan] == ids
            assert [task.dependencies for task in plan] == [list(dict.fromkeys(own)) for own in deps]
            for task, sub in zip(plan, subtasks, strict=True):
                assert task.agent == sub.get("agent_type", task.agent) and task.agent in known

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_a_cycle_of_any_length_hidden_in_a_graph_is_named_id_by_id(client: Client) -> None:
    @hypothesis.given(planted_cycles())
    @examples(120)
    def prop(planted: tuple[list[str], list[dict[str, Any]]]) -> None:
        cycle, subtasks = planted
        text = error_text(send(client, {"task_description": "cyclic", "subtasks": subtasks}))
        assert all(task_id in text for task_id in cycle), text
        # The cycle is printed in dependency order from wherever the search entered it: a -> b -> c -> a.
        rotations = [cycle[i:] + cycle[:i] for i in range(len(cycle))]
        assert any(" -> ".join([*r, r[0]]) in text for r in rotations), text

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_a_chain_of_two_thousand_tasks_is_planned_and_closing_it_names_every_id(client: Client) -> None:
    @hypothesis.given(
        length=st.integers(1_000, 2_000),
        prefix=VALID_IDS.filter(lambda s: len(s) <= 150),
        closed=st.booleans(),
        strategy=st.sampled_from(["auto", "pipeline"]),
    )
    @example(length=2_000, prefix="step-", closed=False, strategy="auto")
    @example(length=2_000, prefix="step-", closed=True, strategy="auto")
    @examples(6)
    def prop(length: int, prefix: str, closed: bool, strategy: str) -> None:
        ids = [f"{prefix}{i}" for i in range(length)]
        subtasks = [{"id": task_id, "description": "link", "agent_type": "echo"} for task_id in ids]
        if strategy == "auto":
            for previous, sub in itertools.pairwise(subtasks):
                sub["dependencies"] = [previous["id"]]
        if closed:
            subtasks[0]["dependencies"] = [ids[-1]]
        result = send(client, {"task_description": "a long chain", "subtasks": subtasks, "strategy": strategy})
        if closed:
            text = error_text(result)
            assert all(task_id in text for task_id in ids)
            return
        plan = plan_of(result).plan or []
        assert len(plan) == length
        assert [task.dependencies for task in plan] == [[], *[[task_id] for task_id in ids[:-1]]]

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_a_graph_of_five_thousand_tasks_is_planned_and_a_missing_dependency_is_named(client: Client) -> None:
    @hypothesis.given(width=st.integers(3_000, 5_000), seed=st.integers(0, 2**32), broken=st.booleans())
    @example(width=5_000, seed=0, broken=False)
    @examples(4)
    def prop(width: int, seed: int, broken: bool) -> None:
        rng = random.Random(seed)
        subtasks: list[dict[str, Any]] = []
        for i in range(width):
            deps = rng.sample(range(i), k=min(i, rng.randint(0, 3)))
            subtasks.append({"id": f"w{i}", "description": "fan", "agent_type": rng.choice(KNOWN_AGENTS),
                             "dependencies": [f"w{d}" for d in deps]})
        subtasks.append({"id": "join", "description": "fan in", "agent_type": "echo",
                         "dependencies": [f"w{i}" for i in range(width)]})
        if broken:
            rng.choice(subtasks)["dependencies"].append("ghost 👻")
        result = send(client, {"task_description": "a wide graph", "subtasks": subtasks})
        if broken:
            assert "'ghost 👻'" in error_text(result)
        else:
            assert len(plan_of(result).plan or []) == width + 1

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_wrong_types_and_absurd_values_anywhere_get_a_clear_error_or_a_plan(client: Client) -> None:
    @hypothesis.given(garbled_arguments())
    @example({**base_arguments(), "subtasks": "abc"})
    @example({**base_arguments(), "options": {"wait_seconds": float("nan"), "max_agents": -(10**300)}})
    @example({**base_arguments(), "options": {"max_memory_per_agent": "9" * 400}})
    @examples(300)
    def prop(arguments: dict[str, Any]) -> None:
        result = send(client, arguments)
        judge(result)
        if not result.is_error:
            # A NaN goes over JSON as null, and null subtasks mean "plan it yourself": one task here.
            subtasks = arguments.get("subtasks")
            assert len(plan_of(result).plan or []) == (len(subtasks) if isinstance(subtasks, list) else 1)

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_every_absurd_number_in_every_numeric_field_gets_a_clear_error_or_a_plan(client: Client) -> None:
    problems = {}
    for path, value in itertools.product(NUMERIC_PATHS, [*ABSURD, *NUMERIC_WORDS, None, [], {}]):
        arguments = base_arguments()
        put(arguments, path, value)
        if problem := problem_with(await client.call_tool(TOOL, with_dry_run(arguments))):
            problems[f"{'.'.join(map(str, path))}={value!r}"] = problem
    assert problems == {}
    await assert_still_serving(client)


async def test_a_task_description_alone_gets_a_clear_error_or_a_one_task_plan(client: Client) -> None:
    @hypothesis.given(
        description=st.text() | st.integers(99_999, 100_001).map(lambda n: "d" * n) | GARBAGE,
        strategy=st.sampled_from(STRATEGIES),
        explicit_none=st.booleans(),
    )
    @examples(100)
    def prop(description: Any, strategy: str, explicit_none: bool) -> None:
        arguments = {"task_description": description, "strategy": strategy}
        if explicit_none:
            arguments["subtasks"] = None
        result = send(client, arguments)
        judge(result)
        if not result.is_error:
            assert [task.task_id for task in plan_of(result).plan or []] == ["task"]

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_unknown_fields_in_subtasks_options_and_retry_policies_are_rejected_by_name(client: Client) -> None:
    known = set(Subtask.model_fields) | set(CoordinateOptions.model_fields) | set(RetryPolicy.model_fields)

    @hypothesis.given(
        where=st.sampled_from([("subtasks", 0), ("subtasks", 1), ("options",), ("subtasks", 1, "retry_policy")]),
        name=st.text(min_size=1, max_size=20).filter(lambda n: n not in known),
        value=GARBAGE,
    )
    @example(where=("options",), name="dryrun", value=True)
    @example(where=("subtasks", 0), name="depends_on", value=["b"])
    @examples(120)
    def prop(where: tuple[str | int, ...], name: str, value: Any) -> None:
        arguments = base_arguments()
        put(arguments, (*where, name), value)
        text = error_text(send(client, arguments))
        assert "extra" in text.lower() and name in text, text

    await in_worker_thread(prop)
    await assert_still_serving(client)


async def test_unknown_top_level_arguments_are_rejected_by_name(client: Client) -> None:
    @hypothesis.given(name=st.text(min_size=1, max_size=20).filter(lambda n: n not in base_arguments()),
                      value=GARBAGE)
    @example(name="subtask", value=[{"id": "a", "description": "x"}])
    @example(name="ctx", value=None)
    @examples(60)
    def prop(name: str, value: Any) -> None:
        text = error_text(send(client, {**base_arguments(), name: value}))
        assert f"unknown argument {name!r}" in text, text

    await in_worker_thread(prop)
    await assert_still_serving(client)


# ----------------------------------------------------------------------------------------------------------------
# Crashes the properties above once found, pinned to their smallest input


async def test_an_empty_task_description_without_subtasks_is_a_clear_tool_error(client: Client) -> None:
    result = await client.call_tool(TOOL, {"task_description": "", "options": {"dry_run": True}})
    assert "description" in error_text(result)


async def test_a_memory_size_past_float_range_is_a_clear_tool_error(client: Client) -> None:
    result = await client.call_tool(TOOL, {
        "task_description": "x", "subtasks": [{"id": "a", "description": "x", "agent_type": "echo"}],
        "options": {"dry_run": True, "max_memory_per_agent": 10**400},
    })
    assert "max_memory_per_agent" in error_text(result)
