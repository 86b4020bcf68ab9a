"""Connection timeouts with slow clients: --header-timeout (the head, from
its first byte; 408), --body-timeout (the whole body, one deadline however
the bytes trickle in; 408) and --keepalive-timeout (an idle connection is
closed without a word). Each client sends often enough that a per-read
timeout of the same length would never fire."""

import socket
import time
import unittest

import sxtest

HEADER_S, BODY_S, KEEPALIVE_S = 1, 2, 1


def connect(srv):
    s = socket.create_connection((srv.host, srv.port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def trickle(s, chunks, every, limit):
    """Sends chunks one by one, every `every` s, until the server answers
    or closes (or `limit` s pass). Returns (what was read, seconds from the
    first chunk to the server's answer or close)."""
    start = time.monotonic()
    out = b""
    s.settimeout(every)
    i = 0
    for _ in range(int(limit / every) + 2):
        if time.monotonic() - start > limit:
            break
        if i < len(chunks):
            try:
                s.sendall(chunks[i])
            except (BrokenPipeError, ConnectionResetError):
                break
            i += 1
        try:
            data = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        out += data
        # the rest of the answer, then the close
        s.settimeout(3)
        for _ in range(100):
            try:
                more = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not more:
                break
            out += more
        break
    return out, time.monotonic() - start


def read_until_close(s, limit):
    """Everything read until the server closes; (data, seconds, closed)."""
    start = time.monotonic()
    out = b""
    s.settimeout(limit)
    for _ in range(1000):
        left = limit - (time.monotonic() - start)
        if left <= 0:
            return out, time.monotonic() - start, False
        s.settimeout(left)
        try:
            data = s.recv(65536)
        except socket.timeout:
            return out, time.monotonic() - start, False
        except ConnectionResetError:
            return out, time.monotonic() - start, True
        if not data:
            return out, time.monotonic() - start, True
        out += data
    return out, time.monotonic() - start, False


class Timeouts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = sxtest.Server(app="basic", workers=1, echo=False,
                                args=["--header-timeout=%d" % HEADER_S,
                                      "--body-timeout=%d" % BODY_S,
                                      "--keepalive-timeout=%d" % KEEPALIVE_S])
        cls.addClassCleanup(cls.srv.stop)
        cls.srv.start()

    def test_header_timeout(self):
        # a header line every 0.3 s: the head never completes
        chunks = [b"GET / HTTP/1.1\r\nHost: t\r\n"] + [b"X-Slow-%d: a\r\n" % i for i in range(40)]
        with connect(self.srv) as s:
            data, took = trickle(s, chunks, 0.3, 10)
        self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:100])
        self.assertIn(b"connection: close", data.lower())
        self.assertGreaterEqual(took, HEADER_S - 0.05)
        self.assertLess(took, HEADER_S + 1.5)

    def test_idle_new_connection_closed_silently(self):
        with connect(self.srv) as s:
            data, took, closed = read_until_close(s, 10)
        self.assertTrue(closed)
        self.assertEqual(data, b"")
        self.assertGreaterEqual(took, HEADER_S - 0.05)
        self.assertLess(took, HEADER_S + 1.5)

    def test_body_timeout(self):
        # the head at once, then a body byte every 0.4 s (of 100): under a
        # per-read timeout of 2 s this would go on for 40 s
        head = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
        with connect(self.srv) as s:
            s.sendall(head)
            data, took = trickle(s, [b"x"] * 100, 0.4, 15)
        self.assertTrue(data.startswith(b"HTTP/1.1 408 "), data[:100])
        self.assertGreaterEqual(took, BODY_S - 0.05)
        self.assertLess(took, BODY_S + 1.5)

    def test_body_in_time(self):
        head = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
        with connect(self.srv) as s:
            s.sendall(head)
            data, took = trickle(s, [b"a", b"b", b"c"], 0.4, 10)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data[:100])
        self.assertIn(b"body=abc", data)

    def test_keepalive_timeout(self):
        req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        with connect(self.srv) as s:
            s.sendall(req)
            first = sxtest.read_response(s, timeout=10)
            self.assertEqual(first.status, 200)
            self.assertEqual(first.headers.get("connection"), "keep-alive")
            # reused within the timeout: served
            time.sleep(KEEPALIVE_S / 2)
            s.sendall(req)
            second = sxtest.read_response(s, timeout=10)
            self.assertEqual(second.status, 200)
            # then idle: closed without a word after the keep-alive timeout
            data, took, closed = read_until_close(s, 10)
        self.assertTrue(closed)
        self.assertEqual(data, b"")
        self.assertGreaterEqual(took, KEEPALIVE_S - 0.05)
        self.assertLess(took, KEEPALIVE_S + 1.5)


class NoKeepAlive(unittest.TestCase):
    def test_keepalive_zero_closes_after_each_response(self):
        with sxtest.Server(app="basic", workers=1, echo=False,
                           args=["--keepalive-timeout=0"]) as srv:
            with connect(srv) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                data, took, closed = read_until_close(s, 10)
            self.assertTrue(closed)
            rs = sxtest.parse_responses(data)
            self.assertEqual([r.status for r in rs], [200])
            self.assertEqual(rs[0].headers.get("connection"), "close")

    def test_bad_values(self):
        for arg in ["--header-timeout=0", "--body-timeout=x", "--keepalive-timeout=3601"]:
            rc, out, err = sxtest.run([arg])
            self.assertEqual(rc, 2, (arg, err))
            self.assertIn(arg.split("=")[0] + ": expected a number of seconds", err)


if __name__ == "__main__":
    sxtest.main()
