#!/usr/bin/env bash
# Install what the console and live-feed tests need when it is missing:
#  - Debian's chromium (the headless browser the console tests drive),
#  - playwright-core from npm (tests/browser, pinned by package-lock.json) to drive it,
#  - the real certstream Python client from PyPI in a venv (target/certstream-venv).
# Idempotent and quick when everything is there. Called by .ci/run; safe to run by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
    echo "install-test-deps: installing chromium (apt-get)" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
    echo "install-test-deps: npm ci (tests/browser)" >&2
    (cd tests/browser && npm ci --silent --no-audit --no-fund)
fi

VENV=target/certstream-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import certstream' 2>/dev/null; then
    echo "install-test-deps: certstream client into $VENV (pip)" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check 'certstream==1.12'
fi
