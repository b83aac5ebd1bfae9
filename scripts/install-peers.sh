#!/usr/bin/env bash
# Installs the pinned real peers the tests run against, with npm, into one prefix:
#   - the Claude Code CLI, for tests/runners/test_real_claude_cli.py;
#   - the MCP Inspector (its non-interactive CLI), for tests/server/test_inspector.py;
#   - the public MCP conformance suite, for tests/server/test_conformance.py;
#   - the OpenAI Codex CLI and the Gemini CLI, for tests/runners/test_real_codex_cli.py and
#     tests/runners/test_real_gemini_cli.py.
# Idempotent: skips a package whose pinned version is already there. Fails soft (exit 0, a message
# on stderr) when npm is missing or an install fails: the tests that need it then skip, naming
# this script.
#   PCOORD_PEERS_DIR   where to install (default ~/.cache/parallel-coordinator/peers)
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.330"
INSPECTOR_VERSION="2.12.0"
PREFIX="${PCOORD_PEERS_DIR:-$HOME/.cache/parallel-coordinator/peers}"
PACKAGE_DIR="$PREFIX/node_modules/@anthropic-ai/claude-code"
BIN="$PREFIX/node_modules/.bin/claude"
INSPECTOR_DIR="$PREFIX/node_modules/@modelcontextprotocol/inspector"
INSPECTOR_BIN="$PREFIX/node_modules/.bin/mcp-inspector"
# 0.1.10 is the last release that runs on Node 20.
CONFORMANCE_VERSION="0.1.10"
CONFORMANCE_DIR="$PREFIX/node_modules/@modelcontextprotocol/conformance"
CONFORMANCE_BIN="$PREFIX/node_modules/.bin/conformance"
# Codex is a native binary in a per-platform optional dependency, Gemini one bundled script: both
# answer --version at once, which also shows the binary is really there.
CODEX_VERSION="0.169.0"
CODEX_BIN="$PREFIX/node_modules/.bin/codex"
GEMINI_VERSION="0.61.0"
GEMINI_BIN="$PREFIX/node_modules/.bin/gemini"

say() { printf 'install-peers: %s\n' "$*" >&2; }

installed_version() {
    [ -x "$BIN" ] || return 1
    "$BIN" --version 2>/dev/null | awk 'NR == 1 { print $1 }'
}

# Neither has a --version that answers without starting: read their package.json.
package_version() {
    [ -x "$2" ] && [ -f "$1/package.json" ] || return 1
    sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$1/package.json" | head -n 1
}

npm_install() {
    mkdir -p "$PREFIX"
    npm install --prefix "$PREFIX" --save-exact --no-fund --no-audit --loglevel=error "$1" >&2
}

install_claude_code() {
    if [ "$(installed_version || true)" = "$CLAUDE_CODE_VERSION" ]; then
        say "Claude Code $CLAUDE_CODE_VERSION is already at $BIN"
        return 0
    fi
    say "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION into $PREFIX (about 175 MB to download, 364 MB on disk)"
    if ! npm_install "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION"; then
        say "npm install failed: the real Claude Code CLI tests will skip."
        return 0
    fi
    # The package's postinstall puts the native binary in place of a stub; npm configured to skip
    # install scripts leaves the stub, so run it by hand.
    if [ "$(installed_version || true)" != "$CLAUDE_CODE_VERSION" ] && [ -f "$PACKAGE_DIR/install.cjs" ]; then
        (cd "$PACKAGE_DIR" && node install.cjs >&2) || true
    fi
    if [ "$(installed_version || true)" = "$CLAUDE_CODE_VERSION" ]; then
        say "Claude Code $CLAUDE_CODE_VERSION is at $BIN"
    else
        say "installed, but $BIN --version does not report $CLAUDE_CODE_VERSION: the real CLI tests will skip."
    fi
}

install_inspector() {
    if [ "$(package_version "$INSPECTOR_DIR" "$INSPECTOR_BIN" || true)" = "$INSPECTOR_VERSION" ]; then
        say "MCP Inspector $INSPECTOR_VERSION is already at $INSPECTOR_BIN"
        return 0
    fi
    say "installing @modelcontextprotocol/inspector@$INSPECTOR_VERSION into $PREFIX (about 80 MB to download, 110 MB on disk)"
    if ! npm_install "@modelcontextprotocol/inspector@$INSPECTOR_VERSION"; then
        say "npm install failed: the MCP Inspector tests will skip."
        return 0
    fi
    if [ "$(package_version "$INSPECTOR_DIR" "$INSPECTOR_BIN" || true)" = "$INSPECTOR_VERSION" ]; then
        say "MCP Inspector $INSPECTOR_VERSION is at $INSPECTOR_BIN"
    else
        say "installed, but $INSPECTOR_BIN is missing or not version $INSPECTOR_VERSION: the Inspector tests will skip."
    fi
}

install_conformance() {
    if [ "$(package_version "$CONFORMANCE_DIR" "$CONFORMANCE_BIN" || true)" = "$CONFORMANCE_VERSION" ]; then
        say "MCP conformance suite $CONFORMANCE_VERSION is already at $CONFORMANCE_BIN"
        return 0
    fi
    say "installing @modelcontextprotocol/conformance@$CONFORMANCE_VERSION into $PREFIX"
    if ! npm_install "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION"; then
        say "npm install failed: the conformance tests will skip."
        return 0
    fi
    if [ "$(package_version "$CONFORMANCE_DIR" "$CONFORMANCE_BIN" || true)" = "$CONFORMANCE_VERSION" ]; then
        say "MCP conformance suite $CONFORMANCE_VERSION is at $CONFORMANCE_BIN"
    else
        say "installed, but $CONFORMANCE_BIN is missing or not version $CONFORMANCE_VERSION: the conformance tests will skip."
    fi
}

# The last word of the first line of `BIN --version` ("codex-cli 0.169.0", "0.61.0"). Both CLIs make
# their folder in HOME on any start: give them one of the prefix's, not the user's.
cli_version() {
    [ -x "$1" ] || return 1
    mkdir -p "$PREFIX/home"
    HOME="$PREFIX/home" "$1" --version 2>/dev/null | awk 'NR == 1 { print $NF }'
}

# One npm package of an agent CLI: package, version, executable, whose tests skip without it.
install_cli() {
    if [ "$(cli_version "$3" || true)" = "$2" ]; then
        say "$1 $2 is already at $3"
        return 0
    fi
    say "installing $1@$2 into $PREFIX"
    if ! npm_install "$1@$2"; then
        say "npm install failed: $4 will skip."
        return 0
    fi
    if [ "$(cli_version "$3" || true)" = "$2" ]; then
        say "$1 $2 is at $3"
    else
        say "installed, but $3 --version does not report $2: $4 will skip."
    fi
}

if ! command -v npm >/dev/null 2>&1; then
    say "npm not found: skipping the real Claude Code, Codex and Gemini CLIs, the MCP Inspector and the conformance suite (their tests will skip)."
    say "Install Node.js and npm, then run: $0"
    exit 0
fi

install_claude_code
install_inspector
install_conformance
install_cli @openai/codex "$CODEX_VERSION" "$CODEX_BIN" "the real Codex CLI tests"
install_cli @google/gemini-cli "$GEMINI_VERSION" "$GEMINI_BIN" "the real Gemini CLI tests"
exit 0
