"""What one response may hold (ipc/ipc.h): a body of at most 64 MiB less
128 KiB, at most 511 headers, whose names and values take at most 64 KiB.
A response at a limit is served whole; one past it is a 500 of kind
response-too-large whose body and log line name the limit and the value,
and a writing request whose response is too large applies nothing."""

import re
import unittest

import sxtest

BODY_LIMIT = (64 << 20) - (128 << 10)


class ResponseLimits(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = sxtest.Server(app="bigresponse", workers=1, cek_workers=1).start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def over(self, path, message):
        mark = self.srv.log_size()
        r = self.srv.get(path, timeout=60)
        want = "response-too-large: %s\n" % message
        self.assertEqual((r.status, r.text), (500, want), r)
        self.srv.wait_line(r"sxpool worker \d+ \(pid \d+\): request \d+: %s; answering 500"
                           % re.escape(message), timeout=10, start=mark)

    def test_body_at_the_limit_is_served(self):
        r = self.srv.get("/body-at-limit", timeout=60)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), BODY_LIMIT)

    def test_body_one_byte_over_the_limit(self):
        self.over("/body-over-limit", "response body of %d bytes exceeds the limit of %d bytes"
                  % (BODY_LIMIT + 1, BODY_LIMIT))

    def test_body_of_64_mib(self):
        self.over("/body-64m", "response body of 67108864 bytes exceeds the limit of %d bytes"
                  % BODY_LIMIT)

    def test_511_headers_are_served(self):
        # raw: http.client stops at 100 headers
        data = self.srv.raw(b"GET /headers-511 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            timeout=30)
        (r,) = sxtest.parse_responses(data)
        self.assertEqual((r.status, r.text), (200, "ok"), r)
        self.assertEqual(len([h for h in r.headers if h.startswith("x-h")]), 511)

    def test_512_headers(self):
        self.over("/headers-512", "response has 512 headers, over the limit of 511")

    def test_header_bytes(self):
        self.over("/header-bytes",
                  "response headers of 80006 bytes exceed the limit of 65536 bytes")

    def test_too_large_response_applies_nothing(self):
        self.over("/write-then-64m", "response body of 67108864 bytes exceeds the limit of %d "
                  "bytes" % BODY_LIMIT)
        r = self.srv.get("/read")
        self.assertEqual((r.status, r.text), (200, "nothing"), r)

    def test_worker_still_serves(self):
        self.over("/body-64m", "response body of 67108864 bytes exceeds the limit of %d bytes"
                  % BODY_LIMIT)
        self.assertEqual(self.srv.get("/").status, 200)


if __name__ == "__main__":
    sxtest.main()
