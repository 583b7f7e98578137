#!/usr/bin/env bash
# Run the cargo-fuzz (libFuzzer) targets under fuzz/ one after the other and print one table row per target.
#
#   scripts/fuzz-run.sh SECONDS [TARGET...]     # no TARGET: every target in fuzz/Cargo.toml
#   scripts/fuzz-run.sh 420 der checkpoint      # 7 minutes each for two targets
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`; installed here when missing). The toolchain is stable:
# cargo-fuzz builds with `-Zsanitizer=address` and sanitizer-coverage flags, which only a nightly compiler accepts,
# so this script sets RUSTC_BOOTSTRAP=1 to let the stable compiler take them. Builds use `-a` (release with debug
# assertions and overflow checks: an arithmetic overflow is a finding too) and run at `nice -n 19`, one fuzzer and
# one job at a time (-rss_limit_mb=2048, -timeout=10 s per input, inputs slower than 2 s reported).
#
# FUZZ_SANITIZER=none (default: address) builds without AddressSanitizer: the parsers are safe Rust (no `unsafe` on
# any fuzzed path), so ASan mostly costs speed there (a first ASan build takes ~37 min here and runs 2-3x slower);
# panics, arithmetic overflows, OOMs and timeouts are found either way.
#
# FUZZ_BIN_DIR=DIR runs fuzzers already built into DIR (e.g. a copy of fuzz/target/x86_64-unknown-linux-gnu/release)
# instead of building: long runs go on from a snapshot while the source tree changes under them.
#
# The corpus grows in fuzz/corpus/<target>/ (not in git), read together with the real seeds in fuzz/seeds/<target>/.
# A crash, OOM, timeout or slow input is written to fuzz/artifacts/<target>/ and counted in the `findings` column;
# the script then exits 1. Reproduce one with `RUSTC_BOOTSTRAP=1 cargo fuzz run -a <target> <file>` (in fuzz/),
# keep it under fuzz/regressions/<target>/ (tests/fuzz_regressions.rs replays those in `cargo nextest run`), fix.
#
# FUZZ_PRINT_PCS=1 runs with ASLR off and `-print_pcs=1`, then prints scripts/fuzz-pcs.py's table: which code
# (ctwatch's own or a dependency's: regex, psl, idna...) the coverage grew in, and when each last grew. libFuzzer's
# `cov` counts the dependencies' edges too; ctwatch's own plateau is the row `ctwatch`.
#
# libFuzzer's output is kept in fuzz/logs/<target>.log. Columns: seconds run, total executions, final cov (edges) and ft (features) as libFuzzer reports them, corpus
# size, when coverage last grew (seconds into the run: a plateau shows as a time well before the end), the edges
# found in the last minute (a plateau: 0 or a handful), findings. A rerun starts from the corpus the last one left,
# so the minutes of successive runs add up.
set -euo pipefail

secs=${1:?usage: scripts/fuzz-run.sh SECONDS [TARGET...]}
shift
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
san=(-s "${FUZZ_SANITIZER:-address}")
pcs=()
prefix=()
if [ "${FUZZ_PRINT_PCS:-0}" = 1 ]; then
    pcs=(-print_pcs=1)
    command -v llvm-symbolizer >/dev/null || { apt-get update -qq && apt-get install -y -qq llvm >/dev/null; }
    prefix=(setarch -R) # fixed load address: scripts/fuzz-pcs.py symbolizes the printed PCs afterwards
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi

failed=0
rows=()
for t in "${targets[@]}"; do
    corpus=corpus/$t
    artifacts=artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    before=$(find "$artifacts" -maxdepth 1 -type f | wc -l)
    if [ -z "${FUZZ_BIN_DIR:-}" ]; then
        nice -n 19 cargo fuzz build "${san[@]}" -a "$t" >/dev/null 2>&1 || nice -n 19 cargo fuzz build "${san[@]}" -a "$t"
        run=(cargo fuzz run "${san[@]}" -a "$t" "$corpus" "seeds/$t" --)
    else
        run=("$FUZZ_BIN_DIR/$t" -artifact_prefix="$artifacts/" "$corpus" "seeds/$t")
    fi
    mkdir -p logs
    log=logs/$t.log # libFuzzer's output, each line prefixed with the second it was printed at
    touch "$log.start"
    start=$(date +%s)
    set +e
    nice -n 19 "${prefix[@]}" "${run[@]}" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -report_slow_units=2 \
        -print_final_stats=1 "${pcs[@]}" 2>&1 |
        while IFS= read -r line; do printf '%s %s\n' "$(($(date +%s) - start))" "$line"; done >"$log"
    rc=${PIPESTATUS[0]}
    set -e
    elapsed=$(($(date +%s) - start))
    # libFuzzer times a unit by the wall clock: at nice 19 beside a build or a benchmark, an ordinary input can be
    # starved for seconds and written as slow-unit-*. Re-run each new one alone: one that finishes within the slow
    # limit was starved, not slow (moved to $artifacts/starved/, not counted); one that is still slow is a finding.
    for f in $(find "$artifacts" -maxdepth 1 -type f -name 'slow-unit-*' -newer "$log.start" 2>/dev/null); do
        bin=${FUZZ_BIN_DIR:-target/x86_64-unknown-linux-gnu/release}/$t
        t0=$(date +%s%N)
        "$bin" "$f" >/dev/null 2>&1 || true
        ms=$((($(date +%s%N) - t0) / 1000000))
        if [ "$ms" -lt 2000 ]; then
            mkdir -p "$artifacts/starved"
            mv "$f" "$artifacts/starved/"
            echo "$t: $(basename "$f") runs in $ms ms alone: starved by other load, not counted" >&2
        fi
    done
    after=$(find "$artifacts" -maxdepth 1 -type f | wc -l)
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    last=$(grep -E '^[0-9]+ #[0-9]+' "$log" | tail -1 || true)
    cov=$(grep -o 'cov: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    ft=$(grep -o 'ft: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    corp=$(grep -o 'corp: [0-9]*' <<<"$last" | grep -o '[0-9]*' || true)
    # The last line where the edge count (cov) went up: seconds into the run.
    grew=$(grep -E '^[0-9]+ #[0-9]+.*cov: ' "$log" |
        awk '{ for (i = 1; i <= NF; i++) if ($i == "cov:") c = $(i + 1); if (c > best) { best = c; t = $1 } } END { print t + 0 }')
    # Edges found in the last minute (0, or a few, on a plateau).
    late=$(grep -E '^[0-9]+ #[0-9]+.*cov: ' "$log" |
        awk -v end="$elapsed" '{ for (i = 1; i <= NF; i++) if ($i == "cov:") c = $(i + 1);
            if ($1 <= end - 60) before = c; last = c } END { print "+" (last - before) }')
    [ "$elapsed" -ge 90 ] || late=- # a run shorter than that has no "last minute" to compare with
    findings=$((after - before))
    status=ok
    if [ "$rc" -ne 0 ] || [ "$findings" -gt 0 ]; then
        status="FINDING (rc $rc; see fuzz/$artifacts/)"
        failed=1
        grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Slow unit|Test unit written|==[0-9]+==' "$log" | head -20 >&2 || true
    fi
    rows+=("$(printf '%-14s %6s %11s %6s %6s %6s %8s %8s  %-8s %s' "$t" "$elapsed" "${execs:-?}" "${cov:-?}" \
        "${ft:-?}" "${corp:-?}" "${grew}s" "$late" "$findings" "$status")")
    printf '%s\n' "${rows[-1]}" >&2
    if [ ${#pcs[@]} -gt 0 ]; then
        python3 ../scripts/fuzz-pcs.py "$log" "${FUZZ_BIN_DIR:-target/x86_64-unknown-linux-gnu/release}/$t" >&2 || true
    fi
done
printf '%-14s %6s %11s %6s %6s %6s %8s %8s  %-8s %s\n' target secs execs cov ft corpus cov-grew cov-1min findings result
printf '%s\n' "${rows[@]}"
exit $failed
