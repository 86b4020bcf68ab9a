"""The evaluator's limits inside a worker: a handler that exhausts its
memory or its stack gets a 500 naming memory-limit or stack-overflow
(guard cannot catch them), and the same worker serves the next request.
Also: concurrent increments of one counter on several workers neither lose
nor double an update."""

import concurrent.futures
import os
import tempfile
import unittest

import sxtest


class EvalLimits(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-limits-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def test_limits_give_500_and_the_worker_recovers(self):
        with sxtest.Server(app="limits", workers=1, data=self.data,
                           args=("--memory-limit=64M",)) as srv:
            pids = srv.worker_pids()
            r = srv.get("/hog", timeout=60)
            self.assertEqual(r.status, 500, r)
            self.assertTrue(r.text.startswith("memory-limit"), r)
            self.assertEqual(srv.get("/").text, "ok")
            self.assertEqual(srv.worker_pids(), pids, "the worker was replaced")

    def test_stack_limits_give_500_and_the_worker_recovers(self):
        # /nest keeps every level's list, closure and nested run alive: at
        # the deepest level the jit tier holds 16-32 MB of heap, so under a
        # 64 MB limit which limit it meets first depends on when the
        # collector ran (and on what the conservative scan of the deep C
        # stack retains). The stack limits are checked far from the memory
        # limit, where the answer is stack-overflow every time.
        with sxtest.Server(app="limits", workers=1, data=self.data,
                           args=("--memory-limit=512M",)) as srv:
            pids = srv.worker_pids()
            for path in ("/deep", "/guarded-deep", "/nest"):
                r = srv.get(path, timeout=60)
                self.assertEqual(r.status, 500, (path, r))
                self.assertTrue(r.text.startswith("stack-overflow"), (path, r))
                self.assertEqual(srv.get("/").text, "ok")
            self.assertEqual(srv.worker_pids(), pids, "the worker was replaced")

    def test_concurrent_increments_are_serializable(self):
        per_client, clients = 50, 8
        with sxtest.Server(app="limits", workers=4, data=self.data) as srv:
            def client(_):
                conn = srv.connection(timeout=30)
                try:
                    for _ in range(per_client):
                        r = sxtest.send(conn, "GET", "/count")
                        if r.status != 200:
                            return r
                finally:
                    conn.close()
                return None
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                errors = [e for e in pool.map(client, range(clients)) if e]
            self.assertEqual(errors, [])
            self.assertEqual(srv.get("/read").text, str(per_client * clients))


if __name__ == "__main__":
    sxtest.main()
