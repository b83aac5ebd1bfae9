"""Routing: picks the agent whose name, description and prompt best match a subtask (BM25, offline)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from parallel_coordinator.agents.spec import AgentSpec

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "in", "into", "is", "it", "its", "of",
    "on", "or", "that", "the", "this", "to", "use", "when", "with", "you", "your", "agent", "agents", "task",
    "tasks",
})


def _terms(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1]


@dataclass(frozen=True)
class Route:
    agent: str
    score: float
    matched: tuple[str, ...]

    @property
    def reason(self) -> str:
        words = ", ".join(repr(w) for w in self.matched[:4])
        return f"routed to {self.agent}: matched {words}" if words else f"routed to {self.agent}"


class Router:
    """BM25 over each agent's name and description (weighted up) and the start of its prompt."""

    def __init__(self, agents: Iterable[AgentSpec], k1: float = 1.5, b: float = 0.75) -> None:
        self._docs: dict[str, Counter[str]] = {}
        for agent in agents:
            name_terms = _terms(agent.name.replace("-", " "))
            text = name_terms * 3 + _terms(agent.description) * 2 + _terms(agent.body[:2000])
            self._docs[agent.name] = Counter(text)
        self._k1, self._b = k1, b
        lengths = [sum(d.values()) for d in self._docs.values()]
        self._avg_len = (sum(lengths) / len(lengths)) if lengths else 1.0
        df: Counter[str] = Counter()
        for doc in self._docs.values():
            df.update(doc.keys())
        n = len(self._docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def rank(self, text: str) -> list[Route]:
        query = set(_terms(text))
        routes = []
        for name, doc in self._docs.items():
            length = sum(doc.values())
            score, matched = 0.0, []
            for term in query:
                tf = doc.get(term, 0)
                if not tf:
                    continue
                norm = tf * (self._k1 + 1) / (tf + self._k1 * (1 - self._b + self._b * length / self._avg_len))
                score += self._idf[term] * norm
                matched.append(term)
            matched.sort(key=lambda t: -self._idf[t])
            routes.append(Route(name, score, tuple(matched)))
        routes.sort(key=lambda r: (-r.score, r.agent))
        return routes

    def best(self, text: str) -> Route | None:
        ranked = self.rank(text)
        return ranked[0] if ranked else None
