#!/usr/bin/env bash
# Smoke run of every fuzz target under fuzz/ (cargo-fuzz / libFuzzer): 30 s each by default, one at a time, from the
# real seeds in fuzz/seeds/ plus whatever corpus earlier runs left in fuzz/corpus/. Exits non-zero on a finding
# (crash, OOM, timeout, slow input; the input is left in fuzz/artifacts/<target>/). About 5 minutes with builds up
# to date; the first run builds every target with the sanitizer (several minutes more).
#
#   scripts/fuzz-smoke.sh            # every target, 30 s each
#   scripts/fuzz-smoke.sh 60 der     # 60 s, one target
#
# Stable toolchain: RUSTC_BOOTSTRAP=1 (set by scripts/fuzz-run.sh) lets it accept the -Z sanitizer flags cargo-fuzz
# passes. See fuzz/README.md, and scripts/fuzz-run.sh for the table it prints.
set -euo pipefail
secs=${1:-30}
shift || true
exec "$(dirname "$0")/fuzz-run.sh" "$secs" "$@"
