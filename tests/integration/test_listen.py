"""Listening: IPv6 (--listen=[::1]:PORT, --admin likewise), --reuse-port,
systemd socket activation (a listening socket inherited on fd 3 with
LISTEN_PID and LISTEN_FDS, an admin one on fd 4 named by LISTEN_FDNAMES)
and readiness (sd_notify: READY=1 only once a worker is ready, STOPPING=1
on SIGTERM)."""

import fcntl
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import sxtest

ADMIN_RE = re.compile(r"sxpool: admin on http://\[([0-9a-fA-F:]+)\]:(\d+)")


def need_ipv6_loopback():
    """Fails (never skips) when ::1 cannot be bound: the test is about it."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as e:
        raise AssertionError("IPv6 loopback ::1 is not usable on this machine (%s); "
                             "test_listen needs it (check `ip -6 addr show lo`)" % e)


def get(host, port, path, timeout=5):
    c = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Proc:
    """sxpool started by hand (an inherited socket, an environment of its
    own), with its stderr collected; stopped by its pid."""

    def __init__(self, argv, env, pass_fd_map=None):
        self.tmp = tempfile.mkdtemp(prefix="sxpool-test-")
        self.lines = []
        self.cond = threading.Condition()
        # Each socket is first copied above the targets (close-on-exec), then
        # put on its target in the child (inheritable). Everything else
        # Python opens is close-on-exec, so close_fds is not needed.
        fds = {t: fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
               for t, fd in (pass_fd_map or {}).items()}

        def preexec():
            for target, fd in fds.items():
                os.dup2(fd, target)  # inheritable: no close-on-exec
        try:
            self.proc = subprocess.Popen(argv + ["--data=" + os.path.join(self.tmp, "data")],
                                         stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         env=env, preexec_fn=preexec, close_fds=False,
                                         start_new_session=True)
        finally:
            for fd in fds.values():
                os.close(fd)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stderr:
            with self.cond:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, pattern, timeout=20):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            for _ in range(10000):
                for ln in self.lines:
                    m = rx.search(ln)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self.reader.is_alive():
                    break
                self.cond.wait(min(left, 0.1))
        raise AssertionError("no line matching %r; stderr:\n%s" % (pattern, "\n".join(self.lines)))

    def workers(self):
        return [p for p in sxtest.children_of(self.proc.pid) if sxtest.is_worker(p)]

    def stop(self):
        workers = self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid in workers:
            if sxtest.pid_alive(pid) and sxtest.is_worker(pid):
                os.kill(pid, signal.SIGKILL)
        self.reader.join(timeout=2)
        self.proc.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return self.proc.returncode


def listening_socket(family=socket.AF_INET, host="127.0.0.1", reuse_port=False):
    s = socket.socket(family, socket.SOCK_STREAM)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind((host, 0))
    s.listen(64)
    return s


class IPv6(unittest.TestCase):
    def test_listen_and_admin_on_ipv6_loopback(self):
        need_ipv6_loopback()
        with sxtest.Server(app="basic", workers=1, echo=False,
                           args=["--listen=[::1]:0", "--admin=[::1]:0"]) as srv:
            self.assertEqual(srv.host, "::1")
            r = srv.get("/")
            self.assertEqual(r.status, 200)
            m = srv.wait_line(ADMIN_RE, timeout=5)
            status, body = get("::1", int(m.group(2)), "/metrics")
            self.assertEqual(status, 200)
            self.assertIn(b"sxpool_", body)
            # not on IPv4
            with self.assertRaises(OSError):
                socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()

    def test_listen_on_ipv6_any(self):
        need_ipv6_loopback()
        with sxtest.Server(app="basic", workers=1, echo=False, args=["--listen=[::]:0"]) as srv:
            self.assertEqual(srv.host, "::")
            self.assertEqual(get("::1", srv.port, "/")[0], 200)

    def test_bad_address(self):
        for arg in ["--listen=[::1:80", "--listen=::1]:80", "--listen=::1:80", "--admin=[]:80",
                    "--admin=[::1]]:80"]:
            rc, out, err = sxtest.run([arg])
            self.assertEqual(rc, 2, (arg, err))
            self.assertIn("expected HOST:PORT", err)


class ReusePort(unittest.TestCase):
    def test_reuse_port_shares_the_address(self):
        other = listening_socket(reuse_port=True)  # another instance's socket
        port = other.getsockname()[1]
        try:
            with sxtest.Server(app="basic", workers=1, echo=False,
                               args=["--listen=127.0.0.1:%d" % port, "--reuse-port"]) as srv:
                self.assertEqual(srv.port, port)
                other.close()  # the other instance goes: all connections come here
                self.assertEqual(srv.get("/").status, 200)
        finally:
            other.close()

    def test_without_reuse_port_the_address_is_busy(self):
        other = listening_socket(reuse_port=True)
        port = other.getsockname()[1]
        try:
            d = tempfile.mkdtemp(prefix="sxpool-test-")
            self.addCleanup(shutil.rmtree, d, True)
            rc, out, err = sxtest.run(["--listen=127.0.0.1:%d" % port, "--workers=0",
                                       "--data=" + os.path.join(d, "data")], timeout=20)
            self.assertEqual(rc, 1, err)
            self.assertRegex(err, r"error sxpool: unable to listen on 127\.0\.0\.1:%d: "
                                  r"EADDRINUSE" % port)
        finally:
            other.close()


class SocketActivation(unittest.TestCase):
    def start(self, socks, names=None, pid_matches=True):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        shell = "LISTEN_PID=%s LISTEN_FDS=%d %s exec \"$0\" \"$@\"" % (
            "$$" if pid_matches else "1", len(socks),
            "LISTEN_FDNAMES=%s" % ":".join(names) if names else "")
        argv = ["sh", "-c", shell, sxtest.sxpool(), "--listen=127.0.0.1:0", "--workers=1",
                "--app=" + sxtest.app_dir("basic")]
        p = Proc(argv, env, {3 + i: s.fileno() for i, s in enumerate(socks)})
        self.addCleanup(p.stop)
        return p

    def test_serves_on_inherited_socket(self):
        sock = listening_socket()
        port = sock.getsockname()[1]
        p = self.start([sock])
        sock.close()  # only sxpool holds it now
        m = p.wait_line(r"notice sxpool: listening on http://127\.0\.0\.1:(\d+) "
                        r"\(socket from systemd\)")
        self.assertEqual(int(m.group(1)), port)
        p.wait_line(r"sxpool: worker 0 \(pid \d+\) ready")
        self.assertEqual(sxtest.wait_until(lambda: get("127.0.0.1", port, "/")[0] == 200, 10,
                                           what="a 200 on the inherited socket"), True)
        # --listen=127.0.0.1:0 was not bound: only one "listening on" line
        self.assertEqual(len([ln for ln in p.lines if "listening on" in ln]), 1)
        # the workers do not see the variables
        for pid in p.workers():
            with open("/proc/%d/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
            self.assertFalse([e for e in env if e.startswith(b"LISTEN_")], env)
        self.assertEqual(p.stop(), 0)

    def test_admin_socket_by_name(self):
        web, admin = listening_socket(), listening_socket()
        wport, aport = web.getsockname()[1], admin.getsockname()[1]
        p = self.start([admin, web], names=["admin", "http"])
        web.close()
        admin.close()
        p.wait_line(r"listening on http://127\.0\.0\.1:%d \(socket from systemd\)" % wport)
        p.wait_line(r"sxpool: admin on http://127\.0\.0\.1:%d" % aport)
        p.wait_line(r"sxpool: worker 0 \(pid \d+\) ready")
        status, body = get("127.0.0.1", aport, "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"sxpool_", body)
        sxtest.wait_until(lambda: get("127.0.0.1", wport, "/")[0] == 200, 10, what="HTTP")

    def test_other_pid_is_ignored(self):
        sock = listening_socket()
        p = self.start([sock], pid_matches=False)
        sock.close()
        m = p.wait_line(r"listening on http://127\.0\.0\.1:(\d+)")
        self.assertNotIn("systemd", m.string)


class Notify(unittest.TestCase):
    def notify_socket(self):
        d = tempfile.mkdtemp(prefix="sxpool-test-notify-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "notify")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        self.addCleanup(s.close)
        return s, path

    def messages(self, s, until, timeout):
        """Datagrams received until one contains `until` (all returned)."""
        got = []
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                msg = s.recv(4096).decode()
            except socket.timeout:
                break
            got.append(msg)
            if until in msg.split("\n"):
                return got
        raise AssertionError("no %r from sxpool within %.0f s; got %r" % (until, timeout, got))

    def test_ready_after_a_worker_and_stopping_on_sigterm(self):
        s, path = self.notify_socket()
        srv = sxtest.Server(app="basic", workers=1, echo=False, wait_workers=False,
                            env={"NOTIFY_SOCKET": path})
        srv.start()
        try:
            got = self.messages(s, "READY=1", 20)
            # READY=1 is sent only once a worker is ready: /healthz agrees
            self.assertEqual(srv.get("/healthz").status, 200)
            ready = [m for m in got if "READY=1" in m.split("\n")][0]
            self.assertRegex(ready, r"STATUS=serving: [12] of 2 workers ready")
            srv.proc.send_signal(signal.SIGTERM)
            got = self.messages(s, "STOPPING=1", 10)
            self.assertEqual(srv.proc.wait(timeout=15), 0)
        finally:
            srv.stop()

    def test_no_ready_without_a_worker(self):
        s, path = self.notify_socket()
        with sxtest.Server(app="broken", workers=1, echo=False, wait_workers=False,
                           env={"NOTIFY_SOCKET": path}) as srv:
            time.sleep(3)
            s.setblocking(False)
            got = []
            for _ in range(100):
                try:
                    got.append(s.recv(4096).decode())
                except BlockingIOError:
                    break
            self.assertFalse([m for m in got if "READY=1" in m.split("\n")], got)
            self.assertEqual(srv.get("/healthz").status, 503)


if __name__ == "__main__":
    sxtest.main()
