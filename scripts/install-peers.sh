#!/usr/bin/env bash
# Installs the pinned real Claude Code CLI that tests/runners/test_real_claude_cli.py runs against.
# Idempotent: does nothing when that version is already there. Fails soft (exit 0, a message on
# stderr) when npm is missing or the install fails: those tests then skip, naming this script.
#   PCOORD_PEERS_DIR   where to install (default ~/.cache/parallel-coordinator/peers)
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.330"
PREFIX="${PCOORD_PEERS_DIR:-$HOME/.cache/parallel-coordinator/peers}"
PACKAGE_DIR="$PREFIX/node_modules/@anthropic-ai/claude-code"
BIN="$PREFIX/node_modules/.bin/claude"

say() { printf 'install-peers: %s\n' "$*" >&2; }

installed_version() {
    [ -x "$BIN" ] || return 1
    "$BIN" --version 2>/dev/null | awk 'NR == 1 { print $1 }'
}

if [ "$(installed_version || true)" = "$CLAUDE_CODE_VERSION" ]; then
    say "Claude Code $CLAUDE_CODE_VERSION is already at $BIN"
    exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
    say "npm not found: skipping the real Claude Code CLI (its tests will skip)."
    say "Install Node.js and npm, then run: $0"
    exit 0
fi

say "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION into $PREFIX (about 175 MB to download, 364 MB on disk)"
mkdir -p "$PREFIX"
if ! npm install --prefix "$PREFIX" --no-fund --no-audit --loglevel=error \
        "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" >&2; then
    say "npm install failed: the real Claude Code CLI tests will skip."
    exit 0
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
exit 0
