"""The request transaction as seen over HTTP: a handler that writes and
then raises leaves the store unchanged; data survives a restart."""

import os
import tempfile
import unittest

import sxtest


class Store(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-store-")
        self.addCleanup(self.tmp.cleanup)
        self.data = os.path.join(self.tmp.name, "data")

    def test_write_then_raise_leaves_the_store_unchanged(self):
        with sxtest.Server(app="basic", workers=2, data=self.data) as srv:
            self.assertEqual(srv.get("/set?v=one").status, 200)
            self.assertEqual(srv.get("/get").text, "value=one other=")
            r = srv.get("/set-then-raise")
            self.assertEqual(r.status, 500, r)
            self.assertTrue(r.text.startswith("user-error"), r)
            for _ in range(4):  # whichever worker answers
                self.assertEqual(srv.get("/get").text, "value=one other=")

    def test_counter_survives_a_restart(self):
        with sxtest.Server(app="basic", workers=2, data=self.data) as srv:
            got = [srv.get("/count").text for _ in range(5)]
            self.assertEqual(got, ["1", "2", "3", "4", "5"])
        with sxtest.Server(app="basic", workers=1, data=self.data) as srv:
            self.assertEqual(srv.get("/count").text, "6")


if __name__ == "__main__":
    sxtest.main()
