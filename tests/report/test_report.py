"""`pcoord report`: the HTML page of a real session, read with html.parser and opened in a real headless browser."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import struct
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from parallel_coordinator.config.settings import Settings
from parallel_coordinator.engine.coordinator import Coordinator
from parallel_coordinator.errors import UnknownSessionError
from parallel_coordinator.report import assign_lanes, graph_layers, render_report, write_report
from parallel_coordinator.schemas.inputs import CoordinateOptions, Subtask
from parallel_coordinator.state.store import Store, StoredSession, StoredTask
from tests.conftest import ECHO, FAIL, AgentFactory
from tests.engine.test_failures import FLAKY

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
# A task id that would run script, break out of attributes and test the encoding if it were not escaped.
HOSTILE = "<script>alert('pwned')</script> \"quoted\" & ünïcødé ✓ <img src=x onerror=alert(1)>"
CHROMIUM_TIMEOUT_S = 90


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    svg: str | None  # id of the enclosing <svg>, if any
    text: str = ""


class Page(HTMLParser):
    """Every element of the page with its attributes, the <svg> it sits in, and its direct text."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._svg: list[str] = []
        self._open: list[Element] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "svg":
            self._svg.append(values.get("id", ""))
        element = Element(tag, values, self._svg[-1] if self._svg else None)
        self.elements.append(element)
        if tag not in ("meta", "br", "img", "input", "link", "hr"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg" and self._svg:
            self._svg.pop()
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data

    def find(self, tag: str | None = None, *, svg: str | None = None, cls: str | None = None) -> list[Element]:
        return [
            e
            for e in self.elements
            if (tag is None or e.tag == tag)
            and (svg is None or e.svg == svg)
            and (cls is None or cls in e.attrs.get("class", "").split())
        ]

    def cells(self, row: Element) -> list[Element]:
        """The <th>/<td> cells of a table row, in order."""
        following = self.elements[self.elements.index(row) + 1:]
        end = next((i for i, e in enumerate(following) if e.tag == "tr"), len(following))
        return [e for e in following[:end] if e.tag in ("th", "td")]

    def by_id(self, element_id: str) -> Element:
        [element] = [e for e in self.elements if e.attrs.get("id") == element_id]
        return element


@dataclass
class Report:
    stored: StoredSession
    path: Path
    html: str
    page: Page = field(init=False)

    def __post_init__(self) -> None:
        self.page = Page(self.html)


async def _run_session(settings: Settings, counter: Path) -> str:
    flaky = json.dumps({"counter": str(counter), "succeed_on": 2})
    retry_twice = {"max_attempts": 2, "backoff_seconds": 0.01}
    subtasks = [
        Subtask(id=HOSTILE, description="root <b>of</b> the diamond", agent_type="echo"),
        Subtask.model_validate({"id": "left", "description": flaky, "agent_type": "flaky", "dependencies": [HOSTILE],
                                "retry_policy": retry_twice}),
        Subtask(id="right", description="right branch", agent_type="echo", dependencies=[HOSTILE]),
        Subtask(id="join", description="join", agent_type="echo", dependencies=["left", "right"]),
        Subtask.model_validate({"id": "doomed", "description": "x", "agent_type": "failer",
                                "retry_policy": retry_twice}),
        Subtask(id="after-doomed", description="never runs", agent_type="echo", dependencies=["doomed"]),
    ]
    options = CoordinateOptions.model_validate({"wait_seconds": 0, "retry_attempts": 1})
    async with Coordinator(settings) as coordinator:
        session = await coordinator.start("a diamond, a flaky branch & a <doomed> task", coordinator.plan(
            subtasks, options), options)
        with anyio.fail_after(60):
            await session.done.wait()
        return session.id


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """One real session (real coordinator, real command agents), stored, then written as a report."""
    root = tmp_path_factory.mktemp("report")
    agents = AgentFactory(root / "agents")
    agents.script("echo", ECHO)
    agents.script("failer", FAIL)
    agents.script("flaky", FLAKY)
    settings = Settings(
        state_dir=root / "state", agent_dirs=[(agents.root, "env")], pool_idle_timeout_s=60, max_cpu_usage=100
    )
    session_id = anyio.run(_run_session, settings, root / "flaky-runs", backend="asyncio")
    store = Store(settings.database)
    try:
        path = write_report(store, session_id, reports_dir=root / "reports")
        stored = store.load_session(session_id)
    finally:
        store.close()
    assert stored is not None
    return Report(stored, path, path.read_text(encoding="utf-8"))


def test_the_report_is_written_as_the_session_id_under_the_reports_dir(report: Report) -> None:
    assert report.path.name == f"{report.stored.id}.html"
    assert report.path.parent.name == "reports"
    assert report.html.startswith("<!DOCTYPE html>")
    assert report.stored.status == "PARTIAL"


def test_the_timeline_has_one_bar_per_attempt_coloured_by_its_outcome(report: Report) -> None:
    bars = report.page.find("rect", svg="timeline", cls="attempt")
    drawn = {(b.attrs["data-task"], int(b.attrs["data-attempt"])): b.attrs["class"] for b in bars}
    assert len(bars) == len(report.stored.attempts) == 7
    assert drawn == {
        (HOSTILE, 1): "attempt outcome-succeeded",
        ("left", 1): "attempt outcome-failed",
        ("left", 2): "attempt outcome-succeeded",
        ("right", 1): "attempt outcome-succeeded",
        ("join", 1): "attempt outcome-succeeded",
        ("doomed", 1): "attempt outcome-failed",
        ("doomed", 2): "attempt outcome-failed",
    }
    [left_first_title] = [e for e in report.page.find("title", svg="timeline") if "task left · attempt 1" in e.text]
    assert "agent: flaky" in left_first_title.text
    assert "flaky failure number 1" in left_first_title.text


def test_bars_that_share_a_lane_never_overlap_in_time(report: Report) -> None:
    bars = report.page.find("rect", svg="timeline", cls="attempt")
    by_lane: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for bar in bars:
        by_lane[bar.attrs["data-lane"]].append((float(bar.attrs["data-start"]), float(bar.attrs["data-end"])))
    for spans in by_lane.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end
    # Bars sit where the attempts really ran, in seconds since the session started.
    stored = {(a.task_id, a.number): a for a in report.stored.attempts}
    for bar in bars:
        attempt = stored[(bar.attrs["data-task"], int(bar.attrs["data-attempt"]))]
        assert attempt.started_at is not None and attempt.finished_at is not None
        assert float(bar.attrs["data-start"]) == pytest.approx(attempt.started_at - report.stored.created_at, abs=1e-3)
        assert float(bar.attrs["data-end"]) == pytest.approx(attempt.finished_at - report.stored.created_at, abs=1e-3)
    # The flaky branch's retry waits for its own first attempt, so the join runs after both branches.
    start = {(b.attrs["data-task"], b.attrs["data-attempt"]): float(b.attrs["data-start"]) for b in bars}
    assert start[("join", "1")] > start[("left", "2")] > start[("left", "1")]


def test_the_graph_has_one_node_per_task_in_its_status_colour_and_one_edge_per_dependency(report: Report) -> None:
    nodes = report.page.find("g", svg="graph", cls="task")
    assert {n.attrs["data-task"]: n.attrs["class"] for n in nodes} == {
        HOSTILE: "task status-succeeded",
        "left": "task status-succeeded",
        "right": "task status-succeeded",
        "join": "task status-succeeded",
        "doomed": "task status-failed",
        "after-doomed": "task status-skipped",
    }
    assert {n.attrs["data-task"]: int(n.attrs["data-layer"]) for n in nodes} == {
        HOSTILE: 0, "left": 1, "right": 1, "join": 2, "doomed": 0, "after-doomed": 1,
    }
    edges = report.page.find("path", svg="graph", cls="edge")
    assert Counter((e.attrs["data-from"], e.attrs["data-to"]) for e in edges) == Counter(
        {(HOSTILE, "left"): 1, (HOSTILE, "right"): 1, ("left", "join"): 1, ("right", "join"): 1,
         ("doomed", "after-doomed"): 1}
    )


def test_the_metrics_table_has_the_session_figures_and_a_row_per_agent(report: Report) -> None:
    metrics = {e.attrs["data-metric"] for e in report.page.find("tr", cls="metric")}
    assert {"avg_task_time_s", "p95_task_time_s", "throughput_per_min", "error_rate", "parallel_efficiency"} <= metrics
    assert "tokens" not in metrics and "cost_usd" not in metrics  # command agents report neither
    runs_and_failures = {
        row.attrs["data-agent"]: [cell.text for cell in report.page.cells(row)[1:3]]
        for row in report.page.find("tr", cls="agent-metric")
    }
    assert runs_and_failures == {"echo": ["3", "0"], "failer": ["2", "2"], "flaky": ["2", "1"]}
    [error_rate] = [e for e in report.page.find("tr", cls="metric") if e.attrs["data-metric"] == "error_rate"]
    assert report.page.cells(error_rate)[1].text == "42.9%"  # 3 of the 7 attempts failed


def test_the_task_table_lists_every_task_with_its_attempts_and_first_error_line(report: Report) -> None:
    rows = [e for e in report.page.find("tr") if "data-task" in e.attrs and e.svg is None]
    assert [r.attrs["data-task"] for r in rows] == [HOSTILE, "left", "right", "join", "doomed", "after-doomed"]
    cells = report.page.cells(rows[4])
    assert [cells[0].text, cells[1].text, cells[3].text] == ["doomed", "failer", "2"]
    # The first line of the error, with the agent's last stderr line that explains it; all of it on hover.
    assert cells[5].text == "exited with status 3; last stderr lines: something went wrong: disk on fire"
    assert cells[5].attrs["title"] == report.stored.tasks[4].error


def test_the_page_fetches_nothing_from_any_network(report: Report) -> None:
    lowered = report.html.lower()
    assert "http://" not in lowered and "https://" not in lowered
    assert "<link" not in lowered and "@import" not in lowered
    assert not [e for e in report.page.elements if e.attrs.get("src") or e.attrs.get("href")]
    assert "default-src 'none'" in report.html  # the browser itself refuses any fetch


def test_a_hostile_task_id_is_escaped_everywhere_and_survives_intact(report: Report) -> None:
    assert HOSTILE not in report.html
    assert "<script>alert" not in report.html and "<img" not in report.html
    assert [e.tag for e in report.page.elements].count("script") == 1  # only the page's own
    assert not [e for e in report.page.elements if e.tag == "img" or "onerror" in e.attrs]
    # Escaped, not mangled: the parser reads the exact id back from the bars, the node and the table row.
    assert len([e for e in report.page.elements if e.attrs.get("data-task") == HOSTILE]) == 3
    [label] = [e.text for e in report.page.find("text", svg="graph") if e.text.startswith("<script>alert(")]
    assert HOSTILE.startswith(label[:-1]) and label.endswith("…")  # capped, never cut inside an entity


def test_write_report_writes_to_the_output_it_is_given(report: Report, tmp_path: Path) -> None:
    store = Store(report.path.parents[1] / "state" / "state.db")
    try:
        path = write_report(store, report.stored.id, tmp_path / "nested" / "mine.html", reports_dir=tmp_path / "x")
    finally:
        store.close()
    assert path == tmp_path / "nested" / "mine.html"
    assert Page(path.read_text(encoding="utf-8")).by_id("timeline").tag == "svg"
    assert not (tmp_path / "x").exists()


def test_write_report_names_a_session_that_does_not_exist(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    try:
        with pytest.raises(UnknownSessionError, match="'no-such-session'"):
            write_report(store, "no-such-session", reports_dir=tmp_path)
    finally:
        store.close()
    assert not list(tmp_path.glob("*.html"))


def test_overlapping_spans_never_share_a_lane_and_a_freed_lane_is_reused() -> None:
    spans = [(0.0, 4.0), (1.0, 2.0), (1.5, 3.0), (2.0, 5.0), (4.0, 6.0), (7.0, 8.0)]
    assert assign_lanes(spans) == [0, 1, 2, 1, 0, 0]


def test_lanes_are_returned_in_input_order_not_start_order() -> None:
    assert assign_lanes([(5.0, 6.0), (0.0, 10.0), (1.0, 2.0)]) == [1, 0, 1]
    assert assign_lanes([]) == []


@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0.001, 50)), max_size=60))
def test_lane_assignment_never_overlaps_and_uses_only_as_many_lanes_as_the_peak_overlap(
    raw: list[tuple[float, float]],
) -> None:
    spans = [(start, start + length) for start, length in raw]
    lanes = assign_lanes(spans)
    for i, (a_start, a_end) in enumerate(spans):
        for j, (b_start, b_end) in enumerate(spans[:i]):
            if lanes[i] == lanes[j]:
                assert a_end <= b_start or b_end <= a_start
    # Greedy interval partitioning is optimal: as many lanes as the most spans open at one instant
    # (a span ending exactly when another starts does not overlap it: ends sort before starts).
    events = sorted([(end, -1) for _, end in spans] + [(start, 1) for start, _ in spans])
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    assert len(set(lanes)) == peak
    assert set(lanes) == set(range(peak))


def _task(task_id: str, deps: list[str], status: str = "succeeded") -> StoredTask:
    return StoredTask(
        task_id=task_id, agent="echo", description="d", dependencies=deps, priority=3, status=status, spec={},
        output=None, error=None, attempts=0, started_at=None, finished_at=None, input_tokens=None,
        output_tokens=None, cost_usd=None,
    )


def _session(tasks: list[StoredTask]) -> StoredSession:
    return StoredSession(
        id="s", task_description="t", status="SUCCESS", options={}, created_at=1000.0, finished_at=1010.0,
        error_summary=None, max_agents=64, resumed_from=None, tasks=tasks, attempts=[],
    )


def test_graph_layers_follow_the_longest_path_from_the_roots() -> None:
    tasks = [_task("a", []), _task("b", ["a"]), _task("c", ["b"]), _task("d", ["a", "c"]), _task("e", [])]
    assert graph_layers(tasks) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}


def test_a_plan_of_three_hundred_tasks_stays_legible() -> None:
    tasks = [_task(f"independent-task-with-a-long-name-{i}", []) for i in range(300)]
    tasks.append(_task("final", [t.task_id for t in tasks]))
    page = Page(render_report(_session(tasks)))
    graph = page.by_id("graph")
    _, _, width, height = (float(v) for v in graph.attrs["viewbox"].split())
    assert len(page.find("g", svg="graph", cls="task")) == 301
    assert len(page.find("path", svg="graph", cls="edge")) == 300
    assert width / height < 4 and height / width < 4  # a wide layer wraps into columns, not one endless column
    labels = [e.text for e in page.find("text", svg="graph")]
    assert max(len(label) for label in labels) <= 20


def test_control_characters_in_agent_text_never_reach_the_page() -> None:
    task = _task("t", [], status="failed")
    noisy = StoredTask(**{**task.__dict__, "error": "\x1b[31mred\x00alert\x07", "output": "bell\x07 & <b>"})
    source = render_report(_session([noisy]))
    assert not [c for c in source if ord(c) < 32 and c not in "\n\t"]
    assert "red\ufffdalert" in source and "bell\ufffd &amp; &lt;b&gt;" in source


def test_tokens_and_cost_are_totalled_when_the_agents_report_them() -> None:
    tasks = [
        StoredTask(**{**_task(name, []).__dict__, "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.25})
        for name in ("a", "b")
    ]
    page = Page(render_report(_session(tasks)))
    figures = {row.attrs["data-metric"]: page.cells(row)[1].text for row in page.find("tr", cls="metric")}
    assert figures["tokens"] == "2,400 / 600"
    assert figures["cost_usd"] == "$0.5000"


def test_a_single_task_session_without_attempts_renders() -> None:
    page = Page(render_report(_session([_task("only", [], status="pending")])))
    assert page.find("g", svg="graph", cls="status-pending")
    assert not page.find("rect", svg="timeline", cls="attempt")
    assert any("no attempt was recorded" in e.text for e in page.find("text", svg="timeline"))


# --- a real headless browser ---------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="no `chromium` on PATH: run scripts/install-browser.sh (Debian's chromium) to enable"
)


def chromium(profile: Path, *args: str) -> str:
    """Run headless chromium in its own process group, bounded by a timeout; returns its stdout."""
    assert CHROMIUM is not None
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=2000", *args,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S}s: {' '.join(command)}")
    finally:
        # Helpers (zygote, crashpad) may outlive the browser; they share its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, f"chromium exited {process.returncode}: {stderr[-2000:]}"
    return stdout


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
def test_headless_chromium_takes_a_screenshot_of_the_report(report: Report, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    chromium(tmp_path / "profile", "--hide-scrollbars", "--window-size=1280,1400", f"--screenshot={screenshot}",
             report.path.as_uri())
    data = screenshot.read_bytes()
    assert _png_size(data) == (1280, 1400)
    assert len(data) > 40_000  # a blank page of that size compresses to a few kilobytes


@needs_chromium
def test_headless_chromium_runs_the_page_without_script_errors_and_draws_both_charts(
    report: Report, tmp_path: Path
) -> None:
    dom = Page(chromium(tmp_path / "profile", "--dump-dom", report.path.as_uri()))
    [body] = dom.find("body")
    assert body.attrs.get("data-rendered") == "ok"
    assert "data-errors" not in body.attrs
    assert len(dom.find("rect", svg="timeline", cls="attempt")) == 7
    assert len(dom.find("g", svg="graph", cls="task")) == 6
    assert len(dom.find("path", svg="graph", cls="edge")) == 5


@needs_chromium
def test_a_link_to_one_task_opens_with_its_bars_highlighted(report: Report, tmp_path: Path) -> None:
    dom = Page(chromium(tmp_path / "profile", "--dump-dom", report.path.as_uri() + "#task=left"))
    [body] = dom.find("body")
    assert body.attrs.get("data-rendered") == "ok" and "data-errors" not in body.attrs
    selected = {(e.tag, e.attrs["data-task"]) for e in dom.find(cls="selected")}
    assert selected == {("rect", "left"), ("g", "left"), ("tr", "left")}
    assert len(dom.find("rect", svg="timeline", cls="selected")) == 2  # both of its attempts
    assert {e.attrs["data-task"] for e in dom.find("rect", svg="timeline", cls="dimmed")} == {
        HOSTILE, "right", "join", "doomed",
    }
