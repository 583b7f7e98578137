#!/usr/bin/env bash
# Store ingest rate, SQLite vs PostgreSQL: the same synthetic --store-all batches (unique certificates, two names
# and a 1 KiB DER each, 4096 entries per batch) committed through Store::commit_batch by a release build.
#
#   scripts/bench-store.sh [CERTS]        (default 200000)
# PostgreSQL: a fresh database created on CTWATCH_BENCH_PG_URL's server (default
# postgres://postgres@127.0.0.1:5432/postgres) and dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
certs="${1:-200000}"
admin="${CTWATCH_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db="ctwatch_bench_$$"
cargo build --release --quiet --example bench_store
bin=target/release/examples/bench_store
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"; psql -q "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

"$bin" "$tmp/bench.db" "$certs"
psql -q "$admin" -c "CREATE DATABASE $db" >/dev/null
"$bin" "${admin%/*}/$db" "$certs"
