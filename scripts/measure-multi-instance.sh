#!/usr/bin/env bash
# Several ctwatch processes on one PostgreSQL (issue 12 §2): runs tests/multi_instance.rs and prints its figures:
# how long after a SIGKILL the dead instance's logs were tailed again (default lease timing: 15 s TTL, renewed
# every 3 s), and how many entries three instances reported exactly once across random SIGKILLs/restarts.
#   scripts/measure-multi-instance.sh                 # PostgreSQL from CTWATCH_TEST_PG_URL (default 127.0.0.1:5432)
#   CTWATCH_CHAOS_SEED=N scripts/measure-multi-instance.sh    # repeat one kill schedule
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
if ! cargo nextest run --test multi_instance --no-capture >"$out" 2>&1; then
    tail -40 "$out"
    echo "measure-multi-instance: the test failed (output above)" >&2
    exit 1
fi
grep -E '^(takeover after SIGKILL|chaos seed|[0-9]+ entries reported exactly once)' "$out"
