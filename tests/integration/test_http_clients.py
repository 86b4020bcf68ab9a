"""Clients that go away, and clients beyond the descriptor limit.

- A client that resets its connection while its request waits for a worker
  is noticed at once: its request is dropped unrun (its write never
  happens) and does not delay the clients behind it; a request already
  running when its client resets finishes and commits.
- Under a low RLIMIT_NOFILE the supervisor caps client connections below
  the limit, logs it, still respawns a killed worker, and accepts again
  once connections close; when accept itself fails for want of
  descriptors (EMFILE), it pauses accepting, logs it, and the clients
  waiting in the backlog are served once descriptors are free.
"""

import os
import signal
import time
import unittest

import sxtest

REQ = "GET %s HTTP/1.1\r\nHost: test\r\n\r\n"


def connect(srv, path=None):
    return srv.open_request(path)


reset = sxtest.reset
read_response = sxtest.read_response


class GoneClients(unittest.TestCase):
    def test_requests_of_clients_that_reset_while_queued_never_run(self):
        # One JIT worker kept on the VM (predictable speed): /write-then-work
        # bumps "worked", then counts to n (about 40 ns a step here).
        args = ["--jit-threshold=1000000000", "--timeout=40"]
        with sxtest.Server(app="faults", workers=1, cek_workers=1, args=args) as srv:
            jit = srv.worker_pids("jit")
            base = {p: sxtest.cpu_ticks(p) for p in jit}
            # The blocker holds the only JIT worker for about 2 s ...
            blocker = connect(srv, "/write-then-work?n=50000000")
            sxtest.busy_one(jit, base)
            # ... while 20 clients queue a write behind it ...
            gone = [connect(srv, "/write-then-work?n=25000000") for _ in range(20)]
            time.sleep(0.3)  # read and queued by the server
            mark = srv.log_size()
            # ... and reset, as does the blocker, whose request runs on.
            for s in gone + [blocker]:
                reset(s)
            # A real client behind them is served once the blocker is done,
            # and none of the 20 writes ran before it (nor after: below).
            # No timing asserted: a sanitizer build on a loaded machine is
            # slow; the deadline is far above the blocker's run.
            r = srv.get("/read?k=worked", timeout=60)
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.text, "1", "only the blocker's write may have run")
            # None of the 20 runs later either.
            time.sleep(1.5)
            self.assertEqual(srv.get("/read?k=worked").text, "1")
            srv.wait_line(r"dropped \d+ requests? waiting for a worker: the client closed", timeout=5,
                          start=mark)


class DescriptorLimit(unittest.TestCase):
    def test_connections_are_capped_below_the_descriptor_limit(self):
        with sxtest.Server(app="faults", workers=1, cek_workers=1, nofile=64) as srv:
            start = srv.log_size()
            conns = [connect(srv) for _ in range(60)]  # more than 64 descriptors' worth
            time.sleep(1)  # accepted, as far as the server does

            # At the cap, a worker killed from outside is still respawned ...
            mark = srv.log_size()
            old = srv.worker_pids("jit")[0]
            os.kill(old, signal.SIGKILL)
            srv.wait_line(r"worker 0 \(pid (?!%d\))\d+\) ready" % old, timeout=30, start=mark)
            tail = "\n".join(srv.lines[mark:])
            self.assertNotIn("unable to spawn", tail)
            self.assertNotIn("failed to start", tail)
            # ... and serves, on a connection accepted before the cap.
            conns[0].sendall((REQ % "/count").encode())
            r = read_response(conns[0])
            self.assertEqual((r.status, r.text), (200, "1"), r)

            # The last connection waits in the backlog; once the others
            # close it is accepted and served, and so are new clients.
            last = conns.pop()
            last.sendall((REQ % "/count").encode())
            for s in conns:
                s.close()
            r = read_response(last)
            self.assertEqual((r.status, r.text), (200, "2"), r)
            last.close()
            for i in range(3, 6):
                r = srv.get("/count")
                self.assertEqual((r.status, r.text), (200, str(i)), r)

            # The cap was logged, and what it is made of at start.
            m = srv.wait_line(r"client connection limit reached: (\d+) connections open "
                              r"\(descriptor limit 64 less (\d+) kept", timeout=1, start=start)
            self.assertEqual(int(m.group(1)) + int(m.group(2)), 64, m.group(0))
            srv.wait_line(r"accepting up to %s client connections \(descriptor limit 64, %s "
                          r"kept" % (m.group(1), m.group(2)), timeout=1)

    def test_accept_pauses_while_descriptors_run_out(self):
        with sxtest.Server(app="faults", workers=1, cek_workers=1, nofile=64) as srv:
            pid = srv.proc.pid
            # Below the cap, the descriptor table itself runs full: room
            # for two more descriptors only (the soft limit, lowered now).
            in_use = len(os.listdir("/proc/%d/fd" % pid))
            resource = sxtest.resource
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 2, 64))
            mark = srv.log_size()
            conns = [connect(srv, "/count") for _ in range(8)]
            time.sleep(1)  # the server accepts what it can
            resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64))
            # The clients it could not take waited in the backlog: every
            # one is served once descriptors are free again.
            got = sorted(int(read_response(s).text) for s in conns)
            self.assertEqual(got, list(range(1, 9)))
            for s in conns:
                s.close()
            srv.wait_line(r"unable to accept connections: EMFILE \(too many open files\), "
                          r"\d+ times?; not accepting, retrying every", timeout=1, start=mark)


if __name__ == "__main__":
    sxtest.main()
