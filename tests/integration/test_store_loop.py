"""The supervisor's event loop never waits on the store.

A worker holds LMDB's write lock for 2 s (the test-build hook
SXPOOL_TEST_HOOK=hold-lock:/hold: a request to /hold takes the lock in a
locked transaction, sleeps 2 s, aborts). Meanwhile a native-code fault
makes the supervisor write a blacklist entry, which has to wait for the
lock. The supervisor does that write off its loop thread, so during the
2 s every /healthz and every other request (read-only work, which needs no
write lock) is still answered within 0.5 s; the faulted request itself is
answered (200, from the CEK worker) only after its entry is stored, and
the entry is in the store when its response arrives.

A second case: the faulted request dies on both tiers (a crash in native
code, then a crash on the CEK worker), so besides the blacklist write the
supervisor looks up its response record before the 502; the loop keeps
answering meanwhile, and the request costs exactly two deaths.

Needs a working native tier (see test_faults_jit.py)."""

import os
import re
import signal
import tempfile
import threading
import time
import unittest

import sxtest
from test_faults_jit import EDGES, JIT_ARGS, blacklist, check_native_tier, lines_since

HOLD_S = 2.0
BOUND_S = 0.5  # the longest any other request may take while the lock is held
HOLDING_RE = r"sxpool worker: test hook: holding the write lock for 2 s"
RELEASED_RE = r"sxpool worker: test hook: released the write lock"


class LoopNeverWaitsOnStore(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_native_tier()  # raises: every test of the class fails

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-storeloop-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def server(self, env):
        # three JIT workers: one holds the lock, one faults, one serves the
        # other requests meanwhile. No shadow runs: a canary waits for the
        # one CEK worker, which these tests keep busy behind the lock on
        # purpose, and the loop's latency is what is measured here.
        return sxtest.Server(app="faults", workers=3, cek_workers=1, data=self.data, env=env,
                             args=JIT_ARGS + ["--shadow-canary=0", "--shadow-rate=0"])

    def background(self, srv, path, out):
        def go():
            t0 = time.monotonic()
            try:
                r = srv.get(path, timeout=30)
                out.update(status=r.status, text=r.text, t0=t0, t1=time.monotonic())
            except Exception as e:  # noqa: BLE001 (recorded, asserted on below)
                out.update(error=repr(e), t0=t0, t1=time.monotonic())
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t

    def traffic_while_locked(self, srv, mark, hold):
        """Sends /healthz and /work (read-only) from 3 clients until the
        /hold request is answered; returns [(path, start, seconds, status,
        body or error)]."""
        results, lock = [], threading.Lock()

        def client(paths):
            i = 0
            while "t1" not in hold:
                path = paths[i % len(paths)]
                i += 1
                t0 = time.monotonic()
                try:
                    r = srv.get(path, timeout=10)
                    item = (path, t0, time.monotonic() - t0, r.status, r.text)
                except Exception as e:  # noqa: BLE001
                    item = (path, t0, time.monotonic() - t0, None, repr(e))
                with lock:
                    results.append(item)
                time.sleep(0.02)
        threads = [threading.Thread(target=client, args=(p,), daemon=True)
                   for p in (["/healthz"], ["/work?n=200"], ["/healthz", "/work?n=50"])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        return results

    def check_traffic(self, results, locked_at, released_at):
        bodies = {"/healthz": None, "/work?n=200": "done", "/work?n=50": "done"}
        for path, t0, dt, status, body in results:
            self.assertEqual(status, 200, (path, body))
            if bodies[path] is not None:
                self.assertEqual(body, bodies[path], path)
            self.assertLess(dt, BOUND_S, "%s took %.3f s while a worker held the write lock"
                            % (path, dt))
        during = [r for r in results if locked_at <= r[1] and r[1] + r[2] <= released_at]
        paths = {r[0] for r in during}
        self.assertIn("/healthz", paths, "no /healthz answered while the lock was held")
        self.assertTrue(paths & {"/work?n=200", "/work?n=50"},
                        "no other request answered while the lock was held")
        self.assertGreaterEqual(len(during), 10, during)
        print("answered while locked: %d requests, slowest %.0f ms"
              % (len(during), 1000 * max(r[2] for r in during)), flush=True)

    def warm_up(self, srv):
        """Every JIT worker compiles what the traffic runs before the clock
        starts (at threshold 0 a first call compiles)."""
        for _ in range(4):
            for path in ("/", "/work?n=50", "/work?n=200"):
                r = srv.get(path, timeout=30)
                self.assertEqual(r.status, 200, (path, r))

    def lock_then_fault(self, srv, fault_path):
        """Starts /hold, waits until its worker holds the lock, then starts
        fault_path. Returns (hold, fault, locked_at) and the threads."""
        hold, fault = {}, {}
        mark = srv.log_size()
        th = self.background(srv, "/hold", hold)
        srv.wait_line(HOLDING_RE, timeout=10, start=mark)
        locked_at = time.monotonic()
        tf = self.background(srv, fault_path, fault)
        return hold, fault, locked_at, (th, tf), mark

    def test_blacklist_write_waits_off_the_loop(self):
        env = {"SXPOOL_INJECT": "wrong-prim-arg:edges-block",
               "SXPOOL_TEST_HOOK": "hold-lock:/hold"}
        with self.server(env) as srv:
            self.warm_up(srv)
            hold, fault, locked_at, threads, mark = self.lock_then_fault(srv, "/edges")
            results = self.traffic_while_locked(srv, mark, hold)
            for t in threads:
                t.join(timeout=30)
            released_at = hold["t1"]
            self.assertNotIn("error", hold, hold)
            self.assertGreaterEqual(released_at - locked_at, HOLD_S - 0.3, hold)
            srv.wait_line(RELEASED_RE, timeout=5, start=mark)
            self.check_traffic(results, locked_at, released_at)
            # the faulted request: answered by the CEK worker once its entry
            # was stored, and the entry is there when the answer arrives
            self.assertEqual((fault.get("status"), fault.get("text")), (200, EDGES), fault)
            entries = blacklist(self.data)
            self.assertIn("edges-block", entries, entries)
            self.assertGreater(fault["t1"], released_at - 0.3,
                               "the faulted request was answered before its entry could be "
                               "stored")
            srv.wait_line(r"fault: edges-block: type-error escaped its native code .*; "
                          r"blacklisted it \(code [0-9a-f]+, abi \w+\) and told 3 JIT workers; "
                          r"re-dispatched request \d+ to a CEK worker$", timeout=5, start=mark)
            self.assertEqual(srv.get("/edges", timeout=30).text, EDGES)

    def test_two_deaths_and_record_lookup_wait_off_the_loop(self):
        env = {"SXPOOL_INJECT": "null-deref:edges-block",
               "SXPOOL_TEST_HOOK": "hold-lock:/hold,segv-in-cek:/edges"}
        with self.server(env) as srv:
            self.warm_up(srv)
            hold, fault, locked_at, threads, mark = self.lock_then_fault(srv, "/edges")
            results = self.traffic_while_locked(srv, mark, hold)
            for t in threads:
                t.join(timeout=30)
            released_at = hold["t1"]
            self.assertNotIn("error", hold, hold)
            self.check_traffic(results, locked_at, released_at)
            self.assertEqual(fault.get("status"), 502, fault)
            m = srv.wait_line(r"fault: edges-block: its native code died of SIGSEGV; .*"
                              r"re-dispatched request (\d+) to a CEK worker; respawning the slot$",
                              timeout=5, start=mark)
            srv.wait_line(r"died of SIGSEGV.* while running request %s; answered request %s with "
                          r"502 \(it failed on two workers\)$" % (m.group(1), m.group(1)),
                          timeout=5, start=mark)
            deaths = [ln for ln in lines_since(srv, mark)
                      if re.search(r"sxpool: worker \d+ \(pid \d+\) killed by signal", ln)]
            self.assertEqual(len(deaths), 2, deaths)
            self.assertIn("edges-block", blacklist(self.data))

    def test_shutdown_waits_for_the_store_work_of_a_fault(self):
        # SIGTERM while the faulted request waits for its blacklist write:
        # the drain waits for it, the request is run again on the CEK worker
        # and answered, then the server stops cleanly.
        env = {"SXPOOL_INJECT": "wrong-prim-arg:edges-block",
               "SXPOOL_TEST_HOOK": "hold-lock:/hold"}
        srv = self.server(env)
        with srv:
            self.warm_up(srv)
            hold, fault, locked_at, threads, mark = self.lock_then_fault(srv, "/edges")
            time.sleep(0.3)  # the JIT fault is replied at once; its entry waits for the lock
            self.assertNotIn("t1", fault, "the faulted request was answered before its entry "
                             "could be stored")
            srv.proc.send_signal(signal.SIGTERM)
            for t in threads:
                t.join(timeout=30)
            self.assertEqual((fault.get("status"), fault.get("text")), (200, EDGES), fault)
            self.assertEqual(hold.get("status"), 404, hold)  # the faults app has no /hold route
            self.assertEqual(srv.proc.wait(timeout=15), 0)
            srv.wait_line(r"fault: edges-block: type-error escaped its native code .*; "
                          r"blacklisted it .*; re-dispatched request \d+ to a CEK worker$",
                          timeout=5, start=mark)
        self.assertIn("edges-block", blacklist(self.data))


if __name__ == "__main__":
    sxtest.main()
