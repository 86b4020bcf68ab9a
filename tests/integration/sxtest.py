"""Shared helpers for sxpool's integration tests (Python 3 stdlib only).

Each test file is run by ctest as `python3 test_X.py PATH_TO_SXPOOL`. It
starts real sxpool processes on an ephemeral port with a private data
directory, talks HTTP to them, and always stops them (SIGTERM, then SIGKILL)
together with any worker they left behind, whatever happens to the test.

Every wait here is bounded both in time and in the number of attempts.
"""

import atexit
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")

LISTEN_RE = re.compile(r"sxpool: listening on http://([0-9.]+|\[[0-9a-fA-F:]+\]):(\d+)")
READY_RE = re.compile(r"sxpool: worker (\d+) \(pid (\d+)\) ready")

_SXPOOL = None
_live_servers = []


def sxpool():
    """Path of the sxpool binary under test (the first argument)."""
    global _SXPOOL
    if _SXPOOL is None:
        if len(sys.argv) < 2:
            sys.exit("usage: python3 %s PATH_TO_SXPOOL" % os.path.basename(sys.argv[0]))
        _SXPOOL = os.path.abspath(sys.argv[1])
    return _SXPOOL


_pg_dbs = {}


def pg_store_for(data):
    """With SXPOOL_TEST_PG_URL set (pgserver.py runs a test file with it), a
    server keeps its store in PostgreSQL instead of LMDB: one database per
    data directory, created (and migrated) the first time, so a restart on
    the same data directory finds its data. Returns the database's URL."""
    import hashlib
    base = os.environ["SXPOOL_TEST_PG_URL"]
    url = _pg_dbs.get(data)
    if url is None:
        name = "sx_" + hashlib.sha1(data.encode()).hexdigest()[:20]
        url = "%s/%s" % (base, name)
        r = subprocess.run(["/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1",
                            "-d", base + "/postgres", "-c", 'CREATE DATABASE "%s"' % name],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("unable to create database %s: %s" % (name, r.stderr.strip()))
        r = subprocess.run([sxpool(), "store", "migrate", "--store=" + url],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("sxpool store migrate failed: %s" % r.stderr.strip())
        _pg_dbs[data] = url
    return url


def app_dir(name):
    return os.path.join(APPS, name)


def main():
    """Runs the calling module's unittest cases; argv[1] is the binary."""
    sxpool()
    unittest.main(argv=[sys.argv[0]], verbosity=2)


def wait_until(pred, timeout, interval=0.02, what="condition"):
    """Polls pred() until it returns a true value; fails after timeout."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def children_of(pid):
    """Pids whose parent is pid, from /proc/PID/task/*/children, else a scan."""
    kids = set()
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    kids.update(int(x) for x in f.read().split())
            except OSError:
                pass
        return sorted(kids)
    except OSError:
        pass
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                kids.add(int(name))
        except (OSError, IndexError, ValueError):
            pass
    return sorted(kids)


def is_worker(pid, mode=None):
    """True if pid is an sxpool worker (of that --mode, "jit" or "cek", if given)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            args = f.read().split(b"\0")
        if len(args) < 2 or args[1] != b"worker":
            return False
        return mode is None or ("--mode=" + mode).encode() in args
    except OSError:
        return False


def cpu_ticks(pid):
    """User + system CPU time of pid in clock ticks (0 if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def busy_one(pids, base, ticks=5, timeout=10):
    """The pid among pids whose CPU time rose by more than ticks since
    base ({pid: ticks}); waits for one."""
    def busy():
        for p in pids:
            if cpu_ticks(p) > base.get(p, 0) + ticks:
                return p
        return None
    return wait_until(busy, timeout, interval=0.01, what="a worker to start running")


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # names lower-cased
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:200])


class Server:
    """One sxpool process. Use as a context manager, or call start()/stop()."""

    def __init__(self, app="basic", workers=2, data=None, args=(), echo=True, wait_workers=True,
                 cek_workers=1, env=None, nofile=None):
        self.app = app if os.path.isabs(app) else app_dir(app)
        self.workers = workers  # JIT workers
        self.cek_workers = cek_workers
        self.env = env  # extra environment variables for the server (and its workers)
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) for the server and its workers
        self._tmp = None
        if data is None:
            self._tmp = tempfile.mkdtemp(prefix="sxpool-test-")
            data = os.path.join(self._tmp, "data")
        self.data = data
        self.args = list(args)
        self.echo = echo
        self.wait_workers = wait_workers
        self.proc = None
        self.host = None
        self.port = None
        self.lines = []
        self._cond = threading.Condition()
        self._seen_workers = set()
        self._reader = None

    # ---- lifecycle -----------------------------------------------------

    def command(self):
        store = []
        if os.environ.get("SXPOOL_TEST_PG_URL") and not any(
                a.startswith("--store=") for a in self.args):
            store = ["--store=" + pg_store_for(self.data)]
        return [sxpool(), "--listen=127.0.0.1:0", "--data=" + self.data, "--app=" + self.app,
                "--workers=%d" % self.workers, "--cek-workers=%d" % self.cek_workers] + store + \
            self.args

    def start(self, timeout=20):
        _live_servers.append(self)
        try:
            env = None
            if self.env:
                env = dict(os.environ)
                env.update(self.env)
            preexec = None
            if self.nofile is not None:
                n = self.nofile
                preexec = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, env=env, preexec_fn=preexec)
            self._reader = threading.Thread(target=self._read_stderr, daemon=True)
            self._reader.start()
            m = self.wait_line(LISTEN_RE, timeout=timeout)
            self.host = m.group(1).strip("[]")
            self.port = int(m.group(2))
            if self.wait_workers:
                self.wait_ready(self.workers + self.cek_workers, timeout=timeout)
            wait_until(lambda: self._healthy(), timeout, interval=0.05, what="/healthz")
        except BaseException:
            self.stop()
            raise
        return self

    def _healthy(self):
        # /healthz is 503 while no worker is ready: a server started without
        # waiting for its workers only has to answer it.
        try:
            status = self.request("GET", "/healthz", timeout=2).status
        except OSError:
            return False
        return status == 200 or (status == 503 and not self.wait_workers)

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self.echo:
                sys.stderr.write(line + "\n")
                sys.stderr.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL; kills any worker left behind. Returns the
        exit status (negative: killed by that signal), or None if never run."""
        if self in _live_servers:
            _live_servers.remove(self)
        rc = None
        if self.proc is not None:
            self._note_workers()
            if self.proc.poll() is None:
                try:
                    self.proc.send_signal(signal.SIGTERM)
                    rc = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait(timeout=5)
            else:
                rc = self.proc.returncode
            for pid in self._seen_workers:
                if pid_alive(pid) and is_worker(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            if self._reader is not None:
                self._reader.join(timeout=2)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    # ---- log lines -----------------------------------------------------

    def wait_line(self, regex, timeout=10, start=0):
        """First stderr line from index start matching regex; fails if the
        process exits or timeout passes first."""
        regex = re.compile(regex) if isinstance(regex, str) else regex
        deadline = time.monotonic() + timeout
        i = start
        with self._cond:
            while True:
                while i < len(self.lines):
                    m = regex.search(self.lines[i])
                    if m:
                        return m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no line matching %r within %.1f s; stderr:\n%s"
                                         % (regex.pattern, timeout, "\n".join(self.lines)))
                if self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError("sxpool exited (%s) before a line matched %r; "
                                         "stderr:\n%s" % (self.proc.returncode, regex.pattern,
                                                          "\n".join(self.lines)))
                self._cond.wait(min(left, 0.1))

    def log_size(self):
        with self._cond:
            return len(self.lines)

    def ready_pids(self, start=0):
        """{pid: slot} of every worker that said READY, from line start."""
        with self._cond:
            lines = self.lines[start:]
        out = {}
        for line in lines:
            m = READY_RE.search(line)
            if m:
                out[int(m.group(2))] = int(m.group(1))
        return out

    def wait_ready(self, n, timeout=20, start=0):
        def enough():
            pids = [p for p in self.ready_pids(start) if pid_alive(p)]
            return pids if len(pids) >= n else None
        if self.proc.poll() is not None:
            raise AssertionError("sxpool exited with %s" % self.proc.returncode)
        return wait_until(enough, timeout, interval=0.02, what="%d ready workers" % n)

    def worker_pids(self, mode=None):
        """Pids of the live workers (of that mode, "jit" or "cek", if given)."""
        pids = [p for p in children_of(self.proc.pid) if is_worker(p)]
        self._seen_workers.update(pids)
        return [p for p in pids if mode is None or is_worker(p, mode)]

    def _note_workers(self):
        try:
            self.worker_pids()
        except OSError:
            pass
        self._seen_workers.update(self.ready_pids())

    # ---- HTTP ----------------------------------------------------------

    def connection(self, timeout=10):
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, timeout=10):
        """One request on a new connection."""
        conn = self.connection(timeout)
        try:
            return send(conn, method, path, body, headers)
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def raw(self, data, timeout=10):
        """Sends raw bytes, returns everything read until the server closes
        or timeout passes."""
        return raw_exchange(self.host, self.port, data, timeout)

    def open_request(self, path=None):
        """A socket with GET path sent on it (nothing sent without a path);
        read the answer with read_response."""
        s = socket.create_connection((self.host, self.port), timeout=10)
        if path is not None:
            s.sendall(("GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path).encode())
        return s

    def metrics(self):
        """The text of /metrics from the admin listener (--admin=127.0.0.1:0)."""
        m = self.wait_line(r"sxpool: admin on http://([0-9.]+):(\d+)", timeout=5)
        conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=10)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()


def reset(s):
    """Closes socket s with a TCP reset (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def read_response(s, timeout=20):
    """One response read off socket s (framed by content-length)."""
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    for _ in range(10000):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            n = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    n = int(value)
            if len(rest) >= n:
                return parse_responses(head + sep + rest[:n])[0]
        if time.monotonic() >= deadline:
            break
        try:
            chunk = s.recv(65536)
        except OSError as e:
            raise AssertionError("the connection failed before a response: %s" % e)
        if not chunk:
            break
        data += chunk
    raise AssertionError("no complete response: %r" % data[:200])


def send(conn, method, path, body=None, headers=None):
    """A request on an existing http.client connection."""
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, data)


def raw_exchange(host, port, data, timeout=10):
    deadline = time.monotonic() + timeout
    out = b""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(data)
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def parse_responses(data, head_request=False):
    """Splits raw HTTP/1.1 responses framed by content-length (no body for
    a 1xx, or for the answer to a HEAD request)."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            raise AssertionError("incomplete response head: %r" % data[:200])
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        n = 0 if status < 200 or head_request else int(headers.get("content-length", "0"))
        out.append(Response(status, headers, rest[:n]))
        data = rest[n:]
    return out


def run(args, timeout=10):
    """Runs sxpool with args; returns (exit status, stdout, stderr)."""
    p = subprocess.Popen([sxpool()] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        raise AssertionError("sxpool %s did not exit within %d s" % (" ".join(args), timeout))
    return p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


@atexit.register
def _stop_leftovers():
    for srv in list(_live_servers):
        srv.stop()


# ---- native tier, ports, load -----------------------------------------------

_NATIVE_PROBE = ("(define (f x) (+ x 1))\n"
                 "(print (f 1) \" \" (get (jit-stats) :compiled) \" \" "
                 "(get (jit-stats) :native-calls))\n")


def check_native_tier():
    """Fails unless `sxpool eval --tier=jit` compiles a function and runs it
    natively (at least one function compiled, at least one native call)."""
    with tempfile.NamedTemporaryFile("w", suffix=".sx", delete=False) as f:
        f.write(_NATIVE_PROBE)
        path = f.name
    try:
        env = {k: v for k, v in os.environ.items() if k != "SXPOOL_INJECT"}
        p = subprocess.run([sxpool(), "eval", "--tier=jit", "--jit-threshold=0", path],
                           capture_output=True, text=True, timeout=60, env=env)
    finally:
        os.unlink(path)
    m = re.fullmatch(r"2 (\d+) (\d+)\n", p.stdout)
    if p.returncode != 0 or p.stderr != "" or not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise AssertionError("no working native tier in %s: `sxpool eval --tier=jit "
                             "--jit-threshold=0` exited %d, stdout %r, stderr %r (want \"2 C N\" "
                             "with C >= 1 functions compiled and N >= 1 native calls)"
                             % (sxpool(), p.returncode, p.stdout, p.stderr))


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (for a program
    that cannot be told to pick one itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """Client threads that each loop, on one keep-alive connection to
    (host, port), over GET /version, POST /inc?k=KEY (the app's counter
    KEY, one key per thread: its answers must count 1, 2, 3, ...) and,
    with slow=True, GET /slow, until stop() or max_requests each. Every
    answer is recorded as (start, end, thread, path, status or error,
    body); a request that raises is a failure and is not retried (the
    connection is opened again for the next one)."""

    def __init__(self, host, port, threads=4, slow=False, max_requests=100000, prefix="t",
                 timeout=30):
        self.host, self.port = host, port
        self.nthreads = threads
        self.slow = slow
        self.max_requests = max_requests
        self.prefix = prefix
        self.timeout = timeout
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []

    def key(self, i):
        return "%s%d" % (self.prefix, i)

    def start(self):
        for i in range(self.nthreads):
            t = threading.Thread(target=self._run, args=(i,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, i):
        conn = None
        plan = [("GET", "/version"), ("POST", "/inc?k=" + self.key(i))]
        if self.slow and i == 0:
            plan.append(("GET", "/slow"))
        for n in range(self.max_requests):
            if self._stop.is_set():
                break
            method, path = plan[n % len(plan)]
            t0 = time.monotonic()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                r = send(conn, method, path, body=b"x" if method == "POST" else None)
                rec = (t0, time.monotonic(), i, path, r.status, r.body.decode("utf-8", "replace"))
                if r.headers.get("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001 (a failed request: recorded, asserted on)
                rec = (t0, time.monotonic(), i, path, repr(e), "")
                if conn is not None:
                    conn.close()
                conn = None
            with self._lock:
                self.records.append(rec)
        if conn is not None:
            conn.close()

    def count(self):
        with self._lock:
            return len(self.records)

    def stop(self, timeout=60):
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        alive = [t for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError("%d load threads still running after %d s" % (len(alive), timeout))
        return list(self.records)

    @staticmethod
    def failures(records):
        return [r for r in records if r[4] != 200]

    def increments(self, records):
        """{key: [counts answered, in order]} from the POST /inc answers
        ("VERSION N")."""
        out = {self.key(i): [] for i in range(self.nthreads)}
        for r in records:
            if r[3].startswith("/inc?k=") and r[4] == 200:
                out[r[3][len("/inc?k="):]].append(int(r[5].split()[-1]))
        return out
