"""The HTTP path end to end: handler results, errors, keep-alive,
pipelining, request bodies (content-length and chunked), /healthz, HEAD."""

import unittest

import sxtest


class Http(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = sxtest.Server(app="basic", workers=2)
        cls.addClassCleanup(cls.srv.stop)
        cls.srv.start()

    def test_string_result_is_html(self):
        r = self.srv.get("/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-type"), "text/html; charset=utf-8")
        self.assertEqual(r.text, "<p>hello from sx</p>")

    def test_dict_result_sets_status_headers_body(self):
        r = self.srv.get("/dict")
        self.assertEqual(r.status, 201, r)
        self.assertEqual(r.headers.get("content-type"), "application/json")
        self.assertEqual(r.headers.get("x-sx"), "yes")
        self.assertEqual(r.text, '{"made": true}')

    def test_raise_is_500_naming_the_kind(self):
        r = self.srv.get("/raise")
        self.assertEqual(r.status, 500, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r)
        self.assertTrue(r.text.startswith("user-error"), r)
        self.assertIn("deliberate failure", r.text)
        r = self.srv.get("/type-error")
        self.assertEqual(r.status, 500, r)
        self.assertTrue(r.text.startswith("type-error"), r)

    def test_unknown_path_from_the_handler(self):
        r = self.srv.get("/nowhere")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.text, "no route for /nowhere")

    def test_query_and_headers_reach_the_handler(self):
        r = self.srv.get("/echo?k=v&other=1")
        self.assertEqual((r.status, r.text), (200, "GET /echo k=v body="), r)
        r = self.srv.get("/header", headers={"X-Probe": "abc"})
        self.assertEqual((r.status, r.text), (200, "x-probe=abc"), r)

    def test_log_values_stay_on_one_line(self):
        # a value with a newline (and other control bytes) cannot forge a
        # log line of its own: it is escaped in the worker's one line
        mark = self.srv.log_size()
        r = self.srv.get("/log?m=a%0Asxpool:%20forged%0D%1B[31m")
        self.assertEqual((r.status, r.text), (200, "logged"), r)
        self.srv.wait_line(r"^sxpool worker \d+ \(pid \d+\): log: a\\nsxpool: forged"
                           r"\\r\\x1b\[31m$", timeout=5, start=mark)
        with self.srv._cond:
            lines = self.srv.lines[mark:]
        self.assertFalse([ln for ln in lines if ln.startswith("sxpool: forged")], lines)

    def test_healthz(self):
        r = self.srv.get("/healthz")
        self.assertEqual((r.status, r.text), (200, "ok\n"), r)

    def test_head_has_length_but_no_body(self):
        full = self.srv.get("/")
        r = self.srv.request("HEAD", "/")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("content-length"), str(len(full.body)))
        self.assertEqual(r.body, b"")

    def test_keep_alive(self):
        conn = self.srv.connection()
        try:
            sock = None
            for i in range(6):
                r = sxtest.send(conn, "GET", "/echo?k=%d" % i)
                self.assertEqual((r.status, r.text), (200, "GET /echo k=%d body=" % i), r)
                self.assertEqual(r.headers.get("connection"), "keep-alive")
                if sock is None:
                    sock = conn.sock
                self.assertIs(conn.sock, sock, "the connection was not kept alive")
        finally:
            conn.close()

    def test_pipelined_requests_answered_in_order(self):
        reqs = b"".join(
            b"GET /echo?k=%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(4))
        reqs += b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
        reqs += b"GET /echo?k=last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        rs = sxtest.parse_responses(self.srv.raw(reqs))
        self.assertEqual([r.status for r in rs], [200] * 6, rs)
        self.assertEqual([r.body for r in rs],
                         [b"GET /echo k=%d body=" % i for i in range(4)]
                         + [b"ok\n", b"GET /echo k=last body="])
        self.assertEqual(rs[-1].headers.get("connection"), "close")

    def test_post_body_with_content_length(self):
        r = self.srv.request("POST", "/echo", body=b"hello=world",
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual((r.status, r.text), (200, "POST /echo k= body=hello=world"), r)

    def test_post_body_chunked(self):
        req = (b"POST /echo?k=c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
               b"Connection: close\r\n\r\n"
               b"3\r\nhel\r\n3\r\nlo \r\n6\r\nchunks\r\n0\r\n\r\n")
        rs = sxtest.parse_responses(self.srv.raw(req))
        self.assertEqual(len(rs), 1, rs)
        self.assertEqual((rs[0].status, rs[0].body), (200, b"POST /echo k=c body=hello chunks"))

    def test_expect_100_continue(self):
        import socket
        with socket.create_connection((self.srv.host, self.srv.port), timeout=10) as s:
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
            interim = s.recv(1024)
            self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
            s.sendall(b"abcde")
            data = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
            for _ in range(1000):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        rs = sxtest.parse_responses(data)
        self.assertEqual((rs[0].status, rs[0].body), (200, b"POST /echo k= body=abcde"))

    def test_malformed_request_is_400_and_closed(self):
        out = self.srv.raw(b"THIS IS NOT HTTP\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out)
        self.assertIn(b"connection: close", out)


class HideErrors(unittest.TestCase):
    def test_500_names_only_the_kind(self):
        with sxtest.Server(app="basic", workers=1, args=["--hide-errors"]) as srv:
            r = srv.get("/raise")
            self.assertEqual((r.status, r.text), (500, "user-error\n"), r)
            r = srv.get("/type-error")
            self.assertEqual((r.status, r.text), (500, "type-error\n"), r)


if __name__ == "__main__":
    sxtest.main()
