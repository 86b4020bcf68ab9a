"""Run directories: a supervisor killed with SIGKILL leaves its run
directory (TMPDIR/sxpool.*: worker sockets, scoreboards, compile scratch);
the next supervisor to start removes it. Only directories of this user whose
pid file names a process that is gone: a live supervisor's, one without a
pid file, one of another user and a symbolic link are left alone."""

import os
import signal
import tempfile
import time
import unittest

import sxtest


class RunDirs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-rundirs-")
        self.addCleanup(self.tmp.cleanup)
        self.env = {"TMPDIR": self.tmp.name}

    def rundirs(self):
        return sorted(n for n in os.listdir(self.tmp.name) if n.startswith("sxpool."))

    def test_killed_supervisor_leftovers_are_removed_at_the_next_start(self):
        srv = sxtest.Server(app="basic", workers=1, env=self.env)
        srv.start()
        try:
            left = self.rundirs()
            self.assertEqual(len(left), 1, left)
            with open(os.path.join(self.tmp.name, left[0], "supervisor.pid")) as f:
                self.assertEqual(int(f.read()), srv.proc.pid)
            workers = srv.worker_pids()
            srv.proc.send_signal(signal.SIGKILL)
            srv.proc.wait(timeout=10)
            # its workers notice and exit; the directory stays
            sxtest.wait_until(lambda: not any(sxtest.pid_alive(p) for p in workers), 10,
                              what="the workers to exit")
        finally:
            srv.stop()
        self.assertEqual(self.rundirs(), left, "SIGKILL left the run directory behind")

        # Directories that must survive the next start.
        keep_live = os.path.join(self.tmp.name, "sxpool.live")
        os.mkdir(keep_live, 0o700)
        with open(os.path.join(keep_live, "supervisor.pid"), "w") as f:
            f.write("%d\n" % os.getpid())  # a live process
        keep_nopid = os.path.join(self.tmp.name, "sxpool.nopid")
        os.mkdir(keep_nopid, 0o700)
        target = tempfile.mkdtemp(prefix="sxpool-rundirs-target-")
        self.addCleanup(lambda: os.path.isdir(target) and os.rmdir(target))
        with open(os.path.join(target, "supervisor.pid"), "w") as f:
            f.write("999999999\n")
        keep_link = os.path.join(self.tmp.name, "sxpool.link")
        os.symlink(target, keep_link)
        keep_other = None
        if os.geteuid() == 0:
            keep_other = os.path.join(self.tmp.name, "sxpool.other")
            os.mkdir(keep_other, 0o700)
            with open(os.path.join(keep_other, "supervisor.pid"), "w") as f:
                f.write("999999999\n")
            os.chown(keep_other, 65534, 65534)

        with sxtest.Server(app="basic", workers=1, env=self.env) as srv2:
            srv2.wait_line(r"removed 1 run directory left by supervisors that were killed",
                           timeout=5)
            now = self.rundirs()
            self.assertNotIn(left[0], now)
            for d in (keep_live, keep_nopid, keep_link, keep_other):
                if d:
                    self.assertIn(os.path.basename(d), now)
            self.assertTrue(os.path.exists(os.path.join(target, "supervisor.pid")),
                            "a link was followed")
            self.assertEqual(srv2.get("/").status, 200)
        # a clean stop removes its own
        time.sleep(0.2)
        self.assertEqual(len(self.rundirs()), 4 if keep_other else 3, self.rundirs())
        os.unlink(os.path.join(target, "supervisor.pid"))


if __name__ == "__main__":
    sxtest.main()
