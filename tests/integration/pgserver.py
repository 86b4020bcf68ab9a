"""pgserver.py: a real PostgreSQL 15 server for tests, in a temporary
directory, on its own ephemeral port (127.0.0.1 only) and socket directory.

As a module: `with PgServer() as pg:` gives pg.url (the "postgres" database
of superuser "postgres", trust authentication on 127.0.0.1), pg.admin_url,
pg.create_db(name) and pg.psql(sql). As a command:

    python3 pgserver.py [--env VAR] -- COMMAND ARGS...

starts a server, runs COMMAND with VAR (default SXPOOL_TEST_PG_URL) set to
the server's URL without a database (postgresql://postgres@127.0.0.1:PORT),
stops the server and exits with COMMAND's status. A server that cannot
start is a failure (status 1), never a skip.

initdb and postgres refuse to run as root: as root they run as "nobody"
(setpriv), with the temporary directory given to that user. postgres is
started in a session of its own and stopped by its pid (SIGINT: fast
shutdown), then SIGKILLed by that pid if it is still there after 15 s.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PGBIN = "/usr/lib/postgresql/15/bin"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        self.dir = None
        self.proc = None
        self.port = None
        self.log = None

    # -- lifecycle ---------------------------------------------------------

    def _as_user(self):
        """The command prefix and uid/gid to run the server's programs as."""
        if os.geteuid() != 0:
            return [], None
        pw = pwd.getpwnam("nobody")
        return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                "--clear-groups", "--"], pw

    def _cleanup_on_term(self):
        """A test process ended by SIGTERM (a runner cancelling a whole
        run) still stops its server: postgres runs in a session of its own
        and would outlive it. Only the main thread may set a handler."""
        def on_term(signum, frame):
            self.cleanup()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        try:
            signal.signal(signal.SIGTERM, on_term)
        except ValueError:
            pass

    def start(self):
        self._cleanup_on_term()
        for tool in ("initdb", "postgres", "pg_isready", "psql"):
            if not os.access(os.path.join(PGBIN, tool), os.X_OK):
                raise RuntimeError(f"{PGBIN}/{tool} is missing (install postgresql-15)")
        self.dir = tempfile.mkdtemp(prefix="sxpool-pg-")
        prefix, pw = self._as_user()
        if pw is not None:
            os.chmod(self.dir, 0o700)
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        data = os.path.join(self.dir, "data")
        env = dict(os.environ, LC_ALL="C", HOME=self.dir)
        r = subprocess.run(prefix + [f"{PGBIN}/initdb", "-D", data, "-U", "postgres",
                                     "--auth=trust", "--no-sync", "-E", "UTF8",
                                     "--locale=C"],
                           cwd=self.dir, env=env, capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.strip()[-2000:]}")
        self.log = os.path.join(self.dir, "postgres.log")
        last = ""
        for _ in range(3):  # the port is free when chosen; another may take it
            self.port = _free_port()
            self._argv = prefix + [f"{PGBIN}/postgres", "-D", data, "-k", self.dir,
                                   "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                                   "-c", "fsync=off", "-c", "synchronous_commit=off",
                                   "-c", "full_page_writes=off", "-c", "max_connections=200",
                                   "-c", "shared_buffers=32MB"]
            self._env = env
            logf = open(self.log, "ab")
            self.proc = subprocess.Popen(self._argv, cwd=self.dir, env=env, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True)
            logf.close()
            if self._wait_ready(30):
                return self
            last = self._log_tail()
            self.stop()
        raise RuntimeError(f"postgres did not start: {last}")

    def restart(self):
        """Stops the server (fast shutdown: every session is ended) and
        starts it again on the same port and data."""
        self.stop()
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen(self._argv, cwd=self.dir, env=self._env, stdout=logf,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        if not self._wait_ready(30):
            raise RuntimeError(f"postgres did not start again: {self._log_tail()}")

    def _wait_ready(self, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            r = subprocess.run([f"{PGBIN}/pg_isready", "-q", "-h", "127.0.0.1",
                                "-p", str(self.port), "-t", "2"], timeout=10)
            if r.returncode == 0:
                return True
            time.sleep(0.1)
        return False

    def _log_tail(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self.proc = None

    def cleanup(self):
        self.stop()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()

    # -- helpers -----------------------------------------------------------

    @property
    def url(self):
        return f"postgresql://postgres@127.0.0.1:{self.port}"

    def db_url(self, name):
        return f"{self.url}/{name}"

    def psql(self, sql, db="postgres"):
        r = subprocess.run([f"{PGBIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", self.db_url(db), "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {r.stderr.strip()}")
        return r.stdout.strip()

    def create_db(self, name):
        self.psql(f'CREATE DATABASE "{name}"')
        return self.db_url(name)


def main(argv):
    var = "SXPOOL_TEST_PG_URL"
    if argv[:1] == ["--env"]:
        var, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print("usage: pgserver.py [--env VAR] -- COMMAND ARGS...", file=sys.stderr)
        return 2
    pg = PgServer()
    try:
        pg.start()
    except Exception as e:  # noqa: BLE001 - any failure to start fails the test
        print(f"pgserver: unable to start PostgreSQL: {e}", file=sys.stderr)
        pg.cleanup()
        return 1
    try:
        env = dict(os.environ, **{var: pg.url})
        return subprocess.run(argv, env=env).returncode
    finally:
        pg.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
