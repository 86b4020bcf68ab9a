"""The admin listener (--admin=HOST:PORT): /metrics in the Prometheus text
format, parsed strictly here (and again with prometheus_client, from the
python3-prometheus-client package, when it is installed), counters that
move by the right amounts, /status as JSON naming the live workers, and
nothing listening without --admin."""

import http.client
import json
import math
import os
import re
import signal
import sys
import threading
import unittest

import sxtest

ADMIN_RE = re.compile(r"sxpool: admin on http://([0-9.]+):(\d+)")
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


def parse_value(text):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise AssertionError("bad sample value %r" % text)
    return float(text)


def parse_labels(text, line):
    labels = {}
    pos = 0
    while pos < len(text):
        m = LABEL_RE.match(text, pos)
        if not m:
            raise AssertionError("bad labels in %r" % line)
        if m.group(1) in labels:
            raise AssertionError("label %s twice in %r" % (m.group(1), line))
        labels[m.group(1)] = m.group(2)
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise AssertionError("bad labels in %r" % line)
            pos += 1
    return labels


def family_of(name, types):
    """The family a sample name belongs to (histogram suffixes stripped)."""
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) == "histogram":
            return base
    return None


def parse_metrics(text):
    """A strict reader of the text exposition format 0.0.4, as sxpool writes
    it: {family: (type, [(name, labels, value)])}. Fails on anything loose."""
    if not text.endswith("\n"):
        raise AssertionError("the exposition does not end in a newline")
    types, helps, samples, order = {}, {}, {}, []
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) < 3 or parts[0] != "#" or parts[1] not in ("HELP", "TYPE"):
                raise AssertionError("bad comment line %r" % line)
            name = parts[2]
            if not NAME_RE.match(name):
                raise AssertionError("bad metric name %r" % name)
            if parts[1] == "HELP":
                if name in helps:
                    raise AssertionError("second HELP for %s" % name)
                helps[name] = parts[3] if len(parts) > 3 else ""
            else:
                if name in types:
                    raise AssertionError("second TYPE for %s" % name)
                if name in samples:
                    raise AssertionError("TYPE for %s after its samples" % name)
                if len(parts) != 4 or parts[3] not in TYPES:
                    raise AssertionError("bad TYPE line %r" % line)
                types[name] = parts[3]
                samples[name] = []
                order.append(name)
            continue
        if not line:
            raise AssertionError("empty line in the exposition")
        m = re.fullmatch(r"([^{ ]+)(?:\{([^}]*)\})? (\S+)", line)
        if not m:
            raise AssertionError("bad sample line %r" % line)
        name, labels, value = m.group(1), parse_labels(m.group(2) or "", line), m.group(3)
        if not NAME_RE.match(name):
            raise AssertionError("bad metric name %r" % name)
        fam = family_of(name, types)
        if fam is None:
            raise AssertionError("sample %r before a TYPE line announces its family" % line)
        if fam != order[-1]:
            raise AssertionError("sample %r is not with its family's other samples" % line)
        samples[fam].append((name, labels, parse_value(value)))
    out = {}
    for fam in order:
        kind = types[fam]
        if kind == "counter" and not fam.endswith("_total"):
            raise AssertionError("counter %s does not end in _total" % fam)
        if kind == "histogram":
            check_histogram(fam, samples[fam])
        keys = [(n, tuple(sorted(l.items()))) for n, l, _ in samples[fam]]
        if len(keys) != len(set(keys)):
            raise AssertionError("a sample of %s appears twice" % fam)
        out[fam] = (kind, samples[fam])
    return out


def check_histogram(fam, samples):
    buckets = [(l["le"], v) for n, l, v in samples if n == fam + "_bucket"]
    sums = [v for n, l, v in samples if n == fam + "_sum"]
    counts = [v for n, l, v in samples if n == fam + "_count"]
    if not buckets or buckets[-1][0] != "+Inf":
        raise AssertionError("%s: the last bucket is not +Inf" % fam)
    if len(sums) != 1 or len(counts) != 1:
        raise AssertionError("%s: one _sum and one _count expected" % fam)
    bounds = [parse_value(le) for le, _ in buckets]
    if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
        raise AssertionError("%s: bucket bounds not increasing: %r" % (fam, bounds))
    values = [v for _, v in buckets]
    if values != sorted(values):
        raise AssertionError("%s: buckets not cumulative: %r" % (fam, values))
    if values[-1] != counts[0]:
        raise AssertionError("%s: +Inf bucket %r != _count %r" % (fam, values[-1], counts[0]))


def value(metrics, fam, name=None, **labels):
    for n, l, v in metrics[fam][1]:
        if n == (name or fam) and l == labels:
            return v
    return 0.0  # a status never answered has no sample


def admin_get(srv, port, path, method="GET"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def listening_ports(pid):
    """TCP ports the process pid listens on (from /proc)."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        m = re.fullmatch(r"socket:\[(\d+)\]", link)
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            for row in f.readlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


class Admin(unittest.TestCase):
    def server(self, args=(), **kw):
        return sxtest.Server(app="basic", args=["--admin=127.0.0.1:0"] + list(args), **kw)

    def admin_port(self, srv):
        return int(srv.wait_line(ADMIN_RE, timeout=5).group(2))

    def scrape(self, srv, port):
        status, headers, body = admin_get(srv, port, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"].split(";")[:2], ["text/plain", " version=0.0.4"])
        self.assertEqual(headers.get("connection"), "close")
        text = body.decode("utf-8")
        return text, parse_metrics(text)

    def test_metrics_parse_and_counters_move(self):
        with self.server(workers=2) as srv:
            port = self.admin_port(srv)
            _, m0 = self.scrape(srv, port)
            for fam in m0:
                self.assertTrue(fam.startswith("sxpool_"), fam)
            for fam in ("sxpool_requests_total", "sxpool_request_duration_seconds",
                        "sxpool_queue_depth", "sxpool_workers", "sxpool_worker_starts_total",
                        "sxpool_worker_deaths_total", "sxpool_redispatches_total",
                        "sxpool_blacklist_entries", "sxpool_requests_dropped_total"):
                self.assertIn(fam, m0)
            self.assertEqual(value(m0, "sxpool_workers", mode="jit", state="idle"), 2)
            self.assertEqual(value(m0, "sxpool_workers", mode="cek", state="idle"), 1)
            self.assertEqual(value(m0, "sxpool_worker_starts_total", mode="jit"), 2)
            self.assertEqual(value(m0, "sxpool_worker_starts_total", mode="cek"), 1)

            for _ in range(5):
                self.assertEqual(srv.get("/").status, 200)
            self.assertEqual(srv.get("/raise").status, 500)
            self.assertEqual(srv.get("/no/such/route").status, 404)
            _, m1 = self.scrape(srv, port)
            for status, n in (("200", 5), ("500", 1), ("404", 1)):
                self.assertEqual(value(m1, "sxpool_requests_total", status=status) -
                                 value(m0, "sxpool_requests_total", status=status), n, status)
            hist = "sxpool_request_duration_seconds"
            count0 = value(m0, hist, hist + "_count")
            self.assertEqual(value(m1, hist, hist + "_count") - count0, 7)
            self.assertGreater(value(m1, hist, hist + "_sum"), value(m0, hist, hist + "_sum"))
            self.assertEqual(value(m1, hist, hist + "_bucket", le="+Inf"), count0 + 7)

            victim = sorted(srv.worker_pids("jit"))[0]
            mark = srv.log_size()
            os.kill(victim, signal.SIGKILL)
            srv.wait_line(r"worker \d+ \(pid %d\) killed by signal 9" % victim, start=mark)
            srv.wait_ready(1, start=mark)
            _, m2 = self.scrape(srv, port)
            self.assertEqual(value(m2, "sxpool_worker_deaths_total", cause="sigkill") -
                             value(m1, "sxpool_worker_deaths_total", cause="sigkill"), 1)
            for cause in ("native_crash", "compiler_crash", "killed_by_sxpool", "signal",
                          "exit_error"):
                self.assertEqual(value(m2, "sxpool_worker_deaths_total", cause=cause), 0, cause)
            self.assertEqual(value(m2, "sxpool_worker_starts_total", mode="jit"), 3)
            self.assertEqual(value(m2, "sxpool_worker_starts_total", mode="cek"), 1)
            self.assertEqual(value(m2, "sxpool_queue_depth", queue="first"), 0)

    def test_jit_counters_come_from_the_workers_and_survive_their_deaths(self):
        # One JIT worker compiling everything before its first call: its
        # totals reach /metrics through its scoreboard after each request,
        # and stay in them (never go down) once it is killed.
        with self.server(args=["--jit-threshold=0"], workers=1) as srv:
            port = self.admin_port(srv)
            for _ in range(3):
                self.assertEqual(srv.get("/work?n=20000").status, 200)
            _, m1 = self.scrape(srv, port)
            compiled = value(m1, "sxpool_jit_compiled_total")
            native = value(m1, "sxpool_calls_total", tier="native")
            self.assertGreater(compiled, 0)
            self.assertGreater(native, 0)  # count-to's self tail calls are jumps, not calls
            self.assertGreater(value(m1, "sxpool_jit_compile_seconds_total"), 0)
            self.assertEqual(value(m1, "sxpool_jit_compile_failures_total"), 0)
            (jit,) = srv.worker_pids("jit")
            mark = srv.log_size()
            os.kill(jit, signal.SIGKILL)
            srv.wait_line(r"worker \d+ \(pid %d\) killed by signal 9" % jit, start=mark)
            srv.wait_ready(1, start=mark)
            _, m2 = self.scrape(srv, port)
            self.assertEqual(value(m2, "sxpool_jit_compiled_total"), compiled)
            self.assertEqual(value(m2, "sxpool_calls_total", tier="native"), native)
            self.assertEqual(srv.get("/work?n=20000").status, 200)
            _, m3 = self.scrape(srv, port)
            # the new worker loads what the old one compiled from the code cache
            self.assertEqual(value(m3, "sxpool_jit_compiled_total"), compiled)
            self.assertGreater(value(m3, "sxpool_jit_cache_loads_total"),
                               value(m2, "sxpool_jit_cache_loads_total"))
            self.assertGreater(value(m3, "sxpool_calls_total", tier="native"), native)

    def test_redispatch_and_deadline_kill_are_counted(self):
        # /loop never returns: its JIT worker is killed from outside
        # mid-request (a re-dispatch), then the CEK worker runs past the
        # deadline and sxpool kills it (504).
        with self.server(workers=1, cek_workers=1, args=["--timeout=2"]) as srv:
            port = self.admin_port(srv)
            (worker,) = srv.worker_pids("jit")
            _, m0 = self.scrape(srv, port)
            result = {}

            def call():
                try:
                    result["r"] = srv.get("/loop", timeout=30)
                except Exception as e:  # noqa: BLE001 (reported below)
                    result["e"] = e
            t = threading.Thread(target=call, daemon=True)
            base = sxtest.cpu_ticks(worker)
            mark = srv.log_size()
            t.start()
            sxtest.wait_until(lambda: sxtest.cpu_ticks(worker) > base + 10, 5,
                              what="the worker to run /loop")
            os.kill(worker, signal.SIGKILL)
            srv.wait_line(r"re-dispatched request \d+ to a CEK worker", timeout=5, start=mark)
            _, m1 = self.scrape(srv, port)
            self.assertEqual(value(m1, "sxpool_redispatches_total", reason="worker_death"), 1)
            self.assertEqual(value(m1, "sxpool_worker_deaths_total", cause="sigkill"), 1)
            self.assertEqual(value(m1, "sxpool_workers", mode="cek", state="busy"), 1)
            t.join(timeout=20)
            self.assertNotIn("e", result, result.get("e"))
            self.assertEqual(result["r"].status, 504)
            srv.wait_ready(2, timeout=10, start=mark)
            _, m2 = self.scrape(srv, port)
            self.assertEqual(value(m2, "sxpool_requests_total", status="504") -
                             value(m0, "sxpool_requests_total", status="504"), 1)
            self.assertEqual(value(m2, "sxpool_worker_deaths_total", cause="killed_by_sxpool"), 1)
            for reason in ("jit_fault", "native_crash", "compiler_crash"):
                self.assertEqual(value(m2, "sxpool_redispatches_total", reason=reason), 0)
            self.assertEqual(value(m2, "sxpool_worker_starts_total", mode="cek"), 2)

    def test_metrics_with_prometheus_client(self):
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            # deploy/install-deps.sh installs it for Debian's python3, the
            # one tests/run-all.sh runs: a missing tool fails, never skips
            self.fail("python3-prometheus-client is not installed for %s "
                      "(deploy/install-deps.sh)" % sys.executable)
        with self.server(workers=1) as srv:
            port = self.admin_port(srv)
            self.assertEqual(srv.get("/").status, 200)
            text, mine = self.scrape(srv, port)
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            # prometheus_client names a counter family without its _total
            self.assertEqual(fams["sxpool_requests"].type, "counter")
            ok = [s.value for s in fams["sxpool_requests"].samples if s.labels == {"status": "200"}]
            self.assertEqual(ok, [value(mine, "sxpool_requests_total", status="200")])
            self.assertGreaterEqual(ok[0], 1)  # / (and the start-up's /healthz)
            hist = fams["sxpool_request_duration_seconds"]
            self.assertEqual(hist.type, "histogram")
            inf = [s.value for s in hist.samples if s.labels.get("le") == "+Inf"]
            count = [s.value for s in hist.samples if s.name.endswith("_count")]
            self.assertEqual(inf, count)
            self.assertEqual(sorted((f.name, f.type) for f in fams.values()),
                             sorted((k[:-6] if t == "counter" else k, t)
                                    for k, (t, _) in mine.items()))
            self.assertTrue(all(not math.isnan(s.value) for f in fams.values() for s in f.samples))

    def test_status_json_lists_the_workers(self):
        with self.server(workers=2) as srv:
            port = self.admin_port(srv)
            self.assertEqual(srv.get("/").status, 200)
            status, headers, body = admin_get(srv, port, "/status")
            self.assertEqual(status, 200)
            self.assertEqual(headers["content-type"], "application/json")
            st = json.loads(body)
            self.assertIsInstance(st["version"], str)
            self.assertGreaterEqual(st["uptime_seconds"], 0)
            self.assertEqual(st["queue"], {"first": 0, "retry": 0})
            workers = st["workers"]
            self.assertEqual(sorted(w["pid"] for w in workers if w["mode"] == "jit"),
                             sorted(srv.worker_pids("jit")))
            self.assertEqual(sorted(w["pid"] for w in workers if w["mode"] == "cek"),
                             sorted(srv.worker_pids("cek")))
            self.assertEqual(sorted(w["slot"] for w in workers), [0, 1, 2])
            for w in workers:
                self.assertEqual(w["state"], "idle", w)
                self.assertGreater(w["rss_bytes"], 1 << 20, w)
            self.assertEqual(sum(w["requests_served"] for w in workers), 1)

            status, headers, body = admin_get(srv, port, "/status.html")
            self.assertEqual(status, 200)
            self.assertTrue(headers["content-type"].startswith("text/html"))
            for pid in srv.worker_pids():
                self.assertIn(b"<td>%d</td>" % pid, body)

    def test_only_get_and_known_paths_bounded_heads(self):
        with self.server(workers=1) as srv:
            port = self.admin_port(srv)
            self.assertEqual(admin_get(srv, port, "/nope")[0], 404)
            self.assertEqual(admin_get(srv, port, "/")[0], 404)
            status, headers, _ = admin_get(srv, port, "/metrics", method="POST")
            self.assertEqual((status, headers.get("allow")), (405, "GET"))
            big = b"GET /metrics HTTP/1.1\r\nx: " + b"a" * 10000 + b"\r\n\r\n"
            out = sxtest.raw_exchange("127.0.0.1", port, big)
            self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:100])
            out = sxtest.raw_exchange("127.0.0.1", port, b"garbage\r\n\r\n")
            self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out[:100])
            # the main port does not serve the admin paths
            self.assertEqual(srv.get("/metrics").status, 404)
            self.assertEqual(admin_get(srv, port, "/metrics")[0], 200)

    def test_no_admin_listener_without_the_option(self):
        with sxtest.Server(app="basic", workers=1) as srv:
            self.assertEqual(listening_ports(srv.proc.pid), {srv.port})
            self.assertFalse(any(ADMIN_RE.search(l) for l in srv.lines))
        with self.server(workers=1) as srv:
            port = self.admin_port(srv)
            self.assertEqual(listening_ports(srv.proc.pid), {srv.port, port})

    def test_bad_admin_value_exits_2(self):
        for bad in ("--admin=nocolon", "--admin=127.0.0.1:70000", "--admin=:80",
                    "--admin=127.0.0.1:x", "--admin"):
            rc, _, err = sxtest.run([bad])
            self.assertEqual(rc, 2, (bad, err))
            self.assertIn("--admin", err)


if __name__ == "__main__":
    sxtest.main()
