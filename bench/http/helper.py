#!/usr/bin/env python3
"""Helpers for bench/http/run.sh.

  helper.py port                     print a free TCP port on 127.0.0.1
  helper.py wait URL SECONDS PID     wait until URL answers (any HTTP status);
                                     fails early if process PID has ended
  helper.py get URL FILE             GET URL, write the body to FILE; fails
                                     unless the status is 200
  helper.py table OUTDIR WORKLOADS SERVERS RUNS
                                     print the results table from the wrk
                                     outputs OUTDIR/WORKLOAD.SERVER.N.txt
  helper.py chaos OUTDIR SERVERS     print the chaos table from
                                     OUTDIR/chaos.SERVER.txt and .kills
"""
import re
import socket
import sys
import time
import urllib.error
import urllib.request

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def running(pid):
    try:
        with open("/proc/%s/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait(url, seconds, pid):
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        if not running(pid):
            print("helper: process %s ended before %s answered" % (pid, url), file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                r.read()
            return 0
        except urllib.error.HTTPError:
            return 0
        except (OSError, urllib.error.URLError):
            time.sleep(0.1)
    print("helper: %s did not answer within %s s" % (url, seconds), file=sys.stderr)
    return 1


def get(url, path):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except (OSError, urllib.error.URLError) as e:
        print("helper: GET %s: %s" % (url, e), file=sys.stderr)
        return 1
    with open(path, "wb") as f:
        f.write(body)
    if status != 200:
        print("helper: GET %s: status %d" % (url, status), file=sys.stderr)
        return 1
    return 0


def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(path):
    """Requests/s, p50 and p99 (ms), requests, non-2xx/3xx, socket errors."""
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return None
    r = {"rps": None, "p50": None, "p99": None, "requests": None, "non2xx": 0, "sockerr": 0}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    if m:
        r["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            r[key] = ms(m.group(1))
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        r["sockerr"] = sum(int(x) for x in m.groups())
    return r


def fmt_ms(v):
    if v is None:
        return "-"
    return "%.2f" % v if v < 100 else "%.0f" % v


def render(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    out = []
    for i, row in enumerate([header] + rows):
        cells = []
        for j, (cell, w) in enumerate(zip(row, widths)):
            cells.append(str(cell).ljust(w) if j < 2 else str(cell).rjust(w))
        out.append("| " + " | ".join(cells) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 1) + (":" if j >= 2 else "-")
                                      for j, w in enumerate(widths)) + "|")
    print("\n".join(out))


def table(outdir, workloads, servers, runs):
    header = ["workload", "server", "req/s", "p50 ms", "p99 ms", "vs nginx-lua", "errors"]
    rows, status = [], 0
    for wl in workloads.split(","):
        medians = {}
        for srv in servers.split(","):
            results = []
            for n in range(1, int(runs) + 1):
                r = parse_wrk("%s/%s.%s.%d.txt" % (outdir, wl, srv, n))
                if r and r["rps"] is not None:
                    results.append(r)
            if len(results) < int(runs):
                status = 1
            if results:
                results.sort(key=lambda r: r["rps"])
                medians[srv] = results[(len(results) - 1) // 2]
        base = medians.get("nginx-lua")
        for srv in servers.split(","):
            r = medians.get(srv)
            if r is None:
                rows.append([wl, srv, "failed", "-", "-", "-", "-"])
                continue
            ratio = "%.2f" % (r["rps"] / base["rps"]) if base and base["rps"] else "-"
            rows.append([wl, srv, "%.0f" % r["rps"], fmt_ms(r["p50"]), fmt_ms(r["p99"]),
                         ratio, r["non2xx"] + r["sockerr"]])
    render(header, rows)
    return status


def chaos(outdir, servers):
    header = ["workload", "server", "requests", "kills", "non-2xx/3xx", "socket errors", "failed"]
    rows, status = [], 0
    for srv in servers.split(","):
        r = parse_wrk("%s/chaos.%s.txt" % (outdir, srv))
        try:
            kills = sum(1 for _ in open("%s/chaos.%s.kills" % (outdir, srv)))
        except OSError:
            kills = 0
        if not r or r["requests"] is None:
            rows.append(["/fib?n=20", srv, "failed", kills, "-", "-", "-"])
            status = 1
            continue
        rows.append(["/fib?n=20", srv, r["requests"], kills, r["non2xx"], r["sockerr"],
                     r["non2xx"] + r["sockerr"]])
    render(header, rows)
    return status


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "port" and len(argv) == 2:
        free_port()
        return 0
    if cmd == "wait" and len(argv) == 5:
        return wait(argv[2], argv[3], argv[4])
    if cmd == "get" and len(argv) == 4:
        return get(argv[2], argv[3])
    if cmd == "table" and len(argv) == 6:
        return table(*argv[2:])
    if cmd == "chaos" and len(argv) == 4:
        return chaos(*argv[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
