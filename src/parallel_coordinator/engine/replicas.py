"""How a subtask's replicas become its result: `all` (each answer, labelled) or `vote` (the majority answer).

Pure. A `judge` merge is a task of its own (its agent is the judge, its context the replicas' answers),
so only the two merges that run no agent are here. A vote counts every replica: one that failed is a
vote for nothing, so three replicas need two equal answers. Ties and no majority fail the task, saying
how the votes fell, rather than picking one silently.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

_SPACE = re.compile(r"\s+")
_SHOWN = 80  # characters of each answer quoted when the vote fails


@dataclass(frozen=True)
class ReplicaAnswer:
    task_id: str  # "review#2"
    agent: str
    succeeded: bool
    output: str
    output_json: Any = None
    error: str | None = None


@dataclass(frozen=True)
class Merged:
    ok: bool
    output: str = ""
    output_json: Any = None
    error: str | None = None
    note: str = ""


def merge_all(answers: list[ReplicaAnswer]) -> Merged:
    done = [a for a in answers if a.succeeded]
    if not done:
        return Merged(False, error=f"every one of the {len(answers)} replicas failed: {_first_error(answers)}")
    parts = [f"### Replica {a.task_id.rsplit('#', 1)[-1]} ({a.agent})\n\n{a.output.strip()}" for a in done]
    values = [a.output_json for a in done] if all(a.output_json is not None for a in done) else None
    return Merged(True, "\n\n".join(parts), values, note=f"{len(done)} of {len(answers)} replicas succeeded; all kept")


def ballot(answer: ReplicaAnswer) -> str:
    """What a replica votes for: its structured output, canonical, or its text with case and spacing evened out."""
    if answer.output_json is not None:
        return json.dumps(answer.output_json, sort_keys=True, separators=(",", ":"))
    return _SPACE.sub(" ", answer.output).strip().casefold()


def vote(answers: list[ReplicaAnswer]) -> Merged:
    votes = Counter(ballot(a) for a in answers if a.succeeded)
    ranked = votes.most_common()
    if ranked and ranked[0][1] * 2 > len(answers):
        winner, count = ranked[0]
        chosen = next(a for a in answers if a.succeeded and ballot(a) == winner)
        return Merged(True, chosen.output, chosen.output_json,
                      note=f"vote: {count} of {len(answers)} replicas gave this answer")
    if not ranked:
        return Merged(False, error=f"vote: every one of the {len(answers)} replicas failed: {_first_error(answers)}")
    tally = "; ".join(f"{count} x {_quoted(text)}" for text, count in ranked[:5])
    failed = sum(not a.succeeded for a in answers)
    tie = len(ranked) > 1 and ranked[0][1] == ranked[1][1]
    return Merged(False, error=(
        f"vote: {'a tie' if tie else 'no majority'} among {len(answers)} replicas ({tally}"
        f"{f'; {failed} failed' if failed else ''}); no answer was picked"
    ))


def _quoted(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _first_error(answers: list[ReplicaAnswer]) -> str:
    return next((a.error.splitlines()[0] for a in answers if a.error), "no error text")
