"""Chaos: workers are SIGKILLed at random, including while they start up,
while clients keep sending requests that each increment one counter.

Every request must get an answer; a worker's death is invisible to its
client (the request is run again, once) unless both attempts die, which
gives a 502. No write is lost or applied twice: the counter ends between
the number of 200s and the number of 200s plus 502s (a 502 request may have
committed before its first worker died). At the end every slot is serving
again: the pool recovers from kills during the nng handshake. The load and
the killing are bounded in count and time.
"""

import os
import random
import signal
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import sxtest  # noqa: E402

CLIENTS = 4
PER_CLIENT = 3000  # at most; clients stop when the killing does
KILL_SECONDS = 5.0


class Chaos(unittest.TestCase):
    def test_random_kills_under_load(self):
        with tempfile.TemporaryDirectory(prefix="sxpool-chaos-") as tmp:
            data = os.path.join(tmp, "data")
            env_args = ("--cek-workers=1",)
            with sxtest.Server(app="limits", workers=3, data=data, args=env_args) as srv:
                results = []
                lock = threading.Lock()
                stop = threading.Event()

                def client():
                    conn = srv.connection(timeout=30)
                    for _ in range(PER_CLIENT):
                        if stop.is_set():
                            break
                        try:
                            r = sxtest.send(conn, "GET", "/count")
                            status = r.status
                        except Exception:  # a broken connection: retry on a new one
                            conn.close()
                            conn = srv.connection(timeout=30)
                            r = sxtest.send(conn, "GET", "/count")
                            status = r.status
                        with lock:
                            results.append(status)
                    conn.close()

                def killer():
                    rng = random.Random(1234)
                    deadline = time.monotonic() + KILL_SECONDS
                    kills = 0
                    while time.monotonic() < deadline and not stop.is_set() and kills < 60:
                        pids = srv.worker_pids()
                        if pids:
                            pid = rng.choice(pids)
                            try:
                                os.kill(pid, signal.SIGKILL)
                                kills += 1
                            except ProcessLookupError:
                                pass
                        time.sleep(rng.uniform(0.02, 0.25))
                    self.kills = kills
                    stop.set()

                threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
                k = threading.Thread(target=killer)
                k.start()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=240)
                stop.set()
                k.join(timeout=30)
                self.assertFalse(any(t.is_alive() for t in threads), "clients did not finish")

                n200 = results.count(200)
                n502 = results.count(502)
                other = [s for s in results if s not in (200, 502)]
                self.assertGreater(len(results), 100)
                self.assertEqual(other, [], "unexpected statuses")
                self.assertGreater(self.kills, 5)
                self.assertLessEqual(n502, self.kills, "more 502s than kills")
                # the pool recovers: every slot serves again
                srv.wait_ready(4, timeout=30, start=0)
                got = int(srv.get("/read", timeout=30).text)
                self.assertGreaterEqual(got, n200, "a write was lost")
                self.assertLessEqual(got, n200 + n502, "a write was applied twice")
                sys.stderr.write("chaos: %d kills, %d requests: %d x 200, %d x 502, counter %d\n"
                                 % (self.kills, len(results), n200, n502, got))


if __name__ == "__main__":
    sxtest.main()
