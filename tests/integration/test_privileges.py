"""Who the server runs as, and who may change its state.

- --user=NAME as root: the listeners are bound, then the supervisor and
  every worker run as NAME (real, effective and saved ids, groups), the
  data and run directories it creates belong to NAME, and requests are
  served. An unknown user, a root user, or --user when not root: a clear
  error, exit 2, nothing started.
- The admin port's state-changing requests (POST /workers/recycle,
  POST /blacklist/clear, DELETE /blacklist/FUNCTION): 403 without
  --admin-token-file, 401 without the bearer token or with a wrong one,
  done with the right one; a token file group or others can read, or too
  short a token, stops the server from starting.
"""

import http.client
import os
import pwd
import re
import subprocess
import tempfile
import time
import unittest

import sxtest

ADMIN_RE = re.compile(r"sxpool: admin on http://([0-9.]+):(\d+)")
TOKEN = "s3cret-token-0123456789abcdef"


def admin_request(srv, method, path, token=None, raw_auth=None):
    m = srv.wait_line(ADMIN_RE, timeout=10)
    conn = http.client.HTTPConnection(m.group(1), int(m.group(2)), timeout=30)
    headers = {}
    if token is not None:
        headers["Authorization"] = "Bearer " + token
    if raw_auth is not None:
        headers["Authorization"] = raw_auth
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        return r.status, r.read().decode()
    finally:
        conn.close()


def ids(pid):
    with open("/proc/%d/status" % pid) as f:
        st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return ([int(x) for x in st["Uid"].split()], [int(x) for x in st["Gid"].split()],
            st["Groups"].split())


class User(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-user-")
        self.addCleanup(self.tmp.cleanup)

    def test_drops_to_the_user_after_binding(self):
        if os.geteuid() != 0:
            self.fail("this test needs root (it checks the drop to another user)")
        nobody = pwd.getpwnam("nobody")
        parent = os.path.join(self.tmp.name, "home")
        os.mkdir(parent, 0o700)
        os.chown(parent, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.tmp.name, 0o755)
        data = os.path.join(parent, "data")
        with sxtest.Server(app="basic", workers=1, cek_workers=1, data=data,
                           args=["--user=nobody"]) as srv:
            srv.wait_line(r"sxpool: running as user nobody \(uid %d, gid %d\)"
                          % (nobody.pw_uid, nobody.pw_gid), timeout=10)
            self.assertEqual(srv.get("/").status, 200)
            self.assertEqual(srv.get("/count").status, 200)
            pids = [srv.proc.pid] + srv.worker_pids()
            self.assertEqual(len(pids), 3)
            for pid in pids:
                uids, gids, groups = ids(pid)
                self.assertEqual(uids, [nobody.pw_uid] * 4, pid)
                self.assertEqual(gids, [nobody.pw_gid] * 4, pid)
                self.assertNotIn("0", groups, pid)
            st = os.stat(data)
            self.assertEqual((st.st_uid, st.st_mode & 0o777), (nobody.pw_uid, 0o700))
            rundirs = [d for d in os.listdir(tempfile.gettempdir()) if d.startswith("sxpool.")
                       and os.stat(os.path.join(tempfile.gettempdir(), d)).st_uid
                       == nobody.pw_uid]
            self.assertTrue(rundirs, "no run directory of nobody")

    def test_unknown_user(self):
        if os.geteuid() != 0:
            self.fail("this test needs root")
        rc, _, err = sxtest.run(["--user=no-such-user-here", "--listen=127.0.0.1:0",
                                 "--data=" + os.path.join(self.tmp.name, "d")])
        self.assertEqual(rc, 2, err)
        self.assertIn("--user: no user named 'no-such-user-here' on this system", err)
        self.assertNotIn("listening", err)
        self.assertFalse(os.path.exists(os.path.join(self.tmp.name, "d")))

    def test_root_user(self):
        rc, _, err = sxtest.run(["--user=root", "--listen=127.0.0.1:0",
                                 "--data=" + os.path.join(self.tmp.name, "d")])
        self.assertEqual(rc, 2, err)
        if os.geteuid() == 0:
            self.assertIn("--user=root: that user is root", err)

    def test_user_when_not_root(self):
        nobody = pwd.getpwnam("nobody")
        kw = {}
        if os.geteuid() == 0:
            kw = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
        p = subprocess.run([sxtest.sxpool(), "--user=daemon", "--listen=127.0.0.1:0",
                            "--data=/nonexistent/d"], capture_output=True, text=True,
                           timeout=30, **kw)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertRegex(p.stderr, r"--user=daemon: only root can change user, and sxpool "
                                   r"runs as uid \d+")

    def test_root_without_user_warns(self):
        if os.geteuid() != 0:
            self.fail("this test needs root")
        with sxtest.Server(app="basic", workers=0, cek_workers=1) as srv:
            srv.wait_line(r"WARNING: running as root without --user", timeout=5)
        with sxtest.Server(app="basic", workers=0, cek_workers=1,
                           args=["--allow-root"]) as srv:
            self.assertEqual(srv.get("/").status, 200)
            self.assertFalse([l for l in srv.lines if "WARNING" in l], srv.lines)


class AdminToken(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="sxpool-token-")
        self.addCleanup(self.tmp.cleanup)
        self.token_file = os.path.join(self.tmp.name, "token")

    def write_token(self, text, mode=0o600):
        with open(self.token_file, "w") as f:
            f.write(text)
        os.chmod(self.token_file, mode)

    def server(self, token=True, workers=1, env=None, app="basic", extra=()):
        args = ["--admin=127.0.0.1:0"] + list(extra)
        if token:
            args.append("--admin-token-file=" + self.token_file)
        return sxtest.Server(app=app, workers=workers, cek_workers=1, args=args, env=env)

    def test_without_a_token_file_changes_are_forbidden(self):
        with self.server(token=False) as srv:
            for method, path in (("POST", "/workers/recycle"), ("POST", "/blacklist/clear"),
                                 ("DELETE", "/blacklist/f")):
                status, text = admin_request(srv, method, path, token=TOKEN)
                self.assertEqual(status, 403, (method, path, text))
                self.assertIn("--admin-token-file", text)
            self.assertEqual(admin_request(srv, "GET", "/metrics")[0], 200)

    def test_token_file_readable_by_others_is_refused(self):
        for mode in (0o644, 0o640, 0o604, 0o660):
            self.write_token(TOKEN + "\n", mode)
            rc, _, err = sxtest.run(["--admin=127.0.0.1:0", "--listen=127.0.0.1:0",
                                     "--admin-token-file=" + self.token_file,
                                     "--data=" + os.path.join(self.tmp.name, "d")])
            self.assertEqual(rc, 2, err)
            self.assertIn("refusing '%s': its mode 0%o lets group or others at it"
                          % (self.token_file, mode), err)

    def test_short_or_missing_token_is_refused(self):
        self.write_token("short\n")
        rc, _, err = sxtest.run(["--admin-token-file=" + self.token_file])
        self.assertEqual(rc, 2, err)
        self.assertIn("at least 16 are needed", err)
        rc, _, err = sxtest.run(["--admin-token-file=" + self.token_file + ".missing"])
        self.assertEqual(rc, 2, err)
        self.assertIn("cannot open", err)

    def test_bearer_token_is_checked(self):
        self.write_token(TOKEN + "\n")
        with self.server() as srv:
            for auth in (None, "Bearer", "Bearer ", "Basic " + TOKEN, "Bearer " + TOKEN[:-1],
                         "Bearer " + TOKEN + "x", "Bearer " + TOKEN.upper(),
                         "Bearer " + "x" * len(TOKEN)):
                status, text = admin_request(srv, "POST", "/workers/recycle", raw_auth=auth)
                self.assertEqual(status, 401, (auth, text))
            self.assertEqual(admin_request(srv, "GET", "/workers/recycle", token=TOKEN)[0], 405)
            self.assertEqual(admin_request(srv, "POST", "/metrics", token=TOKEN)[0], 405)
            self.assertEqual(len(srv.worker_pids()), 2, "a refused request changed something")

    def test_recycle_replaces_every_worker(self):
        self.write_token(TOKEN + "\n")
        with self.server() as srv:
            before = set(srv.worker_pids())
            mark = srv.log_size()
            status, text = admin_request(srv, "POST", "/workers/recycle",
                                         raw_auth="bearer " + TOKEN)
            self.assertEqual((status, text), (200, "recycling 2 workers\n"))
            for pid in before:
                srv.wait_line(r"worker \d+ \(pid %d\) recycled after \d+ requests: POST "
                              r"/workers/recycle" % pid, timeout=30, start=mark)
            sxtest.wait_until(lambda: len(srv.worker_pids()) == 2
                              and not set(srv.worker_pids()) & before, 20,
                              what="two new workers")
            self.assertEqual(srv.get("/").status, 200)

    def test_blacklist_entries_are_lifted(self):
        self.write_token(TOKEN + "\n")
        env = {"SXPOOL_INJECT": "wrong-prim-arg:edges-block"}
        with self.server(app="faults", env=env, extra=["--jit-threshold=0"]) as srv:
            self.assertEqual(srv.get("/edges", timeout=30).status, 200)
            self.assertIn("edges-block", blacklist(srv.data))
            status, text = admin_request(srv, "DELETE", "/blacklist/edges%2Dblock", token=TOKEN)
            self.assertEqual(status, 200, text)
            self.assertTrue(text.startswith("lifted 1 blacklist entry;"), text)
            self.assertNotIn("edges-block", blacklist(srv.data))
            status, text = admin_request(srv, "DELETE", "/blacklist/edges*", token=TOKEN)
            self.assertEqual((status, text.split(";")[0]), (200, "lifted 0 blacklist entries"))
            status, text = admin_request(srv, "POST", "/blacklist/clear", token=TOKEN)
            self.assertEqual((status, text.split(";")[0]), (200, "lifted 0 blacklist entries"))
            status, text = admin_request(srv, "DELETE", "/blacklist/%zz", token=TOKEN)
            self.assertEqual(status, 400, text)


def blacklist(data):
    rc, out, err = sxtest.run(["blacklist", "list", "--data=" + data])
    if rc != 0:
        raise AssertionError("blacklist list failed (%d): %s" % (rc, err))
    return {line.split(" ")[0] for line in out.splitlines()}


if __name__ == "__main__":
    sxtest.main()
