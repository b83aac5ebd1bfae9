"""Routing: picks the agent whose name, description and prompt best match a subtask (BM25, offline)."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from parallel_coordinator.agents.spec import AgentSpec

_WORD = re.compile(r"[a-z0-9]+")

# English function words: common in a planner's sentences ("find out why ..."), rare in agent prompts,
# so without this list they would score as if they were rare, telling words.
_FUNCTION_WORDS = """
a about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing done down during each either else etc every few for from
further had has have having he her here hers him his how however i if in into is it its itself just let
like may me might more most much must my no nor not now of off on once only onto or other our ours out
over own per please same shall she should since so some such than that the their theirs them then there
these they this those through thus to too under until up upon us very via was we were what whatever when
where whether which while who whom whose why will with within without would yet you your yours
"""
# Words agent files use about themselves (who they are, when to call them), not about what they do.
_AGENT_BOILERPLATE = """
agent agents subagent subagents task tasks use used using invoke invoked expert experts expertise specialist
specialists specializing senior need needs
"""
_STOP = frozenset((_FUNCTION_WORDS + _AGENT_BOILERPLATE).split())


def _stem(word: str) -> str:
    """Fold plurals onto the singular, both sides alike ("queries" -> "query"): Harman's S-stemmer."""
    if len(word) > 4 and word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("us", "ss", "is")):
        return word[:-1]
    return word


def _words(text: str) -> list[tuple[str, str]]:
    """(term, word) for each word of `text` that can tell agents apart: no stop words or bare numbers."""
    return [(_stem(w), w) for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1 and not w.isdigit()]


def _terms(text: str) -> list[str]:
    return [term for term, _ in _words(text)]


@dataclass(frozen=True)
class Route:
    agent: str
    score: float
    matched: tuple[str, ...]

    @property
    def reason(self) -> str:
        words = ", ".join(repr(w) for w in self.matched[:4])
        return f"routed to {self.agent}: matched {words}" if words else f"routed to {self.agent}"


class _Field:
    """One BM25 index over one field of every agent, with its own lengths and word rarity."""

    def __init__(self, docs: dict[str, Counter[str]], k1: float, b: float) -> None:
        self._docs, self._k1, self._b = docs, k1, b
        self._lengths = {name: sum(doc.values()) for name, doc in docs.items()}
        self._avg_len = (sum(self._lengths.values()) / len(docs)) if docs else 1.0
        df: Counter[str] = Counter()
        for doc in docs.values():
            df.update(doc.keys())
        n = len(docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, name: str, query: Iterable[str]) -> dict[str, float]:
        doc, k1, b = self._docs[name], self._k1, self._b
        length_norm = k1 * (1 - b + b * self._lengths[name] / (self._avg_len or 1.0))
        return {
            term: self._idf[term] * doc[term] * (k1 + 1) / (doc[term] + length_norm) for term in query if term in doc
        }


class Router:
    """BM25 over two fields scored apart and added: the agent's name and description, and the start of its prompt.

    The description is what the author wrote for choosing the agent, so it gets a field of its own
    rather than being drowned by a long prompt. Words are compared without stop words and with plurals
    folded; `Route.matched` lists the subtask's own words that matched, the weightiest first.
    """

    def __init__(self, agents: Iterable[AgentSpec], k1: float = 1.5, b: float = 0.75) -> None:
        heads: dict[str, Counter[str]] = {}
        bodies: dict[str, Counter[str]] = {}
        for agent in agents:
            heads[agent.name] = Counter(_terms(agent.name.replace("-", " ")) * 2 + _terms(agent.description))
            bodies[agent.name] = Counter(_terms(agent.body[:2000]))
        self._fields = (_Field(heads, k1, b), _Field(bodies, k1, b))
        self._names = list(heads)

    def rank(self, text: str) -> list[Route]:
        query: dict[str, str] = {}
        for term, word in _words(text):
            query.setdefault(term, word)  # the first spelling the subtask used names the match
        routes = []
        for name in self._names:
            contribution: Counter[str] = Counter()
            for field in self._fields:
                contribution.update(field.scores(name, query))
            matched = sorted(contribution, key=lambda t: (-contribution[t], t))
            routes.append(Route(name, sum(contribution.values()), tuple(query[t] for t in matched)))
        routes.sort(key=lambda r: (-r.score, r.agent))
        return routes

    def best(self, text: str) -> Route | None:
        ranked = self.rank(text)
        return ranked[0] if ranked else None


class RouterCache:
    """The Router of the last catalogue routed, kept while the text it indexes is unchanged (one entry).

    The key is what the index is built from: each agent's name, description and prompt. An unchanged
    catalogue (CatalogCache hands out the same parsed agents until a file's stamp changes) holds the
    same string objects, so checking the key is mostly a comparison by identity: ~5 ms at 5,000 agents
    (~11 ms for equal text re-read into new strings) where a build takes ~1.2-1.5 s. An edited, added
    or removed agent changes the key, and the next plan builds afresh. `builds` counts the indexes
    built, for tests and benchmarks.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # plans are made on the event loop and on threads (catalog_now callers)
        self._key: tuple[tuple[str, str, str], ...] | None = None
        self._router: Router | None = None
        self.builds = 0

    def router(self, agents: Iterable[AgentSpec]) -> Router:
        agents = list(agents)
        key = tuple((agent.name, agent.description, agent.body) for agent in agents)
        with self._lock:
            if self._router is None or key != self._key:
                self._router, self._key = Router(agents), key
                self.builds += 1
            return self._router
