#!/usr/bin/env bash
# Benchmark of the watchlist matcher alone: generated items against generated certificate names (deterministic).
# Prints load time, names/second and peak RSS. Not a test: numbers depend on the machine.
#
#   scripts/bench-matcher.sh [ITEMS [NAMES]]      default: 100000 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet --example bench_matcher -- "$@"
