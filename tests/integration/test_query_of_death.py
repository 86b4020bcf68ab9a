"""Query of death under load: a request that crashes every worker it touches
(its JIT worker dies of SIGSEGV in native code, made by SXPOOL_INJECT, and
the CEK worker that runs it again dies of SIGSEGV too, made by
SXPOOL_TEST_HOOK) costs exactly two worker deaths and a 502, while four
keep-alive clients sending other requests the whole time get 200 with the
right body every time, and both dead workers are replaced at once (no
backoff). The function is blacklisted, so the same request then succeeds.

Bounded: each client stops after 20 s or 3000 requests; the server and its
workers are stopped by pid (sxtest)."""

import re
import threading
import time
import unittest

import sxtest
from test_faults_jit import check_native_tier

ENV = {"SXPOOL_INJECT": "null-deref:edges-block", "SXPOOL_TEST_HOOK": "segv-in-cek:/edges"}
DEATH_RE = re.compile(r"sxpool: worker (\d+) \(pid (\d+)\) (killed by signal \d+ \(SIG\w+\)|"
                      r"exited with status \d+)$")
CLIENTS = 4
MAX_REQUESTS = 3000
MAX_SECONDS = 20


class Load:
    """CLIENTS keep-alive clients, each alternating GET / and GET /work."""

    def __init__(self, srv):
        self.srv = srv
        self.stop_at = time.monotonic() + MAX_SECONDS
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.results = []  # (path, status, body) or (path, error)
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def client(self, i):
        conn = self.srv.connection(timeout=30)
        try:
            for n in range(MAX_REQUESTS):
                if self.done.is_set() or time.monotonic() >= self.stop_at:
                    break
                path, want = ("/", "ok") if n % 2 == 0 else ("/work?n=2000", "done")
                try:
                    r = sxtest.send(conn, "GET", path)
                    out = (path, r.status, r.text, want)
                except Exception as e:  # noqa: BLE001 (a failed request: counted, fails below)
                    out = (path, repr(e), "", want)
                    conn.close()
                    conn = self.srv.connection(timeout=30)
                with self.lock:
                    self.results.append(out)
        finally:
            conn.close()

    def count(self):
        with self.lock:
            return len(self.results)

    def stop(self):
        self.done.set()
        for t in self.threads:
            t.join(timeout=40)
        alive = [t for t in self.threads if t.is_alive()]
        if alive:
            raise AssertionError("%d load clients did not finish" % len(alive))
        with self.lock:
            return list(self.results)


class QueryOfDeath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_native_tier()

    def test_two_deaths_one_502_and_the_load_keeps_succeeding(self):
        with sxtest.Server(app="faults", workers=2, cek_workers=1, env=ENV,
                           # no shadow runs: every /edges on a CEK worker dies
                           args=["--jit-threshold=0", "--timeout=30", "--shadow-canary=0",
                                 "--shadow-rate=0"]) as srv:
            load = Load(srv)
            sxtest.wait_until(lambda: load.count() >= 40, 20, what="the load to flow")
            mark = srv.log_size()
            r = srv.get("/edges", timeout=60)
            self.assertEqual((r.status, r.text), (502, "the request failed on two workers\n"), r)
            m = srv.wait_line(r"fault: edges-block: its native code died of SIGSEGV; worker (\d) "
                              r"\(pid \d+\);.*re-dispatched request (\d+) to a CEK worker",
                              timeout=5, start=mark)
            jit_slot, rid = m.group(1), m.group(2)
            srv.wait_line(r"worker 2 \(pid \d+\) died of SIGSEGV with no native function in its "
                          r"crash record while running request %s; answered request %s with 502"
                          % (rid, rid), timeout=5, start=mark)
            # both replaced at once, and the load goes on after the 502
            srv.wait_ready(3, timeout=15, start=0)
            for slot in (jit_slot, "2"):
                srv.wait_line(r"worker %s \(pid \d+\) was ready and crashed \(signal SIGSEGV\); "
                              r"crash 1 of slot %s within 10 s; replacing it now" % (slot, slot),
                              timeout=5, start=mark)
            after = load.count()
            sxtest.wait_until(lambda: load.count() >= after + 40, 20, what="load after the 502")
            results = load.stop()
            bad = [x for x in results if x[1] != 200 or x[2] != x[3]]
            self.assertEqual(bad, [], "%d of %d requests failed" % (len(bad), len(results)))
            self.assertGreaterEqual(len(results), 80)
            with srv._cond:
                lines = list(srv.lines[mark:])
            deaths = [ln for ln in lines if DEATH_RE.search(ln)]
            self.assertEqual(len(deaths), 2, deaths)
            self.assertEqual({DEATH_RE.search(ln).group(3) for ln in deaths},
                             {"killed by signal 11 (SIGSEGV)"}, deaths)
            self.assertEqual([ln for ln in lines if "respawning it in" in ln], [])
            # blacklisted: no longer a query of death
            mark = srv.log_size()
            r = srv.get("/edges", timeout=30)
            self.assertEqual((r.status, r.text), (200, "(2 4 6)"), r)
            with srv._cond:
                lines = list(srv.lines[mark:])
            self.assertEqual([ln for ln in lines if DEATH_RE.search(ln)], [])


if __name__ == "__main__":
    sxtest.main()
