"""Two sxpool instances on one PostgreSQL 15 server (pgserver.py), behind
real HAProxy running deploy/haproxy.cfg with this test's addresses. Client
threads increment one counter each through HAProxy, every increment a POST
with an Idempotency-Key of its own, sent again with the same key when it
fails (connection error, 502, 503, 504) as a client of such an API does.
Under that load, JIT workers are SIGKILLed on both instances, then the
whole of instance A (its supervisor; its workers follow). Through all of
it: every increment is acknowledged exactly once (each thread's answers
run 1, 2, 3, ... with no gap and no repeat: a retry whose first attempt
committed, on either host, is answered from its response record) and the
counters in the database equal the number of increments. A missing
haproxy or PostgreSQL fails the test."""

import http.client
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pgserver  # noqa: E402
import sxtest  # noqa: E402
import haproxy  # noqa: E402

THREADS = 4
RETRY_FOR_S = 30


class Clients:
    """One thread per counter; each POSTs /inc?k=tN with Idempotency-Key
    tN-M for its M-th increment, again with the same key until a 200 (or
    RETRY_FOR_S). answers[i] is the list of counts thread i was given."""

    def __init__(self, port):
        self.port = port
        self.stop_flag = threading.Event()
        self.answers = [[] for _ in range(THREADS)]
        self.retries = 0
        self.failures = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(THREADS)]
        for t in self.threads:
            t.start()

    def count(self):
        return sum(len(a) for a in self.answers)

    def run(self, i):
        conn = None
        m = 0
        while not self.stop_flag.is_set():
            m += 1
            key = "t%d-%d" % (i, m)
            deadline = time.monotonic() + RETRY_FOR_S
            while True:
                err = None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    r = sxtest.send(conn, "POST", "/inc?k=t%d" % i, body=b"x",
                                    headers={"Idempotency-Key": key})
                    if r.headers.get("connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    if r.status == 200:
                        self.answers[i].append(int(r.text.split()[-1]))
                        break
                    err = "%d %s" % (r.status, r.text.strip())
                except Exception as e:  # noqa: BLE001 - retried, like any client would
                    err = repr(e)
                    if conn is not None:
                        conn.close()
                    conn = None
                with self.lock:
                    self.retries += 1
                if time.monotonic() > deadline:
                    self.failures.append((key, err))
                    return
                time.sleep(0.05)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(RETRY_FOR_S + 30)
        assert not any(t.is_alive() for t in self.threads), "client threads still running"


class HAProxyPg(unittest.TestCase):
    def setUp(self):
        haproxy.binary()  # fails at once if it is missing
        self.tmp = tempfile.mkdtemp(prefix="sxpool-haproxy-pg-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.pg = pgserver.PgServer().start()
        self.addCleanup(self.pg.cleanup)
        self.url = self.pg.create_db("chaos")
        r = subprocess.run([sxtest.sxpool(), "store", "migrate", "--store=" + self.url],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def server(self, name):
        return sxtest.Server(app=sxtest.app_dir("reload"),
                             data=os.path.join(self.tmp, "data-" + name), workers=2,
                             cek_workers=1, args=["--store=" + self.url, "--timeout=30",
                                                  "--keepalive-timeout=60"])

    def start_haproxy(self, port_a, port_b):
        self.hap = haproxy.HAProxy(self.tmp, sxtest.free_port(), port_a, port_b).start()
        self.addCleanup(self.hap.stop)
        return self.hap.proc, self.hap.front

    def haproxy_log(self):
        return self.hap.log()

    def test_worker_and_instance_kills_under_load(self):
        a = self.server("a").start()
        self.addCleanup(a.stop)
        b = self.server("b").start()
        self.addCleanup(b.stop)
        proc, front = self.start_haproxy(a.port, b.port)

        def through():
            try:
                conn = http.client.HTTPConnection("127.0.0.1", front, timeout=5)
                try:
                    return sxtest.send(conn, "GET", "/version").status == 200
                finally:
                    conn.close()
            except OSError:
                return False
        sxtest.wait_until(through, 20, interval=0.1, what="HAProxy to answer")
        clients = Clients(front)
        killed = 0
        try:
            sxtest.wait_until(lambda: clients.count() >= 100, 60, what="load to flow")
            rng = random.Random(19)
            for _ in range(6):  # JIT workers on both instances
                for srv in (a, b):
                    pids = srv.worker_pids("jit")
                    if pids:
                        os.kill(rng.choice(pids), signal.SIGKILL)
                        killed += 1
                n = clients.count()
                sxtest.wait_until(lambda: clients.count() >= n + 20, 60,
                                  what="load after a kill")
            n_before = clients.count()
            a.proc.send_signal(signal.SIGKILL)  # the whole instance
            a.proc.wait(timeout=10)
            sxtest.wait_until(lambda: not [p for p in a._seen_workers if sxtest.pid_alive(p)
                                           and sxtest.is_worker(p)], 15,
                              what="A's workers to exit after their supervisor")
            sxtest.wait_until(lambda: clients.count() >= n_before + 150, 90,
                              what="load on B alone")
        finally:
            clients.stop()
        self.assertIsNone(proc.poll(), self.haproxy_log())
        total = clients.count()
        print("HAProxy + PostgreSQL chaos: %d increments acknowledged, %d client retries, "
              "%d JIT workers and instance A killed" % (total, clients.retries, killed),
              flush=True)
        self.assertEqual(clients.failures, [])
        for i, got in enumerate(clients.answers):
            self.assertEqual(got, list(range(1, len(got) + 1)), "thread %d" % i)
        for i in range(THREADS):
            r = b.get("/count?k=t%d" % i)
            self.assertEqual((r.status, r.text), (200, str(len(clients.answers[i]))))


if __name__ == "__main__":
    sxtest.main()
