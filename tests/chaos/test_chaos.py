"""Chaos, the suite's main run (test_chaos_processes): sxpool-test on an
ephemeral port with the chaos app (tests/chaos/app), 4 JIT workers and 1 CEK
worker, --timeout=2. Load comes from separate client processes, each on a
keep-alive connection: GETs that compute, POSTs that increment one of
several counters, and a few POST /incr-die, whose worker the test hook
exit-after-commit kills right after its commit (a kill aimed at the commit
window: the request must be answered from its response record). Meanwhile
workers are SIGKILLed at random, and one JIT worker is SIGSTOPped for longer
than --timeout and then continued.

Every client-side error (a transport failure, a client process that fails)
fails the test. A status other than 200 is allowed only as a 502 (two
deaths each, each logged) or a 504 (one per SIGSTOP). At the end: every GET
answered 200 has the right body; every increment got exactly one response;
each counter equals its increments answered 200, and those answers handed
out 1..N once each; `mdb_stat -e` and `mdb_stat -r` on the data directory
succeed and no reader slot belongs to a dead pid; the pool is back to full
size; the supervisor's RSS grew less than 10 % from after the warm-up to
the end. 20 s by default; --duration=SECS for long runs, --no-kills for a
latency baseline (no kills, no SIGSTOP), --transport=nng to run the pool on
the nng transport (ctest runs both transports), --inflight=N with
--jit-workers=M to hold more requests than workers (ctest runs --inflight=4
with 2 JIT workers: the SIGSTOPped worker holds requests sent ahead, which
must be taken back and run elsewhere, /metrics says). The processes
(sxpool, its workers, the clients) are stopped by pid.

Chaos.run_chaos (below the main run) is the thread-based run that
test_chaos_recycle.py uses.
"""

import json
import multiprocessing
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import sxtest  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "app")
JIT_WORKERS = 4
CEK_WORKERS = 1
CLIENTS = 4
KEYS = ("a", "b", "c")
PER_CLIENT = 4000   # at most; clients stop when the killing does
KILL_SECONDS = 8.0
MAX_KILLS = 80
MAX_TRANSPORT_FAILURES = 20  # a client stops early after this many (each fails the test)


def sum_squares(n):
    return (n - 1) * n * (2 * n - 1) // 6


DURATION = 20.0   # seconds of load; --duration=SECS
KILLS = True      # --no-kills: a latency baseline
EXTRA_ARGS = []    # --transport=unix|nng, --inflight=N: passed on to sxpool
INFLIGHT = 0       # --inflight=N: also checks that requests were taken back (/metrics)
TIMEOUT = 4       # sxpool --timeout
PROC_CLIENTS = 4
PROC_KEYS = ("a", "b", "c", "d", "e")
DIE_EVERY = 4.0   # seconds between a client's POSTs to /incr-die (each one a crash,
                  # so few enough that no slot reaches the crash backoff)
WARMUP = 3.0      # seconds of load before the supervisor's RSS is sampled


def client_main(host, port, idx, seconds, out, die):
    """One client process: requests for `seconds`, then a JSON line per
    request to out: [kind, detail, status or None, body or error, ms].
    die: whether to POST to /incr-die every DIE_EVERY seconds."""
    import http.client
    rng = random.Random(1000 + idx)
    recs = []
    conn = http.client.HTTPConnection(host, port, timeout=60)
    end = time.monotonic() + seconds
    next_die = time.monotonic() + rng.uniform(0, DIE_EVERY)
    die_on = die
    while time.monotonic() < end:
        x = rng.random()
        if x < 0.45:
            n = rng.randrange(1000, 20000)
            kind, detail, method, path = "compute", n, "GET", "/compute?n=%d" % n
        else:
            k = rng.choice(PROC_KEYS)
            die = die_on and time.monotonic() >= next_die
            if die:
                next_die += DIE_EVERY
            kind, detail, method = ("die" if die else "incr"), k, "POST"
            path = ("/incr-die?k=" if die else "/incr?k=") + k
        t = time.monotonic()
        try:
            conn.request(method, path, body=b"" if method == "POST" else None)
            r = conn.getresponse()
            body = r.read().decode("utf-8", "replace")
            recs.append([kind, detail, r.status, body, (time.monotonic() - t) * 1000])
        except Exception as e:  # noqa: BLE001 (a client-side error: recorded, fails the test)
            recs.append([kind, detail, None, repr(e), (time.monotonic() - t) * 1000])
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.close()
    with open(out, "w") as f:
        for r in recs:
            f.write(json.dumps(r) + "\n")


def taken_back(srv):
    """sxpool_requests_taken_back_total by reason, from the admin listener."""
    return {k: int(v) for k, v in
            re.findall(r'^sxpool_requests_taken_back_total\{reason="(\w+)"\} (\d+)$',
                       srv.metrics(), re.M)}


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def percentile(xs, p):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


class Chaos(unittest.TestCase):
    def test_chaos_processes(self):
        with tempfile.TemporaryDirectory(prefix="sxpool-chaos-") as tmp:
            data = os.path.join(tmp, "data")
            env = {"SXPOOL_TEST_HOOK": "exit-after-commit:/incr-die"}
            with sxtest.Server(app=APP, workers=JIT_WORKERS, cek_workers=CEK_WORKERS,
                               data=data, env=env, echo=False,
                               args=["--timeout=%d" % TIMEOUT] + EXTRA_ARGS) as srv:
                try:
                    self.run_processes(srv, tmp, data)
                except BaseException:
                    with srv._cond:
                        tail = srv.lines[-60:]
                    sys.stderr.write("chaos: the log's last lines:\n" + "\n".join(tail) + "\n")
                    raise

    def run_processes(self, srv, tmp, data):
        ctx = multiprocessing.get_context("spawn")
        mark = srv.log_size()
        outs = [os.path.join(tmp, "client-%d.jsonl" % i) for i in range(PROC_CLIENTS)]
        procs = [ctx.Process(target=client_main,
                             args=(srv.host, srv.port, i, DURATION, outs[i], KILLS))
                 for i in range(PROC_CLIENTS)]
        t0 = time.monotonic()
        for p in procs:
            p.start()
        kills, stops = [], []
        rss0 = None
        rng = random.Random(4321)
        stop_at = t0 + (DURATION * 0.4 if KILLS else 1e9)
        stopped = None  # (pid, when to continue it)
        try:
            while time.monotonic() < t0 + DURATION:
                now = time.monotonic()
                if rss0 is None and now >= t0 + WARMUP:
                    rss0 = vmrss_kb(srv.proc.pid)
                if stopped and now >= stopped[1]:
                    if sxtest.pid_alive(stopped[0]) and sxtest.is_worker(stopped[0]):
                        os.kill(stopped[0], signal.SIGCONT)
                    stopped = None
                time.sleep(rng.uniform(0.1, 0.4))
                if not KILLS:
                    continue
                pids = [p for p in srv.worker_pids() if not stopped or p != stopped[0]]
                if not pids:
                    continue
                if not stops and time.monotonic() >= stop_at:
                    jit = [p for p in srv.worker_pids("jit") if p in srv.ready_pids()]
                    if jit:
                        pid = rng.choice(jit)
                        os.kill(pid, signal.SIGSTOP)
                        stops.append(pid)
                        stopped = (pid, time.monotonic() + TIMEOUT + 1.5)
                        sys.stderr.write("chaos: SIGSTOP worker pid %d for %.1f s\n"
                                         % (pid, TIMEOUT + 1.5))
                    continue
                pid = rng.choice(pids)
                if not sxtest.is_worker(pid):
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass
        finally:
            if stopped and sxtest.pid_alive(stopped[0]) and sxtest.is_worker(stopped[0]):
                os.kill(stopped[0], signal.SIGCONT)
            for p in procs:
                p.join(timeout=120)
            for p in procs:
                if p.is_alive():
                    os.kill(p.pid, signal.SIGKILL)
                    p.join(timeout=5)
        elapsed = time.monotonic() - t0

        problems = []

        def check(ok, what, detail=None):
            if not ok:
                problems.append(what if detail is None else "%s: %r" % (what, detail))

        records = []
        for i, p in enumerate(procs):
            check(p.exitcode == 0, "client %d exited with %r" % (i, p.exitcode))
            if os.path.exists(outs[i]):
                with open(outs[i]) as f:
                    records += [json.loads(line) for line in f]
        statuses = {}
        for r in records:
            statuses[r[2]] = statuses.get(r[2], 0) + 1
        lat = [r[4] for r in records]
        with srv._cond:
            log = list(srv.lines[mark:])

        def count(rx):
            return sum(1 for ln in log if re.search(rx, ln))
        redispatched = count(r"re-dispatched request \d+")
        from_record = count(r"answered request \d+ from the response record it committed")
        die200 = sum(1 for r in records if r[0] == "die" and r[2] == 200)
        deaths = count(r"worker \d+ \(pid \d+\) (died of|exited with)")
        sys.stderr.write(
            "\nchaos: %.1f s, %d requests (%.0f/s), %d kills, %d SIGSTOP, %d commit-window deaths "
            "(/incr-die answered 200: %d), %d re-dispatches, %d answered by the supervisor from "
            "a response record, statuses %r, latency p50 %.1f ms p99 %.1f ms max %.1f ms\n"
            % (elapsed, len(records), len(records) / max(elapsed, 0.1), len(kills), len(stops),
               count(r"exited with status 9 while running request"), die200, redispatched,
               from_record, statuses, percentile(lat, 0.5), percentile(lat, 0.99),
               max(lat) if lat else 0.0))

        errors = [r for r in records if r[2] is None]
        check(not errors, "%d client-side errors" % len(errors), errors[:10])
        check(len(records) > 100, "fewer than 100 requests were answered")
        if KILLS:
            check(len(kills) > 5, "fewer than 6 workers were killed")
            check(any(r[0] == "die" for r in records), "no request was sent to /incr-die")
        other = [r for r in records if r[2] is not None and r[2] not in (200, 502, 504)]
        check(not other, "%d requests answered neither 200, 502 nor 504" % len(other), other[:10])
        n502, n504 = statuses.get(502, 0), statuses.get(504, 0)
        check(2 * n502 <= deaths, "%d 502s from %d deaths: a 502 costs two deaths"
              % (n502, deaths))
        check(n502 == count(r"answered request \d+ with 502"),
              "clients got %d 502s, the log shows another number" % n502)
        check(n504 <= len(stops), "%d 504s from %d SIGSTOPs" % (n504, len(stops)))
        wrong = [r for r in records
                 if r[0] == "compute" and r[2] == 200 and r[3] != str(sum_squares(r[1]))]
        check(not wrong, "%d computing GETs answered a wrong body" % len(wrong), wrong[:10])

        # the pool is back to full size
        try:
            srv.wait_ready(JIT_WORKERS + CEK_WORKERS, timeout=60, start=0)
        except AssertionError as e:
            check(False, "the pool did not recover: %s" % str(e)[:200])
        time.sleep(0.5)
        live = srv.worker_pids()
        ready = [p for p in srv.ready_pids() if p in live]
        check(len(ready) == JIT_WORKERS + CEK_WORKERS,
              "%d ready workers at the end, not %d" % (len(ready), JIT_WORKERS + CEK_WORKERS))
        check(srv.proc.poll() is None, "the supervisor exited")

        # the supervisor's RSS
        rss1 = vmrss_kb(srv.proc.pid)
        if rss0 is not None:
            sys.stderr.write("chaos: supervisor VmRSS %d kB after warm-up, %d kB at the end\n"
                             % (rss0, rss1))
            check(rss1 < rss0 * 1.10, "the supervisor's RSS grew from %d kB to %d kB"
                  % (rss0, rss1))

        # every increment got exactly one response; no write lost or doubled
        for key in PROC_KEYS:
            incr = [r for r in records if r[0] in ("incr", "die") and r[1] == key]
            ok = sorted(int(r[3]) for r in incr if r[2] == 200)
            r = srv.get("/read?k=" + key, timeout=30)
            check(r.status == 200, "GET /read?k=%s answered %d" % (key, r.status))
            got = int(r.text) if r.status == 200 else -1
            sys.stderr.write("chaos: counter %s: %d increments, %d answered 200, %d 502, %d 504, "
                             "counter %d\n"
                             % (key, len(incr), len(ok), sum(1 for x in incr if x[2] == 502),
                                sum(1 for x in incr if x[2] == 504), got))
            check(got == len(ok), "counter %s is %d, but %d of its increments were answered 200"
                  % (key, got, len(ok)))
            check(ok == list(range(1, len(ok) + 1)),
                  "counter %s: the values answered 200 are not 1..%d once each" % (key, len(ok)))

        # with --inflight, requests sent ahead were taken back (the SIGSTOPped
        # worker holds some), and nothing above went wrong for it
        if INFLIGHT > 1 and KILLS:
            back = taken_back(srv)
            sys.stderr.write("chaos: taken back: %r\n" % back)
            check(back.get("rerouted", 0) >= 1, "no request was taken back for a free worker",
                  back)

        # the store: mdb_stat clean, no reader slot of a dead pid
        for flag in ("-e", "-r"):
            res = subprocess.run(["mdb_stat", flag, data], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=30)
            out = res.stdout.decode("utf-8", "replace")
            if flag == "-e":
                check(res.returncode == 0, "mdb_stat -e failed", out)
            else:
                # its exit status is not meaningful: the reader list's
                # callback result leaks into it
                check(out.startswith("Reader Table Status"), "mdb_stat -r failed", out)
                dead = []
                for line in out.splitlines():
                    m = re.match(r"\s*(\d+)\s+[0-9a-f]+\s+(\S+)\s*$", line)
                    if m and not sxtest.pid_alive(int(m.group(1))):
                        dead.append(line.strip())
                check(not dead, "reader slots of dead pids", dead)
        if problems:
            self.fail("\n  ".join(problems))

    def run_chaos(self, srv):
        lock = threading.Lock()
        stop = threading.Event()
        # one record per request sent: (client, kind, detail, status or None,
        # body or the transport error)
        records = []
        thread_errors = []
        kills = []

        def client(idx):
            rng = random.Random(1000 + idx)
            conn = srv.connection(timeout=60)
            failures = 0
            try:
                for _ in range(PER_CLIENT):
                    if stop.is_set() or failures >= MAX_TRANSPORT_FAILURES:
                        break
                    if rng.random() < 0.5:
                        n = rng.randrange(1000, 20000)
                        kind, detail, method, path = "compute", n, "GET", "/compute?n=%d" % n
                    else:
                        k = rng.choice(KEYS)
                        kind, detail, method, path = "incr", k, "POST", "/incr?k=" + k
                    try:
                        r = sxtest.send(conn, method, path, body=b"" if method == "POST" else None)
                        rec = (idx, kind, detail, r.status, r.text)
                    except Exception as e:  # noqa: BLE001 (a transport failure: recorded, fails)
                        rec = (idx, kind, detail, None, repr(e))
                        failures += 1
                        conn.close()
                        conn = srv.connection(timeout=60)
                    with lock:
                        records.append(rec)
            finally:
                conn.close()

        def killer():
            rng = random.Random(4321)
            deadline = time.monotonic() + KILL_SECONDS
            while time.monotonic() < deadline and len(kills) < MAX_KILLS:
                time.sleep(rng.uniform(0.01, 0.25))
                pids = srv.worker_pids()  # starting ones too
                if not pids:
                    continue
                pid = rng.choice(pids)
                if not sxtest.is_worker(pid):  # exited (or reaped) since the listing
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass

        def guarded(target, *args):
            def run():
                try:
                    target(*args)
                except BaseException:  # noqa: BLE001 (re-raised in the main thread)
                    with lock:
                        thread_errors.append(traceback.format_exc())
                finally:
                    if target is killer:
                        stop.set()
            return threading.Thread(target=run, daemon=True)

        mark = srv.log_size()
        threads = [guarded(client, i) for i in range(CLIENTS)]
        k = guarded(killer)
        t0 = time.monotonic()
        k.start()
        for t in threads:
            t.start()
        k.join(timeout=KILL_SECONDS + 30)
        stop.set()
        for t in threads:
            t.join(timeout=max(1, 240 - (time.monotonic() - t0)))
        self.assertFalse(k.is_alive(), "the killer did not finish")
        self.assertFalse(any(t.is_alive() for t in threads), "clients did not finish")
        if thread_errors:
            self.fail("a test thread raised:\n" + "\n".join(thread_errors))

        statuses = {}
        for r in records:
            statuses[r[3]] = statuses.get(r[3], 0) + 1
        summary = ("chaos: %d kills, %d requests in %.1f s, statuses %r"
                   % (len(kills), len(records), time.monotonic() - t0, statuses))
        sys.stderr.write(summary + "\n")
        # Every check runs and every broken one is reported together.
        problems = []

        def check(ok, what, detail=None):
            if not ok:
                problems.append(what if detail is None else "%s: %r" % (what, detail))

        transport = [r for r in records if r[3] is None]
        check(not transport, "%d requests lost in transport" % len(transport), transport[:10])
        check(len(records) > 100, "fewer than 100 requests were answered")
        check(len(kills) > 5, "fewer than 6 workers were killed")
        # no increment is answered 500 (a commit conflict must never reach a client)
        incr500 = [r for r in records if r[1] == "incr" and r[3] == 500]
        check(not incr500, "%d increments answered 500" % len(incr500), incr500[:10])
        # every status is 200, or 502 for a request whose two attempts died
        other = [r for r in records if r[3] is not None and r[3] not in (200, 502)]
        check(not other, "%d requests answered neither 200 nor 502" % len(other), other[:10])
        n502 = statuses.get(502, 0)
        check(2 * n502 <= len(kills), "%d 502s from %d kills: a 502 costs two deaths"
              % (n502, len(kills)))
        # every computing GET answered 200 has the right body
        wrong = [r for r in records
                 if r[1] == "compute" and r[3] == 200 and r[4] != str(sum_squares(r[2]))]
        check(not wrong, "%d computing GETs answered a wrong body" % len(wrong), wrong[:10])

        # the pool recovers: every slot serves again
        srv.wait_ready(JIT_WORKERS + CEK_WORKERS, timeout=60, start=0)
        check(srv.proc.poll() is None, "the supervisor exited")
        # the supervisor logged each 502 it answered
        with srv._cond:
            log = list(srv.lines[mark:])
        logged502 = [ln for ln in log if re.search(r"answered request \d+ with 502", ln)]
        check(len(logged502) == n502, "clients got %d 502s, the log shows %d"
              % (n502, len(logged502)), logged502)

        # no write lost, none applied twice
        for key in KEYS:
            incr = [r for r in records if r[1] == "incr" and r[2] == key]
            ok = sorted(int(r[4]) for r in incr if r[3] == 200)
            r = srv.get("/read?k=" + key, timeout=30)
            self.assertEqual(r.status, 200, r)
            got = int(r.text)
            sys.stderr.write("chaos: counter %s: %d increments, %d answered 200, %d answered 502, "
                             "%d answered 500, counter %d\n"
                             % (key, len(incr), len(ok), sum(1 for x in incr if x[3] == 502),
                                sum(1 for x in incr if x[3] == 500), got))
            check(got == len(ok), "counter %s is %d, but %d of its increments were answered 200"
                  % (key, got, len(ok)))
            check(ok == list(range(1, len(ok) + 1)),
                  "counter %s: the values answered 200 are not 1..%d once each" % (key, len(ok)))
        if problems:
            self.fail("%s\n  " % summary + "\n  ".join(problems))

if __name__ == "__main__":
    for a in list(sys.argv[1:]):
        if a.startswith("--duration="):
            DURATION = float(a.split("=", 1)[1])
            sys.argv.remove(a)
        elif a == "--no-kills":
            KILLS = False
            sys.argv.remove(a)
        elif a.startswith("--transport="):
            EXTRA_ARGS.append(a)  # passed on to sxpool
            sys.argv.remove(a)
        elif a.startswith("--inflight="):
            INFLIGHT = int(a.split("=", 1)[1])
            EXTRA_ARGS += [a, "--admin=127.0.0.1:0"]
            sys.argv.remove(a)
        elif a.startswith("--jit-workers="):
            JIT_WORKERS = int(a.split("=", 1)[1])
            sys.argv.remove(a)
    sxtest.main()
