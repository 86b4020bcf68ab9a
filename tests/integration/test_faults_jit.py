"""Faults in native code, made by the native tier's test-only injection
switch (SXPOOL_INJECT=KIND:FUNCTION) with --jit-threshold=0 so functions are
compiled before their first call. For each kind (a wrong primitive argument,
a NULL dereference, a compiler crash): the first request that hits the
function gets 200 with the correct body, the function is in `sxpool
blacklist list` when that response arrives, every JIT worker drops its
native code (and no later request faults), a restart keeps the entry, and
another ABI hash does not see it. Also: a genuine program error in a
compiled function gives 500 and leaves no entry, and a request that kills
a worker on each tier gives 502 after exactly two deaths.

Every test needs a working native tier: when `sxpool eval --tier=jit` does
not compile and run a function natively, every test of the class fails (a
binary without the native tier cannot pass these tests)."""

import os
import re
import tempfile
import threading
import time
import unittest

import sxtest

JIT_ARGS = ["--jit-threshold=0", "--timeout=30"]
EDGES = "(2 4 6)"

check_native_tier = sxtest.check_native_tier  # (test_query_of_death, test_store_loop)


def blacklist(data, *args):
    """`sxpool blacklist list` as {function: [code, abi, count, time, reason]}."""
    rc, out, err = sxtest.run(["blacklist", "list", "--data=" + data] + list(args))
    if rc != 0:
        raise AssertionError("blacklist list failed (%d): %s" % (rc, err))
    entries = {}
    for line in out.splitlines():
        fields = line.split(" ", 5)
        entries[fields[0]] = fields[1:]
    return entries


def lines_since(srv, mark):
    with srv._cond:
        return list(srv.lines[mark:])


def jit_abi(srv):
    m = srv.wait_line(r"ready \(mode jit, abi (\w+)\)", timeout=10)
    return m.group(1)


class NativeFaults(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        check_native_tier()  # raises: every test of the class fails

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-faults-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def server(self, env, workers=2):
        return sxtest.Server(app="faults", workers=workers, cek_workers=1, data=self.data,
                             env=env, args=JIT_ARGS)

    def assert_every_jit_worker_dropped(self, srv, fn, start):
        """Each live JIT worker logged that it dropped fn's native code."""
        def done():
            pids = srv.worker_pids("jit")
            text = "\n".join(lines_since(srv, start))
            ok = [p for p in pids
                  if re.search(r"sxpool worker \d+ \(pid %d\): dropped the native code of %s "
                               % (p, re.escape(fn)), text)]
            return len(pids) == 2 and len(ok) == 2
        sxtest.wait_until(done, 15, interval=0.05, what="every JIT worker to drop " + fn)

    def assert_no_fault_in(self, srv, path, body, n=10):
        mark = srv.log_size()
        for _ in range(n):
            r = srv.get(path, timeout=30)
            self.assertEqual((r.status, r.text), (200, body), r)
        faults = [ln for ln in lines_since(srv, mark) if "fault:" in ln or " died " in ln]
        self.assertEqual(faults, [], "native code still ran after the blacklist")

    def check_kind(self, kind, fault_re):
        env = {"SXPOOL_INJECT": "%s:edges-block" % kind}
        with self.server(env) as srv:
            abi = jit_abi(srv)
            mark = srv.log_size()
            t0 = time.monotonic()
            r = srv.get("/edges", timeout=30)
            elapsed = time.monotonic() - t0
            self.assertEqual((r.status, r.text), (200, EDGES), r)
            entries = blacklist(self.data)  # read as soon as the response arrived
            self.assertIn("edges-block", entries, entries)
            code, eabi, count = entries["edges-block"][:3]
            self.assertEqual((eabi, count), (abi, "1"), entries)
            self.assertRegex(code, r"^[0-9a-f]+$")
            srv.wait_line(r"fault: edges-block: %s.*; worker \d+ \(pid \d+\).*; blacklisted it "
                          r"\(code %s, abi %s\).*re-dispatched request \d+ to a CEK worker"
                          % (fault_re, code, abi), timeout=5, start=mark)
            self.assert_every_jit_worker_dropped(srv, "edges-block", mark)
            self.assert_no_fault_in(srv, "/edges", EDGES)
            sys_note = "%s: first request %.0f ms" % (kind, elapsed * 1000)
            print(sys_note, flush=True)
        # a restart keeps the entry, and the new workers load it
        with self.server(env) as srv:
            self.assertIn("edges-block", blacklist(self.data))
            self.assert_every_jit_worker_dropped(srv, "edges-block", 0)
            self.assert_no_fault_in(srv, "/edges", EDGES)
        # another ABI hash does not see it
        self.assertEqual(blacklist(self.data, "--abi=0000000000000000"), {})
        self.assertIn("edges-block", blacklist(self.data, "--abi=" + abi))

    def test_wrong_primitive_argument(self):
        self.check_kind("wrong-prim-arg", r"type-error escaped its native code")

    def test_null_dereference(self):
        self.check_kind("null-deref", r"its native code died of SIGSEGV")

    def test_compiler_crash(self):
        self.check_kind("ice", r"the compiler exited with status 4 while compiling it")

    def test_fault_in_a_direct_call_names_the_callee(self):
        # handle (native) calls direct-victim through its direct entry the
        # second time; the type-error raised in direct-victim's native code
        # is a fault of direct-victim, not of its caller
        env = {"SXPOOL_INJECT": "wrong-prim-arg:direct-victim"}
        with self.server(env) as srv:
            mark = srv.log_size()
            r = srv.get("/direct", timeout=30)
            self.assertEqual((r.status, r.text), (200, "(2 4 6)cold"), r)
            srv.wait_line(r"fault: direct-victim: type-error escaped its native code.*"
                          r"re-dispatched request \d+ to a CEK worker", timeout=5, start=mark)
            entries = blacklist(self.data)
            self.assertEqual(sorted(entries), ["direct-victim"], entries)
            self.assert_every_jit_worker_dropped(srv, "direct-victim", mark)
            self.assert_no_fault_in(srv, "/direct", "(2 4 6)cold")

    def test_genuine_error_in_compiled_code_is_500_and_leaves_no_entry(self):
        # broken-block is compiled before its first call (threshold 0), so the
        # first /broken raises its type-error in native code: a JIT fault. The
        # CEK worker fails it with the same kind, so the entry is lifted and
        # the 500 answered. Both JIT workers were told to drop broken-block,
        # so the later requests fail on the VM: no second fault.
        with self.server({}) as srv:
            mark = srv.log_size()
            for _ in range(3):
                r = srv.get("/broken", timeout=30)
                self.assertEqual(r.status, 500, r)
                self.assertTrue(r.text.startswith("type-error: car: expected (pair), got (integer)"),
                                r)
                self.assertEqual(blacklist(self.data), {})
            m = srv.wait_line(r"fault: broken-block: type-error escaped its native code \(car: "
                              r"expected \(pair\), got \(integer\)\); worker \d+ \(pid \d+\); "
                              r"blacklisted it \(code [0-9a-f]+, abi \w+\) and told 2 JIT workers; "
                              r"re-dispatched request (\d+) to a CEK worker$", timeout=5, start=mark)
            rid = m.group(1)
            srv.wait_line(r"fault: broken-block: the CEK worker \d+ \(pid \d+\) failed request %s "
                          r"with the same type-error, so the program is at fault, not the native "
                          r"code; lifted its blacklist entry; answering the error$" % rid,
                          timeout=5, start=mark)
            self.assertEqual(srv.get("/edges").text, EDGES)
            lines = lines_since(srv, mark)
            faults = [ln for ln in lines if "fault:" in ln]
            self.assertEqual(len(faults), 2, "one JIT fault, one CEK confirmation: %r" % faults)
            deaths = [ln for ln in lines if " died " in ln or "killed by signal" in ln]
            self.assertEqual(deaths, [])

    def test_request_that_kills_both_tiers_is_502_after_two_deaths(self):
        env = {"SXPOOL_INJECT": "null-deref:edges-block",
               "SXPOOL_TEST_HOOK": "segv-in-cek:/edges"}
        with self.server(env) as srv:
            statuses, stop = [], threading.Event()

            def traffic():
                while not stop.is_set():
                    try:
                        statuses.append(srv.get("/", timeout=30).status)
                    except Exception as e:  # noqa: BLE001 (a failed request: counted, fails below)
                        statuses.append(repr(e))
                    time.sleep(0.01)
            t = threading.Thread(target=traffic, daemon=True)
            t.start()
            sxtest.wait_until(lambda: len(statuses) >= 3, 15, what="traffic to flow")
            mark = srv.log_size()
            r = srv.get("/edges", timeout=30)
            self.assertEqual(r.status, 502, r)
            m = srv.wait_line(r"fault: edges-block: its native code died of SIGSEGV; .*"
                              r"re-dispatched request (\d+) to a CEK worker", timeout=5,
                              start=mark)
            rid = m.group(1)
            srv.wait_line(r"worker 2 \(pid \d+\) died of SIGSEGV with no native function in its "
                          r"crash record while running request %s; answered request %s with 502"
                          % (rid, rid), timeout=5, start=mark)
            # the rest of the load goes on being served after the 502
            after = len(statuses)
            sxtest.wait_until(lambda: len(statuses) >= after + 5, 15,
                              what="traffic after the 502")
            stop.set()
            t.join(timeout=40)
            self.assertFalse(t.is_alive(), "the traffic thread did not finish")
            self.assertGreater(len(statuses), 5)
            self.assertEqual([s for s in statuses if s != 200], [])
            deaths = [ln for ln in lines_since(srv, mark)
                      if re.search(r"died of \w+.* request %s\b" % rid, ln)]
            self.assertEqual(len(deaths), 2, deaths)
            self.assertIn("edges-block", blacklist(self.data))


if __name__ == "__main__":
    sxtest.main()
