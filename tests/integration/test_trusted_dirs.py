"""Trusted directories: sxpool runs nothing another local user could have
planted. The data directory must be this user's and writable by nobody
else, with every directory above it owned by root or this user and not
group/other-writable unless sticky; otherwise the server refuses to start.
A code cache that breaks the rule is not used (the worker logs why and
compiles without it), and a cached shared object is loaded only when its
.idx and .so are this user's regular files that nobody else can write,
neither is a symbolic link, and the .so's SHA-256 is the one its .idx
recorded. The planted objects here are built with `cc -shared -fPIC`; their
constructor creates a marker file, which must never appear.

"Another user" is uid 65534 (nobody): the tests that chown need root, as in
CI, and are skipped otherwise."""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import sxtest
from sxtest import Server, sxpool

NOBODY = 65534
ROOT = os.geteuid() == 0
APP_SX = """
(define (add a b) (+ a b))
(define (handle req)
  {:status 200 :headers {"content-type" "text/plain"} :body (str "sum " (add 2 3))})
"""
ABI_RE = re.compile(r"ready \(mode jit, abi ([0-9a-f]{16})\)")
EVIL_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void)
{
    int fd = open(MARKER, O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
}
"""


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def refused_start(data, app, timeout=30):
    """Runs the server on data; returns (exit status, stderr) once it exits.
    A server that keeps running is killed with its workers and fails."""
    p = subprocess.Popen([sxpool(), "--listen=127.0.0.1:0", "--data=" + data, "--app=" + app,
                          "--workers=1", "--cek-workers=1"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        _, err = p.communicate(timeout=10)
        raise AssertionError("sxpool started on --data=%s instead of refusing it; stderr:\n%s"
                             % (data, err.decode("utf-8", "replace")))
    return p.returncode, err.decode("utf-8", "replace")


class Base(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.top = tempfile.mkdtemp(prefix="sxpool-trusted-")
        cls.app = os.path.join(cls.top, "app")
        os.mkdir(cls.app)
        with open(os.path.join(cls.app, "main.sx"), "w") as f:
            f.write(APP_SX)
        cls.marker = os.path.join(cls.top, "planted-code-ran")
        src = os.path.join(cls.top, "evil.c")
        with open(src, "w") as f:
            f.write(EVIL_C)
        cls.evil = os.path.join(cls.top, "evil.so")
        subprocess.run(["cc", "-shared", "-fPIC", '-DMARKER="%s"' % cls.marker, "-o", cls.evil,
                        src], check=True, timeout=120)
        os.chmod(cls.evil, 0o700)
        cls.evil_sha = sha256(cls.evil)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.top, ignore_errors=True)

    def setUp(self):
        if os.path.exists(self.marker):
            os.unlink(self.marker)
        self.tmp = tempfile.mkdtemp(prefix="t-", dir=self.top)

    def tearDown(self):
        planted = os.path.exists(self.marker)
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.assertFalse(planted, "the planted shared object ran")

    def server(self, data):
        return Server(app=self.app, workers=1, cek_workers=1, data=data,
                      args=["--jit-threshold=0"])

    def serve_once(self, data):
        """Starts a server on data, checks the answer, returns its log."""
        with self.server(data) as s:
            r = s.get("/")
            self.assertEqual((r.status, r.body), (200, b"sum 5"))
            log = "\n".join(s.lines)
        self.assertFalse(os.path.exists(self.marker), "the planted shared object ran:\n" + log)
        return log


class DataDirectory(Base):
    def test_world_writable_data_dir_is_refused(self):
        data = os.path.join(self.tmp, "data")
        os.mkdir(data)
        os.chmod(data, 0o777)
        rc, err = refused_start(data, self.app)
        self.assertNotEqual(rc, 0)
        lines = [l for l in err.splitlines() if data in l]
        self.assertEqual(len(lines), 1, err)
        self.assertIn("--data", lines[0])
        self.assertIn("mode 0777", lines[0])

    @unittest.skipUnless(ROOT, "needs root to chown")
    def test_data_dir_of_another_user_is_refused(self):
        data = os.path.join(self.tmp, "data")
        os.mkdir(data, 0o700)
        os.chown(data, NOBODY, NOBODY)
        rc, err = refused_start(data, self.app)
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, r"--data: .*%s is owned by uid %d" % (re.escape(data), NOBODY))

    def test_writable_ancestor_without_sticky_bit_is_refused(self):
        for mode in (0o777, 0o775, 0o757):
            with self.subTest(mode=oct(mode)):
                open_dir = os.path.join(self.tmp, "open-%o" % mode)
                os.mkdir(open_dir)
                os.chmod(open_dir, mode)
                data = os.path.join(open_dir, "data")
                rc, err = refused_start(data, self.app)
                self.assertNotEqual(rc, 0)
                self.assertRegex(err, r"--data: .*%s is writable by .*mode 0%o, no sticky bit"
                                 % (re.escape(open_dir), mode))

    @unittest.skipUnless(ROOT, "needs root to chown")
    def test_ancestor_of_another_user_is_refused(self):
        theirs = os.path.join(self.tmp, "theirs")
        os.mkdir(theirs, 0o755)
        data = os.path.join(theirs, "data")
        os.mkdir(data, 0o700)
        os.chown(theirs, NOBODY, NOBODY)
        rc, err = refused_start(data, self.app)
        self.assertNotEqual(rc, 0)
        self.assertRegex(err, r"%s is owned by uid %d" % (re.escape(theirs), NOBODY))

    def test_sticky_world_writable_ancestor_is_accepted(self):
        sticky = os.path.join(self.tmp, "sticky")
        os.mkdir(sticky)
        os.chmod(sticky, 0o1777)
        data = os.path.join(sticky, "data")
        log = self.serve_once(data)
        self.assertEqual(os.stat(data).st_mode & 0o7777, 0o700)
        self.assertNotIn("not using the code cache", log)
        cache = os.path.join(data, "jit-cache")
        self.assertEqual(os.stat(cache).st_mode & 0o7777, 0o700)


class CodeCache(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # a first run fills a cache: its ABI hash, and the .idx names of
        # the app's functions (their code hashes)
        data = os.path.join(cls.top, "first")
        with Server(app=cls.app, workers=1, cek_workers=1, data=data,
                    args=["--jit-threshold=0"]) as s:
            r = s.get("/")
            assert (r.status, r.body) == (200, b"sum 5"), r
            cls.abi = s.wait_line(ABI_RE).group(1)
        cls.filled = os.path.join(data, "jit-cache", cls.abi)
        cls.idx = sorted(n for n in os.listdir(cls.filled) if n.endswith(".idx"))
        assert cls.idx, os.listdir(cls.filled)

    def cache_dir(self, copy_filled=False):
        """A data directory whose cache dir (returned) is empty or a copy
        of the filled one."""
        self.data = os.path.join(self.tmp, "data")
        cache = os.path.join(self.data, "jit-cache", self.abi)
        os.makedirs(os.path.dirname(cache), mode=0o700)
        os.chmod(self.data, 0o700)
        if copy_filled:
            shutil.copytree(self.filled, cache)
        else:
            os.mkdir(cache, 0o700)
        return cache

    def plant(self, cache, so_name="evil.so", record=None, idx=None):
        """Writes .idx entries (today's format) naming so_name with the
        recorded hash (default: the planted object's own)."""
        for name in idx or self.idx:
            with open(os.path.join(cache, name), "w") as f:
                f.write("%s %s\n" % (so_name, record or self.evil_sha))
        return os.path.join(cache, so_name)

    def assert_ignored(self, log, why):
        self.assertRegex(log, r"ignoring code cache entry .*\.idx: .*%s" % why)

    def test_replaced_shared_object_is_not_loaded(self):
        # the .idx files stay as the compile wrote them; each .so they name
        # gets the planted object's bytes (same owner, mode and name)
        cache = self.cache_dir(copy_filled=True)
        with open(self.evil, "rb") as f:
            evil = f.read()
        for name in os.listdir(cache):
            if name.endswith(".so"):
                with open(os.path.join(cache, name), "r+b") as f:
                    f.truncate(0)
                    f.write(evil)
        log = self.serve_once(self.data)
        with open(os.path.join(self.filled, self.idx[0])) as f:
            self.assertRegex(f.read(), r"^[^ /]+\.so [0-9a-f]{64}\n$")
        self.assert_ignored(log, r"the SHA-256 of \S+\.so is %s, not [0-9a-f]{64}" % self.evil_sha)

    def test_control_a_well_formed_entry_of_this_user_is_loaded(self):
        # what the tests below plant is loaded when nothing is wrong with
        # it (this user's files, right hash): only the check each of them
        # breaks keeps it out
        cache = self.cache_dir()
        shutil.copy(self.evil, self.plant(cache))
        os.chmod(os.path.join(cache, "evil.so"), 0o700)
        with self.server(self.data) as s:
            self.assertEqual(s.get("/").body, b"sum 5")
        self.assertTrue(os.path.exists(self.marker), "the control entry was not loaded")
        os.unlink(self.marker)

    @unittest.skipUnless(ROOT, "needs root to chown")
    def test_shared_object_of_another_user_is_not_loaded(self):
        cache = self.cache_dir()
        so = self.plant(cache)
        shutil.copy(self.evil, so)
        os.chmod(so, 0o755)
        os.chown(so, NOBODY, NOBODY)
        log = self.serve_once(self.data)
        self.assert_ignored(log, r"evil\.so is owned by uid %d" % NOBODY)

    def test_writable_shared_object_is_not_loaded(self):
        cache = self.cache_dir()
        so = self.plant(cache)
        shutil.copy(self.evil, so)
        os.chmod(so, 0o666)
        log = self.serve_once(self.data)
        self.assert_ignored(log, r"evil\.so is writable by group or others \(mode 0666\)")

    def test_symlinked_shared_object_is_not_loaded(self):
        cache = self.cache_dir()
        os.symlink(self.evil, self.plant(cache))
        log = self.serve_once(self.data)
        self.assert_ignored(log, r"evil\.so is a symbolic link")

    @unittest.skipUnless(ROOT, "needs root to chown")
    def test_index_of_another_user_or_symlinked_is_not_used(self):
        cache = self.cache_dir()
        so = self.plant(cache, idx=self.idx[:1])
        shutil.copy(self.evil, so)
        os.chmod(so, 0o700)
        os.chown(os.path.join(cache, self.idx[0]), NOBODY, NOBODY)
        elsewhere = os.path.join(self.tmp, "elsewhere.idx")
        with open(elsewhere, "w") as f:
            f.write("evil.so %s\n" % self.evil_sha)
        for name in self.idx[1:]:
            os.symlink(elsewhere, os.path.join(cache, name))
        log = self.serve_once(self.data)
        self.assert_ignored(log, r"the \.idx is owned by uid %d" % NOBODY)
        if self.idx[1:]:
            self.assert_ignored(log, r"it is a symbolic link")

    def test_old_entry_without_hash_is_a_miss(self):
        cache = self.cache_dir(copy_filled=True)
        for name in self.idx:
            path = os.path.join(cache, name)
            with open(path) as f:
                so = f.read().split()[0]
            with open(path, "w") as f:
                f.write(so)
        with self.server(self.data) as s:
            self.assertEqual(s.get("/").body, b"sum 5")
        # compiled again: the entries are rewritten in today's format
        with open(os.path.join(cache, self.idx[0])) as f:
            self.assertRegex(f.read(), r"^[^ /]+\.so [0-9a-f]{64}\n$")

    def plant_mixed(self, cache):
        # one entry in today's format with the right hash (only a directory
        # check keeps it out), the others in the old format, naming the
        # object without a hash (what a build without the hash loaded)
        so = self.plant(cache, idx=self.idx[:1])
        shutil.copy(self.evil, so)
        os.chmod(so, 0o700)
        for name in self.idx[1:]:
            with open(os.path.join(cache, name), "w") as f:
                f.write("evil.so")
        return set(os.listdir(cache))

    def assert_cache_unused(self, log, cache, before, where, why):
        self.assertRegex(log, r"not using the code cache %s: .*%s.*; compiling without it"
                         % (re.escape(where), why))
        self.assertEqual(set(os.listdir(cache)), before, "the worker wrote into the cache")

    @unittest.skipUnless(ROOT, "needs root to chown")
    def test_cache_dir_of_another_user_is_not_used(self):
        cache = self.cache_dir()
        before = self.plant_mixed(cache)
        top = os.path.join(self.data, "jit-cache")
        os.chown(top, NOBODY, NOBODY)
        log = self.serve_once(self.data)
        self.assert_cache_unused(log, cache, before, top, r"%s is owned by uid %d"
                                 % (re.escape(top), NOBODY))

    def test_writable_cache_dir_is_not_used(self):
        cache = self.cache_dir()
        before = self.plant_mixed(cache)
        top = os.path.join(self.data, "jit-cache")
        os.chmod(top, 0o777)
        log = self.serve_once(self.data)
        self.assert_cache_unused(log, cache, before, top, r"mode 0777")

    @unittest.skipUnless(ROOT, "needs root to chown")
    def test_abi_dir_of_another_user_is_not_used(self):
        cache = self.cache_dir()
        before = self.plant_mixed(cache)
        os.chown(cache, NOBODY, NOBODY)
        log = self.serve_once(self.data)
        self.assert_cache_unused(log, cache, before, cache, r"owned by uid %d" % NOBODY)

    def test_writable_abi_dir_is_not_used(self):
        cache = self.cache_dir()
        before = self.plant_mixed(cache)
        os.chmod(cache, 0o757)
        log = self.serve_once(self.data)
        self.assert_cache_unused(log, cache, before, cache, r"mode 0757")

    def test_eval_refuses_a_writable_cache(self):
        prog = os.path.join(self.tmp, "p.sx")
        with open(prog, "w") as f:
            f.write(APP_SX + '(print (add 2 3))\n')
        cache = os.path.join(self.tmp, "cache")
        os.mkdir(cache)
        os.chmod(cache, 0o777)
        rc, out, err = sxtest.run(["eval", "--tier=jit", "--jit-threshold=0",
                                   "--jit-cache=" + cache, prog], timeout=120)
        self.assertEqual((rc, out), (0, "5\n"), err)
        self.assertRegex(err, r"--jit-cache: not using %s: .*mode 0777.*; compiling without it"
                         % re.escape(cache))
        self.assertEqual(os.listdir(cache), [])


if __name__ == "__main__":
    sxtest.main()
