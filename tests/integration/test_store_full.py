"""A full store recovers by itself.

The store's map is small (--store-size=4M) and every /fill request writes a
key and answers 60 kB, which its response record keeps. Writes are refused
with 507 and a clear message once 90 % of the map is in use (not 500
"LMDB failure"); the supervisor's prune (every 300 ms here, through the
test-build hook SXPOOL_TEST_HOOK=prune-every:MS) then deletes the oldest
records older than 4 deadlines (--timeout=5: 20 s), although their normal
keep time (10 min) has not passed, and small writes succeed again without a
restart.

A response over 64 KiB is not kept: a request whose worker dies after its
commit (SXPOOL_TEST_HOOK=exit-after-commit:/fill-die) is answered, on its
re-dispatch, with a 502 saying it was applied, and it does not run again."""

import os
import re
import tempfile
import time
import unittest

import sxtest

BODY = 60000
FLOOR_S = 20  # 4 deadlines of --timeout=5


class StoreFull(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-full-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def fill_until_507(self, srv, n, prefix, limit):
        for i in range(limit):
            r = srv.get("/fill?k=%s%d&n=%d" % (prefix, i, n), timeout=30)
            if r.status == 507:
                return i, r
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.body), n)
        self.fail("no 507 after %d requests of %d bytes" % (limit, n))

    def test_full_store_answers_507_and_recovers(self):
        env = {"SXPOOL_TEST_HOOK": "prune-every:300"}
        args = ["--store-size=4M", "--timeout=5"]
        with sxtest.Server(app="full", workers=1, cek_workers=1, data=self.data, env=env,
                           args=args) as srv:
            t0 = time.monotonic()
            n, r = self.fill_until_507(srv, BODY, "big", 200)
            self.assertGreater(n, 20)
            # then small ones until those are refused too
            self.fill_until_507(srv, 100, "small", 2000)
            filled_s = time.monotonic() - t0
            if filled_s > FLOOR_S * 0.8:
                self.skipTest("filling took %.1f s, too close to the %d s the prune keeps"
                              % (filled_s, FLOOR_S))
            for i in range(200):  # and then even the tiniest
                r = srv.get("/set?k=t%d&v=1" % i)
                if r.status != 200:
                    break
            self.assertEqual(r.status, 507, r)
            self.assertRegex(r.text, r"^insufficient-storage: store full: ")
            self.assertNotIn("LMDB failure", r.text)
            # reads still work
            self.assertEqual(srv.get("/get?k=big0").text, "value=v")
            # no restart: the prune makes room once the records are old enough
            start = srv.log_size()
            ok = []

            def recovered():
                r = srv.get("/set?k=tiny&v=2")
                self.assertIn(r.status, (200, 507), r)
                if r.status == 200:
                    ok.append(r)
                return bool(ok)

            sxtest.wait_until(recovered, FLOOR_S + 30, interval=0.5,
                              what="a small write to succeed again")
            self.assertGreaterEqual(time.monotonic() - t0, FLOOR_S - 1)
            srv.wait_line(r"sxpool: store over 85 % full: pruned \d+ more response records "
                          r"older than 20 s", timeout=10, start=0)
            srv.wait_line(r"sxpool: store has room again", timeout=10, start=start)
            self.assertEqual(srv.get("/get?k=tiny").text, "value=2")
            for i in range(5):
                self.assertEqual(srv.get("/set?k=more%d&v=x" % i).status, 200)
            self.assertFalse([l for l in srv.lines if "unable to prune" in l], srv.lines)

    def test_large_response_is_not_kept_and_not_run_again(self):
        env = {"SXPOOL_TEST_HOOK": "exit-after-commit:/fill-die"}
        with sxtest.Server(app="full", workers=1, cek_workers=1, data=self.data,
                           env=env) as srv:
            r = srv.get("/fill?k=a&n=100000")  # no death: the whole response
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.body), 100000)
            r = srv.get("/fill-die?k=b&n=100000", timeout=30)
            self.assertEqual(r.status, 502, r)
            self.assertRegex(r.text, r"was applied, but its 200 response \(\d+ bytes\) was larger "
                             r"than the 65536 bytes kept for a retry; it was not run again")
            self.assertEqual(srv.get("/get?k=b").text, "value=v")
            # a small response is replayed whole
            r = srv.get("/fill-die?k=c&n=1000", timeout=30)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(len(r.body), 1000)

    def test_store_size_option(self):
        for bad in ("1M", "2T", "64X", "-4M", ""):
            rc, _, err = sxtest.run(["--store-size=" + bad, "--data=" + self.data])
            self.assertEqual(rc, 2, (bad, err))
            self.assertIn("--store-size: expected a size from 4M to 1T", err)


if __name__ == "__main__":
    sxtest.main()
