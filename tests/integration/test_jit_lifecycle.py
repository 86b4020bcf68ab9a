"""The native tier's life cycle: processes that exit, and workers that are
stopped or killed, while the compile thread is inside libgccjit never
crash and leave no temporary files; continuation-passing handlers are
served by JIT workers from native code, with no fault at all."""

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import sxtest
from sxtest import Server, sxpool, wait_until

APP = sxtest.app_dir("cps")
MANY = os.path.join(APP, "main.sx")
FAULT_WORDS = ("fault:", "signal", "crash", "Segmentation", "unable to compile", "AddressSanitizer",
               "runtime error")


def eval_program(path, threshold, tmpdir, timeout=120):
    env = dict(os.environ)
    env["TMPDIR"] = tmpdir
    return subprocess.run([sxpool(), "eval", "--tier=jit", "--jit-threshold=%d" % threshold, path],
                          capture_output=True, text=True, timeout=timeout, env=env)


class ExitWhileCompiling(unittest.TestCase):
    def test_eval_exits_mid_compile_repeatedly(self):
        """A program that makes two dozen functions hot and ends at once:
        exit comes while the compile thread is compiling them."""
        tmp = tempfile.mkdtemp(prefix="sxpool-jit-exit-")
        try:
            src = os.path.join(tmp, "prog.sx")
            with open(MANY) as f:
                text = f.read()
            start = text.index("(define (many n)")
            end = text.index("(define (handle req)")
            with open(src, "w") as f:
                f.write(text[start:end] + "\n(print (many 3))\n")
            want = subprocess.run([sxpool(), "eval", "--tier=cek", src], capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(want.returncode, 0, want.stderr)
            work = os.path.join(tmp, "t")
            for threshold in (1, 2, 10):
                for i in range(8):
                    os.mkdir(work)
                    p = eval_program(src, threshold, work)
                    self.assertEqual(p.returncode, 0, "threshold %d run %d: %s" % (threshold, i, p.stderr))
                    self.assertEqual(p.stdout, want.stdout)
                    for w in FAULT_WORDS:
                        self.assertNotIn(w, p.stderr)
                    self.assertEqual(os.listdir(work), [],
                                     "temporary files left after exit at threshold %d" % threshold)
                    os.rmdir(work)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class PoolNative(unittest.TestCase):
    def test_cps_handler_runs_native_code_without_fault(self):
        # frequent collections: a value the collector cannot see is found at once
        with Server(app=APP, workers=1, cek_workers=1, args=["--jit-threshold=0"],
                    env={"GC_FREE_SPACE_DIVISOR": "200"}) as s:
            for _ in range(5):
                r = s.get("/cpstak")
                self.assertEqual((r.status, r.body), (200, b"7 100000"))
                r = s.get("/compose")
                self.assertEqual((r.status, r.body), (200, b"12"))
            r = s.get("/stats")
            self.assertEqual(r.status, 200)
            compiled, native = (int(x) for x in r.body.split())
            self.assertGreater(compiled, 0)
            self.assertGreater(native, 0)
            text = "\n".join(s.lines)
            self.assertNotIn("fault:", text)
            self.assertNotIn("re-dispatch", text)

    def test_jit_workers_without_libgccjit_serve_from_the_vm(self):
        # a JIT worker that cannot load libgccjit says so and serves every
        # request from the VM, without a fault (SXPOOL_TEST_GCCJIT names the
        # library; sxpool-test only)
        with Server(app=APP, workers=2, cek_workers=1, args=["--jit-threshold=0"],
                    env={"SXPOOL_TEST_GCCJIT": "/nonexistent/libgccjit.so.0"}) as s:
            for _ in range(3):
                r = s.get("/compose")
                self.assertEqual((r.status, r.body), (200, b"12"))
            r = s.get("/stats")
            self.assertEqual((r.status, r.body), (200, b"0 0"))
            s.wait_line(r"native tier is unavailable .*running the bytecode VM only")
            text = "\n".join(s.lines)
            self.assertIn("unable to load /nonexistent/libgccjit.so.0", text)
            self.assertNotIn("fault:", text)
            self.assertNotIn("re-dispatch", text)

    def test_workers_stopped_mid_compile_leave_nothing(self):
        """SIGTERM to the server while its JIT workers compile, and a worker
        killed outright mid-compile: no crash, and the run directory (with
        the workers' private temporary directories) is gone afterwards."""
        for i in range(4):
            tmp = tempfile.mkdtemp(prefix="sxpool-jit-stop-")
            try:
                s = Server(app=APP, workers=2, cek_workers=1, args=["--jit-threshold=1"],
                           env={"TMPDIR": tmp})
                s.start()
                try:
                    r = s.get("/many", timeout=60)
                    self.assertEqual(r.status, 200)
                    if i % 2 == 1:
                        # kill a JIT worker while the compile thread may be busy
                        pids = s.worker_pids("jit")
                        for pid in pids[:1]:
                            os.kill(pid, signal.SIGKILL)
                        r = s.get("/many", timeout=60)
                        self.assertEqual(r.status, 200)
                finally:
                    rc = s.stop()
                self.assertEqual(rc, 0, "server exit status")
                text = "\n".join(s.lines)
                for w in ("Segmentation", "AddressSanitizer", "runtime error", "exit(4)"):
                    self.assertNotIn(w, text)
                left = glob.glob(os.path.join(tmp, "*"))
                self.assertEqual(left, [], "left behind: %s" % left)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sxtest.main()
