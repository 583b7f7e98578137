#!/usr/bin/env bash
# Benchmark the TLS probe against local endpoints (not a test; quote the numbers it prints).
# Usage: scripts/bench-probe.sh [--endpoints 1000] [--concurrency 50] [--rounds 3]
# PROFILE=release for an optimised build (dependencies are already opt-level 2 in dev).
set -euo pipefail
cd "$(dirname "$0")/.."
# 1,000 listeners in the server process plus the connections in flight.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec cargo run --quiet --profile "${PROFILE:-dev}" --example bench_probe -- "$@"
