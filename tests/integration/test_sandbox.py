"""Least privilege in the workers.

- SX code has no way to read files, run programs, open sockets or reach
  the environment: an app tries every name a Lisp would use for that and
  every effect that might (apps/hostile), on a JIT and on a CEK worker,
  and each is refused (unbound-variable or effect-error); the primitives
  and the effects the VM defines are checked against a list, so a new one
  is a decision.
- The seccomp filter (worker/wrk_sandbox.c): the test hook probe-sandbox
  makes, from inside a worker, the calls the filter refuses and logs what
  each returned: a CEK worker cannot create a socket, open a file, fork,
  map executable memory, ptrace, signal its parent or change its user; a
  JIT worker can open files and fork (libgccjit runs gcc, as and ld) but
  none of the rest. With --no-seccomp the same calls succeed (the filter is
  what refuses them).
- /proc/PID/status and limits of a worker: NoNewPrivs 1, Seccomp 2 (filter),
  no core dumps unless --core-dumps, RLIMIT_DATA from --worker-memory.
"""

import os
import re
import subprocess
import unittest

import sxtest

SRC = os.path.normpath(os.path.join(sxtest.HERE, "..", ".."))

PROBE_RE = re.compile(r"sandbox probe:((?: [a-z-]+=\w+)+)")

# what the filter refuses in each kind of worker (and --no-seccomp allows)
REFUSED_BOTH = ["socket-inet", "socket-unix", "ptrace", "kill-parent", "setuid"]
REFUSED_CEK_ONLY = ["open-read", "open-write", "fork", "mmap-exec"]


def sanitized():
    """True for a sanitizer build, whose CEK workers may open files (the
    ASan runtime writes its report to a file)."""
    out = subprocess.run(["ldd", sxtest.sxpool()], capture_output=True, text=True,
                         timeout=30).stdout
    return "libasan" in out


def probe(srv, path="/probe"):
    mark = srv.log_size()
    srv.get(path)  # the probe runs before the handler (basic answers 404)
    m = srv.wait_line(PROBE_RE, timeout=10, start=mark)
    return dict(item.split("=") for item in m.group(1).split())


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def proc_limit(pid, name):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith(name):
                return line[len(name):].split()[0]
    raise AssertionError("no %s in /proc/%d/limits" % (name, pid))


class SxHasNoWayOut(unittest.TestCase):
    def check(self, workers):
        with sxtest.Server(app="hostile", workers=workers, cek_workers=1) as srv:
            r = srv.get("/attempts", timeout=30)
            self.assertEqual(r.status, 200, r)
            lines = r.text.splitlines()
            self.assertGreaterEqual(len(lines), 36, r.text)
            self.assertNotIn("ALLOWED", r.text)
            for line in lines:
                name, _, result = line.partition(": ")
                if name.startswith("perform :kv/get"):
                    self.assertEqual(result, "nil", line)  # a key, not a file
                elif name.startswith("perform "):
                    self.assertEqual(result, "effect-error", line)
                else:
                    self.assertEqual(result, "unbound-variable", line)

    def test_on_a_jit_worker(self):
        self.check(workers=1)

    def test_on_a_cek_worker(self):
        self.check(workers=0)

    def test_primitives_and_effects_are_known(self):
        names = set()
        for fn in os.listdir(os.path.join(SRC, "vm")):
            if fn.endswith(".c"):
                with open(os.path.join(SRC, "vm", fn)) as f:
                    names.update(re.findall(r'sx_defprim\("([^"]+)"', f.read()))
        self.assertGreater(len(names), 100)
        risky = {"file", "open", "socket", "exec", "system", "process", "load", "env", "spawn",
                 "port", "dir", "directory", "path", "shell", "dlopen", "foreign", "ffi", "exit",
                 "connect", "net", "http", "eval", "read", "include", "getenv", "command"}
        self.assertEqual(sorted(n for n in names
                                if risky & set(re.split(r"[-?!>*/]+", n))), [],
                         "a primitive that may reach outside the worker: decide and list it")
        with open(os.path.join(SRC, "vm", "sx_api.c")) as f:
            src = f.read()
        body = src[src.index("static sx_val host_perform("):]
        body = body[:body.index("\n}\n")]
        effects = set(re.findall(r'!strcmp\(name, "([^"]+)"\)', body))
        self.assertEqual(effects, {"kv/get", "kv/put", "kv/del", "kv/scan", "log", "now"})


class Seccomp(unittest.TestCase):
    def server(self, workers, args=()):
        return sxtest.Server(app="basic", workers=workers, cek_workers=1, args=list(args),
                             env={"SXPOOL_TEST_HOOK": "probe-sandbox:/probe"})

    def test_cek_worker(self):
        with self.server(workers=0) as srv:
            got = probe(srv)
        want = {k: "EPERM" for k in REFUSED_BOTH + REFUSED_CEK_ONLY}
        if sanitized():
            want["open-read"] = want["open-write"] = "ok"
        self.assertEqual(got, want)

    def test_jit_worker(self):
        with self.server(workers=1) as srv:
            got = probe(srv)
        want = {k: "EPERM" for k in REFUSED_BOTH}
        want.update({k: "ok" for k in REFUSED_CEK_ONLY})
        self.assertEqual(got, want)

    def test_without_the_filter_the_calls_succeed(self):
        with self.server(workers=0, args=["--no-seccomp"]) as srv:
            got = probe(srv)
        # ptrace of a parent that is not traced: ESRCH, not EPERM
        self.assertEqual(got["socket-inet"], "ok")
        self.assertEqual(got["open-read"], "ok")
        self.assertEqual(got["fork"], "ok")
        self.assertEqual(got["ptrace"], "ESRCH")

    def test_worker_keeps_serving_after_refused_calls(self):
        with self.server(workers=1) as srv:
            probe(srv)
            probe(srv)
            for _ in range(20):
                self.assertEqual(srv.get("/").status, 200)
            self.assertEqual(len(srv.ready_pids()), 2, "a worker was replaced")


class Limits(unittest.TestCase):
    def test_defaults(self):
        with sxtest.Server(app="basic", workers=1, cek_workers=1) as srv:
            for pid in srv.worker_pids():
                st = proc_status(pid)
                self.assertEqual(st["NoNewPrivs"].strip(), "1", pid)
                self.assertEqual(st["Seccomp"].strip(), "2", pid)
                self.assertEqual(proc_limit(pid, "Max core file size"), "0", pid)
                self.assertEqual(proc_limit(pid, "Max data size"), "unlimited", pid)

    def test_core_dumps_and_worker_memory(self):
        with sxtest.Server(app="basic", workers=1, cek_workers=1,
                           args=["--core-dumps", "--worker-memory=768M"]) as srv:
            self.assertEqual(srv.get("/").status, 200)
            mine = open("/proc/self/limits").read()
            ours = re.search(r"Max core file size\s+(\S+)", mine).group(1)
            for pid in srv.worker_pids():
                self.assertEqual(proc_limit(pid, "Max core file size"), ours, pid)
                if sanitized():  # ASan's shadow memory counts against RLIMIT_DATA
                    self.assertEqual(proc_limit(pid, "Max data size"), "unlimited", pid)
                else:
                    self.assertEqual(proc_limit(pid, "Max data size"), str(768 << 20), pid)
            if sanitized():
                srv.wait_line(r"--worker-memory is not applied in a sanitizer build", timeout=5)

    def test_bad_worker_memory(self):
        rc, _, err = sxtest.run(["--worker-memory=1M"])
        self.assertEqual(rc, 2)
        self.assertIn("--worker-memory: expected a size from 256M to 1T", err)


if __name__ == "__main__":
    sxtest.main()
