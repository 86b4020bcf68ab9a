#!/usr/bin/env python3
"""The conformance suite on the jit tier, with its coverage asserted.

    run-jit.py --runner=RUN.SH --jit-threshold=N [--min-native=F]
               [--require-native] [--reports=DIR] SXPOOL FILE.sx...

Runs each FILE through the shared runner (RUN.SH --tier=jit
--jit-threshold=N --jit-report=REPORT SXPOOL FILE: the runner's own checks
of stdout, stderr and exit status), then reads each file's coverage report
(`sxpool eval --jit-report`, format in jit/README.md) and fails when:

  - the runner failed the file, or the file left no complete report;
  - a function was refused for a reason that is not a documented limit
    (LIMITS below), or a compile failed (functions-failed > 0);
  - --min-native=F: over the whole run, calls-native / (calls-native +
    calls-vm) < F;
  - --require-native: no call ran native code in the whole run.

Prints one line per file (compiled, refused, native and VM calls), the
totals with the refusals by reason, and the compile time per function
(each function's share of its batch). Exit status 0 iff nothing failed.
"""

import argparse
import collections
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import jit_report  # noqa: E402

# Refusals that are documented limits of the native tier, not bugs. Every
# other reason (guard, lowering, build-off, ...) fails the run.
LIMITS = {
    # a function whose lowering would be too large is refused (with this
    # reason in the report) rather than allowed to stall the compile
    "too-large": "the function's lowering would be too large to compile in bounded time",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", required=True)
    ap.add_argument("--jit-threshold", required=True, type=int)
    ap.add_argument("--min-native", type=float)
    ap.add_argument("--require-native", action="store_true")
    ap.add_argument("--reports")
    ap.add_argument("sxpool")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    tmp = None
    if a.reports:
        os.makedirs(a.reports, exist_ok=True)
        reports = a.reports
    else:
        tmp = tempfile.TemporaryDirectory(prefix="sxconf-jit-")
        reports = tmp.name

    failures = []
    failed_files = set()
    total = collections.Counter()
    reasons = collections.Counter()
    no_native = []
    compile_ms = []  # (ms, file, function)
    print(f"{'file':34} {'compiled':>8} {'refused':>7} {'native':>10} {'vm':>10}  share")
    for path in a.files:
        name = os.path.basename(path)[:-3] if path.endswith(".sx") else os.path.basename(path)
        report = os.path.join(reports, name + ".report")
        if os.path.exists(report):
            os.unlink(report)
        p = subprocess.run(["bash", a.runner, "--tier=jit", f"--jit-threshold={a.jit_threshold}",
                            "--jit-report=" + report, a.sxpool, path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            sys.stdout.write(p.stdout)
            failures.append(f"{name}: the conformance runner failed it")
            failed_files.add(name)
        r = jit_report.read(report)
        if r is None:
            failures.append(f"{name}: no complete coverage report at {report}")
            failed_files.add(name)
            continue
        counts, refused = r.counts, r.refused
        compile_ms += [(c.ms, name, c.name) for c in r.compiled]
        total.update(counts)
        calls = counts["calls-native"] + counts["calls-vm"]
        share = f"{counts['calls-native'] / calls:6.1%}" if calls else "     -"
        print(f"{name:34} {counts['functions-compiled']:8} {counts['functions-refused']:7} "
              f"{counts['calls-native']:10} {counts['calls-vm']:10} {share}")
        if calls and counts["calls-native"] == 0:
            no_native.append(name)
        undocumented = collections.defaultdict(list)  # reason -> ["name (hash)"]
        for fn, hsh, why in refused:
            reasons[why] += 1
            if why not in LIMITS:
                undocumented[why].append(f"{fn} ({hsh})")
        for why, fns in sorted(undocumented.items()):
            failed_files.add(name)
            shown = ", ".join(fns[:4]) + (f" and {len(fns) - 4} more" if len(fns) > 4 else "")
            failures.append(f"{name}: refused as '{why}', not a documented limit "
                            f"({', '.join(sorted(LIMITS))}): {shown}")
        if counts["functions-failed"]:
            failed_files.add(name)
            failures.append(f"{name}: {counts['functions-failed']} function(s) failed to compile")

    native, vm = total["calls-native"], total["calls-vm"]
    share = native / (native + vm) if native + vm else 0.0
    print(f"threshold {a.jit_threshold}: {len(a.files)} files; functions compiled "
          f"{total['functions-compiled']}, refused {total['functions-refused']}"
          + (" (" + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) + ")"
             if reasons else "")
          + f", failed {total['functions-failed']}; calls native {native}, vm {vm} "
          f"({share:.2%} native); top-level forms {total['toplevel-forms']}; "
          f"files with calls but none native: {len(no_native)}"
          + (f" ({' '.join(no_native)})" if no_native else ""))
    if compile_ms:
        ms = sorted(compile_ms)
        worst = ms[-1]
        print(f"compile time per function ({len(ms)} compiled): median {ms[len(ms) // 2][0]:.1f} ms, "
              f"p99 {ms[min(len(ms) - 1, len(ms) * 99 // 100)][0]:.1f} ms, "
              f"max {worst[0]:.1f} ms ({worst[2]} in {worst[1]})")
    if a.min_native is not None and share < a.min_native:
        failures.append(f"suite: {share:.2%} of calls ran native code, expected at least "
                        f"{a.min_native:.0%} (native {native}, vm {vm})")
    if a.require_native and native == 0:
        failures.append(f"suite: no call ran native code (vm {vm})")
    for f in failures:
        print("FAIL " + f)
    print(f"{len(a.files) - len(failed_files)} of {len(a.files)} files passed, "
          f"{len(failures)} failure(s) (tier jit, threshold {a.jit_threshold})")
    if tmp:
        tmp.cleanup()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
