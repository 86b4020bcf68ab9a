#!/usr/bin/env python3
"""Where the time between "hot" and "native code installed" goes.

    python3 bench/jit/tierup_latency.py [SXPOOL...] [--runs=N] [--programs=P,...]
                                         [--threshold=N]

Runs each program of bench/lang (*.sx, or --programs) --runs times (default
5) under `sxpool eval --tier=jit` (cold: no code cache; the default
threshold unless --threshold) with SXPOOL_JIT_VERBOSE=1, for each binary in
turn (default build/sxpool), and reads the compile thread's lines:

    batch of N (M lowered) in T ms: waited W, lowering L, compiling C,
        assembling and linking A, loading D, cache and delivery E ms;
        cpu U ms, child processes K ms
    installed NAME HASH X ms after it got hot, after K calls

Prints, per program and binary, the medians over the runs of: the number
of batches, the first batch's total and its phases (cpu: the CPU time of
the thread that compiled it; child: that of as and ld), and the time from hot
to installed and the VM calls before it for the function installed first
(the one the program spends its time in, for these programs). A binary
whose log has no phases (an older build) shows only the batch totals.
Figures, not a test: the machine's load moves them; compare binaries from
one run.
"""

import argparse
import os
import re
import statistics
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BATCH = re.compile(r"batch of (\d+) \((\d+) lowered\) in ([0-9.]+) ms(?:: (.*))?")
PHASE = re.compile(r"(waited|lowering|compiling|assembling and linking|loading|"
                   r"cache and delivery|cpu|child processes) ([0-9.]+)")
INSTALLED = re.compile(r"installed (\S+) [0-9a-f]+ ([0-9.]+) ms after it got hot, after (\d+) calls")
PHASES = ("waited", "compiling", "assembling and linking", "loading", "cpu", "child processes")


def one_run(sxpool, prog, threshold):
    env = dict(os.environ, SXPOOL_JIT_VERBOSE="1")
    args = [sxpool, "eval", "--tier=jit"]
    if threshold is not None:
        args.append("--jit-threshold=%d" % threshold)
    p = subprocess.run(args + [prog], capture_output=True, text=True, env=env, timeout=600)
    if p.returncode != 0:
        raise SystemExit("%s %s failed: %s" % (sxpool, prog, p.stderr[-500:]))
    batches = [m for m in map(BATCH.search, p.stderr.splitlines()) if m]
    installed = [m for m in map(INSTALLED.search, p.stderr.splitlines()) if m]
    row = {"batches": len(batches)}
    if batches:
        row["first batch"] = float(batches[0].group(3))
        for name, ms in PHASE.findall(batches[0].group(4) or ""):
            row[name] = float(ms)
    if installed:
        row["hot->installed"] = float(installed[0].group(2))
        row["vm calls"] = int(installed[0].group(3))
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sxpool", nargs="*")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--programs")
    ap.add_argument("--threshold", type=int)
    a = ap.parse_args()
    bins = [os.path.abspath(b) for b in a.sxpool] or [os.path.join(ROOT, "build", "sxpool")]
    lang = os.path.join(ROOT, "bench", "lang")
    programs = (a.programs.split(",") if a.programs else
                sorted(f[:-3] for f in os.listdir(lang) if f.endswith(".sx")))
    load = os.getloadavg()
    rows = {}
    for _ in range(a.runs):  # binaries interleaved, so that they share the load
        for prog in programs:
            for b in bins:
                r = one_run(b, os.path.join(lang, prog + ".sx"), a.threshold)
                for k, v in r.items():
                    rows.setdefault((prog, b), {}).setdefault(k, []).append(v)
    print("load average before: %.2f %.2f %.2f, after: %.2f %.2f %.2f" % (load + os.getloadavg()))
    for i, b in enumerate(bins):
        print("[%d] %s" % (i, b))
    cols = ["batches", "first batch"] + list(PHASES) + ["hot->installed", "vm calls"]
    print("medians over %d runs (ms; first batch = the first batch's total)" % a.runs)
    print("%-12s %3s " % ("program", "bin") + " ".join("%10s" % c[:10] for c in cols))
    for prog in programs:
        for i, b in enumerate(bins):
            r = rows[(prog, b)]
            cells = []
            for c in cols:
                v = r.get(c)
                if not v or len(v) < a.runs and c not in ("hot->installed", "vm calls"):
                    cells.append("%10s" % "-")
                elif c == "vm calls":
                    cells.append("%10d" % statistics.median(v))
                else:
                    cells.append("%10.1f" % statistics.median(v))
            print("%-12s %3d " % (prog, i) + " ".join(cells))


if __name__ == "__main__":
    main()
