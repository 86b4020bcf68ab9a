"""Behind real HAProxy (Debian's haproxy, running deploy/haproxy.cfg with
this test's addresses): two sxpool instances, each with its own data
directory, under load from client threads through HAProxy (GET /version,
POST /inc on one counter per thread, GET /slow). Instance A is drained with
SIGTERM (--drain-delay): its /healthz answers 503 at once and HAProxy must
stop sending to it before the delay ends. Meanwhile instance B is reloaded
with SIGHUP to a changed app. Through all of it: zero failed requests,
every increment acknowledged exactly once (each thread's counts on each
instance run 1, 2, 3, ... and the stored counters match), and every
request sent after B's new generation took over is answered by the new
code. A missing haproxy fails the test."""

import http.client
import os
import shutil
import signal
import tempfile
import time
import unittest

import haproxy
import sxtest

DRAIN_S = 5


class HAProxy(unittest.TestCase):
    def setUp(self):
        haproxy.binary()  # fails at once if it is missing
        self.tmp = tempfile.mkdtemp(prefix="sxpool-haproxy-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        with open(os.path.join(sxtest.app_dir("reload"), "main.sx")) as f:
            self.v1 = f.read()

    def app(self, name, version):
        d = os.path.join(self.tmp, "app-" + name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "main.sx")
        with open(path + ".new", "w") as f:
            f.write(self.v1.replace('(define version "v1")', '(define version "%s")' % version))
        os.rename(path + ".new", path)
        return d

    def server(self, name, version):
        return sxtest.Server(app=self.app(name, version),
                             data=os.path.join(self.tmp, "data-" + name), workers=2,
                             cek_workers=1, args=["--drain-delay=%d" % DRAIN_S,
                                                  "--keepalive-timeout=60"])

    def start_haproxy(self, port_a, port_b):
        self.hap = haproxy.HAProxy(self.tmp, sxtest.free_port(), port_a, port_b).start()
        self.addCleanup(self.hap.stop)
        return self.hap.proc, self.hap.front

    def haproxy_log(self):
        return self.hap.log()

    def test_drain_one_reload_the_other_under_load(self):
        a = self.server("a", "a1").start()
        self.addCleanup(a.stop)
        b = self.server("b", "b1").start()
        self.addCleanup(b.stop)
        proc, front = self.start_haproxy(a.port, b.port)

        # HAProxy up and sending to both.
        seen = set()

        def both():
            conn = http.client.HTTPConnection("127.0.0.1", front, timeout=5)
            try:
                r = sxtest.send(conn, "GET", "/version")
                if r.status == 200:
                    seen.add(r.body.decode())
            except OSError:
                pass
            finally:
                conn.close()
            return seen >= {"a1", "b1"}
        sxtest.wait_until(both, 20, interval=0.05, what="HAProxy to send to both instances")
        self.assertIsNone(proc.poll(), self.haproxy_log())

        load = sxtest.Load("127.0.0.1", front, threads=4, slow=True).start()
        try:
            sxtest.wait_until(lambda: load.count() >= 80, 30, what="load to flow")

            # Drain A.
            t_term = time.monotonic()
            mark = a.log_size()
            a.proc.send_signal(signal.SIGTERM)
            a.wait_line(r"received SIGTERM; /healthz answers 503", timeout=10, start=mark)
            r = a.get("/healthz")
            self.assertEqual((r.status, r.text), (503, "draining\n"))

            sxtest.wait_until(lambda: "Server sxpool/sxpool-a is DOWN" in self.haproxy_log(),
                              DRAIN_S, interval=0.05, what="HAProxy to mark A down")
            t_out = time.monotonic()

            # Reload B while A drains and only B is in rotation.
            self.app("b", "b2")
            mark = b.log_size()
            b.proc.send_signal(signal.SIGHUP)
            b.wait_line(r"reload: generation 2 ready \(3 workers in \d+ ms\), 3 old workers "
                        r"retiring", timeout=30, start=mark)
            t_commit = time.monotonic()
            b.wait_line(r"reload: generation 1 has left; generation 2 serves with 3 workers",
                        timeout=30, start=mark)
            self.assertEqual(a.proc.wait(timeout=DRAIN_S + 20), 0)
            t_a_gone = time.monotonic()
            n = load.count()
            sxtest.wait_until(lambda: load.count() >= n + 80, 30, what="load after the reload")
        finally:
            records = load.stop()
        self.assertIsNone(proc.poll(), self.haproxy_log())

        failed = sxtest.Load.failures(records)
        print("HAProxy drain + reload: %d requests, %d failed; HAProxy took A out %.1f s after "
              "SIGTERM (drain delay %d s); B's generation 2 took over %.1f s after that"
              % (len(records), len(failed), t_out - t_term, DRAIN_S, t_commit - t_out),
              flush=True)
        self.assertEqual(failed, [], "failed requests; HAProxy's log:\n" + self.haproxy_log())
        from_a = [rec for rec in records if rec[5].startswith("a")]
        self.assertTrue(from_a)
        self.assertLess(max(rec[0] for rec in from_a), t_term + DRAIN_S,
                        "a request reached A after its drain delay")
        self.assertGreater(t_a_gone, t_commit - 60)
        after = [rec for rec in records if rec[0] >= t_commit and rec[3] == "/version"]
        self.assertTrue(after)
        self.assertEqual({rec[5] for rec in after}, {"b2"})

        # Every increment acknowledged once, per instance and counter.
        counts = {}
        for rec in records:
            if rec[3].startswith("/inc?k="):
                inst = rec[5][0]
                counts.setdefault((inst, rec[3][len("/inc?k="):]), []).append(
                    int(rec[5].split()[-1]))
        for (inst, key), got in counts.items():
            self.assertEqual(got, list(range(1, len(got) + 1)), (inst, key))
        for key in (load.key(i) for i in range(load.nthreads)):
            r = b.get("/count?k=" + key)
            self.assertEqual((r.status, r.text), (200, str(len(counts.get(("b", key), [])))),
                             key)
        b.stop()
        with self.server("a", "a1") as a2:  # A's counters, read from its data directory
            for key in (load.key(i) for i in range(load.nthreads)):
                r = a2.get("/count?k=" + key)
                self.assertEqual((r.status, r.text),
                                 (200, str(len(counts.get(("a", key), [])))), key)


if __name__ == "__main__":
    sxtest.main()
