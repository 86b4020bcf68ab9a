"""The release binary ignores the test-only fault switches; sxpool-test obeys them.

    python3 release_hooks.py PATH_TO_SXPOOL PATH_TO_SXPOOL_TEST

SXPOOL_INJECT (jit/jit.c) and SXPOOL_TEST_HOOK (worker/wrk_hook.c) are
compiled only into sxpool-test (SXPOOL_TEST_HOOKS). The binary that
deploy/serve.sh and deploy/sxpool.service run must serve normally whatever
they say; the same switches given to sxpool-test must make it fail, so the
test cannot pass by the switches being broken everywhere.
"""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sxtest  # noqa: E402

RELEASE = None
TEST = None

# f is compiled before its first call (threshold 0) and then run natively.
PROGRAM = """
(define (edges-block xs) (map (lambda (x) (* x 2)) xs))
(print (edges-block '(1 2 3)))
(print "native " (> (get (jit-stats) :native-calls) 0))
"""


def eval_jit(binary, env):
    with tempfile.NamedTemporaryFile("w", suffix=".sx", delete=False) as f:
        f.write(PROGRAM)
    try:
        e = {k: v for k, v in os.environ.items()
             if k not in ("SXPOOL_INJECT", "SXPOOL_TEST_HOOK")}
        e.update(env)
        p = subprocess.run([binary, "eval", "--tier=jit", "--jit-threshold=0", f.name],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=120, env=e)
        return p.returncode, p.stdout, p.stderr
    finally:
        os.unlink(f.name)


class Server(sxtest.Server):
    """sxtest.Server running a given binary."""

    def __init__(self, binary, **kw):
        self.binary = binary
        super().__init__(**kw)

    def command(self):
        return [self.binary] + super().command()[1:]


class Binary(unittest.TestCase):
    def test_release_binary_does_not_read_the_switches(self):
        # getenv's argument is a string in the binary: the release one has neither
        for path, want in ((RELEASE, False), (TEST, True)):
            with open(path, "rb") as f:
                data = f.read()
            for name in (b"SXPOOL_INJECT", b"SXPOOL_TEST_HOOK"):
                self.assertEqual(name in data, want, (path, name))


class Inject(unittest.TestCase):
    def test_release_ignores_sxpool_inject(self):
        for kind in ("null-deref", "wrong-prim-arg", "ice", "compile-error"):
            rc, out, err = eval_jit(RELEASE, {"SXPOOL_INJECT": kind + ":edges-block"})
            self.assertEqual((rc, out), (0, "(2 4 6)\nnative #t\n"), (kind, err))
            self.assertNotIn("injection", err, kind)
            self.assertNotIn("SXPOOL_INJECT", err, kind)

    def test_test_binary_injects(self):
        rc, out, err = eval_jit(TEST, {"SXPOOL_INJECT": "null-deref:edges-block"})
        self.assertIn("test fault injection: null-deref in edges-block", err)
        # SIGSEGV; under a sanitizer its own handler makes it SIGABRT
        self.assertIn(rc, (-11, -6), err)
        rc, out, err = eval_jit(TEST, {"SXPOOL_INJECT": "wrong-prim-arg:edges-block"})
        self.assertEqual(rc, 1, err)
        self.assertIn("error: type-error: map: ", err)


class TestHook(unittest.TestCase):
    HOOKS = {"SXPOOL_TEST_HOOK": "exit-at-start:jit,exit-after-commit:/commit,no-such-hook:x"}

    def test_release_ignores_sxpool_test_hook(self):
        with Server(RELEASE, app="faults", workers=1, cek_workers=1, env=self.HOOKS) as srv:
            self.assertEqual(len(srv.worker_pids("jit")), 1, "the JIT worker did not come up")
            for i in range(3):
                r = srv.get("/commit", timeout=20)
                self.assertEqual((r.status, r.text), (200, str(i + 1)), r)
            log = "\n".join(srv.lines)
            self.assertNotIn("exited with status", log)
            self.assertNotIn("SXPOOL_TEST_HOOK", log)

    def test_test_binary_obeys_sxpool_test_hook(self):
        with Server(TEST, app="faults", workers=1, cek_workers=1, env=self.HOOKS,
                    wait_workers=False) as srv:
            srv.wait_line(r"worker 0 \(pid \d+\) exited with status 1", timeout=20)
            srv.wait_line(r"ignoring an unknown SXPOOL_TEST_HOOK 'no-such-hook:x'", timeout=20)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python3 %s PATH_TO_SXPOOL PATH_TO_SXPOOL_TEST" % sys.argv[0])
    RELEASE, TEST = (os.path.abspath(a) for a in sys.argv[1:3])
    # sxtest's helpers that take the binary from argv[1] see the release one
    del sys.argv[2]
    unittest.main(argv=[sys.argv[0]], verbosity=2)
