#!/usr/bin/env python3
"""What a warm code cache saves: cold against warm runs of the native tier.

    python3 bench/jit/warm_cache.py [SXPOOL...] [--rounds=N] [--requests=N]
                                     [--only=eval|worker] [--programs=P,...]

Compares cold and warm runs of one or more sxpool binaries (default
build/sxpool), interleaved so that the load of a shared machine, which
drifts over minutes, falls on every column alike.

eval: each program of bench/lang (*.sx, or --programs) runs under `sxpool
eval --tier=jit --jit-cache=DIR` (default threshold). Each round is one
hyperfine call (--shell=none, --runs=2) timing, for every binary, a cold
run (DIR emptied before each run by --prepare) and a warm one (DIR as the
previous runs of the same command left it; filled by one run before the
first round); the median is over all rounds' runs.

worker: a server with one JIT worker and one CEK worker on a data
directory, the app of bench/http; the time from the first request to the
last of --requests sequential `GET /fib?n=20` once the server reports its
workers ready. Each round starts, for every binary, a cold server (DATA/
jit-cache removed before the start) and a warm one (kept from the previous
start); median over the rounds. Every server started is stopped by its pid
(tests/integration/sxtest.py's Server).

Prints the load average and one table: median seconds cold and warm, and
warm/cold, per binary.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import sxtest  # noqa: E402


def eval_rows(binaries, rounds, programs, tmp):
    rows = []
    lang = os.path.join(ROOT, "bench", "lang")
    for name in programs:
        prog = os.path.join(lang, name + ".sx")
        args, cmds = [], {}
        for b, sxpool in enumerate(binaries):
            cold, warm = os.path.join(tmp, "%s-%d-cold" % (name, b)), os.path.join(tmp, "%s-%d-warm" % (name, b))
            os.mkdir(warm, 0o700)
            cmd = "%s eval --tier=jit --jit-cache=%%s %s" % (sxpool, prog)
            subprocess.run(cmd.split() [:3] + ["--jit-cache=" + warm, prog], check=True,
                           stdout=subprocess.DEVNULL)
            args += ["--prepare", "sh -c 'rm -rf %s && mkdir -m 700 %s'" % (cold, cold),
                     "-n", "cold%d" % b, cmd % cold,
                     "--prepare", "true", "-n", "warm%d" % b, cmd % warm]
        times = {}
        for r in range(rounds):
            out = os.path.join(tmp, "%s.%d.json" % (name, r))
            subprocess.run(["hyperfine", "--shell=none", "--style=none", "--runs=2",
                            "--export-json=" + out] + args, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            with open(out) as f:
                for res in json.load(f)["results"]:
                    times.setdefault(res["command"], []).extend(res["times"])
        rows.append(("eval " + name, [(statistics.median(times["cold%d" % b]),
                                       statistics.median(times["warm%d" % b]))
                                      for b in range(len(binaries))]))
    return rows


def serve_time(sxpool, data, requests):
    sxtest._SXPOOL = sxpool
    app = os.path.join(ROOT, "bench", "http", "apps", "sxpool")
    with sxtest.Server(app=app, workers=1, cek_workers=1, data=data, echo=False) as s:
        conn = s.connection()
        t0 = time.monotonic()
        for _ in range(requests):
            r = sxtest.send(conn, "GET", "/fib?n=20")
            if r.status != 200 or r.body != b"6765\n":
                sys.exit("worker: unexpected answer %r" % (r,))
        t = time.monotonic() - t0
        conn.close()
    return t


def worker_row(binaries, rounds, requests, tmp):
    times = {}
    for b, sxpool in enumerate(binaries):
        serve_time(sxpool, os.path.join(tmp, "data%d" % b), requests)  # fills the cache
    for _ in range(rounds):
        for b, sxpool in enumerate(binaries):
            data = os.path.join(tmp, "data%d" % b)
            shutil.move(os.path.join(data, "jit-cache"), os.path.join(tmp, "kept%d" % b))
            times.setdefault(("cold", b), []).append(serve_time(sxpool, data, requests))
            shutil.rmtree(os.path.join(data, "jit-cache"))
            shutil.move(os.path.join(tmp, "kept%d" % b), os.path.join(data, "jit-cache"))
            times.setdefault(("warm", b), []).append(serve_time(sxpool, data, requests))
    return ("worker %d x /fib?n=20" % requests,
            [(statistics.median(times[("cold", b)]), statistics.median(times[("warm", b)]))
             for b in range(len(binaries))])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sxpool", nargs="*")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--only", choices=("eval", "worker"))
    ap.add_argument("--programs")
    a = ap.parse_args()
    binaries = [os.path.abspath(p) for p in a.sxpool] or [os.path.join(ROOT, "build", "sxpool")]
    lang = os.path.join(ROOT, "bench", "lang")
    programs = (a.programs.split(",") if a.programs else
                sorted(f[:-3] for f in os.listdir(lang) if f.endswith(".sx")))
    load = os.getloadavg()
    tmp = tempfile.mkdtemp(prefix="sx-warm-cache-")
    try:
        rows = []
        if a.only != "worker":
            rows += eval_rows(binaries, a.rounds, programs, tmp)
        if a.only != "eval":
            rows.append(worker_row(binaries, a.rounds, a.requests, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("load average before: %.2f %.2f %.2f, after: %.2f %.2f %.2f" % (load + os.getloadavg()))
    for b, path in enumerate(binaries):
        print("[%d] %s" % (b, path))
    head = "%-26s" % "median seconds"
    for b in range(len(binaries)):
        head += " %8s %8s %6s" % ("cold[%d]" % b, "warm[%d]" % b, "w/c")
    print(head)
    for name, cells in rows:
        line = "%-26s" % name
        for c, w in cells:
            line += " %8.3f %8.3f %6.2f" % (c, w, w / c)
        print(line)


if __name__ == "__main__":
    main()
