#!/usr/bin/env bash
# N simultaneous `ctwatch run --once` on ONE fresh database (cron overlap, a unit started twice, a container
# restarted while the old one is still up). Every start must either do the work (exit 0) or refuse at once with
# "another ctwatch (pid N) is running on DB" (exit 3); none may die of `table logs already exists` or
# `database is locked`, and every certificate must be reported exactly once in total.
#
#   scripts/measure-concurrent-starts.sh [N] [TRIALS]      default: 20 starts, 3 trials
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20}; trials=${2:-3}
cargo build --quiet --bin ctwatch --example fake_log
work=$(mktemp -d)
target/debug/examples/fake_log --out "$work/log" 2>/dev/null &
fake=$!
trap 'kill $fake 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 600); do [ -s "$work/log/url" ] && break; sleep 0.1; done
printf 'mexi.my\nnip.io\n' > "$work/watch.txt"
for t in $(seq "$trials"); do
  db="$work/db-$t/ctwatch.db"
  pids=()
  for i in $(seq "$n"); do
    target/debug/ctwatch run --once --start-at beginning --json --log-list "$work/log/log_list.json" \
      --watchlist "$work/watch.txt" --db "$db" > "$work/out-$t-$i" 2> "$work/err-$t-$i" &
    pids+=($!)
  done
  ok=0; locked=0; other=0
  for i in $(seq "$n"); do
    code=0; wait "${pids[$((i-1))]}" || code=$?
    if [ "$code" = 0 ]; then ok=$((ok+1))
    elif [ "$code" = 3 ] && grep -q "another ctwatch (pid [0-9]*) is running on" "$work/err-$t-$i"; then
      locked=$((locked+1))
    else
      other=$((other+1)); echo "  start $i: exit $code: $(grep -m1 -i 'error' "$work/err-$t-$i" || tail -1 "$work/err-$t-$i")"
    fi
  done
  reported=$(cat "$work"/out-"$t"-* | grep -c '"tbs_sha256"' || true)
  verified=$(target/debug/ctwatch logs --json --db "$db" | grep -o '"verified_size": [0-9]*' | grep -o '[0-9]*$' || echo '?')
  echo "trial $t: $n simultaneous starts on a fresh DB: $ok did the work (exit 0), $locked refused at once (exit 3, another ctwatch is running), $other failed otherwise; certificates reported in total: $reported (61 expected, once); verified_size: $verified"
done
