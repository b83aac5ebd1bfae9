"""The public MCP conformance suite (npm `@modelcontextprotocol/conformance`, pinned by scripts/install-peers.sh)
run against our server over streamable HTTP: its generic server scenarios, one test each.

The suite's client sends no headers (0.1.10 has no option for them), so it cannot carry a bearer token:
the server here is `create_server` over the SDK's streamable HTTP with no token verifier, on a free
loopback port. Everything else is what `pcoord serve --transport http` serves (tests/server/test_http.py
covers the token).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.test_http import running_http_server

PEERS = Path(os.environ.get("PCOORD_PEERS_DIR", Path.home() / ".cache" / "parallel-coordinator" / "peers"))
CONFORMANCE = PEERS / "node_modules" / ".bin" / "conformance"

# The generic scenarios: they ask nothing of a server beyond the protocol (the suite's other scenarios call
# tools, prompts and resources of its own reference server, such as `test_simple_text`, which we do not have).
SCENARIOS = [
    "server-initialize",
    "ping",
    "tools-list",
    "tools-call-error",
    "server-sse-multiple-streams",
    "resources-list",
    "resources-subscribe",
    "resources-unsubscribe",
    "completion-complete",
    "prompts-list",
]

SERVE_WITHOUT_TOKEN = """
import sys
from parallel_coordinator.config.file import load_settings
from parallel_coordinator.server import create_server

settings = load_settings()[0]
create_server(settings).run(
    "streamable-http", host="127.0.0.1", port=int(sys.argv[sys.argv.index("--port") + 1]),
    max_request_body_size=settings.max_request_bytes,
)
"""

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node not found: the MCP conformance suite needs Node.js"),
    pytest.mark.skipif(
        not CONFORMANCE.exists(),
        reason=f"the MCP conformance suite is not at {CONFORMANCE}: run scripts/install-peers.sh",
    ),
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("conformance")
    (root / "agents").mkdir()
    env = {"PCOORD_STATE_DIR": str(root / "state"), "PCOORD_AGENT_DIRS": str(root / "agents"), "HOME": str(root)}
    with running_http_server(env, command=(sys.executable, "-c", SERVE_WITHOUT_TOKEN)) as url:
        yield f"{url}/mcp"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_server_passes_the_conformance_scenario(server_url: str, scenario: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [str(CONFORMANCE), "server", "--url", server_url, "--scenario", scenario, "--output-dir", str(tmp_path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    reports = list(tmp_path.glob(f"server-{scenario}-*/checks.json"))
    assert len(reports) == 1, f"no checks.json (exit {run.returncode}): {run.stdout[-2_000:]} {run.stderr[-2_000:]}"
    checks = json.loads(reports[0].read_text())
    assert checks, f"the scenario ran no checks: {run.stdout[-2_000:]}"
    failed = [check for check in checks if check["status"] != "SUCCESS"]
    assert failed == [], json.dumps(failed, indent=2)
    assert run.returncode == 0, run.stdout[-2_000:]
