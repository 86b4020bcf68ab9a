"""The access log (--access-log, --access-log-format) and the error log's
levels (--log-level).

Every request, hostile ones included (newlines, quotes, backslashes,
control bytes and bytes that are not UTF-8 in the target and the
User-Agent), gives exactly one line: valid JSON with the values it was
sent, or a well-formed combined-format line with everything outside
printable ASCII escaped. Lines are not lost when the server stops right
after answering, and SIGUSR1 reopens the file."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import sxtest

# The combined format: a quoted field holds printable ASCII but " and \,
# which, like anything else, are written \xHH.
Q = r'"((?:[\x20-\x21\x23-\x5b\x5d-\x7e]|\\x[0-9A-F]{2})*)"'
COMBINED_RE = re.compile(r'^(\S+) - - \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\] ' + Q +
                         r' (\d{3}) (\d+) ' + Q + ' ' + Q + '$')
LOG_LINE_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                         r"(error|warn|notice|info|debug) sxpool: ")

UA_HOSTILE = b'evil "ua" \\back\\ \xff\xfe caf\xc3\xa9 tab\there'
# (raw request, the status it gets, a marker found in its logged target)
HOSTILE = [
    # accepted: quotes, backslashes, non-UTF-8 and a tab in field values
    (b"GET /ok-hostile-ua?q=%22 HTTP/1.1\r\nHost: t\r\nUser-Agent: " + UA_HOSTILE +
     b"\r\nReferer: http://x/\"r\"\r\nConnection: close\r\n\r\n", 200, "/ok-hostile-ua"),
    # refused by the request-line checks, logged with what was read of it
    (b"GET /nl-target\nforged 127.0.0.1 - - line HTTP/1.1\r\nHost: t\r\n\r\n", 400,
     "/nl-target"),
    (b'GET /quote-target"x" HTTP/1.1\r\nHost: t\r\n\r\n', 400, "/quote-target"),
    (b"GET /ctl-target\x01\x1b[31m HTTP/1.1\r\nHost: t\r\n\r\n", 400, "/ctl-target"),
    (b"GET /bin-target\xff\xc0\x80 HTTP/1.1\r\nHost: t\r\n\r\n", 400, "/bin-target"),
    (b"GET /cr-target\rX HTTP/1.1\r\nHost: t\r\n\r\n", 400, "/cr-target"),
    # a control byte in the User-Agent: refused too
    (b"GET /ctl-ua HTTP/1.1\r\nHost: t\r\nUser-Agent: a\x01\nb\r\n\r\n", 400, "/ctl-ua"),
]


def read_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    if data and not data.endswith(b"\n"):
        data = data[:data.rindex(b"\n") + 1] if b"\n" in data else b""
    return data.split(b"\n")[:-1]


def wait_lines(path, pred, n, timeout=5):
    """The lines of path satisfying pred, once there are at least n."""
    return sxtest.wait_until(lambda: (lambda ls: ls if len(ls) >= n else None)(
        [ln for ln in read_lines(path) if pred(ln)]), timeout, interval=0.05,
        what="%d access log lines in %s" % (n, path))


class AccessLog(unittest.TestCase):
    def log_path(self):
        d = tempfile.mkdtemp(prefix="sxpool-test-log-")
        self.addCleanup(shutil.rmtree, d, True)
        return os.path.join(d, "access.log")

    def run_hostile(self, fmt):
        srv = sxtest.Server(app="echo", workers=1, echo=False)
        path = self.log_path()
        srv.args = ["--access-log=" + path, "--access-log-format=" + fmt]
        with srv:
            for raw, status, _ in HOSTILE:
                data = srv.raw(raw, timeout=10)
                self.assertTrue(data.startswith(b"HTTP/1.1 %d " % status),
                                "%r answered %r" % (raw, data[:80]))
            markers = [m.encode() for _, _, m in HOSTILE]
            # /healthz lines (from start-up) are there too; one line per request
            lines = wait_lines(path, lambda ln: b"healthz" not in ln, len(HOSTILE))
            time.sleep(0.3)
            lines = [ln for ln in read_lines(path) if b"healthz" not in ln]
            self.assertEqual(len(lines), len(HOSTILE), lines)
            for raw, status, marker in HOSTILE:
                mine = [ln for ln in lines if marker.encode() in ln]
                self.assertEqual(len(mine), 1, "%s: %r" % (marker, lines))
            return lines

    def test_json_hostile(self):
        lines = self.run_hostile("json")
        by_target = {}
        for ln in lines:
            ln.decode("utf-8")  # strict: the line is valid UTF-8
            obj = json.loads(ln)
            for key in ("time", "remote", "method", "target", "protocol", "status", "bytes",
                        "duration_ms", "user_agent", "referer", "request_id", "worker", "tier"):
                self.assertIn(key, obj, ln)
            by_target[obj["target"]] = obj
        for raw, status, marker in HOSTILE:
            obj = [o for t, o in by_target.items() if t and t.startswith(marker)]
            self.assertEqual(len(obj), 1, (marker, by_target))
            self.assertEqual(obj[0]["status"], status, obj[0])
            self.assertEqual(obj[0]["method"], "GET", obj[0])
            self.assertEqual(obj[0]["remote"], "127.0.0.1", obj[0])
        ok = by_target["/ok-hostile-ua?q=%22"]
        self.assertEqual(ok["user_agent"], UA_HOSTILE.decode("utf-8", "replace"))
        self.assertEqual(ok["referer"], 'http://x/"r"')
        self.assertEqual(ok["protocol"], "HTTP/1.1")
        self.assertEqual(ok["worker"], 0)
        self.assertEqual(ok["tier"], "jit")
        self.assertIsInstance(ok["request_id"], str)
        self.assertGreater(int(ok["request_id"]), 0)
        self.assertGreater(ok["bytes"], 0)
        self.assertGreaterEqual(ok["duration_ms"], 0)
        self.assertEqual(by_target["/ctl-target\x01\x1b[31m"]["status"], 400)
        self.assertEqual(by_target["/bin-target\ufffd\ufffd\ufffd"]["status"], 400)
        self.assertIsNone(by_target["/ctl-target\x01\x1b[31m"]["worker"])

    def test_combined_hostile(self):
        lines = self.run_hostile("combined")
        for ln in lines:
            self.assertTrue(all(0x20 <= b < 0x7f for b in ln), ln)
            m = COMBINED_RE.match(ln.decode("ascii"))
            self.assertIsNotNone(m, ln)
        ok = [ln.decode() for ln in lines if b"/ok-hostile-ua" in ln][0]
        m = COMBINED_RE.match(ok)
        self.assertEqual(m.group(1), "127.0.0.1")
        self.assertEqual(m.group(3), "GET /ok-hostile-ua?q=%22 HTTP/1.1")
        self.assertEqual(m.group(4), "200")
        self.assertEqual(m.group(6), "http://x/\\x22r\\x22")
        self.assertEqual(m.group(7), "evil \\x22ua\\x22 \\x5Cback\\x5C \\xFF\\xFE caf\\xC3\\xA9 "
                                     "tab\\x09here")
        ctl = [ln.decode() for ln in lines if b"/ctl-target" in ln][0]
        self.assertIn('"GET /ctl-target\\x01\\x1B[31m HTTP/1.1" 400 ', ctl)

    def test_no_line_lost_at_stop(self):
        srv = sxtest.Server(app="basic", workers=1, echo=False)
        path = self.log_path()
        srv.args = ["--access-log=" + path]
        n = 300
        with srv:
            conn = srv.connection()
            for i in range(n):
                r = sxtest.send(conn, "GET", "/?n=%d" % i)
                self.assertEqual(r.status, 200)
            conn.close()
            rc = srv.stop()  # at once: most lines are still waiting for the flush
            self.assertEqual(rc, 0)
        lines = [ln for ln in read_lines(path) if b"/?n=" in ln]
        self.assertEqual(len(lines), n)
        for i, ln in enumerate(lines):
            self.assertIn(b'"GET /?n=%d HTTP/1.1" 200 ' % i, ln)

    def test_sigusr1_reopens(self):
        srv = sxtest.Server(app="basic", workers=1, echo=False)
        path = self.log_path()
        srv.args = ["--access-log=" + path, "--access-log-format=json"]
        with srv:
            self.assertEqual(srv.get("/echo?k=before").status, 200)
            wait_lines(path, lambda ln: b"k=before" in ln, 1)
            os.rename(path, path + ".1")
            mark = srv.log_size()
            srv.proc.send_signal(signal.SIGUSR1)
            srv.wait_line(r"info sxpool: reopened the access log", timeout=5, start=mark)
            self.assertEqual(srv.get("/echo?k=after").status, 200)
            wait_lines(path, lambda ln: b"k=after" in ln, 1)
            old = read_lines(path + ".1")
            self.assertFalse([ln for ln in old if b"k=after" in ln], old)
            self.assertTrue([ln for ln in old if b"k=before" in ln], old)

    def test_stdout(self):
        data = os.path.join(os.path.dirname(self.log_path()), "data")
        p = subprocess.Popen(
            [sxtest.sxpool(), "--listen=127.0.0.1:0", "--workers=0", "--access-log=-",
             "--app=" + sxtest.app_dir("basic"), "--data=" + data],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        try:
            port = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and port is None:
                line = p.stderr.readline().decode()
                m = sxtest.LISTEN_RE.search(line)
                if m:
                    port = int(m.group(2))
            self.assertIsNotNone(port, "no listening line")
            status = sxtest.wait_until(lambda: _get_status(port, "/echo?k=out") == 200, 20,
                                       interval=0.1, what="a 200 from the CEK worker")
            self.assertTrue(status)
        finally:
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=15)
        self.assertEqual(p.returncode, 0)
        self.assertRegex(out.decode(), r'"GET /echo\?k=out HTTP/1\.1" 200 ')
        for ln in out.decode().splitlines():  # nothing but access log lines
            self.assertRegex(ln, COMBINED_RE)


def _get_status(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", path)
        s = c.getresponse().status
        c.close()
        return s
    except OSError:
        return None


class LogLevel(unittest.TestCase):
    def supervisor_lines(self, srv):
        # the supervisor's own lines (not the workers', nor the ipc
        # module's few unlevelled ones)
        return [ln for ln in srv.lines if "sxpool: " in ln]

    def test_format_and_info(self):
        with sxtest.Server(app="basic", workers=1, echo=False) as srv:
            self.assertEqual(srv.get("/").status, 200)
            srv.stop()
        lines = self.supervisor_lines(srv)
        for ln in lines:
            self.assertRegex(ln, LOG_LINE_RE)
        self.assertTrue([ln for ln in lines if " notice sxpool: listening on http://" in ln])
        self.assertTrue([ln for ln in lines if re.search(r" info sxpool: worker 0 \(pid \d+\) "
                                                         r"ready", ln)])
        self.assertTrue([ln for ln in lines if ln.endswith(" info sxpool: stopped")])

    def test_warn_filters_info(self):
        with sxtest.Server(app="basic", workers=1, echo=False, wait_workers=False,
                           args=["--log-level=warn"]) as srv:
            sxtest.wait_until(lambda: srv.get("/").status == 200, 20, interval=0.1,
                              what="a worker answering")
            pid = srv.worker_pids("jit")[0]
            os.kill(pid, signal.SIGKILL)
            m = srv.wait_line(r" warn sxpool: worker 0 \(pid %d\) killed by signal 9" % pid,
                              timeout=10)
            self.assertTrue(m)
            sxtest.wait_until(lambda: [p for p in srv.worker_pids("jit") if p != pid], 20,
                              what="the respawned worker")
            time.sleep(0.5)
        lines = self.supervisor_lines(srv)
        for ln in lines:
            self.assertRegex(ln, LOG_LINE_RE)
        self.assertFalse([ln for ln in lines if " info sxpool: " in ln], lines)
        self.assertTrue([ln for ln in lines if " notice sxpool: listening on" in ln], lines)

    def test_error_filters_warn(self):
        with sxtest.Server(app="basic", workers=1, echo=False, wait_workers=False,
                           args=["--log-level=error"]) as srv:
            sxtest.wait_until(lambda: srv.get("/").status == 200, 20, interval=0.1,
                              what="a worker answering")
            pid = srv.worker_pids("jit")[0]
            os.kill(pid, signal.SIGKILL)
            sxtest.wait_until(lambda: [p for p in srv.worker_pids("jit") if p != pid], 20,
                              what="the respawned worker")
            time.sleep(0.5)
        lines = self.supervisor_lines(srv)
        self.assertFalse([ln for ln in lines if re.search(r" (warn|info) sxpool: ", ln)], lines)
        self.assertTrue([ln for ln in lines if " notice sxpool: listening on" in ln], lines)

    def test_journal_gets_priorities(self):
        # stderr named by JOURNAL_STREAM (device:inode) is the journal's:
        # "<N>" syslog priorities instead of the time
        d = tempfile.mkdtemp(prefix="sxpool-test-")
        self.addCleanup(shutil.rmtree, d, True)
        p = subprocess.Popen(
            ["sh", "-c", 'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"',
             sxtest.sxpool(), "--listen=127.0.0.1:0", "--workers=0",
             "--app=" + sxtest.app_dir("basic"), "--data=" + os.path.join(d, "data")],
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        lines = []
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = p.stderr.readline().decode()
                if not line:
                    break
                lines.append(line.rstrip("\n"))
                if "ready (mode cek" in line:
                    break
        finally:
            p.send_signal(signal.SIGTERM)
            _, rest = p.communicate(timeout=15)
        lines += rest.decode().splitlines()
        mine = [ln for ln in lines if "sxpool: " in ln]
        self.assertTrue([ln for ln in mine if ln.startswith("<5>sxpool: listening on")], lines)
        self.assertTrue([ln for ln in mine if re.match(r"<6>sxpool: worker 0 \(pid \d+\) ready",
                                                       ln)], lines)
        for ln in mine:
            self.assertRegex(ln, r"^<[3-7]>sxpool: ")

    def test_debug_accepted_and_bad_level(self):
        rc, out, err = sxtest.run(["--log-level=verbose"])
        self.assertEqual(rc, 2)
        self.assertEqual(err.strip(), "sxpool: --log-level: expected error, warn, info or debug, "
                                      "got 'verbose'")
        rc, out, err = sxtest.run(["--access-log-format=xml"])
        self.assertEqual(rc, 2)
        self.assertIn("--access-log-format: expected combined or json", err)
        with sxtest.Server(app="basic", workers=1, echo=False, args=["--log-level=debug"]) as srv:
            self.assertEqual(srv.get("/").status, 200)
            srv.wait_line(r" debug sxpool: request \d+ \(attempt 1\) sent to worker \d+", timeout=5)
        with sxtest.Server(app="basic", workers=1, echo=False) as srv:
            self.assertEqual(srv.get("/").status, 200)
            time.sleep(0.3)
            self.assertFalse([ln for ln in srv.lines if " debug sxpool: " in ln], srv.lines)


if __name__ == "__main__":
    sxtest.main()
