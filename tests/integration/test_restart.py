"""Restart intensity by cause, and /healthz.

A worker that dies before its READY (an app that cannot load) is respawned
after a backoff that doubles with each start failure in a row (100 ms,
200 ms, 400 ms, ... up to 10 s), each logged with its cause. A ready
worker killed from outside (SIGKILL) is replaced at once, however often it
happens; one that crashes (SIGSEGV) too, unless its slot crashed more than
5 times within 10 s.
/healthz answers 503 "no ready worker" while no worker of either kind is
ready and 200 "ok" otherwise."""

import os
import re
import shutil
import signal
import tempfile
import time
import unittest

import sxtest

START_FAIL_RE = re.compile(r"sxpool: worker (\d+) \(pid \d+\) failed to start: ([^;]+); (\d+) start "
                           r"failures? in a row; respawning it in (\d+) ms")
BROKEN_MAIN = ";; cannot load (unbalanced parenthesis)\n(define (handle req) \"never served\"\n"


def lines_since(srv, mark):
    with srv._cond:
        return list(srv.lines[mark:])


def healthz(srv):
    r = srv.get("/healthz", timeout=5)
    return r.status, r.text


class Restart(unittest.TestCase):
    def test_start_failures_back_off_doubling_with_the_cause_logged(self):
        with sxtest.Server(app="broken", workers=1, cek_workers=1, args=["--timeout=2"],
                           wait_workers=False) as srv:
            # 100 + 200 + 400 + 800 ms of backoff: the fifth failure of a slot
            # comes after at least 1.5 s
            t0 = time.monotonic()
            srv.wait_line(r"worker 0 \(pid \d+\) failed to start: .*; 5 start failures in a row",
                          timeout=30)
            self.assertGreaterEqual(time.monotonic() - t0, 1.0)
            self.assertEqual(healthz(srv), (503, "no ready worker\n"))
            for slot in (0, 1):
                fails = [m for m in map(START_FAIL_RE.search, lines_since(srv, 0))
                         if m and int(m.group(1)) == slot]
                self.assertGreaterEqual(len(fails), 4, fails)
                for i, m in enumerate(fails[:5]):
                    self.assertEqual(m.group(2), "exit status 1", m.group(0))
                    self.assertEqual(int(m.group(3)), i + 1, m.group(0))
                    self.assertEqual(int(m.group(4)), 100 << i, m.group(0))
            # no spinning: at most 6 start failures per slot within those ~2 s
            self.assertLessEqual(len([ln for ln in lines_since(srv, 0)
                                      if "failed to start" in ln]), 14)
            self.assertEqual(srv.ready_pids(), {})
            self.assertEqual(srv.stop(), 0)

    def test_start_backoff_stops_doubling_at_10_s(self):
        # 100 + 200 + ... + 6400 ms: the eighth start failure in a row comes
        # after about 12.7 s and waits the cap, 10 s.
        with sxtest.Server(app="broken", workers=1, cek_workers=1, wait_workers=False) as srv:
            m = srv.wait_line(r"worker 0 \(pid \d+\) failed to start: exit status 1; 8 start "
                              r"failures in a row; respawning it in (\d+) ms", timeout=40)
            self.assertEqual(m.group(1), "10000")
            fails = [m for m in map(START_FAIL_RE.search, lines_since(srv, 0))
                     if m and m.group(1) == "0"]
            self.assertEqual([int(m.group(4)) for m in fails[:8]],
                             [100, 200, 400, 800, 1600, 3200, 6400, 10000])
            self.assertEqual(healthz(srv), (503, "no ready worker\n"))

    def test_a_ready_worker_that_keeps_crashing_is_throttled(self):
        # SIGSEGV is a crash, not a kill: the first five crashes of a slot
        # within 10 s are replaced at once, the sixth waits 500 ms.
        with sxtest.Server(app="basic", workers=1, cek_workers=1) as srv:
            for i in range(6):
                (pid,) = [p for p, slot in srv.ready_pids().items()
                          if slot == 0 and sxtest.pid_alive(p)]
                mark = srv.log_size()
                os.kill(pid, signal.SIGSEGV)
                m = srv.wait_line(r"worker 0 \(pid %d\) was ready and crashed \(signal SIGSEGV\); "
                                  r"(.*)$" % pid, timeout=5, start=mark)
                if i < 5:
                    self.assertEqual(m.group(1), "crash %d of slot 0 within 10 s; replacing it "
                                     "now" % (i + 1))
                else:
                    self.assertEqual(m.group(1), "6 crashes of slot 0 within 10 s; respawning it "
                                     "in 500 ms")
                srv.wait_line(r"worker 0 \(pid \d+\) ready", timeout=10, start=mark)
            r = srv.get("/")
            self.assertEqual(r.status, 200, r)

    def test_kill_from_outside_is_replaced_at_once_every_time(self):
        # Eight SIGKILLs of slot 0 within a few seconds: each replacement is
        # ready within a second, none is delayed by a backoff.
        with sxtest.Server(app="basic", workers=2, cek_workers=1) as srv:
            for i in range(8):
                pid = [p for p, slot in srv.ready_pids().items()
                       if slot == 0 and sxtest.pid_alive(p)]
                self.assertEqual(len(pid), 1, srv.ready_pids())
                mark = srv.log_size()
                t0 = time.monotonic()
                os.kill(pid[0], signal.SIGKILL)
                srv.wait_line(r"worker 0 \(pid %d\) was ready and got SIGKILL from outside "
                              r"sxpool; replacing it now" % pid[0], timeout=5, start=mark)
                sxtest.wait_until(
                    lambda: [p for p, s in srv.ready_pids(mark).items()
                             if s == 0 and sxtest.pid_alive(p)],
                    5, interval=0.01, what="slot 0 ready again (kill %d)" % (i + 1))
                self.assertLess(time.monotonic() - t0, 1.5, "kill %d" % (i + 1))
            lines = lines_since(srv, 0)
            self.assertEqual([ln for ln in lines if "respawning it in" in ln], [])
            r = srv.get("/")
            self.assertEqual(r.status, 200, r)

    def test_healthz_follows_the_ready_workers(self):
        tmp = tempfile.mkdtemp(prefix="sxpool-restart-")
        self.addCleanup(shutil.rmtree, tmp, True)
        app = os.path.join(tmp, "app")
        shutil.copytree(sxtest.app_dir("basic"), app)
        main = os.path.join(app, "main.sx")
        with open(main) as f:
            good = f.read()
        with sxtest.Server(app=app, workers=2, cek_workers=1) as srv:
            self.assertEqual(healthz(srv), (200, "ok\n"))
            # Every worker killed while the app cannot load: no worker is
            # ready again until it can.
            with open(main, "w") as f:
                f.write(BROKEN_MAIN)
            mark = srv.log_size()
            pids = srv.worker_pids()
            self.assertEqual(len(pids), 3, pids)
            for p in pids:
                os.kill(p, signal.SIGKILL)
            sxtest.wait_until(lambda: healthz(srv) == (503, "no ready worker\n"), 10,
                              interval=0.02, what="/healthz 503")
            srv.wait_line(r"worker \d \(pid \d+\) failed to start: exit status 1; 1 start failure "
                          r"in a row; respawning it in 100 ms", timeout=10, start=mark)
            time.sleep(0.3)
            self.assertEqual(healthz(srv), (503, "no ready worker\n"))
            r = srv.request("HEAD", "/healthz", timeout=5)
            self.assertEqual((r.status, r.body), (503, b""), r)
            # The app loads again: the next respawn is ready, /healthz 200,
            # and requests are served.
            with open(main, "w") as f:
                f.write(good)
            mark = srv.log_size()
            sxtest.wait_until(lambda: healthz(srv) == (200, "ok\n"), 20, interval=0.05,
                              what="/healthz 200 again")
            srv.wait_ready(3, timeout=20, start=mark)
            r = srv.get("/")
            self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    sxtest.main()
