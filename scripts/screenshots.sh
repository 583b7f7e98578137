#!/usr/bin/env bash
# Write a PNG of every console page (login, overview, events, certificate, search, expiry, watchlists, outbox,
# live) to docs/screenshots/ (or $1): the browser test runs against a daemon fed from a fake log on 127.0.0.1
# (the 1024 real navigli2025h2 entries plus hostile test certificates) and saves each page it checks.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/screenshots}"
mkdir -p "$out"
scripts/install-test-deps.sh
SCREENSHOT_DIR="$(cd "$out" && pwd)" cargo nextest run --test console_browser --no-capture
ls -l "$out"/*.png
