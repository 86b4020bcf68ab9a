"""Chaos with recycling on: the run of test_chaos.py (random SIGKILLs under
keep-alive load for 8 s, every check the same: each counter equal to its
acknowledged increments, every computing GET right, no status but 200 and
the 502s two deaths each allow) against a pool whose workers are also
recycled after 20 + random(0..5) requests. Recycles must have happened, and
none may cost a request."""

import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import sxtest  # noqa: E402
import test_chaos  # noqa: E402


class ChaosRecycle(unittest.TestCase):
    run_chaos = test_chaos.Chaos.run_chaos

    def test_random_kills_under_load_with_recycling(self):
        with tempfile.TemporaryDirectory(prefix="sxpool-chaos-recycle-") as tmp:
            data = os.path.join(tmp, "data")
            with sxtest.Server(app=test_chaos.APP, workers=test_chaos.JIT_WORKERS,
                               cek_workers=test_chaos.CEK_WORKERS, data=data,
                               args=["--max-requests=20", "--max-requests-jitter=5"]) as srv:
                mark = srv.log_size()
                self.run_chaos(srv)
                with srv._cond:
                    log = list(srv.lines[mark:])
                recycled = [ln for ln in log
                            if re.search(r"worker \d+ \(pid \d+\) recycled after \d+ requests", ln)]
                sys.stderr.write("chaos: %d recycles\n" % len(recycled))
                self.assertGreaterEqual(len(recycled), 5, "too few recycles")


if __name__ == "__main__":
    sxtest.main()
