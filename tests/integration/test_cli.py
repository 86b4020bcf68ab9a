"""sxpool's command line: bad flags and values exit 2 with one line on
stderr; --help and --version; the blacklist subcommand."""

import os
import re
import tempfile
import unittest

import sxtest


class CommandLine(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-cli-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")
        self.app = sxtest.app_dir("basic")

    def assert_usage_error(self, args, message=None):
        # Valid settings first, the bad one last, so that a flag that is
        # wrongly accepted would start a server (and fail by timing out).
        base = ["--listen=127.0.0.1:0", "--data=" + self.data, "--app=" + self.app]
        rc, out, err = sxtest.run(base + args, timeout=10)
        self.assertEqual(rc, 2, "args %r: exit %d, stderr %r" % (args, rc, err))
        self.assertEqual(out, "", "args %r printed on stdout" % (args,))
        lines = err.splitlines()
        self.assertEqual(len(lines), 1, "args %r: expected one line on stderr, got %r" % (args, err))
        self.assertTrue(lines[0].startswith("sxpool: "), lines[0])
        if message is not None:
            self.assertEqual(lines[0], message)

    def test_workers_not_a_number(self):
        self.assert_usage_error(["--workers=x"],
                                "sxpool: --workers: expected a number from 0 to 256, got 'x'")

    def test_bad_values(self):
        for args in (["--workers=257"], ["--workers=-1"], ["--workers="],
                     ["--workers"], ["--listen=nope"], ["--listen=127.0.0.1:70000"],
                     ["--listen=127.0.0.1:"], ["--listen=:80"], ["--timeout=0"],
                     ["--timeout=1.5"], ["--max-body=abc"], ["--max-body=-1"],
                     ["--drain-delay=x"], ["--drain-delay=3601"], ["--graceful-timeout=-1"],
                     ["--graceful-timeout"]):
            with self.subTest(args=args):
                self.assert_usage_error(args)

    def test_unknown_flag_and_argument(self):
        self.assert_usage_error(["--no-such-flag"])
        self.assert_usage_error(["stray-argument"])

    def test_app_without_main_sx(self):
        self.assert_usage_error(["--app=" + self.tmp.name])
        self.assert_usage_error(["--app=" + os.path.join(self.tmp.name, "missing")])

    def test_help_and_version(self):
        rc, out, err = sxtest.run(["--help"])
        self.assertEqual(rc, 0, err)
        self.assertIn("usage: sxpool", out)
        self.assertIn("--workers=N", out)
        rc, out, err = sxtest.run(["--version"])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"^sxpool \d+\.\d+\.\d+\n$")

    def test_blacklist_on_a_fresh_store(self):
        os.makedirs(self.data)
        rc, out, err = sxtest.run(["blacklist", "list", "--data=" + self.data])
        self.assertEqual((rc, out), (0, ""), err)
        rc, out, err = sxtest.run(["blacklist", "clear", "--data=" + self.data])
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"removed 0 blacklist entries")
        rc, out, err = sxtest.run(["blacklist", "list", "--data=" + os.path.join(self.tmp.name, "nope")])
        self.assertEqual(rc, 1, err)
        rc, out, err = sxtest.run(["blacklist", "frobnicate", "--data=" + self.data])
        self.assertEqual(rc, 2, err)


if __name__ == "__main__":
    sxtest.main()
