"""Worker deaths that need no native tier: a request whose worker is killed
is served again, once, by a CEK worker and its write is applied once; a
request that kills two workers gets 502; a worker that dies after its
commit and before its reply is answered from the committed record; and
dispatch prefers JIT workers but serves from CEK workers when no JIT
worker is up."""

import os
import re
import signal
import tempfile
import threading
import time
import unittest

import sxtest
from sxtest import busy_one, cpu_ticks, pid_alive


def in_thread(fn):
    """Runs fn() in a thread; returns (thread, result dict with "r" or "e")."""
    out = {}

    def run():
        try:
            out["r"] = fn()
        except Exception as e:  # noqa: BLE001 (reported by the caller)
            out["e"] = e
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


class Traffic:
    """GET / in a loop on its own connection until stopped."""

    def __init__(self, srv):
        self.srv = srv
        self.statuses = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.is_set():
            try:
                self.statuses.append(self.srv.get("/", timeout=30).status)
            except OSError as e:
                self.statuses.append(repr(e))
            time.sleep(0.01)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=40)
        return self.statuses


class Faults(unittest.TestCase):
    def test_killed_mid_request_is_served_again_with_its_write_applied_once(self):
        # count-to stays on the VM so the first attempt runs long enough to be killed
        with sxtest.Server(app="faults", workers=1, cek_workers=1,
                           args=["--timeout=60", "--jit-exclude=count-to"]) as srv:
            (jit,) = srv.worker_pids("jit")
            (cek,) = srv.worker_pids("cek")
            base = {p: cpu_ticks(p) for p in (jit, cek)}
            t, out = in_thread(lambda: srv.get("/write-then-work?n=20000000", timeout=60))
            busy_one([jit], base)
            mark = srv.log_size()
            os.kill(jit, signal.SIGKILL)
            t.join(timeout=60)
            self.assertFalse(t.is_alive(), "no answer")
            self.assertNotIn("e", out, out.get("e"))
            self.assertEqual((out["r"].status, out["r"].text), (200, "1"), out["r"])
            srv.wait_line(r"worker 0 \(pid %d\) died of SIGKILL while running request (\d+); "
                          r"re-dispatched request \1 to a CEK worker" % jit, timeout=5, start=mark)
            self.assertGreater(cpu_ticks(cek), base[cek] + 5, "the CEK worker did not run it")
            self.assertEqual(srv.get("/read?k=worked").text, "1")

    def test_requests_sent_ahead_to_a_worker_that_dies_run_once_elsewhere(self):
        # --inflight=2: /count is sent to the JIT worker behind /loop, which
        # never returns; the worker is killed before it gets to /count. /loop
        # takes the death (run again on the CEK worker, where its deadline
        # ends it: 504); /count never started, so it goes back to the queue
        # uncounted and is served once, by the respawned worker.
        with sxtest.Server(app="faults", workers=1, cek_workers=1,
                           args=["--timeout=3", "--inflight=2"]) as srv:
            (jit,) = srv.worker_pids("jit")
            base = {jit: cpu_ticks(jit)}
            t1, out1 = in_thread(lambda: srv.get("/loop", timeout=60))
            busy_one([jit], base)
            mark = srv.log_size()
            t2, out2 = in_thread(lambda: srv.get("/count", timeout=60))
            time.sleep(1.0)  # /count is sent to the busy worker, behind /loop
            os.kill(jit, signal.SIGKILL)
            for t in (t1, t2):
                t.join(timeout=60)
                self.assertFalse(t.is_alive(), "no answer")
            self.assertNotIn("e", out1, out1.get("e"))
            self.assertNotIn("e", out2, out2.get("e"))
            self.assertEqual(out1["r"].status, 504, out1["r"])
            self.assertEqual((out2["r"].status, out2["r"].text), (200, "1"), out2["r"])
            srv.wait_line(r"worker 0 \(pid %d\) died of SIGKILL while running request (\d+); "
                          r"re-dispatched request \1 to a CEK worker" % jit, timeout=5, start=mark)
            srv.wait_line(r"worker 0 \(pid %d\) died before starting request \d+; queued it "
                          r"again" % jit, timeout=5, start=mark)
            self.assertEqual(srv.get("/read?k=counter").text, "1")

    def test_request_that_kills_two_workers_gets_502_and_others_succeed(self):
        with sxtest.Server(app="faults", workers=2, cek_workers=1, args=["--timeout=60"]) as srv:
            jits = srv.worker_pids("jit")
            (cek,) = srv.worker_pids("cek")
            base = {p: cpu_ticks(p) for p in jits + [cek]}
            traffic = Traffic(srv)
            t, out = in_thread(lambda: srv.get("/loop", timeout=60))
            first = busy_one(jits, base)
            mark = srv.log_size()
            os.kill(first, signal.SIGKILL)
            m = srv.wait_line(r"worker \d+ \(pid %d\) died of SIGKILL while running request "
                              r"(\d+); re-dispatched request \1 to a CEK worker" % first,
                              timeout=5, start=mark)
            rid = m.group(1)
            busy_one([cek], {cek: cpu_ticks(cek)})
            os.kill(cek, signal.SIGKILL)
            t.join(timeout=20)
            self.assertFalse(t.is_alive(), "no answer after the second death")
            self.assertNotIn("e", out, out.get("e"))
            self.assertEqual(out["r"].status, 502, out["r"])
            srv.wait_line(r"worker \d+ \(pid %d\) died of SIGKILL while running request %s; "
                          r"answered request %s with 502" % (cek, rid, rid), timeout=5,
                          start=mark)
            time.sleep(0.3)
            statuses = traffic.stop()
            self.assertGreater(len(statuses), 5)
            self.assertEqual([s for s in statuses if s != 200], [])
            with srv._cond:
                deaths = [ln for ln in srv.lines[mark:]
                          if re.search(r"died of \w+ while running request %s\b" % rid, ln)]
            self.assertEqual(len(deaths), 2, deaths)
            srv.wait_ready(2, timeout=10, start=mark)  # both replaced
            self.assertEqual(srv.get("/").status, 200)

    def test_second_attempt_does_not_wait_out_its_deadline_behind_a_busy_cek_worker(self):
        # /loop dies on a JIT worker and its second attempt holds the one
        # CEK worker until its deadline (504). /work dies on a JIT worker
        # too: its second attempt waits for the busy CEK worker at most a
        # second (a quarter of --timeout, at most 1 s), then runs on a JIT
        # worker and is answered while /loop still holds the CEK worker.
        # (No canaries: a new JIT worker's first native runs are answered
        # by a CEK worker, which would wait for /loop too.)
        with sxtest.Server(app="faults", workers=2, cek_workers=1,
                           args=["--timeout=12", "--shadow-canary=0"]) as srv:
            jits = srv.worker_pids("jit")
            (cek,) = srv.worker_pids("cek")
            base = {p: cpu_ticks(p) for p in jits + [cek]}
            t1, out1 = in_thread(lambda: srv.get("/loop", timeout=60))
            first = busy_one(jits, base)
            mark = srv.log_size()
            os.kill(first, signal.SIGKILL)
            srv.wait_line(r"died of SIGKILL while running request (\d+); re-dispatched request "
                          r"\1 to a CEK worker", timeout=5, start=mark)
            busy_one([cek], {cek: cpu_ticks(cek)})
            srv.wait_ready(1, timeout=20, start=mark)  # the first one's replacement
            jits = srv.worker_pids("jit")
            base = {p: cpu_ticks(p) for p in jits}
            t2, out2 = in_thread(lambda: srv.get("/work?n=10000000", timeout=60))
            second = busy_one(jits, base)
            mark2 = srv.log_size()
            os.kill(second, signal.SIGKILL)
            m = srv.wait_line(r"request (\d+) waited \d+ ms for a busy CEK worker; sending it "
                              r"to worker \d+ \(pid \d+\) instead", timeout=10, start=mark2)
            t2.join(timeout=30)
            self.assertFalse(t2.is_alive(), "no answer to /work")
            self.assertNotIn("e", out2, out2.get("e"))
            self.assertEqual((out2["r"].status, out2["r"].text), (200, "done"), out2["r"])
            self.assertTrue(t1.is_alive(), "/loop was answered before /work: %r" % out1)
            self.assertTrue(pid_alive(cek), "the CEK worker was replaced before /work ran")
            srv.wait_line(r"died of SIGKILL while running request %s; re-dispatched" % m.group(1),
                          timeout=5, start=mark2)
            t1.join(timeout=30)
            self.assertFalse(t1.is_alive(), "no answer to /loop")
            self.assertEqual(out1["r"].status, 504, out1.get("r", out1))

    def test_killed_after_commit_is_answered_from_the_record(self):
        hook = {"SXPOOL_TEST_HOOK": "exit-after-commit:/commit"}
        with sxtest.Server(app="faults", workers=1, cek_workers=1, env=hook) as srv:
            for n in (1, 2):
                (jit,) = srv.worker_pids("jit")
                mark = srv.log_size()
                r = srv.get("/commit", timeout=20)
                self.assertEqual((r.status, r.text), (200, str(n)), r)
                srv.wait_line(r"worker 0 \(pid %d\) exited with status 9 while running request "
                              r"(\d+); re-dispatched request \1" % jit, timeout=5, start=mark)
                self.assertEqual(srv.get("/read?k=committed").text, str(n))
                srv.wait_line(r"worker 0 \(pid \d+\) ready", timeout=10, start=mark)

    def test_commit_after_the_deadline_is_answered_not_504(self):
        # The deadline passes while the worker sleeps before its commit; the
        # supervisor's SIGKILL lands 1.5 s later (a worker slow to die), and
        # the commit in between. The answer waits for the worker: here the
        # reply itself; with a shorter sleep than the deadline nothing
        # changes. Never a 504 for a request whose write is in the store.
        hook = {"SXPOOL_TEST_HOOK": "slow-commit:1500:/commit,kill-delay:1500"}
        with sxtest.Server(app="faults", workers=1, cek_workers=1, env=hook,
                           args=["--timeout=1"]) as srv:
            mark = srv.log_size()
            r = srv.get("/commit", timeout=20)
            self.assertEqual((r.status, r.text), (200, "1"), r)
            self.assertEqual(srv.get("/read?k=committed").text, "1")
            srv.wait_line(r"killing worker 0 \(pid \d+\): request \d+ ran past its 1 s deadline",
                          timeout=10, start=mark)
            srv.wait_line(r"worker 0 \(pid \d+\) ready", timeout=10, start=srv.log_size() - 1)

    def test_killed_before_its_commit_after_the_deadline_is_504(self):
        # Killed (1 s after the deadline) while it still sleeps before its
        # commit: nothing was written, the answer is 504 and the write
        # never happens.
        hook = {"SXPOOL_TEST_HOOK": "slow-commit:4000:/commit,kill-delay:1000"}
        with sxtest.Server(app="faults", workers=1, cek_workers=1, env=hook,
                           args=["--timeout=1"]) as srv:
            r = srv.get("/commit", timeout=20)
            self.assertEqual(r.status, 504, r)
            time.sleep(4)
            self.assertEqual(srv.get("/read?k=committed").text, "0")

    def test_jit_workers_take_first_attempts(self):
        # shadow runs off: their point is to use the CEK workers (test_shadow)
        with sxtest.Server(app="faults", workers=1, cek_workers=1,
                           args=["--shadow-canary=0", "--shadow-rate=0"]) as srv:
            (jit,) = srv.worker_pids("jit")
            (cek,) = srv.worker_pids("cek")
            base = {p: cpu_ticks(p) for p in (jit, cek)}
            for _ in range(5):
                r = srv.get("/work?n=2000000", timeout=30)
                self.assertEqual((r.status, r.text), (200, "done"), r)
            self.assertGreater(cpu_ticks(jit), base[jit] + 5)
            self.assertLess(cpu_ticks(cek), base[cek] + 3, "a CEK worker took first attempts")

    def test_only_cek_workers_up_still_serves(self):
        hook = {"SXPOOL_TEST_HOOK": "exit-at-start:jit"}
        with sxtest.Server(app="faults", workers=2, cek_workers=1, env=hook,
                           wait_workers=False) as srv:
            srv.wait_ready(1, timeout=10)
            srv.wait_line(r"worker [01] \(pid \d+\) exited with status 1", timeout=10)
            for i in range(10):
                r = srv.get("/count", timeout=10)
                self.assertEqual((r.status, r.text), (200, str(i + 1)), r)
            self.assertEqual(set(srv.ready_pids().values()), {2}, "only slot 2 (CEK) is up")
            self.assertEqual(len(srv.worker_pids("cek")), 1)


class InflightFlag(unittest.TestCase):
    def test_bad_values_exit_2(self):
        import subprocess
        for arg in ["--inflight=0", "--inflight=9", "--inflight=x", "--inflight="]:
            p = subprocess.run([sxtest.sxpool(), arg], capture_output=True, text=True, timeout=10)
            self.assertEqual(p.returncode, 2, (arg, p.stderr))
            self.assertEqual(p.stderr, "sxpool: --inflight: expected a number from 1 to 8, got "
                             "'%s'\n" % arg.split("=", 1)[1], arg)


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-faults-cli-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def usage_error(self, args, message):
        base = ["--listen=127.0.0.1:0", "--data=" + self.data, "--app=" + sxtest.app_dir("faults")]
        rc, out, err = sxtest.run(base + args, timeout=10)
        self.assertEqual((rc, out, err), (2, "", message + "\n"), args)

    def test_pool_flags(self):
        self.usage_error(["--cek-workers=0"],
                         "sxpool: --cek-workers: expected a number from 1 to 256, got '0'")
        self.usage_error(["--cek-workers=x"],
                         "sxpool: --cek-workers: expected a number from 1 to 256, got 'x'")
        self.usage_error(["--jit-threshold=-1"],
                         "sxpool: --jit-threshold: expected a number from 0 to 4294967295, "
                         "got '-1'")
        self.usage_error(["--jit-exclude="],
                         "sxpool: --jit-exclude: expected globs (at most 4095 bytes in all), "
                         "got ''")
        rc, out, err = sxtest.run(["--help"])
        self.assertEqual(rc, 0, err)
        for flag in ("--cek-workers=M", "--jit-threshold=N", "--jit-exclude=GLOB", "--abi=HASH"):
            self.assertIn(flag, out)

    def test_blacklist_list_filters(self):
        os.makedirs(self.data)
        for args in (["--abi=0123456789abcdef"], ["edges-*"], ["*", "--abi", "x"]):
            rc, out, err = sxtest.run(["blacklist", "list", "--data=" + self.data] + args)
            self.assertEqual((rc, out), (0, ""), (args, err))
        rc, out, err = sxtest.run(["blacklist", "clear", "--abi=x", "--data=" + self.data])
        self.assertEqual(rc, 2, err)


if __name__ == "__main__":
    sxtest.main()
