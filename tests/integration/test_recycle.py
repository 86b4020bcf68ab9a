"""Recycling: --max-requests with --max-requests-jitter, and --max-rss. A
worker due for recycling keeps serving until its replacement is READY, then
gets SHUTDOWN and exits cleanly; no request fails because of a recycle."""

import re
import threading
import time
import unittest

import sxtest

RECYCLED = re.compile(r"worker (\d+) \(pid (\d+)\) recycled after (\d+) requests(.*); "
                      r"worker (\d+) \(pid (\d+)\) replaces it")


def recycles(srv, start=0):
    with srv._cond:
        lines = list(srv.lines[start:])
    return [m for m in (RECYCLED.search(ln) for ln in lines) if m]


def load(srv, clients, per_client, path_of):
    """Keep-alive clients; returns (client, i, status, body) per request."""
    out, errors, lock = [], [], threading.Lock()

    def client(c):
        conn = srv.connection(timeout=60)
        try:
            for i in range(per_client):
                path = path_of(c, i)
                r = sxtest.send(conn, "GET", path)
                with lock:
                    out.append((c, i, path, r.status, r.text))
        except Exception as e:  # noqa: BLE001 (reported below)
            with lock:
                errors.append(repr(e))
        finally:
            conn.close()
    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return out, errors


class Recycle(unittest.TestCase):
    def test_max_requests_with_jitter(self):
        with sxtest.Server(app="recycle", workers=2, cek_workers=1,
                           args=["--max-requests=5", "--max-requests-jitter=3"]) as srv:
            before = set(srv.worker_pids("jit"))
            self.assertEqual(len(before), 2, before)
            mark = srv.log_size()
            out, errors = load(srv, 4, 50, lambda c, i: "/echo?w=60000&i=%d-%d" % (c, i))
            self.assertEqual(errors, [])
            self.assertEqual(len(out), 200)
            bad = [r for r in out if (r[3], r[4]) != (200, "echo " + r[2].rsplit("=", 1)[1])]
            self.assertEqual(bad, [])
            # a worker due when the load ended is recycled too: two JIT
            # workers again once every replacement is ready
            settled = {}

            def two_for_a_while():
                pids = frozenset(srv.worker_pids("jit"))
                now = time.monotonic()
                if len(pids) != 2 or settled.get("pids") != pids:
                    settled.update(pids=pids, since=now)
                return len(pids) == 2 and now - settled["since"] >= 1.0
            sxtest.wait_until(two_for_a_while, 30, what="two JIT workers for a second")
            rec = recycles(srv, mark)
            self.assertGreaterEqual(len(rec), 3, "recycles logged: %d" % len(rec))
            for m in rec:
                # due at 5 + random(0..3); it may answer one more while its
                # replacement starts, and more while that one is not ready
                self.assertGreaterEqual(int(m.group(3)), 5, m.group(0))
                self.assertEqual(m.group(4), "", m.group(0))
            # the recycled workers exited cleanly and were not respawned
            for m in rec:
                srv.wait_line(r"worker %s \(pid %s\) exited with status 0" % (m.group(1), m.group(2)),
                              timeout=10, start=mark)
            log = "\n".join(srv.lines[mark:])
            self.assertNotIn("replacing it now", log)
            self.assertNotRegex(log, r"answered request \d+ with 5\d\d|re-dispatched|killing")
            after = set(srv.worker_pids("jit"))
            self.assertEqual(len(after), 2, after)
            self.assertNotEqual(after, before)
            # the pool is at full size: two JIT workers and the CEK worker
            srv.wait_ready(3, timeout=10, start=0)
            self.assertEqual(srv.get("/healthz").status, 200)

    def test_max_rss(self):
        # Without shadow runs: a canary of /grow would make the CEK worker
        # allocate its 100 MB too, and whichever worker passes the limit
        # first is recycled first (the CEK worker, under a sanitizer).
        with sxtest.Server(app="recycle", workers=1, cek_workers=1,
                           args=["--max-rss=200", "--shadow-canary=0",
                                 "--shadow-rate=0"]) as srv:
            (first,) = srv.worker_pids("jit")
            mark = srv.log_size()
            for i in range(10):
                r = srv.get("/echo?i=%d" % i)
                self.assertEqual((r.status, r.text), (200, "echo %d" % i))
            self.assertEqual(recycles(srv, mark), [])
            # about 100 MB per request (8-byte slots) kept in a global
            grown = 0
            for i in range(4):
                r = srv.get("/grow?n=12000000", timeout=60)
                self.assertEqual(r.status, 200, r)
                grown += 1
                if recycles(srv, mark):
                    break
            m = sxtest.wait_until(lambda: recycles(srv, mark), 10, what="an RSS recycle")[0]
            self.assertEqual(int(m.group(2)), first)
            self.assertRegex(m.group(4), r"^: RSS \d+ MB over --max-rss=200$")
            self.assertGreater(int(re.search(r"RSS (\d+)", m.group(4)).group(1)), 200)
            srv.wait_line(r"worker \d+ \(pid %d\) exited with status 0" % first, timeout=10,
                          start=mark)
            for i in range(10):
                r = srv.get("/echo?i=%d" % i)
                self.assertEqual((r.status, r.text), (200, "echo %d" % i))
            (now,) = srv.worker_pids("jit")
            self.assertNotEqual(now, first)


class RecycleFlags(unittest.TestCase):
    def test_bad_values_exit_2(self):
        import subprocess
        for arg in ["--max-requests=-1", "--max-requests=x", "--max-requests-jitter=",
                    "--max-rss=1e3", "--max-rss=99999999999"]:
            p = subprocess.run([sxtest.sxpool(), arg], capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 2, (arg, p.stderr))
            self.assertEqual(len(p.stderr.strip().splitlines()), 1, (arg, p.stderr))
            self.assertIn(arg.split("=")[0] + ":", p.stderr)


if __name__ == "__main__":
    sxtest.main()
