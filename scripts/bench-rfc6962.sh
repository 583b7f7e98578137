#!/usr/bin/env bash
# Throughput of `ctwatch run --once` against a large local log, of BOTH kinds: an RFC 6962 log (get-entries) and a
# static-ct tiled log (data tiles + hash tiles + issuers), each holding the same synthesized entries (built from
# the real navigli entries). Reports entries/second (wall), CPU seconds per 100k entries and peak RSS of the
# ctwatch process, for two log sizes, so that "memory stays flat however large the backlog" can be read off the
# two RSS figures of each kind.
#
#   scripts/bench-rfc6962.sh [ENTRIES ...]      default: 100000 200000
#   KINDS="tiled" scripts/bench-rfc6962.sh      only one kind (default: "rfc6962 tiled")
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
cargo build --release --quiet --bin ctwatch --example fake_log
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(100000 200000)
read -r -a kinds <<< "${KINDS:-rfc6962 tiled}"
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
printf 'mexi.my\nnip.io\n~paypal\n' > "$work/watch.txt"
printf '%-8s %-10s %12s %14s %18s %12s %10s\n' kind entries wall_s entries_per_s cpu_s_per_100k peak_rss_mb matches
for kind in "${kinds[@]}"; do
  flag=(); [ "$kind" = tiled ] && flag=(--tiled)
  for n in "${sizes[@]}"; do
    rm -rf "$work/log" "$work/db"*; mkdir -p "$work/log"
    target/release/examples/fake_log "${flag[@]}" --entries "$n" --out "$work/log" 2>/dev/null &
    fake=$!
    for _ in $(seq 1200); do [ -s "$work/log/url" ] && break; sleep 0.1; done
    /usr/bin/time -f '%e %U %S %M' -o "$work/time" \
      target/release/ctwatch run --once --start-at beginning --json --log-list "$work/log/log_list.json" \
        --watchlist "$work/watch.txt" --db "$work/db" --parallel-requests 4 > "$work/out.jsonl" 2> "$work/err" \
      || { echo "ctwatch failed ($kind, $n):"; tail -5 "$work/err"; exit 1; }
    kill $fake; wait $fake 2>/dev/null || true
    read -r wall user sys rss_kb < "$work/time"
    matches=$(wc -l < "$work/out.jsonl")
    awk -v k="$kind" -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss_kb" -v m="$matches" 'BEGIN {
      printf "%-8s %-10d %12.2f %14.0f %18.2f %12.1f %10d\n", k, n, w, n / w, (u + s) * 100000 / n, r / 1024, m }'
  done
done
