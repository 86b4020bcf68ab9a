"""The store in a real PostgreSQL 15 server (--store=postgresql://...),
one server for the whole file (pgserver.py), a database per test.

- `sxpool store migrate` creates the schema; a server started on a
  database without it, or on an unreachable one, fails with one clear line.
- Two JIT workers and the CEK worker under concurrent clients increment one
  counter exactly, on one server and on two sharing the database: every
  answer distinct, the total exact (serialization failures re-run the
  handler, never apply it twice; two hosts' records never mix).
- The server restarts, or ends the workers' sessions: each worker finds
  out before its next request and is replaced, the request queued again,
  never failed.
- A request retried with the same Idempotency-Key is answered from its
  response record without running again, on the same server and on a
  second server sharing the database; a malformed key is a 400.
- A function blacklisted on one host reaches the other host's JIT workers
  within a second (LISTEN/NOTIFY); a host started later loads it.
"""

import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pgserver  # noqa: E402
import sxtest  # noqa: E402

PG = None
CLIENTS = 4
PER_CLIENT = 150


def setUpModule():
    global PG
    PG = pgserver.PgServer()
    try:
        PG.start()
    except BaseException:
        PG.cleanup()
        raise


def tearDownModule():
    if PG is not None:
        PG.cleanup()


def migrate(url):
    return subprocess.run([sxtest.sxpool(), "store", "migrate", "--store=" + url],
                          capture_output=True, text=True, timeout=60)


def count_in_parallel(servers):
    """CLIENTS clients, each on its own connection to one of servers in
    turn, send PER_CLIENT increments; returns every answer, sorted."""
    def client(i):
        got = []
        conn = servers[i % len(servers)].connection(timeout=60)
        try:
            for _ in range(PER_CLIENT):
                resp = sxtest.send(conn, "GET", "/count")
                if resp.status != 200:
                    raise AssertionError("client %d: /count answered %d: %s"
                                         % (i, resp.status, resp.text))
                got.append(int(resp.text))
        finally:
            conn.close()
        return got
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        results = list(pool.map(client, range(CLIENTS)))
    return sorted(v for got in results for v in got)


class StorePg(unittest.TestCase):
    _n = 0

    def new_db(self):
        StorePg._n += 1
        return PG.create_db("sxit_%d_%d" % (os.getpid(), StorePg._n))

    def server(self, url, **kw):
        return sxtest.Server(app="basic", workers=2, cek_workers=1,
                             args=["--store=" + url, "--timeout=60"], **kw)

    def refused(self, url):
        """Starts a server on url, which must refuse to start: returns its
        stderr lines."""
        with tempfile.TemporaryDirectory(prefix="sxpool-pg-") as tmp:
            r = subprocess.run([sxtest.sxpool(), "--listen=127.0.0.1:0",
                                "--data=" + os.path.join(tmp, "data"),
                                "--app=" + sxtest.app_dir("basic"), "--store=" + url],
                               capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        return r.stderr.splitlines()

    def test_migrate_and_refusals(self):
        url = self.new_db()
        # no schema yet: the server refuses to start, with one clear line
        lines = self.refused(url)
        self.assertTrue(any("has no sxpool schema" in l and "store migrate" in l
                            for l in lines), lines)
        r = migrate(url)
        self.assertEqual(r.returncode, 0, r.stderr)
        r = migrate(url)  # again: nothing to do, still fine
        self.assertEqual(r.returncode, 0, r.stderr)
        # a schema of another version
        PG.psql("UPDATE sxpool_meta SET value = '99' WHERE key = 'schema_version'",
                db=url.rsplit("/", 1)[1])
        lines = self.refused(url)
        self.assertTrue(any("schema version 99" in l for l in lines), lines)
        r = migrate(url)  # newer than this sxpool: not migrated back
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("newer", r.stderr)
        # an unreachable server
        dead = "postgresql://postgres@127.0.0.1:%d/x" % sxtest.free_port()
        lines = self.refused(dead)
        self.assertTrue(any("unable to connect to PostgreSQL at 127.0.0.1:" in l
                            for l in lines), lines)

    def test_counter_and_idempotency_keys(self):
        url = self.new_db()
        r = migrate(url)
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.server(url) as srv:
            total = CLIENTS * PER_CLIENT
            self.assertEqual(count_in_parallel([srv]), list(range(1, total + 1)))

            # a keyed request runs once; its retry is answered from the record
            key = {"Idempotency-Key": "order-7f3a:retry_ok.1"}
            first = srv.request("POST", "/count", body=b"", headers=key)
            self.assertEqual((first.status, first.text), (200, str(total + 1)))
            again = srv.request("POST", "/count", body=b"", headers=key)
            self.assertEqual((again.status, again.text), (200, str(total + 1)))
            plain = srv.get("/count")
            self.assertEqual(plain.text, str(total + 2))
            # malformed keys are refused before any worker runs
            for bad in ["", "x" * 201, "has space", "semi;colon", "caf\u00e9"]:
                resp = srv.raw(("POST /count HTTP/1.1\r\nHost: t\r\nIdempotency-Key: %s\r\n"
                                "Content-Length: 0\r\nConnection: close\r\n\r\n" % bad)
                               .encode("utf-8"))
                self.assertTrue(resp.startswith(b"HTTP/1.1 400"), (bad, resp[:80]))
            resp = srv.raw(b"POST /count HTTP/1.1\r\nHost: t\r\nIdempotency-Key: a\r\n"
                           b"Idempotency-Key: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.assertTrue(resp.startswith(b"HTTP/1.1 400"), resp[:80])
            self.assertEqual(srv.get("/count").text, str(total + 3))

            # a second host on the same database answers the retry from the record
            with self.server(url) as other:
                again = other.request("POST", "/count", body=b"", headers=key)
                self.assertEqual((again.status, again.text), (200, str(total + 1)))
                self.assertEqual(other.get("/count").text, str(total + 4))

    def test_two_hosts_count_exactly(self):
        """Two servers on one database, clients on both, no keys: every
        answer distinct, the total exact. (Both give out ids that follow
        the clock, so the same id on both hosts must not name one record.)"""
        url = self.new_db()
        r = migrate(url)
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.server(url) as a, self.server(url) as b:
            self.assertEqual(count_in_parallel([a, b]),
                             list(range(1, CLIENTS * PER_CLIENT + 1)))
            self.assertEqual(a.get("/count").text, str(CLIENTS * PER_CLIENT + 1))

    def test_server_restart(self):
        """The server restarts under an idle pool. A worker may open no
        socket once it runs (its sandbox), so each one finds its connection
        closed before its next request and exits (IPC_EXIT_STORE_LOST)
        without running it; the request goes back to the queue uncharged
        and a new worker connects: every request is answered 200, counted
        once, none re-dispatched as after a fault."""
        url = self.new_db()
        r = migrate(url)
        self.assertEqual(r.returncode, 0, r.stderr)
        with self.server(url) as srv:
            for i in range(1, 21):
                self.assertEqual(srv.get("/count").text, str(i))
            start = len(srv.lines)
            PG.restart()
            for i in range(21, 41):
                resp = srv.get("/count", timeout=30)
                self.assertEqual((resp.status, resp.text), (200, str(i)))
            lines = srv.lines[start:]
            self.assertTrue(any("exited with status 75" in l for l in lines), lines)
            self.assertFalse([l for l in lines if "re-dispatched" in l or "with 502" in l or
                              "failed on two workers" in l], lines)
            # sessions ended under the workers (as by an operator): the end
            # reaches each worker at some moment, maybe inside a request,
            # which then runs again once (as after a worker's death)
            PG.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name LIKE 'sxpool:%'")
            for i in range(41, 61):
                resp = srv.get("/count", timeout=30)
                self.assertEqual((resp.status, resp.text), (200, str(i)))
    def test_blacklist_reaches_the_other_host(self):
        """A fault in native code on host A blacklists the function in the
        database; host B's JIT workers drop that native code within a
        second (LISTEN/NOTIFY), and a host started later loads the entry."""
        url = self.new_db()
        r = migrate(url)
        self.assertEqual(r.returncode, 0, r.stderr)
        jit = ["--store=" + url, "--jit-threshold=0", "--timeout=30"]
        inject = {"SXPOOL_INJECT": "wrong-prim-arg:edges-block"}
        with sxtest.Server(app="faults", workers=2, cek_workers=1, env=inject,
                           args=jit) as a, \
                sxtest.Server(app="faults", workers=2, cek_workers=1, args=jit) as b:
            b_pids = b.worker_pids("jit")
            mark = b.log_size()
            resp = a.get("/edges", timeout=30)
            t0 = time.monotonic()
            self.assertEqual((resp.status, resp.text), (200, "(2 4 6)"))

            def dropped():
                text = "\n".join(b.lines[mark:])
                return all(re.search(r"\(pid %d\): dropped the native code of edges-block" % p,
                                     text) for p in b_pids)
            sxtest.wait_until(dropped, 10, interval=0.01, what="host B's workers to drop it")
            elapsed = time.monotonic() - t0
            print("blacklist entry reached the other host's workers in %.0f ms"
                  % (elapsed * 1000), flush=True)
            self.assertLess(elapsed, 1.0)
            b.wait_line(r"blacklist: edges-block \(code \w+\) was blacklisted on another host; "
                        r"told 2 JIT workers", timeout=5, start=mark)
        # the CLI lists the shared blacklist
        r = subprocess.run([sxtest.sxpool(), "blacklist", "list", "--store=" + url],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^edges-block \w+ \w+ 1 ")
        # a host started later loads it from the database
        with sxtest.Server(app="faults", workers=2, cek_workers=1, args=jit) as c:
            pids = c.worker_pids("jit")
            sxtest.wait_until(lambda: all(
                re.search(r"\(pid %d\): dropped the native code of edges-block" % p,
                          "\n".join(c.lines)) for p in pids), 15, what="the entry loaded")


if __name__ == "__main__":
    sxtest.main()
