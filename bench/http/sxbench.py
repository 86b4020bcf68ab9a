"""What bench/http's Python scripts share: a port, a pool that answers, and
stopping it by its pid."""
import os
import signal
import socket
import subprocess
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_ready(url, proc, seconds=60):
    """Waits until url answers; fails if proc ends first or it takes too long."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("sxpool exited with status %d before answering" % proc.returncode)
        try:
            get(url, timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("%s did not answer within %d s" % (url, seconds))


def stop(proc):
    """SIGTERM to proc (started with start_new_session), then SIGKILL to its
    process group if it has not ended within 15 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
