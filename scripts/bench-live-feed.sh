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
port=$(( 20000 + RANDOM % 20000 ))
# Key-less (loopback) clients share one per-key limit: raise it for the benchmark.
cat > "$work/config.toml" <<TOML
[api]
listen = "127.0.0.1:$port"
[api.stream]
max_clients = 1000
max_clients_per_key = 1000
client_buffer_messages = ${BUFFER:-16384}
TOML
entries=$(( RATE * (SECS + 60) ))
target/release/examples/fake_log --entries "$entries" --rate "$RATE" --out "$work/log" 2>/dev/null &
fake=$!
for _ in $(seq 1200); do [ -s "$work/log/url" ] && break; sleep 0.1; done
target/release/ctwatch run --config "$work/config.toml" --start-at beginning --poll-interval-secs 1 \
  --log-list "$work/log/log_list.json" --watchlist "$work/watch.txt" --db "$work/db" > "$work/out" 2> "$work/err" &
ctwatch=$!
for _ in $(seq 300); do curl -fs "127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
echo "log growing at $RATE entries/s; ctwatch pid $ctwatch on 127.0.0.1:$port"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fake0=$(ticks $fake); t0=$(date +%s.%N)
target/release/examples/bench_live_feed "ws://127.0.0.1:$port" "$ctwatch" "$SECS" "$CLIENTS" "$SLOW" "$STREAM"
printf 'fake log CPU       %.0f %% of one core (the log server, same machine)\n' \
  "$(echo "($(ticks $fake) - $fake0) / ($(date +%s.%N) - $t0)" | bc -l)"
printf 'ctwatch verified   %s entries (log published %s)\n' \
  "$(curl -fs "127.0.0.1:$port/api/v1/logs" | sed -n 's/.*"verified_size":\([0-9]*\).*/\1/p')" "$(( RATE * (SECS + 2) ))"
