"""What a fault costs a client and how fast the pool retires the function.

    python3 bench/faults/redispatch.py PATH_TO_SXPOOL_TEST [KIND...]

PATH_TO_SXPOOL_TEST is the sxpool-test binary of a build (build/sxpool-test):
the release sxpool has no fault switches and ignores SXPOOL_INJECT and
SXPOOL_TEST_HOOK.

KIND is wrong-prim-arg, null-deref, ice (native-code faults injected with
SXPOOL_INJECT into twenty functions, one fault per function, with
--jit-threshold=0) or exit-after-commit (a worker dies after committing and
before replying). For each kind it prints medians of 20:
  - "request": the latency of the request that hit the fault, served again
    by a CEK worker; "steady": the same request once the pool is warm;
  - "after detection": from the log line that shows the fault (the worker's
    JIT_FAULT note, or the supervisor seeing the death) to the response:
    what the re-dispatch itself adds (blacklist write and push included);
  - for native-code faults, from that same line until every JIT worker has
    logged that it dropped the function: "pushed" for the workers that were
    alive (a BLACKLIST frame), "replacement" for the one started after a
    death (it reads the store's blacklist at start).
Uses the integration tests' helpers and app (tests/integration).
"""

import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
import sxtest  # noqa: E402

N = 20
NATIVE = ("wrong-prim-arg", "null-deref", "ice")


class TimedServer(sxtest.Server):
    """A server whose stderr lines carry their arrival time."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.times = []

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self.times.append(time.monotonic())
                self._cond.notify_all()

    def when(self, regex, start):
        """Arrival time of the first line from start matching regex."""
        m = self.wait_line(regex, timeout=20, start=start)
        with self._cond:
            for i in range(start, len(self.lines)):
                if m.re.search(self.lines[i]):
                    return self.times[i]
        return None


def timed_get(srv, path):
    t0 = time.monotonic()
    r = srv.get(path, timeout=60)
    return r, time.monotonic() - t0


def wait_jit_ready(srv, n=2):
    sxtest.wait_until(lambda: len(srv.worker_pids("jit")) == n and all(
        p in srv.ready_pids() for p in srv.worker_pids("jit")), 20, interval=0.01,
        what="%d ready JIT workers" % n)


DETECT = r"(escaped native code in|\) killed by signal|\) exited with status)"


def detected(srv, mark):
    """Arrival time of the first line from mark that shows a fault."""
    return srv.when(DETECT, mark)


def measure(path_of, env, workers, settle):
    """Runs N faulting requests; returns lists of request latency, time after
    detection, time to drop in live workers, time to drop in a replacement."""
    lat, after, pushed, fresh = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="sxpool-bench-") as tmp:
        args = ["--jit-threshold=0", "--timeout=60"]
        with TimedServer(app="faults", workers=workers, data=os.path.join(tmp, "d"), args=args,
                         echo=False, env=env) as srv:
            for i in range(1, N + 1):
                wait_jit_ready(srv, workers)
                mark = srv.log_size()
                before = set(srv.worker_pids("jit"))
                r, dt = timed_get(srv, path_of(i))
                t1 = time.monotonic()
                assert r.status == 200, r
                lat.append(dt)
                t_fault = detected(srv, mark)
                after.append(t1 - t_fault)
                if settle:
                    wait_jit_ready(srv, workers)
                    for pid in srv.worker_pids("jit"):
                        t = srv.when(r"\(pid %d\): dropped the native code of victim-%d "
                                     % (pid, i), mark)
                        (pushed if pid in before else fresh).append(t - t_fault)
    return lat, after, pushed, fresh


def steady(path_of, workers):
    """The same requests on a warm pool without faults."""
    out = []
    with tempfile.TemporaryDirectory(prefix="sxpool-bench-") as tmp:
        with TimedServer(app="faults", workers=workers, data=os.path.join(tmp, "d"),
                         args=["--jit-threshold=0"], echo=False) as srv:
            for i in range(1, N + 1):
                srv.get(path_of(i), timeout=60)
            for i in range(1, N + 1):
                out.append(timed_get(srv, path_of(i))[1])
    return out


def run_kind(kind):
    if kind in NATIVE:
        inject = ",".join("%s:victim-%d" % (kind, i) for i in range(1, N + 1))
        path_of = lambda i: "/victim?i=%d" % i  # noqa: E731
        got = measure(path_of, {"SXPOOL_INJECT": inject}, 2, True)
        return got + (steady(path_of, 2),)
    path_of = lambda i: "/commit"  # noqa: E731
    got = measure(path_of, {"SXPOOL_TEST_HOOK": "exit-after-commit:/commit"}, 1, False)
    return got + (steady(path_of, 1),)


def ms(xs):
    return "%.1f ms" % (statistics.median(xs) * 1000)


def main():
    sxtest.sxpool()
    kinds = sys.argv[2:] or list(NATIVE) + ["exit-after-commit"]
    del sys.argv[2:]
    for kind in kinds:
        lat, after, pushed, fresh, base = run_kind(kind)
        line = "%-18s request %s, steady %s, after detection %s" % (kind, ms(lat), ms(base),
                                                                    ms(after))
        if pushed:
            line += ", dropped: pushed %s" % ms(pushed)
        if fresh:
            line += ", replacement %s" % ms(fresh)
        print(line, flush=True)


if __name__ == "__main__":
    main()
