"""Sending ahead (--inflight) and taking back.

- A request sent ahead to a worker that is still on a long request is
  taken back once another worker is free, and runs there: it is answered
  while the long one still runs, its write is applied once, and
  sxpool_requests_taken_back_total{reason="rerouted"} counts it.
- Requests sent ahead whose clients reset never run, however many are
  held, and are counted as taken back for client_gone.
"""

import re
import socket
import time
import unittest

import sxtest

# Kept on the VM (predictable speed): /write-then-work bumps "worked", then
# counts to n (tens of ns a step).
ARGS = ["--jit-threshold=1000000000", "--timeout=60", "--admin=127.0.0.1:0",
        "--shadow-canary=0", "--shadow-rate=0"]


def answered(s):
    """True if s has something to read (an answer came)."""
    s.setblocking(False)
    try:
        return len(s.recv(1, socket.MSG_PEEK)) > 0
    except BlockingIOError:
        return False
    finally:
        s.setblocking(True)


def taken_back(srv):
    return {k: int(v) for k, v in
            re.findall(r'^sxpool_requests_taken_back_total\{reason="(\w+)"\} (\d+)$',
                       srv.metrics(), re.M)}


class TakeBack(unittest.TestCase):
    def test_request_behind_a_long_one_runs_on_the_worker_that_becomes_free(self):
        with sxtest.Server(app="faults", workers=2, cek_workers=1,
                           args=ARGS + ["--inflight=2"]) as srv:
            jit = srv.worker_pids("jit")
            base = {p: sxtest.cpu_ticks(p) for p in jit}
            # one JIT worker on a long request, the other on a shorter one
            long_req = srv.open_request("/write-then-work?n=60000000")
            a = sxtest.busy_one(jit, base)
            base = {p: sxtest.cpu_ticks(p) for p in jit}
            # long enough that both quick requests below are sent while it
            # runs (at 4000000 it could end first on a fast moment, and
            # both went to its worker)
            short_req = srv.open_request("/write-then-work?n=12000000")
            sxtest.busy_one([p for p in jit if p != a], base)
            # both busy: one request is sent ahead to each
            quick = []
            for _ in range(2):
                quick.append(srv.open_request("/write-then-work?n=1"))
                time.sleep(0.05)
            # the one behind the long request is taken back once the other
            # worker is free: both are answered while the long one runs
            for s in quick:
                r = sxtest.read_response(s, timeout=90)
                self.assertEqual(r.status, 200, r)
            self.assertFalse(answered(long_req),
                             "a request sent ahead waited for the long request before it")
            self.assertEqual(sxtest.read_response(short_req, timeout=90).status, 200)
            self.assertEqual(sxtest.read_response(long_req, timeout=90).status, 200)
            for s in quick + [short_req, long_req]:
                s.close()
            self.assertEqual(srv.get("/read?k=worked").text, "4", "every write applied once")
            self.assertGreaterEqual(taken_back(srv).get("rerouted", 0), 1)

    def test_requests_sent_ahead_for_clients_that_reset_never_run(self):
        with sxtest.Server(app="faults", workers=1, cek_workers=1,
                           args=ARGS + ["--inflight=8"]) as srv:
            jit = srv.worker_pids("jit")
            base = {p: sxtest.cpu_ticks(p) for p in jit}
            blocker = srv.open_request("/write-then-work?n=40000000")
            sxtest.busy_one(jit, base)
            # 12 writes: 7 are sent ahead to the only JIT worker, 5 wait
            gone = [srv.open_request("/write-then-work?n=1") for _ in range(12)]
            time.sleep(0.3)
            for s in gone:
                sxtest.reset(s)
            self.assertEqual(sxtest.read_response(blocker, timeout=90).status, 200)
            blocker.close()
            time.sleep(0.5)
            self.assertEqual(srv.get("/read?k=worked").text, "1", "only the blocker's write ran")
            self.assertEqual(taken_back(srv).get("client_gone", 0), 7)


if __name__ == "__main__":
    sxtest.main()
