#!/usr/bin/env python3
"""Where a fuzz run's coverage grew: ctwatch's own code or a dependency's, and when each last grew.

  scripts/fuzz-pcs.py fuzz/logs/<target>.log FUZZ_BINARY [MINUTES]

Reads a libFuzzer log written by `FUZZ_PRINT_PCS=1 scripts/fuzz-run.sh` (ASLR off and `-print_pcs=1`: one
`NEW_PC: 0x...` line per newly covered instruction, each line prefixed with the second of the run it was printed at),
symbolizes every PC with llvm-symbolizer (Debian package llvm) and attributes it to the code it belongs to: the
innermost inlined frame that is not the standard library, so `Iterator::fold` inlined into a ctwatch function counts
as ctwatch's. Prints per owner (ctwatch, or a crate such as regex-syntax) the PCs found, how many in the last
MINUTES (default 30) of the run, and the second the owner last grew.

Why: libFuzzer's `cov` counts every instrumented edge, the regex and Unicode crates' included. A target that feeds
regexes to the `regex` crate keeps finding new edges inside it long after ctwatch's own parser has stopped growing;
this tells the two plateaus apart.
"""
import collections
import re
import subprocess
import sys

# setarch -R loads a position-independent executable here on x86_64 Linux.
PIE_BASE = 0x555555554000
STD = re.compile(r"/rustc/[0-9a-f]+/library/|/lib/rustlib/src/rust/library/")
CRATE = re.compile(r"/registry/src/[^/]+/([^/]+?)-\d+\.\d+[^/]*/")


def owner(frames):
    for func, path in frames:
        if STD.search(path) or path.startswith("??"):
            continue
        m = CRATE.search(path)
        if m:
            return m.group(1)
        if "/fuzz/" in path:
            return "fuzz harness"
        if "/src/" in path:
            return "ctwatch"
        return path.split(":")[0]
    return "std"


def symbolize(binary, pcs):
    """PC -> list of (function, file:line) from innermost to outermost inlined frame."""
    text = "".join(f"0x{pc - PIE_BASE:x}\n" for pc in pcs)
    out = subprocess.run(["llvm-symbolizer", "--inlines", f"--obj={binary}"], input=text,
                         capture_output=True, text=True, check=True).stdout
    blocks = [b for b in out.split("\n\n") if b.strip()]
    result = {}
    for pc, block in zip(pcs, blocks):
        lines = block.strip().split("\n")
        result[pc] = [(lines[i], lines[i + 1]) for i in range(0, len(lines) - 1, 2)]
    return result


def main():
    log, binary = sys.argv[1], sys.argv[2]
    window = int(sys.argv[3]) * 60 if len(sys.argv) > 3 else 1800
    found = []
    for line in open(log, errors="replace"):
        m = re.match(r"(\d+)\s+NEW_PC: (0x[0-9a-f]+)", line)
        if m:
            found.append((int(m.group(1)), int(m.group(2), 16)))
    if not found:
        sys.exit(f"{log}: no NEW_PC lines (run with FUZZ_PRINT_PCS=1)")
    end = max(t for t, _ in found)
    frames = symbolize(binary, [pc for _, pc in found])
    per = collections.defaultdict(lambda: [0, 0, 0])  # pcs, pcs in the window, last second
    for t, pc in found:
        p = per[owner(frames[pc])]
        p[0] += 1
        p[1] += t > end - window
        p[2] = max(p[2], t)
    print(f"{len(found)} new PCs after the corpus loaded, last at second {end}")
    print(f"{'owner':<28} {'pcs':>7} {'last_' + str(window // 60) + 'min':>10} {'last_grew_s':>11}")
    for name, (n, recent, last) in sorted(per.items(), key=lambda kv: -kv[1][0]):
        print(f"{name:<28} {n:>7} {recent:>10} {last:>11}")


if __name__ == "__main__":
    main()
