#!/usr/bin/env python3
"""Where a request's time goes, stage by stage.

  stages.py SXPOOL [--workloads=hello,fib,rows] [--connections=1]
            [--seconds=5] [--warmup=3] [--out=FILE]

SXPOOL must be a build with per-request stage timestamps
(cmake -DSXPOOL_STAGES=ON; see ipc/ipc_stage.h). For each workload a fresh
pool (sxpool --workers=2 --cek-workers=1, bench/http's app) runs with
SXPOOL_STAGES set to a temporary directory; wrk warms it up, then drives it
for the measured run (`wrk -t1 -cC -dSs`). The pool is stopped (SIGTERM,
so every process writes what it buffered) and the records of the requests
that arrived during the measured run are joined by request id. The table
gives the median and 99th percentile, in microseconds, of each step:

  parse      first byte read -> request parsed and queued (supervisor)
  queue      queued -> a worker is free and the request's frame encoded
  hop in     the frame written (a system call that wakes the worker) and
             read by the worker
  prepare    frame read -> request value built (response-record lookup,
             store transaction begun, the request's dict)
  handler    the handler's run
  encode     the response's frame encoded
  store      the store transaction ended (a commit when the handler wrote)
  reply      the worker's bookkeeping before it writes the response
  hop out    the frame written (waking the supervisor), read and decoded
  respond    the HTTP response serialized and handed to the socket
  total      first byte read -> response handed to the socket

CLOCK_MONOTONIC is shared by every process on the machine, so steps that
cross processes subtract times taken in two of them. With one connection
nothing queues and the hops show the wake-up of a waiting process; with
many, queueing dominates. Every process started is stopped by its pid.
"""
import argparse
import glob
import os
import struct
import subprocess
import sys
import tempfile
import time

from sxbench import free_port, stop, wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))
PATHS = {"hello": "/", "fib": "/fib?n=20", "rows": "/rows"}
(ARRIVED, PARSED, SENT, RECEIVED, BUILT, HANDLED, ENCODED, COMMITTED, REPLIED, ANSWERED,
 WRITTEN) = range(1, 12)
STEPS = [("parse", ARRIVED, PARSED), ("queue", PARSED, SENT), ("hop in", SENT, RECEIVED),
         ("prepare", RECEIVED, BUILT), ("handler", BUILT, HANDLED),
         ("encode", HANDLED, ENCODED), ("store", ENCODED, COMMITTED),
         ("reply", COMMITTED, REPLIED), ("hop out", REPLIED, ANSWERED),
         ("respond", ANSWERED, WRITTEN), ("total", ARRIVED, WRITTEN)]




def wrk(url, seconds, connections):
    subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, url],
                   stdout=subprocess.DEVNULL, timeout=seconds + 30, check=True)



def read_records(d):
    """{request id: {stage: first time}}"""
    reqs = {}
    for path in glob.glob(os.path.join(d, "stages.*")):
        with open(path, "rb") as f:
            data = f.read()
        for rid, stage, ns in struct.iter_unpack("=QQQ", data[:len(data) - len(data) % 24]):
            st = reqs.setdefault(rid, {})
            if stage not in st:
                st[stage] = ns
    return reqs


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def measure(a, workload, work):
    d = os.path.join(work, workload)
    os.makedirs(d)
    port = free_port()
    env = dict(os.environ, SXPOOL_STAGES=d)
    log = open(os.path.join(work, workload + ".log"), "w")
    proc = subprocess.Popen([a.sxpool, "--workers=2", "--cek-workers=1",
                             "--listen=127.0.0.1:%d" % port,
                             "--app=" + os.path.join(HERE, "apps", "sxpool"),
                             "--data=" + os.path.join(work, workload + ".data")],
                            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True)
    try:
        base = "http://127.0.0.1:%d" % port
        wait_ready(base + "/setup", proc)
        wrk(base + PATHS[workload], a.warmup, a.connections)
        start = time.monotonic_ns()
        wrk(base + PATHS[workload], a.seconds, a.connections)
    finally:
        stop(proc)
    reqs = read_records(d)
    done = [st for st in reqs.values()
            if all(s in st for s in range(ARRIVED, WRITTEN + 1)) and st[ARRIVED] >= start]
    if not done:
        raise SystemExit("%s: no complete stage records (is %s built with -DSXPOOL_STAGES=ON?)"
                         % (workload, a.sxpool))
    return {name: [(st[b] - st[e0]) / 1000.0 for st in done] for name, e0, b in STEPS}, len(done)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sxpool")
    ap.add_argument("--workloads", default="hello,fib,rows")
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=3)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="sxpool-stages.")
    try:
        results = []
        for w in a.workloads.split(","):
            if w not in PATHS:
                raise SystemExit("unknown workload %s (hello, fib, rows)" % w)
            results.append((w,) + measure(a, w, work))
        names = [w for w, _, _ in results]
        print("| step | " + " | ".join("%s p50 | %s p99" % (w, w) for w in names) + " |")
        print("|---|" + "---:|---:|" * len(names))
        for name, _, _ in STEPS:
            cells = []
            for _, steps, _ in results:
                cells += ["%.1f" % pct(steps[name], 0.5), "%.1f" % pct(steps[name], 0.99)]
            print("| %s | %s |" % (name, " | ".join(cells)))
        print("\nmicroseconds; %s requests; wrk -t1 -c%d -d%ds after %d s of warm-up; "
              "load average %s" % (", ".join("%s %d" % (w, n) for w, _, n in results),
                                   a.connections, a.seconds, a.warmup,
                                   " ".join(open("/proc/loadavg").read().split()[:3])))
    finally:
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    sys.exit(main())
