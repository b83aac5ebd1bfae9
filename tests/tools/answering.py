"""A command agent for tests that answers with the next of a list of answers, one per run, and logs each request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import AgentFactory

_SCRIPT = """
    import fcntl, json, sys
    request = json.load(sys.stdin)
    with open(QUEUE, "r+") as queue:
        fcntl.flock(queue, fcntl.LOCK_EX)
        answers = json.load(queue)
        queue.seek(0)
        queue.truncate()
        json.dump(answers[1:], queue)
    with open(LOG, "a") as log:
        log.write(json.dumps(request) + "\\n")
    print(answers[0] if answers else "(no answer left)")
"""


def answering_agent(agents: AgentFactory, name: str, answers: list[str], **front: Any) -> Path:
    """Writes the agent; returns the log of the requests it received (one JSON object a line)."""
    queue = agents.root / f"{name}.queue.json"
    log = agents.root / f"{name}.requests.jsonl"
    queue.write_text(json.dumps(answers))
    code = _SCRIPT.replace("QUEUE", repr(str(queue))).replace("LOG", repr(str(log)))
    agents.script(name, code, **front)
    return log


def requests_seen(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
