"""Real HAProxy for the tests (Debian's haproxy): deploy/haproxy.cfg with a
test's addresses, started in the foreground and stopped by its pid."""

import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = os.path.join(HERE, "..", "..", "deploy", "haproxy.cfg")


def binary():
    for path in (shutil.which("haproxy"), "/usr/sbin/haproxy"):
        if path and os.access(path, os.X_OK):
            return path
    raise AssertionError("haproxy is not installed (Debian package haproxy; "
                         "deploy/install-deps.sh installs it)")


def make_config(front, port_a, port_b):
    """deploy/haproxy.cfg with this test's addresses, without the lines
    of its global section that need root, logging to stderr. Fails if the
    shipped file no longer has what is replaced."""
    with open(SHIPPED) as f:
        text = f.read()
    subs = [
        (r"(?m)^\s*(chroot|user|group|stats socket)\b.*\n", "", 4),
        (r"(?m)^(\s*)log /dev/log .*$", r"\1log stderr format raw local0 info", 1),
        (r"(?m)^(\s*)bind :80\s*$", r"\1bind 127.0.0.1:%d" % front, 1),
        (r"(?m)^(\s*server sxpool-a )127\.0\.0\.1:8080\b", r"\g<1>127.0.0.1:%d" % port_a, 1),
        (r"(?m)^(\s*server sxpool-b )127\.0\.0\.1:8081\b", r"\g<1>127.0.0.1:%d" % port_b, 1),
    ]
    for pattern, repl, count in subs:
        text, n = re.subn(pattern, repl, text)
        if n != count:
            raise AssertionError("deploy/haproxy.cfg: %r matched %d times, want %d"
                                 % (pattern, n, count))
    return text


class HAProxy:
    """One haproxy process in front of 127.0.0.1:port_a and :port_b,
    listening on a free port (self.front), its log in tmp/haproxy.log."""

    def __init__(self, tmp, front, port_a, port_b):
        self.cfg = os.path.join(tmp, "haproxy.cfg")
        self.log_path = os.path.join(tmp, "haproxy.log")
        self.front = front
        self.proc = None
        with open(self.cfg, "w") as f:
            f.write(make_config(front, port_a, port_b))

    def start(self):
        exe = binary()
        check = subprocess.run([exe, "-c", "-f", self.cfg], capture_output=True, text=True,
                               timeout=30)
        if check.returncode != 0:
            raise AssertionError("haproxy rejects the configuration: " + check.stdout +
                                 check.stderr)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([exe, "-db", "-f", self.cfg], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-20000:]
