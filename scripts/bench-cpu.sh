#!/usr/bin/env bash
# CPU per entry of a catch-up (issue 15 §3): ctwatch `run --once` over a static local log of ENTRIES entries
# (synthesized from the real navigli entries, unique serials), RFC 6962 and tiled, and certspotter 0.16 (Debian
# package) over the same RFC 6962 log, in ONE run so that the ratio is read off side by side. The log server is a
# separate process: its CPU is not counted. The watchlist is a typical one (two domains and a keyword); what it
# matches in the synthesized data is printed.
#
#   scripts/bench-cpu.sh [ENTRIES]          default 131072
#   CERTSPOTTER=0 scripts/bench-cpu.sh      ctwatch only
#   CALLGRIND=20000 scripts/bench-cpu.sh    also count instructions per entry (valgrind; stable on a noisy machine)
#
# Columns: user+sys CPU seconds of the monitor process, CPU µs per entry, wall seconds, peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-131072}
CERTSPOTTER=${CERTSPOTTER:-1}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ "$CERTSPOTTER" = 1 ] && ! command -v certspotter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq certspotter >/dev/null
fi
cargo build --release --quiet --bin ctwatch --example fake_log
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
printf 'example-bank.com\nmexi.my\n~paypal\n' > "$work/watch.txt"
printf '.example-bank.com\n.mexi.my\npaypal\n' > "$work/cs-watchlist"

serve() { # serve KIND ENTRIES DIR: start a static fake log, wait for its URL
  local flag=(); [ "$1" = tiled ] && flag=(--tiled)
  mkdir -p "$3"
  target/release/examples/fake_log "${flag[@]}" --entries "$2" --out "$3" 2>/dev/null &
  for _ in $(seq 3000); do [ -s "$3/url" ] && return; sleep 0.1; done
  echo "fake log did not start" >&2; exit 1
}
row() { # row NAME TIMEFILE MATCHES
  read -r wall user sys rss_kb < "$2"
  awk -v k="$1" -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss_kb" -v m="$3" 'BEGIN {
    printf "%-22s %9d %10.2f %12.2f %9.2f %10.1f %8s\n", k, n, u + s, (u + s) * 1e6 / n, w, r / 1024, m }'
}
printf '%-22s %9s %10s %12s %9s %10s %8s\n' monitor entries cpu_s cpu_us_entry wall_s rss_mb matches
for kind in rfc6962 tiled; do
  serve "$kind" "$n" "$work/$kind"
  /usr/bin/time -f '%e %U %S %M' -o "$work/$kind.time" \
    target/release/ctwatch run --once --start-at beginning --json --log-list "$work/$kind/log_list.json" \
      --watchlist "$work/watch.txt" --db "$work/$kind.db" > "$work/$kind.out" 2> "$work/$kind.err" \
    || { echo "ctwatch failed ($kind):"; tail -5 "$work/$kind.err"; exit 1; }
  row "ctwatch $kind" "$work/$kind.time" "$(wc -l < "$work/$kind.out")"
  if [ "$kind" = rfc6962 ] && [ "$CERTSPOTTER" = 1 ]; then
    mkdir -p "$work/cs-config" "$work/cs-state"
    CERTSPOTTER_CONFIG_DIR="$work/cs-config" /usr/bin/time -f '%e %U %S %M' -o "$work/cs.time" \
      certspotter -logs "$work/$kind/log_list.json" -watchlist "$work/cs-watchlist" -state_dir "$work/cs-state" \
        -stdout > "$work/cs.out" 2> "$work/cs.err" &
    cs=$!
    # certspotter is a daemon: stop it once its verified position covers the whole log.
    until grep -qs "\"size\": *$n\b" "$work"/cs-state/logs/*/state.json 2>/dev/null; do
      kill -0 $cs 2>/dev/null || { echo "certspotter exited:"; tail -5 "$work/cs.err"; exit 1; }
      sleep 0.2
    done
    kill -INT $cs; wait $cs 2>/dev/null || true
    row "certspotter 0.16" "$work/cs.time" "$(find "$work/cs-state/certs" -name '*.v1.json' 2>/dev/null | wc -l)"
  fi
  if [ -n "${CALLGRIND:-}" ]; then
    m=$CALLGRIND
    rm -rf "$work/cg.db"*
    serve "$kind" "$m" "$work/cg-$kind"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg.$kind.out" \
      target/release/ctwatch run --once --start-at beginning --json \
        --log-list "$work/cg-$kind/log_list.json" --watchlist "$work/watch.txt" --db "$work/cg.db" \
        > /dev/null 2> "$work/cg.err"
    ir=$(callgrind_annotate "$work/cg.$kind.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
    printf '%-22s %9d instructions per entry: %s (callgrind, %d entries)\n' "ctwatch $kind" "$m" \
      "$(( ir / m ))" "$m"
    [ -n "${KEEP_PROFILE:-}" ] && cp "$work/cg.$kind.out" "$KEEP_PROFILE.$kind"
  fi
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
done
