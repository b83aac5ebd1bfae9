"""Routers measured against ours in benchmarks/routing.py: bm25s with PyStemmer, as it comes and tuned.

Benchmark-only (`pip install -e '.[bench]'`): none of them measured better than the hand-written
router on held-out tasks, so the package does not depend on bm25s (docs/benchmarks.md, Routing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer

from parallel_coordinator.agents import AgentSpec
from parallel_coordinator.planning.routing import _STOP

_SNOWBALL = Stemmer.Stemmer("english")
_WORD = re.compile(r"[a-z0-9]+")
# A token as written ("OOMKilled", "ingress-nginx", "utils.js") and its parts: where the case changes,
# and at hyphens and dots. "OOMKilled" -> "oom", "killed" and "oomkilled".
_COMPOUND = re.compile(r"[A-Za-z0-9]+(?:[-.][A-Za-z0-9]+)*")
_PART = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")


@dataclass(frozen=True)
class Ranked:
    agent: str


def _keep(words: Iterable[str]) -> list[str]:
    return [w for w in words if w not in _STOP and len(w) > 1 and not w.isdigit()]


def snowball_words(text: str) -> list[str]:
    return list(_SNOWBALL.stemWords(_keep(_WORD.findall(text.lower()))))


def compound_words(text: str) -> list[str]:
    words: list[str] = []
    for token in _COMPOUND.findall(text):
        parts = [p.lower() for piece in re.split(r"[-.]", token) for p in _PART.findall(piece)]
        words.extend([*parts, "".join(parts)] if len(parts) > 1 else parts)
    return list(_SNOWBALL.stemWords(_keep(words)))


def declared_expertise(agent: AgentSpec) -> str:
    """What a VoltAgent file says the agent knows: its opening paragraph ("You are a senior ... with deep
    expertise in ...") and its section headings ("Security hardening:", "## Core Capabilities")."""
    body = agent.body.strip()
    headings = [
        line.strip("#: ")
        for line in body.splitlines()
        if line.startswith("#") or (line.endswith(":") and len(line) < 60 and not line.startswith("-"))
    ]
    return "\n".join([body.split("\n\n", 1)[0], *headings])


def _ordered(names: list[str], scores: np.ndarray) -> list[Ranked]:
    order = sorted(range(len(names)), key=lambda i: (-float(scores[i]), names[i]))
    return [Ranked(names[i]) for i in order]


class LibraryDefaults:
    """bm25s as its README shows it: one index, its tokenizer with English stop words and Snowball stems;
    the name counted twice and the description once before the first 2,000 characters of the prompt."""

    def __init__(self, agents: Iterable[AgentSpec]) -> None:
        agents = list(agents)
        self._names = [a.name for a in agents]
        texts = [f"{a.name.replace('-', ' ')} " * 2 + f"{a.description}\n{a.body[:2000]}" for a in agents]
        self._index = bm25s.BM25()
        self._index.index(
            bm25s.tokenize(texts, stopwords="en", stemmer=_SNOWBALL, show_progress=False), show_progress=False
        )

    def rank(self, text: str) -> list[Ranked]:
        words = bm25s.tokenize([text], stopwords="en", stemmer=_SNOWBALL, return_ids=False, show_progress=False)[0]
        known = [w for w in words if w in self._index.vocab_dict]
        scores = self._index.get_scores(known) if known else np.zeros(len(self._names))
        return _ordered(self._names, scores)


class FieldsApart:
    """One bm25s index per field, scores added with weights; our stop words, Snowball stems.

    The default weights, text lengths and k1 are the best of a sweep on the tuning tasks only (the `tune`
    rows of routing_tasks.yaml and the tests' table): name 2, description 1, first 6,000 characters of
    the prompt 1.5, k1 1.2.
    """

    def __init__(
        self,
        agents: Iterable[AgentSpec],
        weights: Mapping[str, float] | None = None,
        words: str = "snowball",
        prompt_chars: int = 6000,
        k1: float = 1.2,
    ) -> None:
        agents = list(agents)
        self._names = [a.name for a in agents]
        self._words = compound_words if words == "compound" else snowball_words
        self._weights = dict(weights or {"name": 2.0, "description": 1.0, "prompt": 1.5})
        text = {
            "name": lambda a: a.name.replace("-", " "),
            "description": lambda a: a.description,
            "expertise": declared_expertise,
            "prompt": lambda a: a.body[:prompt_chars],
        }
        self._fields = {}
        for field in self._weights:
            index = bm25s.BM25(k1=k1, b=0.75)
            index.index([self._words(text[field](a)) or [""] for a in agents], show_progress=False)
            self._fields[field] = index

    def rank(self, text: str) -> list[Ranked]:
        query = list(dict.fromkeys(self._words(text)))
        scores = np.zeros(len(self._names))
        for field, index in self._fields.items():
            known = [w for w in query if w in index.vocab_dict]
            if known:
                scores += self._weights[field] * index.get_scores(known)
        return _ordered(self._names, scores)
