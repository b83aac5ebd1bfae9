#!/usr/bin/env bash
# Installs Debian's chromium for the headless browser test of `pcoord report` (tests/report/test_report.py).
# Idempotent: does nothing when chromium is already on PATH. Fails soft (exit 0, a message on
# stderr) when we are not root, apt-get is missing or the install fails: that test then skips.
set -uo pipefail

say() { printf 'install-browser: %s\n' "$*" >&2; }

if command -v chromium >/dev/null 2>&1; then
    say "chromium is already at $(command -v chromium)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    say "chromium not found and we are not root: skipping (the browser test will skip)."
    say "Install it yourself (e.g. sudo apt-get install chromium), then run: $0"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    say "chromium not found and apt-get is missing: skipping (the browser test will skip)."
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
started=$(date +%s)

refreshed=no
# Refresh the package lists only when needed: apt does not know chromium yet (a fresh image has no
# lists), or the install fails because the lists are stale (their files are gone from the mirror).
refresh() {
    say "refreshing the package lists (apt-get update)"
    refreshed=yes
    apt-get update -qq >&2
}
if ! apt-cache show chromium >/dev/null 2>&1 && ! refresh; then
    say "apt-get update failed: skipping chromium (the browser test will skip)."
    exit 0
fi

say "installing chromium with apt-get (over a hundred packages, about 330 MB for chromium itself)"
if ! apt-get install -y -qq chromium >&2; then
    if [ "$refreshed" = yes ] || ! refresh || ! apt-get install -y -qq chromium >&2; then
        say "apt-get install chromium failed: the browser test will skip."
        exit 0
    fi
fi

if command -v chromium >/dev/null 2>&1; then
    say "chromium is at $(command -v chromium) (installed in $(( $(date +%s) - started ))s)"
else
    say "apt-get installed chromium, but it is not on PATH: the browser test will skip."
fi
exit 0
