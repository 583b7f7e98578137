#!/usr/bin/env bash
# What the NATS stream costs: `ctwatch run --once --store-all` against a local fake RFC 6962 log of ENTRIES
# synthesized entries (from the real navigli entries), without and with `--nats` (what = "all": every entry is
# published). Reports entries/s of the tailers, the time until every entry was verified and committed, the time
# until every entry was also acknowledged by JetStream (the lag the stream adds), the largest stream lag seen
# (committed − published, sampled every 0.2 s), and the messages/s published. First, the publisher's own ceiling:
# examples/bench_publisher pushes ENTRIES messages of 4 KiB (about a `/stream/full` message) through it.
#
#   scripts/bench-stream.sh                    defaults: ENTRIES=100000, NATS=nats://127.0.0.1:4222
#   ENTRIES=200000 scripts/bench-stream.sh
# Needs NATS with JetStream (scripts/test-services.sh starts one); uses a stream of its own, deleted at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-100000}
NATS=${NATS:-${CTWATCH_TEST_NATS_URL:-nats://127.0.0.1:4222}}
cargo build --release --quiet --bin ctwatch --example fake_log --example nats_stream_count --example bench_publisher
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
name="CTWATCH_BENCH_$$"; prefix="ctwatch-bench.$$.certs"
printf 'mexi.my\nnip.io\n' > "$work/watch.txt"
cat > "$work/stream.toml" <<TOML
[stream]
nats = "$NATS"
what = "all"
name = "$name"
subject_prefix = "$prefix"
max_age_secs = 3600
max_bytes = 0
TOML
target/release/examples/fake_log --entries "$ENTRIES" --out "$work/log" 2>/dev/null &
for _ in $(seq 1200); do [ -s "$work/log/url" ] && break; sleep 0.1; done
now() { date +%s.%N; }

# Poll the database: print "verified published" of the (only) log.
positions() {
  target/release/ctwatch logs --json --db "$1" 2>/dev/null | python3 -c '
import json, sys
rows = json.load(sys.stdin) or [{}]
print(rows[0].get("verified_size") or 0, rows[0].get("published_size") or 0)' 2>/dev/null || echo "0 0"
}

# run MODE: one --once run into a fresh database; MODE is "plain" or "stream".
run() {
  local mode=$1 db="$work/db-$1" extra=()
  [ "$mode" = stream ] && extra=(--config "$work/stream.toml")
  local t0 t_verified="" t_published="" max_lag=0
  t0=$(now)
  /usr/bin/time -f '%U %S' -o "$work/time-$mode" \
    target/release/ctwatch run --once --store-all --start-at beginning --json --no-probe \
    --log-list "$work/log/log_list.json" --watchlist "$work/watch.txt" --db "$db" "${extra[@]}" \
    > "$work/out-$mode" 2> "$work/err-$mode" &
  local pid=$!
  while kill -0 $pid 2>/dev/null; do
    read -r v p < <(positions "$db")
    [ -z "$t_verified" ] && [ "$v" -ge "$ENTRIES" ] && t_verified=$(now)
    [ "$mode" = stream ] && [ -z "$t_published" ] && [ "$p" -ge "$ENTRIES" ] && t_published=$(now)
    [ "$mode" = stream ] && [ $((v - p)) -gt "$max_lag" ] && max_lag=$((v - p))
    sleep 0.2
  done
  wait $pid || { echo "ctwatch failed ($mode):"; tail -5 "$work/err-$mode"; exit 1; }
  local t_end; t_end=$(now)
  read -r v p < <(positions "$db")
  [ -z "$t_verified" ] && t_verified=$t_end
  [ "$mode" = stream ] && [ -z "$t_published" ] && [ "$p" -ge "$ENTRIES" ] && t_published=$t_end
  local cpu; cpu=$(awk '{print $1 + $2}' "$work/time-$mode")
  echo "$mode $t0 $t_verified ${t_published:-$t_end} $t_end $max_lag $v $p $cpu"
}

target/release/examples/bench_publisher "$NATS" "$ENTRIES" 4096
plain=$(run plain)
stream=$(run stream)
messages=$(target/release/examples/nats_stream_count "$NATS" "$name" --delete)
echo
echo "fake RFC 6962 log of $ENTRIES entries on 127.0.0.1; run --once --store-all; stream what = \"all\""
printf '%-8s %12s %14s %16s %18s %14s %14s %10s\n' run entries/s verified_s acknowledged_s added_lag_s max_lag_entries \
  messages/s cpu_s
for r in "$plain" "$stream"; do
  read -r mode t0 tv tp te lag v p cpu <<< "$r"
  awk -v m="$mode" -v n="$ENTRIES" -v t0="$t0" -v tv="$tv" -v tp="$tp" -v lag="$lag" -v msgs="$messages" -v cpu="$cpu" '
  BEGIN {
    if (m == "plain") printf "%-8s %12.0f %14.2f %16s %18s %14s %14s %10.1f\n", m, n / (tv - t0), tv - t0, "-", "-", "-", "-", cpu;
    else printf "%-8s %12.0f %14.2f %16.2f %18.2f %14d %14.0f %10.1f\n", m, n / (tv - t0), tv - t0, tp - t0, tp - tv, lag, msgs / (tp - t0), cpu }'
done
echo "messages in the stream: $messages (one per entry; JetStream dropped any repeat)"
echo "cpu_s: user + system CPU seconds of the ctwatch process (load-independent: what the stream costs in CPU)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores (entries/s on a busy machine are noisy)"
grep -h "stopped publishing\|failed" "$work/err-stream" | head -3 || true
