"""Concurrent requests are serializable: 8 JIT workers (and the CEK
worker) under 8 keep-alive clients, each incrementing one counter 1,000
times, end at exactly 8,000, every response a distinct value. Commit
conflicts make a worker run its request again, never apply it twice."""

import concurrent.futures
import os
import tempfile
import time
import unittest

import sxtest

CLIENTS = 8
PER_CLIENT = 1000


class Counter(unittest.TestCase):
    def test_eight_workers_count_to_8000(self):
        with tempfile.TemporaryDirectory(prefix="sxpool-counter-") as tmp:
            data = os.path.join(tmp, "data")
            env = {"SXPOOL_STORE_NOSYNC": "1"}  # durability is not what this measures
            with sxtest.Server(app="faults", workers=8, cek_workers=1, data=data, env=env,
                               args=["--timeout=60"]) as srv:
                def client(_):
                    got = []
                    conn = srv.connection(timeout=60)
                    try:
                        for _ in range(PER_CLIENT):
                            r = sxtest.send(conn, "GET", "/count")
                            if r.status != 200:
                                return got, r
                            got.append(int(r.text))
                    finally:
                        conn.close()
                    return got, None
                t0 = time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
                    results = list(pool.map(client, range(CLIENTS)))
                elapsed = time.monotonic() - t0
                errors = [e for _, e in results if e is not None]
                self.assertEqual(errors, [])
                values = sorted(v for got, _ in results for v in got)
                self.assertEqual(values, list(range(1, CLIENTS * PER_CLIENT + 1)))
                self.assertEqual(srv.get("/read?k=counter").text, str(CLIENTS * PER_CLIENT))
                print("%d increments in %.1f s" % (CLIENTS * PER_CLIENT, elapsed), flush=True)


if __name__ == "__main__":
    sxtest.main()
