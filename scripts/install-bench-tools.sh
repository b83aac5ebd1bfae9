#!/usr/bin/env bash
# Installs GNU parallel, one of the alternatives `benchmarks/burst.py` runs beside ours.
# Idempotent; fails soft (exit 0 and a message) when it cannot install: burst then leaves that row out.
set -uo pipefail

say() { printf 'install-bench-tools: %s\n' "$*" >&2; }

if command -v parallel >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    say "GNU parallel not found and cannot be installed here (needs root and apt-get): burst leaves it out."
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q parallel >/dev/null 2>&1; then
    apt-get update -q >/dev/null 2>&1
    apt-get install -y -q parallel >/dev/null 2>&1 || say "apt-get could not install parallel: burst leaves it out."
fi
exit 0
