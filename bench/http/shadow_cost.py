#!/usr/bin/env python3
"""What shadow verification costs /fib?n=20, measured in pairs.

  shadow_cost.py [--sxpool=PATH] [--rates=off,0,0.01,0.1] [--rounds=10]
                 [--seconds=3] [--warmup=8] [--connections=64]

One pool per rate (sxpool --workers=2 --cek-workers=1 --shadow-rate=R, the
bench app, the default canary and budget; "off" is --shadow-canary=0
--shadow-rate=0, no shadow verification at all), all started at once and each warmed up with
wrk past the JIT threshold and the canary period. Then rounds: in each round
every pool is driven in turn (the order rotates from round to round) with
`wrk -t1 -cC -dSs /fib?n=20` while the others are idle, and each pool's
req/s is divided by the first rate's in the same round. Pairing within a
round cancels most of a shared machine's drift; the table gives the median
ratio over the rounds, its range, and the pool's shadow counters from
/metrics, with the CEK time spent on samples as a share of the two JIT
workers' time over the rounds (which --shadow-budget bounds). Every process started is stopped by its pid (its process group
on a timeout) before the script ends.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from sxbench import free_port, get, stop, wait_ready

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))





def wrk(port, seconds, connections):
    out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
                          "http://127.0.0.1:%d/fib?n=20" % port],
                         capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not m:
        raise SystemExit("no Requests/sec in wrk's output:\n" + out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        raise SystemExit("wrk saw %s non-2xx responses" % bad.group(1))
    return float(m.group(1))


def counters(admin_port):
    text = get("http://127.0.0.1:%d/metrics" % admin_port)
    want = {}
    for line in text.splitlines():
        if line.startswith("sxpool_shadow_"):
            name, _, value = line.rpartition(" ")
            want[name] = float(value)
    return want



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sxpool", default=os.path.join(ROOT, "build", "sxpool"))
    ap.add_argument("--rates", default="off,0,0.01,0.1")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--connections", type=int, default=64)
    a = ap.parse_args()
    rates = a.rates.split(",")
    work = tempfile.mkdtemp(prefix="shadow-cost.")
    pools = []
    try:
        for r in rates:
            port, admin = free_port(), free_port()
            log = open(os.path.join(work, "sxpool-%s.log" % r), "w")
            shadow = (["--shadow-canary=0", "--shadow-rate=0"] if r == "off"
                      else ["--shadow-rate=" + r])
            p = subprocess.Popen([a.sxpool, "--workers=2", "--cek-workers=1"] + shadow +
                                 ["--listen=127.0.0.1:%d" % port,
                                  "--admin=127.0.0.1:%d" % admin,
                                  "--app=" + os.path.join(HERE, "apps", "sxpool"),
                                  "--data=" + os.path.join(work, "data-" + r)],
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True)
            pools.append({"rate": r, "port": port, "admin": admin, "proc": p, "rps": []})
        for pool in pools:
            wait_ready("http://127.0.0.1:%d/setup" % pool["port"], pool["proc"])
            wrk(pool["port"], a.warmup, a.connections)
        before = [counters(p["admin"]) for p in pools]
        for p in pools:
            p["t0"] = time.monotonic()
        ratios = {p["rate"]: [] for p in pools}
        for rnd in range(a.rounds):
            order = pools[rnd % len(pools):] + pools[:rnd % len(pools)]
            got = {}
            for pool in order:
                got[pool["rate"]] = wrk(pool["port"], a.seconds, a.connections)
                pool["rps"].append(got[pool["rate"]])
            for r in rates:
                ratios[r].append(got[r] / got[rates[0]])
            print("round %d: %s" % (rnd + 1, "  ".join("%s=%.0f" % (r, got[r]) for r in rates)),
                  file=sys.stderr)
        after = [counters(p["admin"]) for p in pools]
        print("| `--shadow-rate` | req/s, median | ratio to %s, median (min–max) "
              "| sample runs | skipped: busy | skipped: budget | CEK time on samples "
              "| mismatches |" % rates[0])
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        measured = a.rounds * a.seconds
        for pool, b, e in zip(pools, before, after):
            def d(name):
                keys = [k for k in e if k.startswith(name)]
                return sum(e[k] - b.get(k, 0) for k in keys)
            rs = ratios[pool["rate"]]
            # over the whole rounds, idle time between a pool's runs included
            wall = (time.monotonic() - pool["t0"]) if pool.get("t0") else measured
            spent = d("sxpool_shadow_sample_seconds_total")
            print("| %s | %.0f | %.3f (%.3f–%.3f) | %d | %d | %d | %.2f s (%.2f %% of 2 "
                  "workers' %.0f s) | %d |" % (
                      pool["rate"], statistics.median(pool["rps"]), statistics.median(rs),
                      min(rs), max(rs), d('sxpool_shadow_runs_total{kind="sample"'),
                      d('sxpool_shadow_skipped_total{reason="busy"'),
                      d('sxpool_shadow_skipped_total{reason="budget"'), spent,
                      100 * spent / (2 * wall), wall, d("sxpool_shadow_mismatches_total")))
        print("\n%d rounds of %d s per pool, wrk -t1 -c%d; load average %s" % (
            a.rounds, a.seconds, a.connections, " ".join(open("/proc/loadavg").read().split()[:3])))
    finally:
        for pool in pools:
            stop(pool["proc"])
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
