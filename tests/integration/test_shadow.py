"""Shadow verification (--shadow-canary, --shadow-rate): native code that
silently returns a wrong answer is caught by running the request again on
the CEK evaluator against the same snapshot.

The silent miscompile is the native tier's test-only injection
SXPOOL_INJECT=wrong-sum:FUNCTION (that function's native + adds one more).
The app (apps/shadow) runs with --jit-threshold=0 --jit-exclude=handle, so
fib and bump get native code before their first call and a route that
calls only built-ins runs no native code at all.

  - canary: no client ever sees a wrong body; fib is in the store's
    blacklist when the first response arrives and every JIT worker drops it;
    one mismatch is counted;
  - sampling only (canary 0, rate 1): the wrong answers stop after the
    first sampled mismatch;
  - canaries of a writing handler commit exactly once (every request a
    canary, four clients in parallel: the counter in the store ends exact);
  - a request that runs no native code, or reads the clock, is never
    shadowed;
  - a worker killed during a canary (the CEK worker mid-way through its
    shadow run, or the JIT worker before it answers): the request is still
    answered once, correctly, and a counter it bumps is bumped once."""

import http.client
import os
import re
import signal
import tempfile
import threading
import time
import unittest

import sxtest

ADMIN_RE = re.compile(r"sxpool: admin on http://([0-9.]+):(\d+)")
BASE_ARGS = ["--jit-threshold=0", "--jit-exclude=handle", "--timeout=60", "--admin=127.0.0.1:0"]


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def metrics(srv):
    text = srv.metrics()
    out = {}
    for line in text.splitlines():
        if line.startswith("sxpool_shadow"):
            name, val = line.rsplit(" ", 1)
            out[name] = float(val)
    return out


def canaries(m):
    return m['sxpool_shadow_runs_total{kind="canary"}']


def samples(m):
    return m['sxpool_shadow_runs_total{kind="sample"}']


def skipped(m):
    return (m['sxpool_shadow_skipped_total{reason="busy"}'] +
            m['sxpool_shadow_skipped_total{reason="budget"}'])


def blacklisted(data):
    rc, out, err = sxtest.run(["blacklist", "list", "--data=" + data])
    if rc != 0:
        raise AssertionError("blacklist list failed (%d): %s" % (rc, err))
    return {line.split(" ", 1)[0] for line in out.splitlines() if line}


class Shadow(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sxtest.check_native_tier()

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-shadow-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def server(self, args=(), env=None, workers=2):
        return sxtest.Server(app="shadow", workers=workers, cek_workers=1, data=self.data,
                             env=env, args=BASE_ARGS + list(args))

    def test_canary_catches_a_silent_miscompile(self):
        with self.server(env={"SXPOOL_INJECT": "wrong-sum:fib"}) as srv:
            mark = srv.log_size()
            r = srv.get("/fib?n=10")
            self.assertEqual((r.status, r.text), (200, "55"))
            # answered only once the entry is stored and pushed
            self.assertIn("fib", blacklisted(self.data))
            self.assertTrue(srv.wait_line(r"fault: fib: shadow mismatch; body at byte 0: "
                                          r"native \"143\", CEK \"55\"", timeout=5, start=mark))
            for p in srv.worker_pids("jit"):
                srv.wait_line(r"sxpool worker \d+ \(pid %d\): dropped the native code of fib "
                              % p, timeout=10, start=mark)
            for n in list(range(0, 16)) * 2:
                r = srv.get("/fib?n=%d" % n)
                self.assertEqual((r.status, r.text), (200, str(fib(n))), n)
            m = metrics(srv)
            self.assertEqual(m["sxpool_shadow_mismatches_total"], 1, m)
            self.assertEqual(canaries(m), 1, m)  # fib and text are blacklisted after it
            print("canary: 33 requests, 0 wrong bodies, 1 canary, 1 mismatch, fib blacklisted "
                  "on the first request")

    def test_sampling_stops_wrong_answers(self):
        args = ["--shadow-canary=0", "--shadow-rate=1",
                "--shadow-budget=100"]
        with self.server(args, env={"SXPOOL_INJECT": "wrong-sum:fib"}, workers=1) as srv:
            bodies = []
            for _ in range(40):
                bodies.append(srv.get("/fib?n=10").text)
                if bodies[-1] != "55":  # the JIT worker is told before the next
                    srv.wait_line(r"dropped the native code of fib ", timeout=10)
            wrong = [i for i, b in enumerate(bodies) if b != "55"]
            self.assertEqual(wrong, [0], bodies)  # the first sample is the last wrong answer
            self.assertEqual(bodies[0], "143")
            m = metrics(srv)
            self.assertEqual(m["sxpool_shadow_mismatches_total"], 1, m)
            self.assertEqual(canaries(m), 0, m)
            self.assertGreaterEqual(samples(m), 1, m)
            print("sampling: 40 requests, 1 wrong body (the first, sampled), then blacklisted")

    def test_canaries_that_write_commit_once(self):
        with self.server(["--shadow-canary=1000000", "--shadow-rate=0"]) as srv:
            got, lock = [], threading.Lock()

            def client():
                conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
                try:
                    for _ in range(10):
                        conn.request("GET", "/count")
                        resp = conn.getresponse()
                        body = resp.read().decode()
                        with lock:
                            got.append((resp.status, body))
                finally:
                    conn.close()

            threads = [threading.Thread(target=client) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
                self.assertFalse(t.is_alive())
            self.assertEqual(sorted(int(b) for s, b in got if s == 200), list(range(1, 41)), got)
            self.assertEqual(srv.get("/read").text, "40")
            m = metrics(srv)
            self.assertEqual(canaries(m), 40, m)
            self.assertEqual(m["sxpool_shadow_mismatches_total"], 0, m)

    def test_wrong_writes_never_committed(self):
        with self.server(env={"SXPOOL_INJECT": "wrong-sum:bump"}) as srv:
            for i in range(1, 11):
                self.assertEqual(srv.get("/count").text, str(i))
            self.assertEqual(srv.get("/read").text, "10")
            self.assertIn("bump", blacklisted(self.data))
            self.assertEqual(metrics(srv)["sxpool_shadow_mismatches_total"], 1)

    def test_sampled_writes_are_checked_and_not_applied_twice(self):
        args = ["--shadow-canary=0", "--shadow-rate=1",
                "--shadow-budget=100"]
        with self.server(args, env={"SXPOOL_INJECT": "wrong-sum:bump"}, workers=1) as srv:
            bodies = []
            for i in range(10):
                bodies.append(srv.get("/count").text)
                if i == 0:  # its check done before the next (not skipped)
                    sxtest.wait_until(lambda: samples(metrics(srv)) >= 1, 10,
                                      what="the sampled check of request 1")
                if i == 1:  # the wrong one: the JIT worker is told before the next
                    srv.wait_line(r"dropped the native code of bump ", timeout=10)
            self.assertIn("bump", blacklisted(self.data))
            # 1 (no + on that path), then the native + commits 1 + 2, the
            # sampled check catches it, and from then on the VM adds 1
            self.assertEqual(bodies, ["1", "3"] + [str(i) for i in range(4, 12)], bodies)
            self.assertEqual(srv.get("/read").text, "11")  # verify runs committed nothing
            m = metrics(srv)
            self.assertEqual(m["sxpool_shadow_mismatches_total"], 1, m)
            self.assertGreaterEqual(samples(m), 2, m)

    def test_samples_stay_within_the_budget(self):
        # 1 % of one JIT worker's time: a bucket of 100 ms, refilled at
        # 10 ms per second. A check of fib(25) on the CEK evaluator takes
        # tens of milliseconds even on a fast machine, far more than the
        # refill during the native run, so the bucket runs dry after a few
        # and later samples are skipped for the budget (never for a busy
        # pool: each request waits for the last check).
        args = ["--shadow-canary=0", "--shadow-rate=1", "--shadow-budget=1"]
        with self.server(args, workers=1) as srv:
            start = time.monotonic()
            for i in range(30):
                self.assertEqual(srv.get("/fib?n=25").text, "75025")
                sxtest.wait_until(lambda: samples(metrics(srv)) + skipped(metrics(srv)) > i, 30,
                                  what="request %d's sample checked or skipped" % (i + 1))
            elapsed = time.monotonic() - start
            m = metrics(srv)
            spent = m["sxpool_shadow_sample_seconds_total"]
            busy = m['sxpool_shadow_skipped_total{reason="busy"}']
            budget = m['sxpool_shadow_skipped_total{reason="budget"}']
            self.assertEqual(busy, 0, m)
            self.assertGreaterEqual(samples(m), 1, m)
            self.assertGreaterEqual(budget, 1, m)
            self.assertEqual(samples(m) + budget, 30, m)
            # what the bucket held and gained, plus the one run that may
            # overdraw it (charged when its result arrives)
            longest = spent / samples(m) * 3
            self.assertLessEqual(spent, 0.1 + 0.01 * elapsed + longest, m)
            print("budget 1%%: %d samples checked, %d skipped for the budget, %.3f s of "
                  "CEK time in %.1f s" % (samples(m), budget, spent, elapsed))

    def test_no_native_code_or_a_clock_is_never_shadowed(self):
        with self.server(["--shadow-canary=1000000", "--shadow-rate=1",
                "--shadow-budget=100"]) as srv:
            for _ in range(10):
                self.assertEqual(srv.get("/plain").text, "plain")
                self.assertEqual(srv.get("/clock").text, "5")  # fib natively, but the clock
            m = metrics(srv)
            self.assertEqual((canaries(m), samples(m), skipped(m)), (0, 0, 0), m)
            srv.get("/fib?n=5")  # and a route that runs fib is
            self.assertEqual(canaries(metrics(srv)), 1)

    def test_excluded_path_is_never_shadowed(self):
        with self.server(["--shadow-exclude=/fi*"], env={"SXPOOL_INJECT": "wrong-sum:fib"}) as srv:
            self.assertEqual(srv.get("/fib?n=10").text, "143")  # what exclusion costs
            self.assertEqual(canaries(metrics(srv)), 0)

    def kill_during(self, mode, path, want):
        """Sends path; once a worker of mode burns CPU on it, SIGKILLs it."""
        with self.server(["--shadow-canary=1000000", "--shadow-rate=0"], workers=1) as srv:
            pids = srv.worker_pids(mode)
            base = {p: sxtest.cpu_ticks(p) for p in pids}
            result = {}

            def client():
                result["r"] = srv.get(path, timeout=120)

            t = threading.Thread(target=client)
            t.start()
            victim = sxtest.busy_one(pids, base, ticks=10, timeout=60)
            os.kill(victim, signal.SIGKILL)
            t.join(120)
            self.assertFalse(t.is_alive())
            self.assertEqual((result["r"].status, result["r"].text), (200, want))
            self.assertEqual(srv.get("/read").text, "1")
            return srv

    def test_cek_worker_killed_during_a_shadow_run(self):
        self.kill_during("cek", "/count?fib=32", "1 %d" % fib(32))

    def test_jit_worker_killed_during_a_canary(self):
        # long enough in native code for busy_one to see it (10 ticks):
        # fib(34) took under 0.1 s of CPU once its code stopped testing its
        # globals, fib(36) 0.12 s once its body was specialized; fib(38)
        # takes about 0.3 s natively and a few seconds on CEK, where the
        # request runs again
        self.kill_during("jit", "/count?fib=38", "1 %d" % fib(38))


if __name__ == "__main__":
    sxtest.main()
