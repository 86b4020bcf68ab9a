"""Request limits: header bytes (431), body size (413) for content-length
and chunked bodies; the server keeps serving afterwards."""

import unittest

import sxtest


class Limits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = sxtest.Server(app="basic", workers=1, args=["--max-body=1000"])
        cls.addClassCleanup(cls.srv.stop)
        cls.srv.start()

    def test_body_at_the_limit_is_accepted(self):
        r = self.srv.request("POST", "/echo", body=b"x" * 1000)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.text.endswith("x" * 1000))

    def test_content_length_over_the_limit_is_413(self):
        out = self.srv.raw(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1001\r\n\r\n"
                           + b"y" * 1001)
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out)
        self.assertIn(b"connection: close", out)

    def test_chunked_over_the_limit_is_413(self):
        chunk = b"%x\r\n%s\r\n" % (600, b"z" * 600)
        out = self.srv.raw(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                           + chunk + chunk + b"0\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 413 "), out)

    def test_headers_over_64k_are_431(self):
        out = self.srv.raw(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:200])

    def test_still_serving(self):
        self.srv.raw(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n")
        r = self.srv.get("/")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    sxtest.main()
