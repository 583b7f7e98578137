#!/usr/bin/env bash
# Independent reference check: run certspotter (Debian package) and ctwatch against the same local RFC 6962 log
# (the 1024 real navigli2025h2 entries) with the watchlist mexi.my + nip.io, and compare the reported
# certificates by tbs_sha256 (and their DNS names). Exits 1 on any difference.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v certspotter >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq certspotter >/dev/null
fi
cargo build --release --quiet --bin ctwatch --example fake_log
work=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/log" "$work/cs-config" "$work/cs-state"
target/release/examples/fake_log --out "$work/log" 2>/dev/null &
for _ in $(seq 300); do [ -s "$work/log/url" ] && break; sleep 0.1; done

# certspotter: daemon only; stop it once its verified position reaches the whole log.
printf '.mexi.my\n.nip.io\n' > "$work/cs-watchlist"
CERTSPOTTER_CONFIG_DIR="$work/cs-config" certspotter -logs "$work/log/log_list.json" -watchlist "$work/cs-watchlist" \
  -state_dir "$work/cs-state" -stdout > "$work/cs-out" 2> "$work/cs-err" &
cs=$!
for _ in $(seq 600); do
  if grep -qs '"size": *1024' "$work"/cs-state/logs/*/state.json 2>/dev/null; then break; fi
  sleep 0.2
done
sleep 1; kill -INT $cs; wait $cs 2>/dev/null || true

printf 'mexi.my\nnip.io\n' > "$work/watch.txt"
target/release/ctwatch run --once --start-at beginning --json --log-list "$work/log/log_list.json" \
  --watchlist "$work/watch.txt" --db "$work/db" > "$work/ct-out" 2> "$work/ct-err"

python3 - "$work" <<'PY'
import glob, json, sys
w = sys.argv[1]
cs = {}
for f in glob.glob(f"{w}/cs-state/certs/*/*.v1.json"):
    d = json.load(open(f))
    cs[d["tbs_sha256"]] = sorted(d["dns_names"])
ct = {}
for line in open(f"{w}/ct-out"):
    d = json.loads(line)
    ct[d["tbs_sha256"]] = sorted(d["dns_names"])
print(f"certspotter: {len(cs)} certificates; ctwatch: {len(ct)} certificates")
only_cs = sorted(set(cs) - set(ct)); only_ct = sorted(set(ct) - set(cs))
names_differ = [k for k in set(cs) & set(ct) if cs[k] != ct[k]]
for k in only_cs: print("only certspotter:", k, cs[k])
for k in only_ct: print("only ctwatch:", k, ct[k])
for k in names_differ: print("names differ:", k, cs[k], ct[k])
if only_cs or only_ct or names_differ or not cs:
    sys.exit(1)
print("identical: same tbs_sha256 set and the same DNS names")
PY
