#!/usr/bin/env bash
# Benchmark of the watchlist matcher alone: generated items against generated certificate names (deterministic).
# Prints load time, names/second and peak RSS. Not a test: numbers depend on the machine.
#
#   scripts/bench-matcher.sh [ITEMS [NAMES]]      default: 100000 1000000
#   BENCH_LOOKALIKE=off scripts/bench-matcher.sh   the same without look-alike detection
# names/s is computed from the matching thread's CPU time, which other processes on the machine disturb less
# than wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --release --quiet --example bench_matcher -- "$@"
