"""Counter increments per second on each store backend.

    python3 bench/store/counter.py PATH_TO_SXPOOL [SECONDS] [CLIENTS]

Runs the integration tests' app (tests/integration/apps/basic, GET /count:
read a counter, write it back plus one, in one request transaction) under
CLIENTS keep-alive client threads (default 8) for SECONDS (default 10)
after a 2 s warm-up, each configuration with 2 JIT workers and 1 CEK
worker per host:
  - lmdb      one host, LMDB in its data directory (SXPOOL_STORE_NOSYNC=1,
              as the PostgreSQL server below runs with fsync off)
  - pg-1host  one host on a PostgreSQL 15 server started for the run
              (tests/integration/pgserver.py: fsync off, on this machine)
  - pg-2hosts two hosts on that database, the clients split between them
Every configuration increments ONE counter: the worst case for conflicts,
which is what the store's transactions are for. It prints increments/s and
checks that the counter ends at the number of 200s (none lost or doubled).
Not a test: numbers depend on the machine and what else runs on it.
"""

import os
import sys
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import pgserver  # noqa: E402
import sxtest  # noqa: E402


def load(servers, clients, seconds):
    """GET /count from clients threads spread over servers; returns the
    number of 200s in the timed window and in all."""
    stop = threading.Event()
    timed = threading.Event()
    counts = [[0, 0] for _ in range(clients)]
    errors = []

    def run(i):
        srv = servers[i % len(servers)]
        conn = srv.connection(timeout=60)
        while not stop.is_set():
            r = sxtest.send(conn, "GET", "/count")
            if r.status != 200:
                errors.append(r.status)
                return
            counts[i][1] += 1
            if timed.is_set():
                counts[i][0] += 1
        conn.close()
    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(2)
    timed.set()
    t0 = time.monotonic()
    time.sleep(seconds)
    timed.clear()
    elapsed = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join(60)
    if errors:
        raise SystemExit("non-200 answers: %r" % errors[:5])
    return sum(c[0] for c in counts) / elapsed, sum(c[1] for c in counts)


def main():
    sxtest.sxpool()
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    clients = int(sys.argv[3]) if len(sys.argv) > 3 else 8
    args = ["--timeout=60"]
    rows = []
    with sxtest.Server(app="basic", echo=False, args=args,
                       env={"SXPOOL_STORE_NOSYNC": "1"}) as srv:
        rate, total = load([srv], clients, seconds)
        assert srv.get("/count").text == str(total + 1), "lost or doubled increments"
        rows.append(("lmdb", rate))
    with pgserver.PgServer() as pg:
        for name, hosts in (("pg-1host", 1), ("pg-2hosts", 2)):
            url = pg.create_db("bench_%d" % hosts)
            subprocess.run([sxtest.sxpool(), "store", "migrate", "--store=" + url], check=True,
                           capture_output=True)
            servers = [sxtest.Server(app="basic", echo=False, args=args + ["--store=" + url])
                       for _ in range(hosts)]
            try:
                for s in servers:
                    s.start()
                rate, total = load(servers, clients, seconds)
                assert servers[0].get("/count").text == str(total + 1), \
                    "lost or doubled increments"
                rows.append((name, rate))
            finally:
                for s in servers:
                    s.stop()
    print("| store | increments/s (%d clients, one counter) |" % clients)
    print("|---|---|")
    for name, rate in rows:
        print("| %s | %.0f |" % (name, rate))


if __name__ == "__main__":
    main()
