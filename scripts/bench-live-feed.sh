#!/usr/bin/env bash
# Live-feed load: CLIENTS WebSocket clients (SLOW of them reading only 20 messages/s) on a `ctwatch run --listen`
# that follows a fake RFC 6962 log growing at RATE entries/s (synthesized from the real navigli entries).
# Reports messages/s delivered, MB/s, ctwatch's CPU and RSS, and how many clients were dropped as too slow.
#
#   scripts/bench-live-feed.sh                 defaults: RATE=2000 CLIENTS=100 SLOW=5 SECS=30 STREAM=/stream/lite
#   STREAM=/stream/full scripts/bench-live-feed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-2000}; CLIENTS=${CLIENTS:-100}; SLOW=${SLOW:-5}; SECS=${SECS:-30}; STREAM=${STREAM:-/stream/lite}
cargo build --release --quiet --bin ctwatch --example fake_log --example bench_live_feed
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
printf 'mexi.my\nnip.io\n' > "$work/watch.txt"
entries=$(( RATE * (SECS + 60) ))
target/release/examples/fake_log --entries "$entries" --rate "$RATE" --out "$work/log" 2>/dev/null &
for _ in $(seq 1200); do [ -s "$work/log/url" ] && break; sleep 0.1; done
port=$(( 20000 + RANDOM % 20000 ))
target/release/ctwatch run --listen "127.0.0.1:$port" --start-at beginning --poll-interval-secs 1 \
  --log-list "$work/log/log_list.json" --watchlist "$work/watch.txt" --db "$work/db" > "$work/out" 2> "$work/err" &
ctwatch=$!
for _ in $(seq 300); do curl -fs "127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
echo "log growing at $RATE entries/s; ctwatch pid $ctwatch on 127.0.0.1:$port"
target/release/examples/bench_live_feed "ws://127.0.0.1:$port" "$ctwatch" "$SECS" "$CLIENTS" "$SLOW" "$STREAM"
printf 'ctwatch verified   %s entries (log published %s)\n' \
  "$(curl -fs "127.0.0.1:$port/api/v1/logs" | sed -n 's/.*"verified_size":\([0-9]*\).*/\1/p')" "$(( RATE * (SECS + 2) ))"
