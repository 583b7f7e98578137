#!/usr/bin/env bash
# CPU per entry of a catch-up (issue 15 §3): ctwatch `run --once` over a static local log of ENTRIES entries
# (synthesized from the real navigli entries, unique serials), RFC 6962 and tiled, and certspotter 0.16 (Debian
# package) over the same RFC 6962 log, in ONE run so that the ratio is read off side by side. The log server is a
# separate process: its CPU is not counted. The watchlist is a typical one (two domains and a keyword) that, like
# a real watchlist on the real firehose, matches almost nothing: the figure is the cost of the entries that do NOT
# matter (leaf hash, Merkle verification, decoding, matching). Entries that match cost one chain signature
# verification more (MATCHING=1 adds mexi.my, which matches ~2% of the synthesized entries, to see that cost).
#
#   scripts/bench-cpu.sh [ENTRIES]          default 131072
#   CERTSPOTTER=0 scripts/bench-cpu.sh      ctwatch only
#   CALLGRIND=20000 scripts/bench-cpu.sh    also count instructions per entry (valgrind; stable on a noisy machine)
#   CTWATCH_BIN=/tmp/ctwatch-old LABEL=old scripts/bench-cpu.sh   measure another build (before/after comparisons)
#   STORE_ALL=1 scripts/bench-cpu.sh        ctwatch with --store-all: every entry stored in SQLite (WAL); read the
#                                           entries_per_s column (unique certificates committed per wall second)
#
# Columns: user+sys CPU seconds of the monitor process, CPU µs per entry, wall seconds, entries per wall second,
# peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-131072}
CERTSPOTTER=${CERTSPOTTER:-1}
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ "$CERTSPOTTER" = 1 ] && ! command -v certspotter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq certspotter >/dev/null
fi
cargo build --release --quiet --bin ctwatch --example fake_log
bin=${CTWATCH_BIN:-target/release/ctwatch}
label=${LABEL:-ctwatch}
store_all=()
if [ "${STORE_ALL:-0}" = 1 ]; then store_all=(--store-all); label="$label --store-all"; fi
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
printf 'example-bank.com\nbank-example.org\n~paypal\n' > "$work/watch.txt"
printf '.example-bank.com\n.bank-example.org\npaypal\n' > "$work/cs-watchlist"
if [ "${MATCHING:-0}" = 1 ]; then echo mexi.my >> "$work/watch.txt"; echo .mexi.my >> "$work/cs-watchlist"; fi

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
    printf "%-30s %9d %10.2f %12.2f %9.2f %13.0f %10.1f %8s\n", k, n, u + s, (u + s) * 1e6 / n, w, n / w, r / 1024, m }'
}
printf '%-30s %9s %10s %12s %9s %13s %10s %8s\n' monitor entries cpu_s cpu_us_entry wall_s entries_per_s rss_mb matches
for kind in rfc6962 tiled; do
  serve "$kind" "$n" "$work/$kind"
  /usr/bin/time -f '%e %U %S %M' -o "$work/$kind.time" \
    "$bin" run --once --start-at beginning --json "${store_all[@]}" --log-list "$work/$kind/log_list.json" \
      --watchlist "$work/watch.txt" --db "$work/$kind.db" > "$work/$kind.out" 2> "$work/$kind.err" \
    || { echo "ctwatch failed ($kind):"; tail -5 "$work/$kind.err"; exit 1; }
  row "$label $kind" "$work/$kind.time" "$(wc -l < "$work/$kind.out")"
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
    pkill -INT -P $cs; wait $cs 2>/dev/null || true   # /usr/bin/time ignores SIGINT: stop its child
    row "certspotter 0.16" "$work/cs.time" "$(find "$work/cs-state/certs" -name '*.v1.json' 2>/dev/null | wc -l)"
  fi
  if [ -n "${CALLGRIND:-}" ]; then
    # Instructions of two runs, M and 2M entries: the difference over M is the cost per entry without the fixed
    # start-up cost (log list, watchlist, database).
    m=$CALLGRIND
    irs=()
    for size in "$m" $(( 2 * m )); do
      rm -rf "$work/cg.db"*
      serve "$kind" "$size" "$work/cg-$kind-$size"
      valgrind --tool=callgrind --callgrind-out-file="$work/cg.$kind.$size.out" \
        "$bin" run --once --start-at beginning --json "${store_all[@]}" \
          --log-list "$work/cg-$kind-$size/log_list.json" --watchlist "$work/watch.txt" --db "$work/cg.db" \
          > /dev/null 2> "$work/cg.err" || { echo "callgrind run failed:"; tail -5 "$work/cg.err"; exit 1; }
      irs+=("$(callgrind_annotate "$work/cg.$kind.$size.out" 2>/dev/null \
        | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}')")
    done
    printf '%-30s %9d instructions per entry: %s (callgrind: (Ir(%d) - Ir(%d)) / %d; start-up %s)\n' \
      "$label $kind" "$m" "$(( (irs[1] - irs[0]) / m ))" $(( 2 * m )) "$m" "$m" "$(( 2 * irs[0] - irs[1] ))"
    [ -z "${KEEP_PROFILE:-}" ] || cp "$work/cg.$kind.$(( 2 * m )).out" "$KEEP_PROFILE.$kind"
  fi
  kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true
done
