#!/usr/bin/env bash
# Coverage-guided smoke run of every fuzz target under fuzz/ (cargo-fuzz / libFuzzer), one target at a time, one job.
#
#   scripts/fuzz-smoke.sh                 # every target, 30 s each
#   scripts/fuzz-smoke.sh 600 der config  # 10 minutes each for two targets
#
# Corpora grow in fuzz/corpus/<target>/ (seeded from fuzz/seeds/ and the real data in tests/fixtures/); a crash
# leaves its input in fuzz/artifacts/<target>/ and makes this script exit 1 (turn the input into a unit test,
# then fix). The toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the sanitizer flags it needs.
# Prints one summary line per target: seconds, executions, coverage (edges), features, corpus size, result.
set -euo pipefail

secs=${1:-30}
shift || true
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(rfc6962_entry data_tile checkpoint log_json log_list der watchlist config)
fi
fixtures=../tests/fixtures
failed=0
summary=()
for t in "${targets[@]}"; do
    corpus=corpus/$t
    mkdir -p "$corpus"
    cp -n seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    case $t in
        data_tile) cp -n "$fixtures"/static-ct/navigli2025h2/tile/data/00? "$corpus"/ 2>/dev/null || true ;;
        der) for f in "$fixtures"/certs/*/*.der "$fixtures"/watchlist/*.der; do cp -n "$f" "$corpus"/ 2>/dev/null || true; done ;;
    esac
    log=$(mktemp)
    status=ok
    if ! cargo fuzz run --release "$t" "$corpus" -- -max_total_time="$secs" -jobs=1 -workers=1 -max_len=1048576 \
        -print_final_stats=1 >"$log" 2>&1; then
        status="FAILED (see fuzz/artifacts/$t/)"
        failed=1
        tail -n 40 "$log"
    fi
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || echo "?")
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*' || echo "?")
    ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*' || echo "?")
    corp=$(echo "$last" | grep -o 'corp: [0-9]*' | grep -o '[0-9]*' || echo "?")
    summary+=("$(printf '%-14s %5ss  execs %-9s cov %-6s ft %-6s corpus %-5s %s' "$t" "$secs" "$execs" "$cov" "$ft" "$corp" "$status")")
    rm -f "$log"
done
printf '%s\n' "${summary[@]}"
exit $failed
