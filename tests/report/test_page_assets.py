"""The report package's surface, and the style sheet and script it ships as package data and inlines."""

from __future__ import annotations

from importlib.resources import files

import parallel_coordinator.report as report
from parallel_coordinator.report import render_report
from parallel_coordinator.state.store import StoredSession


def test_the_report_package_names_exactly_its_public_surface() -> None:
    public = {name for name in vars(report) if not name.startswith("_")}
    assert sorted(report.__all__) == sorted(public)
    assert set(report.__all__) == {"assign_lanes", "attempt_outcome", "graph_layers", "render_report", "write_report"}


def test_the_page_inlines_the_shipped_style_sheet_and_script_and_links_to_neither() -> None:
    css = files("parallel_coordinator.report").joinpath("report.css").read_text(encoding="utf-8")
    js = files("parallel_coordinator.report").joinpath("report.js").read_text(encoding="utf-8")
    assert ".outcome-failed" in css and "data-task" in js
    page = render_report(StoredSession("s", "x", "SUCCESS", {}, 1.0, 2.0, None, 1, None, [], []))
    assert f"<style>\n{css}</style>" in page
    assert f"<script>\n{js}</script>" in page
    assert "<link" not in page
