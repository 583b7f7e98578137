#!/usr/bin/env bash
# Can ctwatch keep up with the whole CT firehose? Serves a growing simulated firehose on 127.0.0.1
# (examples/firehose.rs: RFC6962 + TILED logs at RATE entries/s in total, one hot RFC 6962 log at HOT_RATE entries/s
# answering in HOT_LATENCY_MS with HOT_RPS requests/s per client and HOT_PAGE-entry pages; the other logs have their
# own latencies, 32-entry pages, rate limits with 429 + Retry-After and random 5xx), runs `ctwatch run` against
# all of it and certspotter 0.16 (Debian package) against its RFC 6962 part AT THE SAME TIME, for SECONDS, then
# prints per monitor and log class the p50 / p99 / max lag (seconds of growth not yet verified, sampled every 2 s),
# how far behind each log was at the end, CPU %, peak RSS (and RSS / threads sampled from /proc), bytes fetched,
# requests / 429s / 5xx seen by the logs, and matches reported (lines, unique certificates) against the matches
# expected for what each monitor verified.
#
#   scripts/bench-firehose.sh [SECONDS]                     default 300
#   RATE=10000 HOT_RATE=1500 scripts/bench-firehose.sh      the 10,000 entries/s firehose
#   CERTSPOTTER=0 ...                                       ctwatch only
#   CTWATCH_ARGS="--poll-interval-secs 5" ...               extra flags for `ctwatch run`
#   KEEP=1 ...                                              keep the work directory (printed)
#   CTWATCH_BIN=/tmp/ctwatch-old ...                        measure another build (before/after comparisons)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
RATE=${RATE:-2000} HOT_RATE=${HOT_RATE:-350} RFC6962=${RFC6962:-40} TILED=${TILED:-60}
HOT_LATENCY_MS=${HOT_LATENCY_MS:-2000-5000} HOT_RPS=${HOT_RPS:-10} HOT_PAGE=${HOT_PAGE:-256}
CERTSPOTTER=${CERTSPOTTER:-1}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ "$CERTSPOTTER" = 1 ] && ! command -v certspotter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq certspotter >/dev/null
fi
cargo build --release --quiet --bin ctwatch --example firehose
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

target/release/examples/firehose --out "$work/sim" --rate "$RATE" --hot-rate "$HOT_RATE" --rfc6962 "$RFC6962" \
  --tiled "$TILED" --hot-latency-ms "$HOT_LATENCY_MS" --hot-rps "$HOT_RPS" --hot-page "$HOT_PAGE" 2> "$work/sim.err" &
pids+=($!)
for _ in $(seq 600); do [ -e "$work/sim/ready" ] && break; sleep 0.1; done
[ -e "$work/sim/ready" ] || { echo "simulator did not start:"; cat "$work/sim.err"; exit 1; }

printf 'mexi.my\nnip.io\n' > "$work/watch.txt"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
/usr/bin/time -f '%e %U %S %M' -o "$work/ctwatch.time" "${CTWATCH_BIN:-target/release/ctwatch}" run --start-at beginning --json \
  --log-list "$work/sim/log_list.json" --watchlist "$work/watch.txt" --db "$work/db" --listen "127.0.0.1:$port" \
  ${CTWATCH_ARGS:-} \
  > "$work/ctwatch.out" 2> "$work/ctwatch.err" &
timers=($!)
for _ in $(seq 50); do c=$(pgrep -P "${timers[0]}" || true); [ -n "$c" ] && { echo "$c" > "$work/ctwatch.pid"; break; }; sleep 0.1; done
if [ "$CERTSPOTTER" = 1 ]; then
  mkdir -p "$work/cs-config" "$work/cs-state"
  printf '.mexi.my\n.nip.io\n' > "$work/cs-watchlist"
  CERTSPOTTER_CONFIG_DIR="$work/cs-config" /usr/bin/time -f '%e %U %S %M' -o "$work/certspotter.time" \
    certspotter -logs "$work/sim/log_list_rfc6962.json" -watchlist "$work/cs-watchlist" -state_dir "$work/cs-state" \
    -stdout > "$work/certspotter.out" 2> "$work/certspotter.err" &
  timers+=($!)
fi
python3 scripts/firehose-report.py sample "$work" &
pids+=($!)
sleep "$secs"
# ctwatch's own view (lag, adaptive window, 429s, retries per log) just before it stops.
python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' \
  "http://127.0.0.1:$port/metrics" > "$work/metrics.txt" 2>/dev/null || true
# Stop the monitors (the children of /usr/bin/time) gracefully, so that time(1) reports their figures.
for t in "${timers[@]}"; do
  for c in $(pgrep -P "$t"); do kill -INT "$c" 2>/dev/null || true; done
done
for t in "${timers[@]}"; do wait "$t" 2>/dev/null || true; done
echo "firehose: ${RFC6962} RFC 6962 + ${TILED} tiled logs, ${RATE} entries/s, hot log ${HOT_RATE}/s" \
  "(${HOT_LATENCY_MS} ms, ${HOT_RPS} req/s, ${HOT_PAGE}-entry pages), ${secs} s, ctwatch ${CTWATCH_ARGS:-(default flags)}"
python3 scripts/firehose-report.py report "$work"
grep -c ' WARN \| ERROR ' "$work/ctwatch.err" | sed 's/^/ctwatch warnings+errors logged: /' || true
