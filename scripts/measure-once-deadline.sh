#!/usr/bin/env bash
# Wall time of `ctwatch run --once` against two hostile logs on 127.0.0.1 (the cron-safety figures of issue 10):
#   hang         a log that accepts connections and never answers
#   retry-after  a log whose every get-entries answers 429 with `Retry-After: 999999`
# Both run at once (they only wait). Extra arguments go to `ctwatch run`, e.g. a shorter deadline:
#
#   scripts/measure-once-deadline.sh                              # the defaults (600 s deadline): ~10 min
#   scripts/measure-once-deadline.sh --once-timeout-secs 20       # the same, short
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --bin ctwatch --example fake_log
work=$(mktemp -d)
fakes=()
trap 'kill "${fakes[@]}" 2>/dev/null; rm -rf "$work"' EXIT
printf 'mexi.my\n' > "$work/watch.txt"
for mode in hang retry-after; do
  flags=(--hang); [ "$mode" = retry-after ] && flags=(--retry-after 999999)
  target/debug/examples/fake_log "${flags[@]}" --out "$work/$mode/log" > /dev/null 2>&1 &
  fakes+=($!)
done
for mode in hang retry-after; do
  for _ in $(seq 600); do [ -s "$work/$mode/log/url" ] && break; sleep 0.1; done
done
measure() { # mode
  local mode=$1 start end code=0
  start=$(date +%s.%N)
  NO_COLOR=1 RUST_LOG=warn target/debug/ctwatch run --once --start-at beginning \
    --log-list "$work/$mode/log/log_list.json" --watchlist "$work/watch.txt" --db "$work/$mode/db" \
    "${run_args[@]}" > /dev/null 2> "$work/$mode/err" < /dev/null || code=$?
  end=$(date +%s.%N)
  awk -v n="$mode" -v s="$start" -v e="$end" -v c="$code" \
    'BEGIN { printf "%-12s wall %7.1f s  exit %d\n", n, e - s, c }' > "$work/$mode/result"
  grep -E "^ctwatch:" "$work/$mode/err" | sed 's/^/             /' >> "$work/$mode/result" || true
}
run_args=("$@")
echo "ctwatch run --once ${run_args[*]:-(defaults)}"
measure hang & m1=$!
measure retry-after & m2=$!
wait $m1 $m2
cat "$work/hang/result" "$work/retry-after/result"
