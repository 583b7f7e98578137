#!/usr/bin/env bash
# The console's search (a local crt.sh) on a database of NAMES names (default 10 million, in 1 million
# certificates): subtree, exact and % pattern searches, with and without filters, timed (median of 5).
# The database is built once in target/bench-search-NAMES.db (a few minutes) and reused.
#
#   scripts/bench-search.sh [NAMES]
set -euo pipefail
cd "$(dirname "$0")/.."
names=${1:-10000000}
cargo build --release --quiet --example bench_search
target/release/examples/bench_search "target/bench-search-$names.db" "$names"
