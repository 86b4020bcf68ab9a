#!/usr/bin/env python3
"""Compile time per function over the conformance suite, side by side.

    bench/jit/compile_dist.py SXPOOL [SXPOOL2 ...]

Runs every conformance file (../shared/conformance and tests/conformance)
and a program of 80 nested single-use lambdas with `eval --tier=jit
--jit-threshold=0`, once per binary in turn (so binaries compared share the
machine's load), and reads the compile thread's `batch of N (M lowered) in
T ms` lines (SXPOOL_JIT_VERBOSE): each function of a batch is charged T/M.
Prints, per binary, the median, p99 and maximum per function and the total
compile time of the nested-lambda program. Figures, not a test: compare
binaries from one run, and repeat on a noisy machine.
"""

import glob
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BATCH = re.compile(r"batch of (\d+) \((\d+) lowered\) in ([0-9.]+) ms")


def nested_lambdas(n):
    def build(i):
        if i == n:
            return "(+ x1 x%d)" % n
        return "((lambda (x%d) %s) (+ x%d 1))" % (i + 1, build(i + 1), i)
    return "(define (f x0) %s)\n(print (f 1))\n" % build(0)


def main():
    bins = sys.argv[1:]
    if not bins:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="sxcompile-") as tmp:
        nest = os.path.join(tmp, "nested80.sx")
        with open(nest, "w") as f:
            f.write(nested_lambdas(80))
        files = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "conformance", "*.sx")))
        files += sorted(glob.glob(os.path.join(ROOT, "tests", "conformance", "*.sx")))
        per = {b: [] for b in bins}
        nested = {}
        env = dict(os.environ, SXPOOL_JIT_VERBOSE="1")
        for path in files + [nest]:
            for b in bins:
                p = subprocess.run([b, "eval", "--tier=jit", "--jit-threshold=0", path],
                                   capture_output=True, text=True, env=env, timeout=300)
                total = 0.0
                for m in BATCH.finditer(p.stderr):
                    lowered, ms = int(m.group(2)), float(m.group(3))
                    total += ms
                    if lowered and path != nest:
                        per[b] += [ms / lowered] * lowered
                if path == nest:
                    nested[b] = total
    for b in bins:
        xs = sorted(per[b])
        p99 = xs[min(len(xs) - 1, int(0.99 * len(xs)))]
        print("%s: %d functions; per function median %.1f ms, p99 %.1f ms, max %.1f ms; "
              "80 nested lambdas: %.0f ms" % (b, len(xs), statistics.median(xs), p99, xs[-1],
                                              nested.get(b, float("nan"))))


if __name__ == "__main__":
    main()
