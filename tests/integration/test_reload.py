"""SIGHUP: the app reloaded without stopping. Under load from client
threads (GET /version, POST /inc on one counter per thread, GET /slow so
old workers hold requests when the reload lands): no request fails, every
increment is acknowledged exactly once (each thread's counts run 1, 2, 3,
... and the stored counter equals the last), and every request sent after
the new generation took over is answered by the new code. A reload to an
app that does not load keeps the old workers serving, with the error
logged; a SIGHUP during a reload is queued. A blacklist entry of a
function the new app changed does not apply to the new code, while the
entry of an unchanged function still does (native code is keyed by its
code hash)."""

import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest
import urllib.request

import sxtest

COMMIT_RE = r"reload: generation %d ready \((\d+) workers in \d+ ms\), (\d+) old workers? retiring"
LEFT_RE = r"reload: generation %d has left; generation %d serves with (\d+) workers"


def lines_since(srv, mark):
    with srv._cond:
        return list(srv.lines[mark:])


def admin_port(srv):
    return int(srv.wait_line(r"sxpool: admin on http://127\.0\.0\.1:(\d+)", timeout=10).group(1))


def status(srv, port):
    with urllib.request.urlopen("http://127.0.0.1:%d/status" % port, timeout=10) as r:
        return json.loads(r.read())


class Reload(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="sxpool-reload-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.app = os.path.join(self.tmp, "app")
        shutil.copytree(sxtest.app_dir("reload"), self.app)
        self.main = os.path.join(self.app, "main.sx")
        with open(self.main) as f:
            self.v1 = f.read()

    def write_app(self, text):
        tmp = self.main + ".new"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.main)

    def version(self, v):
        return self.v1.replace('(define version "v1")', '(define version "%s")' % v)

    def server(self, **kw):
        kw.setdefault("workers", 2)
        kw.setdefault("cek_workers", 1)
        args = ["--admin=127.0.0.1:0"] + kw.pop("args", [])
        return sxtest.Server(app=self.app, data=os.path.join(self.tmp, "data"), args=args, **kw)

    def reload(self, srv, gen, mark, old=None):
        """SIGHUP; waits for generation gen to take over and the old one to
        leave. @return the time the take-over was seen"""
        os.kill(srv.proc.pid, signal.SIGHUP)
        srv.wait_line(COMMIT_RE % gen, timeout=30, start=mark)
        seen = time.monotonic()
        srv.wait_line(LEFT_RE % (old or gen - 1, gen), timeout=30, start=mark)
        return seen

    def check_counts(self, srv, load, records):
        incs = load.increments(records)
        for key, counts in incs.items():
            self.assertEqual(counts, list(range(1, len(counts) + 1)),
                             "counter %s: every increment acknowledged once, in order" % key)
            self.assertGreater(len(counts), 0, key)
            r = srv.get("/count?k=" + key)
            self.assertEqual((r.status, r.text), (200, str(len(counts))), key)

    def test_reload_under_load_loses_no_request(self):
        with self.server(args=["--inflight=2"]) as srv:
            port = admin_port(srv)
            self.assertEqual(status(srv, port)["generation"], 1)
            old_pids = set(srv.worker_pids())
            self.assertEqual(len(old_pids), 3, old_pids)
            load = sxtest.Load(srv.host, srv.port, threads=4, slow=True).start()
            sxtest.wait_until(lambda: load.count() >= 40, 20, what="load to flow")
            self.write_app(self.version("v2"))
            mark = srv.log_size()
            t2 = self.reload(srv, 2, mark)
            self.assertEqual(status(srv, port)["generation"], 2)
            for p in old_pids:
                sxtest.wait_until(lambda: not sxtest.pid_alive(p), 10, what="old worker %d gone" % p)
            n = load.count()
            sxtest.wait_until(lambda: load.count() >= n + 40, 20, what="load after the reload")
            # Two SIGHUPs in a row: the second waits for the first reload.
            self.write_app(self.version("v3"))
            mark = srv.log_size()
            os.kill(srv.proc.pid, signal.SIGHUP)
            srv.wait_line(r"reload: starting generation 3 ", timeout=10, start=mark)
            os.kill(srv.proc.pid, signal.SIGHUP)
            srv.wait_line(r"reload: SIGHUP while generation 3 is starting; reloading "
                          r"again once it is done", timeout=10, start=mark)
            srv.wait_line(COMMIT_RE % 4, timeout=40, start=mark)
            t4 = time.monotonic()
            srv.wait_line(LEFT_RE % (3, 4), timeout=30, start=mark)
            n = load.count()
            sxtest.wait_until(lambda: load.count() >= n + 40, 20, what="load after reload 3")
            records = load.stop()
            st = status(srv, port)
            self.assertEqual((st["generation"], st["reload"]["state"], st["reload"]["ok"],
                              st["reload"]["failed"]), (4, "idle", 3, 0), st)
            self.assertEqual(sorted(w["generation"] for w in st["workers"]), [4, 4, 4], st)
        self.assertEqual(sxtest.Load.failures(records), [], "failed requests")
        self.check_counts_after(load, records)
        after2 = [r for r in records if t2 <= r[0] < t4 - 0.001 and r[3] == "/version"]
        self.assertTrue(after2)
        self.assertEqual({r[5] for r in after2} - {"v2", "v3"}, set())
        after4 = [r for r in records if r[0] >= t4 and r[3] == "/version"]
        self.assertTrue(after4)
        self.assertEqual({r[5] for r in after4}, {"v3"})
        print("reload under load: %d requests, 0 failed" % len(records), flush=True)

    def check_counts_after(self, load, records):
        # the server is stopped: a fresh one on the same data reads the counters
        with self.server() as srv:
            self.check_counts(srv, load, records)

    def test_broken_app_keeps_the_old_workers(self):
        with self.server() as srv:
            port = admin_port(srv)
            load = sxtest.Load(srv.host, srv.port, threads=3).start()
            sxtest.wait_until(lambda: load.count() >= 30, 20, what="load to flow")
            self.write_app(self.version("v2") + "\n(define (handle req\n")
            mark = srv.log_size()
            os.kill(srv.proc.pid, signal.SIGHUP)
            srv.wait_line(r"unable to load %s: .*unbalanced" % re.escape(self.main), timeout=20,
                          start=mark)
            srv.wait_line(r"reload: generation 2 failed: its worker \d+ \(pid \d+\) exited with "
                          r"status 1 before it was ready \(the worker's log above says why\); "
                          r"generation 1 serves on with 3 workers \(fix the app and send SIGHUP "
                          r"again\)", timeout=20, start=mark)
            n = load.count()
            sxtest.wait_until(lambda: load.count() >= n + 30, 20, what="load after the failure")
            self.assertEqual(srv.get("/healthz").status, 200)
            st = status(srv, port)
            self.assertEqual((st["generation"], st["reload"]["failed"]), (1, 1), st)
            # the failed generation's other workers are killed; until their
            # exit is seen they are listed as dying, then only generation 1's
            sxtest.wait_until(
                lambda: sorted(w["generation"] for w in status(srv, port)["workers"]) == [1, 1, 1],
                20, what="only generation 1's workers listed")
            # fixed: the next SIGHUP takes (generation 3: numbers never repeat)
            self.write_app(self.version("v2"))
            mark = srv.log_size()
            fixed = time.monotonic()
            self.reload(srv, 3, mark, old=1)
            n = load.count()
            sxtest.wait_until(lambda: load.count() >= n + 30, 20, what="load after the fix")
            records = load.stop()
        self.assertEqual(sxtest.Load.failures(records), [], "failed requests")
        before = {r[5] for r in records if r[1] < fixed and r[3] == "/version"}
        self.assertEqual(before, {"v1"})
        versions = [r[5] for r in records if r[3] == "/version"]
        self.assertEqual(versions[-1], "v2")
        self.assertNotIn("", versions)
        self.check_counts_after(load, records)

    def test_old_worker_killed_while_retiring(self):
        # Its request (held before its commit by the slow-commit hook) runs
        # again on the new generation, once: the counter ends at 1.
        env = {"SXPOOL_TEST_HOOK": "slow-commit:2000:/inc"}
        with self.server(env=env, workers=1, cek_workers=1) as srv:
            port = admin_port(srv)
            out = {}

            def post():
                try:
                    out["r"] = srv.request("POST", "/inc?k=killed", body=b"x", timeout=60)
                except Exception as e:  # noqa: BLE001 (asserted below)
                    out["r"] = e
            t = threading.Thread(target=post, daemon=True)
            t.start()
            busy = sxtest.wait_until(
                lambda: [w for w in status(srv, port)["workers"] if w["state"] == "busy"], 10,
                what="a busy worker")
            pid = busy[0]["pid"]
            self.write_app(self.version("v2"))
            mark = srv.log_size()
            os.kill(srv.proc.pid, signal.SIGHUP)
            srv.wait_line(COMMIT_RE % 2, timeout=30, start=mark)
            self.assertTrue(t.is_alive(), out)
            st = status(srv, port)
            old = [w for w in st["workers"] if w["pid"] == pid]
            self.assertEqual([(w["generation"], w["retiring"], w["state"]) for w in old],
                             [(1, True, "busy")], st)
            os.kill(pid, signal.SIGKILL)
            t.join(60)
            self.assertFalse(t.is_alive())
            r = out["r"]
            self.assertIsInstance(r, sxtest.Response, r)
            self.assertEqual((r.status, r.text), (200, "v2 1"), r)
            srv.wait_line(LEFT_RE % (1, 2), timeout=30, start=mark)
            lines = lines_since(srv, mark)
            self.assertEqual([ln for ln in lines if "(pid %d)" % pid in ln and "replacing" in ln],
                             [])
            self.assertEqual(srv.get("/count?k=killed").text, "1")
            st = status(srv, port)
            self.assertEqual(sorted((w["generation"], w["mode"]) for w in st["workers"]),
                             [(2, "cek"), (2, "jit")], st)

    def test_blacklist_follows_the_code_hash(self):
        sxtest.check_native_tier()
        env = {"SXPOOL_INJECT": "wrong-prim-arg:changed-block,wrong-prim-arg:same-block"}
        with self.server(env=env, args=["--jit-threshold=0", "--timeout=30"]) as srv:
            port = admin_port(srv)
            mark = srv.log_size()
            hashes = {}
            for path, fn, body in (("/changed", "changed-block", "(2 4 6)"),
                                   ("/same", "same-block", "(2 3 4)")):
                r = srv.get(path, timeout=30)
                self.assertEqual((r.status, r.text), (200, body), r)
                m = srv.wait_line(r"fault: %s: type-error escaped its native code .*blacklisted "
                                  r"it \(code ([0-9a-f]+)," % fn, timeout=10, start=mark)
                hashes[fn] = m.group(1)
            listed = {(e["function"], e["code_hash"]) for e in status(srv, port)["blacklist"]}
            self.assertEqual(listed, set(hashes.items()))
            # Both blacklisted: no fault any more.
            mark = srv.log_size()
            for path in ("/changed", "/same"):
                self.assertEqual(srv.get(path, timeout=30).status, 200)
            self.assertEqual([ln for ln in lines_since(srv, mark) if "fault:" in ln], [])
            # changed-block's code changes; same-block's does not.
            self.write_app(self.v1.replace("(* x 2)", "(* x 3)"))
            mark = srv.log_size()
            self.reload(srv, 2, mark)
            # same-block is still blacklisted in the new workers: never faults.
            for _ in range(6):
                r = srv.get("/same", timeout=30)
                self.assertEqual((r.status, r.text), (200, "(2 3 4)"), r)
            self.assertEqual([ln for ln in lines_since(srv, mark) if "fault:" in ln], [])
            # changed-block's old entry does not apply: its new native code
            # runs (and, injected, faults: blacklisted under its new hash).
            r = srv.get("/changed", timeout=30)
            self.assertEqual((r.status, r.text), (200, "(3 6 9)"), r)
            m = srv.wait_line(r"fault: changed-block: type-error escaped its native code .*"
                              r"blacklisted it \(code ([0-9a-f]+),", timeout=10, start=mark)
            self.assertNotEqual(m.group(1), hashes["changed-block"])
            entries = status(srv, port)["blacklist"]
            self.assertEqual(sorted((e["function"], e["code_hash"]) for e in entries),
                             sorted(list(hashes.items()) + [("changed-block", m.group(1))]))


if __name__ == "__main__":
    sxtest.main()
