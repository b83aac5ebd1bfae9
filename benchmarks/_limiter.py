"""A local stand-in for the API's rate limits: a few runs at once and a token bucket refilled per "minute".

`Limiter` is the pure rule (what a request at time `now` gets); `ideal_makespan` runs the rule against a
client with no overhead, which gives the limiter's own lower bound on a fan-out's makespan; run as a
script, the rule serves behind a Unix socket until killed, so that every fake `claude` process of a
benchmark asks the same limiter: `_limiter.py SOCKET CONCURRENT PER_MINUTE MINUTE_S` (it prints `ready`).

Wire: a client sends one JSON line `{"hold_s": S}` (how long it will hold its run slot, which lets the
limiter say when one is due to be free) and reads one JSON line back, `{"granted": true}` or
`{"granted": false, "retry_after_ms": N, "reason": "bucket" | "concurrency"}`. A granted client keeps the
connection open for as long as its run lasts: its slot is free again when the connection closes, so a run
that is killed gives its slot back too. The line `counts` instead gets the answers so far and the slots
held now, `{"granted": N, "bucket": N, "concurrency": N, "held": N}`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import math
import socket
import sys
from dataclasses import dataclass, field


@dataclass
class Limiter:
    """At most `concurrent` runs at once; each run takes one token from a bucket of `per_minute` tokens
    that refills continuously at `per_minute` per `minute_s` seconds (full at the start)."""

    concurrent: int
    per_minute: int
    minute_s: float
    now: float = 0.0
    tokens: float = field(init=False)
    _ends: dict[int, float] = field(default_factory=dict)  # slot id -> when its holder said it would end
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        if self.concurrent < 1 or self.per_minute < 1 or self.minute_s <= 0:
            raise ValueError(
                f"a limiter needs positive limits, got {self.concurrent}, {self.per_minute}, {self.minute_s}"
            )
        self.tokens = float(self.per_minute)

    @property
    def rate(self) -> float:
        """Tokens per second."""
        return self.per_minute / self.minute_s

    def _refill(self, now: float) -> None:
        self.tokens = min(float(self.per_minute), self.tokens + max(0.0, now - self.now) * self.rate)
        self.now = max(self.now, now)

    def request(self, now: float, hold_s: float) -> tuple[int | None, float, str]:
        """A slot id when granted, else None with the seconds until a request could be granted and why."""
        self._refill(now)
        waits: dict[str, float] = {}
        if len(self._ends) >= self.concurrent:
            waits["concurrency"] = max(0.0, min(self._ends.values()) - now)
        if self.tokens < 1.0 - 1e-9:  # float dust is a whole token: a wait of 1e-17 s would never pass
            waits["bucket"] = (1.0 - self.tokens) / self.rate
        if waits:
            reason = max(waits, key=lambda k: waits[k])
            return None, waits[reason], reason
        self.tokens -= 1.0
        slot = next(self._ids)
        self._ends[slot] = now + hold_s
        return slot, 0.0, ""

    def release(self, slot: int) -> None:
        self._ends.pop(slot, None)

    @property
    def held(self) -> int:
        return len(self._ends)


def ideal_makespan(runs: int, run_s: float, concurrent: int, per_minute: int, minute_s: float) -> float:
    """The makespan of `runs` runs of `run_s` seconds each under the limiter, started by a client that asks
    at the very moment a run could be granted and pays nothing to start one: no client can do better
    (the runs are alike, so starting each as early as the limits allow is optimal)."""
    limiter = Limiter(concurrent, per_minute, minute_s)
    ending: list[tuple[float, int]] = []  # (end, slot) of the runs in flight
    now = finished = 0.0
    for _ in range(runs):
        while True:
            while ending and ending[0][0] <= now:
                limiter.release(heapq.heappop(ending)[1])
            slot, wait, _reason = limiter.request(now, run_s)
            if slot is not None:
                heapq.heappush(ending, (now + run_s, slot))
                finished = max(finished, now + run_s)
                break
            now += wait
    return finished


def retry_after_ms(wait_s: float, minute_s: float) -> int:
    """The Retry-After the API would send: whole seconds, at least one, in the limiter's scaled time (a scaled
    second is minute_s / 60). A slot whose run is past its declared end is due any moment: one second."""
    second = minute_s / 60
    return math.ceil(max(1, math.ceil(wait_s / second - 1e-9)) * second * 1000)


async def _serve(path: str, limiter: Limiter) -> None:
    loop = asyncio.get_running_loop()
    counts = {"granted": 0, "bucket": 0, "concurrency": 0}

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        slot = None
        try:
            line = await reader.readline()
            if line.strip() == b"counts":  # what the limiter answered so far, for the benchmark's table
                writer.write((json.dumps({**counts, "held": limiter.held}) + "\n").encode())
                return
            hold_s = float(json.loads(line).get("hold_s", 0.0))
            slot, wait, reason = limiter.request(loop.time(), hold_s)
            if slot is None:
                counts[reason] += 1
                answer = {"granted": False, "retry_after_ms": retry_after_ms(wait, limiter.minute_s), "reason": reason}
                writer.write((json.dumps(answer) + "\n").encode())
                return
            counts["granted"] += 1
            writer.write(b'{"granted": true}\n')
            await writer.drain()
            await reader.read()  # the slot is held until the run closes its end
        except (OSError, ValueError):
            return
        finally:
            if slot is not None:
                limiter.release(slot)
            writer.close()

    limiter.now = loop.time()
    server = await asyncio.start_unix_server(on_client, path=path, backlog=512)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def counts(path: str) -> dict[str, int]:
    """How many requests the limiter at `path` granted and refused (by reason) so far, and the slots held now."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.connect(path)
        conn.sendall(b"counts\n")
        with conn.makefile("rb") as lines:
            answer: dict[str, int] = json.loads(lines.readline())
        return answer


if __name__ == "__main__":
    socket_path, concurrent, per_minute, minute_s = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    asyncio.run(_serve(socket_path, Limiter(concurrent, per_minute, minute_s)))
