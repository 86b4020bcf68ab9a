"""Strict HTTP/1.1: every request of http_corpus/ is sent over a raw socket
and must get the status its file names, with the connection closed after
an error, and no smuggled bytes may reach the handler (apps/echo answers
with the headers and body it saw). The supervisor must survive the whole
corpus with the same workers.

A corpus file is a few header lines, "--", then the request's raw bytes:
    # expect: 400            statuses of the responses, in order ("200 200")
    # desc: what it is
    # absent: TEXT           must not be in any response body (repeatable)
    # present: TEXT          must be in a response body (\\n is a newline)
    # wait: SECS             the server answers only after a timeout
    # split: no              not replayed one byte per write
Every case ends with the server closing the connection (a valid request
says Connection: close, or is HTTP/1.0)."""

import os
import socket
import threading
import time
import unittest

import sxtest

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "http_corpus")
# a case must be answered and closed within (but `wait`); lower it to run
# the corpus quickly against a binary that leaves connections open
READ_TIMEOUT = float(os.environ.get("HTTP_STRICT_TIMEOUT", "20"))
SPLIT_MAX = 600    # cases up to this many bytes are also sent one byte per write


class Case:
    def __init__(self, path):
        self.name = os.path.basename(path)[:-len(".http")]
        with open(path, "rb") as f:
            data = f.read()
        head, sep, self.raw = data.partition(b"\n--\n")
        if not sep:
            raise ValueError("%s: no '--' line" % path)
        self.expect, self.absent, self.present = [], [], []
        self.desc, self.wait, self.split = "", None, True
        for line in head.decode().split("\n"):
            key, _, value = line.lstrip("# ").partition(": ")
            if key == "expect":
                self.expect = [int(s) for s in value.split()]
            elif key == "desc":
                self.desc = value
            elif key == "absent":
                self.absent.append(value.encode().lower())
            elif key == "present":
                self.present.append(value.replace("\\n", "\n").encode().lower())
            elif key == "wait":
                self.wait = float(value)
            elif key == "split":
                self.split = value != "no"
            else:
                raise ValueError("%s: unknown key %r" % (path, key))
        if not self.expect:
            raise ValueError("%s: no expected status" % path)


def load_corpus():
    return [Case(os.path.join(CORPUS, n)) for n in sorted(os.listdir(CORPUS))
            if n.endswith(".http")]


def exchange(host, port, raw, timeout, split=False):
    """Sends raw (one byte per write if split); returns (bytes read, True
    if the server closed the connection within timeout)."""
    deadline = time.monotonic() + timeout
    out = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if split:
                for i in range(len(raw)):
                    s.sendall(raw[i:i + 1])
                    time.sleep(0.0005)
            else:
                s.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered and closed before the whole request was sent
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                return out, False
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    return out, False


def parse(data, head_request):
    """[(status, {header: value}, body)] of the responses in data."""
    return [(r.status, r.headers, r.body)
            for r in sxtest.parse_responses(data, head_request)]


class HttpStrict(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.corpus = load_corpus()
        cls.srv = sxtest.Server(app="echo", workers=2, echo=False,
                               args=["--header-timeout=10", "--body-timeout=10"])
        cls.addClassCleanup(cls.srv.stop)
        cls.srv.start()
        cls.workers = sorted(cls.srv.worker_pids())

    def check(self, case, split=False):
        """The problems with case's answer (an empty list if none)."""
        timeout = case.wait or READ_TIMEOUT
        data, closed = exchange(self.srv.host, self.srv.port, case.raw, timeout, split)
        try:
            rs = parse(data, case.raw.startswith(b"HEAD "))
        except (AssertionError, ValueError, IndexError) as e:
            return ["unparsable answer (%s): %r" % (e, data[:300])]
        errors = []
        statuses = [r[0] for r in rs]
        if statuses != case.expect:
            errors.append("statuses %s, expected %s: %r" % (statuses, case.expect, data[:300]))
        if not closed:
            errors.append("connection not closed within %.0f s" % timeout)
        if rs and rs[-1][0] >= 400 and rs[-1][1].get("connection") != "close":
            errors.append("error answered without connection: close")
        bodies = b"\n".join(r[2] for r in rs if r[0] < 300).lower()
        for a in case.absent:
            if a in bodies:
                errors.append("the handler saw %r: %r" % (a, bodies[:300]))
        for p in case.present:
            if p not in bodies:
                errors.append("the handler did not see %r: %r" % (p, bodies[:300]))
        return errors

    def run_corpus(self, split):
        cases = [c for c in self.corpus if not split or (c.split and len(c.raw) <= SPLIT_MAX)]
        slow = [c for c in cases if c.wait]
        results = {}

        def run_slow(c):
            results[c.name] = self.check(c, split)
        threads = [threading.Thread(target=run_slow, args=(c,), daemon=True) for c in slow]
        for t in threads:
            t.start()
        for c in cases:
            if not c.wait:
                results[c.name] = self.check(c, split)
        for t in threads:
            t.join(max(c.wait for c in slow) + 30)
        failed = sorted(n for n in (c.name for c in cases) if results.get(n, ["no result"]))
        print("\n%s: %d cases, %d failed%s" % ("split" if split else "whole", len(cases),
                                             len(failed), ": " + " ".join(failed) if failed else ""))
        for name in failed:
            for e in results.get(name, ["no result"]):
                print("  %s: %s" % (name, e))
        self.assertGreaterEqual(len(cases), 60 if not split else 1)
        self.assertEqual(failed, [])

    def test_1_corpus(self):
        self.run_corpus(split=False)

    def test_2_corpus_one_byte_per_write(self):
        """Checks that hold across reads (the CRLF after chunk data arriving
        in the next read, a version cut in two)."""
        self.run_corpus(split=True)

    def test_3_still_serving_with_the_same_workers(self):
        self.assertIsNone(self.srv.proc.poll(), "the supervisor exited")
        r = self.srv.get("/healthz")
        self.assertEqual((r.status, r.text), (200, "ok\n"), r)
        r = self.srv.request("POST", "/after", body=b"x=1", headers={"X-Probe": "p"})
        self.assertEqual(r.status, 200, r)
        self.assertIn("x-probe: p\n", r.text)
        self.assertTrue(r.text.endswith("body=x=1"), r)
        self.assertEqual(sorted(self.srv.worker_pids()), self.workers,
                         "workers were replaced during the corpus")


if __name__ == "__main__":
    sxtest.main()
