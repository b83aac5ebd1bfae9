"""Burst batching's text: one prompt for several small tasks, and its answer split back per task."""

from __future__ import annotations

from parallel_coordinator.engine.batching import batch_prompt, split_batch
from parallel_coordinator.planning.graph import TaskNode


def test_a_batched_answer_is_split_at_the_markers_and_missing_parts_are_left_out() -> None:
    answer = "preamble\n=== task: a ===\nfirst answer\n=== task: c ===\nthird\nanswer\n=== task: zz ===\nstray\n"
    assert split_batch(answer, ["a", "b", "c"]) == {"a": "first answer", "c": "third\nanswer"}


def test_the_batch_prompt_lists_every_task_under_its_marker() -> None:
    prompt = batch_prompt([TaskNode("a", "say hi", "x"), TaskNode("b", "say bye", "x")])
    assert "=== task: a ===\nsay hi\n\n=== task: b ===\nsay bye" in prompt
    assert prompt.startswith("You have 2 small tasks.")
