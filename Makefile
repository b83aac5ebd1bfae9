# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-portable lint peers bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pcoord demo

# Lint and types first: they are fast and catch what tests cannot.
test: $(STAMP) lint peers
	$(BIN)/python -m pytest -q

# The supervisor's POSIX fallbacks (macOS's paths) on Linux: PCOORD_PORTABLE=1 turns off prctl, the
# /proc children files, pidfd and setpriv. Only the tests that start, watch or kill processes (the
# supervisor, the backends, the engine, the CLI): the rest never reach the supervisor, and the whole
# suite twice would double CI's four minutes.
test-portable: $(STAMP)
	PCOORD_PORTABLE=1 $(BIN)/python -m pytest -q tests/supervisor tests/execution tests/engine tests/cli

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# Real peers for the tests: the Claude Code CLI and the MCP Inspector (npm, pinned), and Debian's
# chromium for the report's browser test. Each script says so, and the tests that need a peer skip
# with that reason, where it cannot be installed.
peers:
	@bash scripts/install-peers.sh
	@bash scripts/install-browser.sh

# Measurements, not tests: each scenario runs its alternatives side by side, interleaved, and prints
# medians and ratios (not part of `make test`). Results and how to read them: docs/benchmarks.md.
bench: $(STAMP)
	@bash scripts/install-bench-tools.sh
	$(BIN)/python benchmarks/burst.py 2000 3
	$(BIN)/python benchmarks/engine_cpu.py 2000 4
	$(BIN)/python benchmarks/graph.py --sizes 200 1000 --slots 8 64 --rounds 3
	$(BIN)/python benchmarks/responsiveness.py --agents 64 --calls 200 --rounds 3
	$(BIN)/python benchmarks/scale.py --tasks 10000 --rounds 3
	$(BIN)/python benchmarks/overhead.py --rounds 5
	$(BIN)/python benchmarks/cancel_latency.py 3 64 256
	$(BIN)/python benchmarks/discovery.py --agents 5000 --calls 10
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/routing.py --agents 5000
	$(BIN)/python benchmarks/soak.py --sessions 20 --tasks 60 --mb 4
	$(BIN)/python benchmarks/memory.py --agents 64 256
	$(BIN)/python benchmarks/flood.py 5 3 8
	$(BIN)/python benchmarks/rate_limit.py --tasks 64 --rounds 3

clean:
	rm -rf $(VENV) build dist src/*.egg-info
