# The two commands a newcomer needs: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint peers bench clean

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

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/mypy

# Real peers for the tests: the Claude Code CLI and the MCP Inspector (npm, pinned), and Debian's
# chromium for the report's browser test. Each script says so, and the tests that need a peer skip
# with that reason, where it cannot be installed.
peers:
	@bash scripts/install-peers.sh
	@bash scripts/install-browser.sh

# Measurements, not tests: run side by side, read the numbers (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python benchmarks/cancel_latency.py 3
	$(BIN)/python benchmarks/burst.py 2000 3

clean:
	rm -rf $(VENV) build dist src/*.egg-info
