#!/usr/bin/env bash
# Refresh the log list bundled in the binary (assets/log_list_snapshot.json + .sig), used only when Google's
# list and its cached copy cannot be had. Run at release time.
#
# Source: the newest signed Google list in shared/ctdata/loglists (or the JSON given as $1, with its .sig
# next to it). Google's all_logs_list.json is preferred over log_list.json when newer: it lists every log
# Chrome knows, including pending and rejected ones, and ctwatch follows only qualified, usable and readonly
# logs of any list, so the followed set is the same as from log_list.json of that day. The file is bundled
# byte for byte with its signature, which `cargo nextest run -E 'test(bundled)'` verifies with Google's key.
set -euo pipefail
cd "$(dirname "$0")/.."
CTDATA=${CTDATA:-../shared/ctdata}
[ -d "$CTDATA" ] || CTDATA=/work/shared/ctdata

if [ $# -ge 1 ]; then
  json=$1
else
  # The newest signed list by its log_list_timestamp.
  json=$(for f in "$CTDATA"/loglists/google_*log*list_v3_*.json; do
           [ -e "${f%.json}.sig" ] || continue
           ts=$(grep -o '"log_list_timestamp": *"[^"]*"' "$f" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
           echo "$ts $f"
         done | sort | tail -1 | cut -d' ' -f2-)
fi
[ -n "${json:-}" ] && [ -e "$json" ] || { echo "update-bundled-loglist: no signed log list found in $CTDATA/loglists" >&2; exit 1; }
sig="${json%.json}.sig"
[ -e "$sig" ] || { echo "update-bundled-loglist: $sig is missing: only a signed list is bundled" >&2; exit 1; }

# Verify before bundling (openssl when present; the test verifies again with ctwatch's own code).
if command -v openssl >/dev/null; then
  openssl dgst -sha256 -verify assets/google_log_list_pubkey.pem -signature "$sig" "$json" >/dev/null \
    || { echo "update-bundled-loglist: $json does not verify with Google's key" >&2; exit 1; }
fi

install -m 0644 "$json" assets/log_list_snapshot.json
install -m 0644 "$sig" assets/log_list_snapshot.sig
version=$(grep -o '"version": *"[^"]*"' assets/log_list_snapshot.json | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
ts=$(grep -o '"log_list_timestamp": *"[^"]*"' assets/log_list_snapshot.json | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
echo "bundled $(basename "$json"): version $version, $ts"
echo "next: cargo nextest run -E 'test(bundled)' and commit assets/log_list_snapshot.{json,sig}"
