/* sup_main.c: the server's command line, start-up, signals, the periodic
 * housekeeping timer and the shutdown sequence.
 *
 * Runs on the supervisor's loop thread (and before the loop exists, for
 * argument parsing); the response-record prune runs on a thread-pool
 * thread (sup_store.c). Owns the sup_server: its loop, the timer, the
 * signal handles, the store handle and the private run directory.
 *
 * Start-up order matters: the store and the run directory exist before any
 * worker is spawned; nothing of nng or LMDB is ever created in a forked
 * child (uv_spawn execs at once and this process never forks otherwise).
 *
 * Shutdown is a small sequence driven by the housekeeping timer:
 *   STOP_NONE -> STOP_ANNOUNCE (signal, with --drain-delay: /healthz says 503
 *                              at once; new requests are still accepted and
 *                              served for the delay, so a balancer notices)
 *   -> STOP_DRAIN             (stop accepting, close idle connections)
 *   -> STOP_WORKERS           (no request left, or --graceful-timeout passed:
 *                              503 to queued ones, SHUTDOWN to workers,
 *                              SIGKILL to those alive after SUP_STOP_GRACE_MS)
 *   -> STOP_CLOSING           (no worker left: close every handle; the loop
 *                              ends, the run directory is removed)
 * A second signal skips the drain. SIGUSR1 only reopens the access log
 * (sup_log.c); the housekeeping tick also writes the access log's waiting
 * lines and tells systemd how many workers are ready (sup_systemd.c).
 *
 * SIGHUP reloads the app without stopping (sup_reload.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "supervisor/sup_internal.h"
#include "supervisor/sup_store.h"
#include "supervisor/supervisor.h"

#ifndef SXPOOL_DEFAULT_APP
#define SXPOOL_DEFAULT_APP "examples/blog"
#endif

#define DEFAULT_WORKERS 2
#define DEFAULT_CEK_WORKERS 1
#define DEFAULT_JIT_THRESHOLD 1000
#define DEFAULT_HOST "127.0.0.1"
#define DEFAULT_PORT 8080
#define DEFAULT_DATA "./sxpool-data"
#define DEFAULT_TIMEOUT_S 30
#define DEFAULT_INFLIGHT 4
#define MAX_STOP_S 3600 /* --drain-delay, --graceful-timeout */
#define DEFAULT_MAX_BODY (1u << 20)
#define MAX_TIMEOUT_S 86400
#define MAX_CONN_TIMEOUT_S 3600          /* --header-timeout, --body-timeout, --keepalive-timeout */
#define MAX_RECYCLE_REQUESTS 1000000000u /* --max-requests, --max-requests-jitter */
#define MAX_RSS_MB 1048576u              /* --max-rss: 1 TB */
#define DEFAULT_STORE_SIZE (1ull << 30)  /* --store-size */
#define MIN_STORE_SIZE (4ull << 20)
#define MAX_STORE_SIZE (1ull << 40)
#define MIN_WORKER_MEMORY (256ull << 20) /* --worker-memory */
#define MAX_WORKER_MEMORY (1ull << 40)

/* ---- small shared helpers ---------------------------------------------- */

int sup__buf_append(sup_buf *b, const void *src, size_t n)
{
    if (n == 0) return 0;
    if (b->len + n < b->len) return -ENOMEM;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) return -ENOMEM;
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) return -ENOMEM;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

void sup__buf_free(sup_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- command line ------------------------------------------------------- */

void sup_usage(FILE *out)
{
    fprintf(out,
            "usage: sxpool [OPTIONS]            serve the app on a pool of workers\n"
            "       sxpool eval FILE...         run SX files\n"
            "       sxpool repl                 interactive SX\n"
            "       sxpool blacklist list [GLOB] [--abi=HASH] [--data=DIR|--store=URL]\n"
            "       sxpool blacklist clear [GLOB] [--data=DIR|--store=URL]\n"
            "       sxpool store migrate --store=URL   create or upgrade the PostgreSQL\n"
            "                                   schema (before the first start)\n"
            "\n"
            "options:\n"
            "  --workers=N        JIT worker processes, 0 to %d (default %d); 0: the\n"
            "                     CEK workers serve everything (no native code)\n"
            "  --cek-workers=M    CEK-only worker processes, 1 to %d (default %d); they\n"
            "                     serve requests again after a fault in native code,\n"
            "                     and everything while no JIT worker is up\n"
            "  --jit-threshold=N  calls before a function is compiled (default %d;\n"
            "                     0: before its first call)\n"
            "  --jit-exclude=GLOB functions never compiled (comma-separated globs;\n"
            "                     may be repeated)\n"
            "  --shadow-canary=K  a request that runs a native function within its\n"
            "                     first K requests in a worker is run on a CEK worker\n"
            "                     too, on the same snapshot; the CEK result is what is\n"
            "                     committed and answered, and a disagreement blacklists\n"
            "                     the native code (default 3; 0: off)\n"
            "  --shadow-rate=R    after that, this share of requests that ran native\n"
            "                     code is checked the same way after the answer, when\n"
            "                     no request waits (default 0.01; 0: off)\n"
            "  --shadow-budget=PCT  those checks take at most PCT percent of the JIT\n"
            "                     workers' time; beyond it a sample is skipped\n"
            "                     (default 1; 100: no limit)\n"
            "  --shadow-exclude=GLOB  request paths never checked (comma-separated)\n"
            "  --listen=HOST:PORT address to serve on (default %s:%d; port 0 picks one);\n"
            "                     IPv6 in brackets: [::1]:8080, [::]:8080 (all addresses,\n"
            "                     IPv4 too unless the system sets bindv6only)\n"
            "  --reuse-port       set SO_REUSEPORT: several sxpool instances may listen on\n"
            "                     the same address and the kernel spreads connections\n"
            "                     among them (e.g. to start a new one before the old stops)\n"
            "  --admin=HOST:PORT  serve /metrics (Prometheus), /status (JSON) and\n"
            "                     /status.html there (default: off; port 0 picks one);\n"
            "                     and POST /blacklist/clear, DELETE /blacklist/FUNCTION,\n"
            "                     POST /workers/recycle (these need the token below);\n"
            "                     bind it to a local address\n"
            "                     Under systemd socket activation (LISTEN_FDS) the sockets\n"
            "                     passed are used instead of --listen and --admin: the\n"
            "                     one named admin (FileDescriptorName=admin) for admin,\n"
            "                     the first other for HTTP. Readiness goes to systemd\n"
            "                     (Type=notify): READY=1 once a worker is ready.\n"
            "  --header-timeout=SECS  a request's head must arrive within this of its\n"
            "                     first byte, and a new connection must begin a request\n"
            "                     within it (default %d; 1 to %d); else 408 and close\n"
            "  --body-timeout=SECS  the whole body must arrive within this of the end of\n"
            "                     the head (default %d; 1 to %d): a client trickling bytes\n"
            "                     cannot hold a connection longer; else 408 and close\n"
            "  --keepalive-timeout=SECS  an idle kept-alive connection is closed after\n"
            "                     this (default %d; 0 to %d, 0: one request per\n"
            "                     connection). Short, as Apache and Node.js: an idle client\n"
            "                     holds a descriptor; behind a load balancer that reuses\n"
            "                     connections set it above the balancer's idle timeout\n"
            "  --access-log=PATH  log each request to PATH, or to stdout with -\n"
            "                     (default: off); SIGUSR1 reopens PATH (for logrotate)\n"
            "  --access-log-format=combined|json  the Apache/nginx combined format\n"
            "                     (default), or one JSON object per line\n"
            "  --log-level=LEVEL  error, warn, info (default) or debug: what the error log\n"
            "                     on stderr says; lines are TIME LEVEL sxpool: MESSAGE\n"
            "  --admin-token-file=PATH  bearer token the admin port's state-changing\n"
            "                     requests must send (Authorization: Bearer TOKEN);\n"
            "                     the file must be mode 0600 or stricter; without it\n"
            "                     they are answered 403\n"
            "  --user=NAME        started as root: bind the listeners, then run as NAME\n"
            "                     (its uid, gid and groups) before touching --data or\n"
            "                     starting workers\n"
            "  --allow-root       run as root without --user, without the warning\n"
            "  --worker-memory=SIZE  each worker's RLIMIT_DATA, 256M to 1T (default: none);\n"
            "                     a worker past it fails to allocate and is replaced\n"
            "  --core-dumps       let workers dump core (default: RLIMIT_CORE 0)\n"
            "  --no-seccomp       run workers without their system call filter\n"
            "  --app=DIR          application directory with main.sx\n"
            "                     (default %s)\n"
            "  --data=DIR         data directory, created if missing (default %s)\n"
            "  --timeout=SECS     per-request deadline, 1 to %d (default %d)\n"
            "  --max-body=BYTES   largest request body, up to %u (default %u)\n"
            "  --hide-errors      500 bodies name the error kind only\n"
            "  --memory-limit=SIZE  SX heap per worker, e.g. 512M or 2G (default 1G);\n"
            "                     a request past it fails with memory-limit\n"
            "  --max-requests=N   recycle a worker after N requests (default 0: off);\n"
            "                     its replacement is ready before it stops\n"
            "  --max-requests-jitter=J  each worker recycles after N + random(0..J)\n"
            "  --max-rss=MB       recycle a worker whose RSS is over MB megabytes after\n"
            "                     a request (default 0: off)\n"
            "  --drain-delay=SECS on SIGTERM, /healthz answers 503 at once and requests\n"
            "                     are still served this long (default 0), so a load\n"
            "                     balancer stops sending first\n"
            "  --graceful-timeout=SECS  then requests in flight get this long to finish\n"
            "                     (default %d)\n"
            "  --inflight=N       requests a JIT worker may hold, 1 to %d (default %d):\n"
            "                     the next is there when one is done; one waiting\n"
            "                     behind a slow request is taken back for a worker\n"
            "                     that becomes free\n"
            "  --store=URL        keep the store in PostgreSQL (postgresql://USER@HOST/DB,\n"
            "                     libpq's URL syntax) instead of LMDB in --data; hosts\n"
            "                     that share it share data, response records (so an\n"
            "                     Idempotency-Key retried on another host is answered\n"
            "                     from its record) and the blacklist. Create the schema\n"
            "                     first: sxpool store migrate --store=URL\n"
            "  --store-size=SIZE  the store's LMDB map, 4M to 1T (default 1G); writes\n"
            "                     past %d %% of it are answered 507 until old\n"
            "                     response records are pruned\n"
            "  --transport=unix|nng  how frames reach the workers: a Unix stream socket\n"
            "                     per worker (default), or an nng PAIR1 socket\n"
            "  --help, --version\n"
            "\n"
            "signals:\n"
            "  SIGTERM, SIGINT    drain and stop (see --drain-delay, --graceful-timeout)\n"
            "  SIGHUP             reload the app without dropping a request: new workers\n"
            "                     load main.sx again; once all are ready they take every\n"
            "                     new request and the old ones stop after their current\n"
            "                     requests; if the new app fails to load, the old\n"
            "                     workers serve on and the error is logged\n",
            SUP_MAX_WORKERS, DEFAULT_WORKERS, SUP_MAX_WORKERS, DEFAULT_CEK_WORKERS,
            DEFAULT_JIT_THRESHOLD, DEFAULT_HOST, DEFAULT_PORT, SUP_HEADER_TIMEOUT_MS / 1000,
            MAX_CONN_TIMEOUT_S, SUP_BODY_TIMEOUT_MS / 1000, MAX_CONN_TIMEOUT_S,
            SUP_KEEPALIVE_TIMEOUT_MS / 1000, MAX_CONN_TIMEOUT_S, SXPOOL_DEFAULT_APP, DEFAULT_DATA,
            MAX_TIMEOUT_S, DEFAULT_TIMEOUT_S, SUP_MAX_BODY_LIMIT, DEFAULT_MAX_BODY,
            SUP_DRAIN_MS / 1000, SUP_MAX_INFLIGHT, DEFAULT_INFLIGHT, STORE_HIGH_WATER);
}

/* Matches argv[*i] against "--name=value" or "--name value".
 * @return 1 matched (*val set), 0 not this option, -1 value missing (reported) */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "sxpool: %s: missing value\n", name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

/* Strict decimal in [min, max]. @return 0 or -1 */
static int parse_uint(const char *s, unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    if (*s == '\0' || strlen(s) > 20) return -1;
    unsigned long long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (ULLONG_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* A stop option's seconds (0 .. MAX_STOP_S) as milliseconds. @return 0 or -1 */
static int parse_seconds(const char *name, const char *v, uint64_t *ms)
{
    unsigned long long n;
    if (parse_uint(v, 0, MAX_STOP_S, &n) != 0) {
        fprintf(stderr, "sxpool: %s: expected a number of seconds from 0 to %d, got '%s'\n", name,
                MAX_STOP_S, v);
        return -1;
    }
    *ms = n * 1000;
    return 0;
}

/* A connection timeout's seconds (min .. MAX_CONN_TIMEOUT_S) as
 * milliseconds. @return 0 or -1 (reported) */
static int parse_timeout(const char *name, const char *v, unsigned min, uint64_t *ms)
{
    unsigned long long n;
    if (parse_uint(v, min, MAX_CONN_TIMEOUT_S, &n) != 0) {
        fprintf(stderr, "sxpool: %s: expected a number of seconds from %u to %d, got '%s'\n", name,
                min, MAX_CONN_TIMEOUT_S, v);
        return -1;
    }
    *ms = n * 1000;
    return 0;
}

/* HOST:PORT ([HOST]:PORT for IPv6) into host[hcap] and *port.
 * @return 0 or -1 (reported, naming opt) */
static int parse_hostport(const char *opt, const char *v, char *host, size_t hcap, int *port_out)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v) goto bad;
    size_t hlen = (size_t)(colon - v);
    const char *h = v;
    if (h[0] == '[') {
        if (hlen < 3 || h[hlen - 1] != ']') goto bad;
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen) || memchr(h, ']', hlen)) {
        goto bad; /* an IPv6 address goes in brackets */
    }
    if (memchr(h, '[', hlen) || memchr(h, ']', hlen)) goto bad;
    if (hlen >= hcap) goto bad;
    unsigned long long port;
    if (parse_uint(colon + 1, 0, 65535, &port) != 0) goto bad;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port_out = (int)port;
    return 0;
bad:
    fprintf(stderr, "sxpool: %s: expected HOST:PORT or [IPV6]:PORT (port 0 to 65535), got '%s'\n",
            opt, v);
    return -1;
}

/* Checks a byte size with an optional K, M or G suffix, 16 MiB to 64 GiB. */
static int parse_size(const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *v == '-' || errno != 0) return -1;
    unsigned long long mult = 1;
    if (*end == 'K' || *end == 'k')
        mult = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm')
        mult = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g')
        mult = 1ull << 30, end++;
    if (*end != 0 || n > (64ull << 30) / mult || n * mult < (16ull << 20)) return -1;
    return 0;
}

/* A byte size with an optional K, M, G or T suffix in [min, max].
 * @return 0 or -1 */
static int parse_bytes(const char *v, unsigned long long min, unsigned long long max,
                       unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || *v < '0' || *v > '9' || errno != 0) return -1;
    unsigned shift = 0;
    switch (*end) {
    case 'K':
    case 'k': shift = 10; break;
    case 'M':
    case 'm': shift = 20; break;
    case 'G':
    case 'g': shift = 30; break;
    case 'T':
    case 't': shift = 40; break;
    default: break;
    }
    if (shift) end++;
    if (*end != '\0' || n > (max >> shift) || (n << shift) < min) return -1;
    *out = n << shift;
    return 0;
}

/* Appends globs to cfg->jit_exclude, comma-separated. @return 0 or -1 (reported) */
static int add_exclude(sup_config *cfg, const char *globs)
{
    size_t have = strlen(cfg->jit_exclude), add = strlen(globs);
    if (add == 0 || have + add + 2 > sizeof cfg->jit_exclude) {
        fprintf(stderr,
                "sxpool: --jit-exclude: expected globs (at most %zu bytes in all), got '%s'\n",
                sizeof cfg->jit_exclude - 1, globs);
        return -1;
    }
    if (have > 0) cfg->jit_exclude[have++] = ',';
    memcpy(cfg->jit_exclude + have, globs, add + 1);
    return 0;
}

static int parse_args(int argc, char **argv, sup_config *cfg, const char **app, const char **data)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        unsigned long long n;
        int m;
        if (strcmp(a, "--hide-errors") == 0) {
            cfg->hide_errors = true;
        } else if (strcmp(a, "--allow-root") == 0) {
            cfg->allow_root = true;
        } else if (strcmp(a, "--core-dumps") == 0) {
            cfg->core_dumps = true;
        } else if (strcmp(a, "--no-seccomp") == 0) {
            cfg->no_seccomp = true;
        } else if ((m = opt_value(argc, argv, &i, "--user", &v)) != 0) {
            if (m < 0) return -1;
            if (*v == '\0' || strlen(v) >= sizeof cfg->user) {
                fprintf(stderr, "sxpool: --user: expected a user name, got '%s'\n", v);
                return -1;
            }
            snprintf(cfg->user, sizeof cfg->user, "%s", v);
        } else if ((m = opt_value(argc, argv, &i, "--admin-token-file", &v)) != 0) {
            if (m < 0) return -1;
            if (*v == '\0' || strlen(v) >= sizeof cfg->admin_token_file) {
                fprintf(stderr, "sxpool: --admin-token-file: expected a path, got '%s'\n", v);
                return -1;
            }
            snprintf(cfg->admin_token_file, sizeof cfg->admin_token_file, "%s", v);
        } else if ((m = opt_value(argc, argv, &i, "--worker-memory", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_bytes(v, MIN_WORKER_MEMORY, MAX_WORKER_MEMORY, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --worker-memory: expected a size from 256M to 1T like 2G, got "
                        "'%s'\n",
                        v);
                return -1;
            }
            cfg->worker_memory = (size_t)n;
        } else if ((m = opt_value(argc, argv, &i, "--workers", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, SUP_MAX_WORKERS, &n) != 0) {
                fprintf(stderr, "sxpool: --workers: expected a number from 0 to %d, got '%s'\n",
                        SUP_MAX_WORKERS, v);
                return -1;
            }
            cfg->workers = (int)n;
        } else if ((m = opt_value(argc, argv, &i, "--cek-workers", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 1, SUP_MAX_WORKERS, &n) != 0) {
                fprintf(stderr, "sxpool: --cek-workers: expected a number from 1 to %d, got '%s'\n",
                        SUP_MAX_WORKERS, v);
                return -1;
            }
            cfg->cek_workers = (int)n;
        } else if ((m = opt_value(argc, argv, &i, "--jit-threshold", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, UINT32_MAX, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --jit-threshold: expected a number from 0 to %u, got '%s'\n",
                        UINT32_MAX, v);
                return -1;
            }
            cfg->jit_threshold = (uint32_t)n;
        } else if ((m = opt_value(argc, argv, &i, "--shadow-canary", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, 1000000, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --shadow-canary: expected a number from 0 to 1000000, "
                        "got '%s'\n",
                        v);
                return -1;
            }
            cfg->shadow_canary = (uint32_t)n;
        } else if ((m = opt_value(argc, argv, &i, "--shadow-rate", &v)) != 0) {
            if (m < 0) return -1;
            char *end;
            double r = strtod(v, &end);
            if (end == v || *end || !(r >= 0 && r <= 1)) {
                fprintf(stderr, "sxpool: --shadow-rate: expected a share from 0 to 1, got '%s'\n",
                        v);
                return -1;
            }
            cfg->shadow_rate = r;
        } else if ((m = opt_value(argc, argv, &i, "--shadow-budget", &v)) != 0) {
            if (m < 0) return -1;
            char *end;
            double pct = strtod(v, &end);
            if (end == v || *end || !(pct >= 0 && pct <= 100)) {
                fprintf(stderr,
                        "sxpool: --shadow-budget: expected a percentage from 0 to 100, got '%s'\n",
                        v);
                return -1;
            }
            cfg->shadow_budget = pct;
        } else if ((m = opt_value(argc, argv, &i, "--shadow-exclude", &v)) != 0) {
            if (m < 0) return -1;
            if (!*v || strlen(v) >= sizeof cfg->shadow_exclude) {
                fprintf(stderr, "sxpool: --shadow-exclude: expected globs, got '%s'\n", v);
                return -1;
            }
            snprintf(cfg->shadow_exclude, sizeof cfg->shadow_exclude, "%s", v);
        } else if ((m = opt_value(argc, argv, &i, "--jit-exclude", &v)) != 0) {
            if (m < 0 || add_exclude(cfg, v) != 0) return -1;
        } else if ((m = opt_value(argc, argv, &i, "--listen", &v)) != 0) {
            if (m < 0 ||
                parse_hostport("--listen", v, cfg->host, sizeof cfg->host, &cfg->port) != 0)
                return -1;
        } else if ((m = opt_value(argc, argv, &i, "--admin", &v)) != 0) {
            if (m < 0 || parse_hostport("--admin", v, cfg->admin_host, sizeof cfg->admin_host,
                                        &cfg->admin_port) != 0)
                return -1;
            cfg->admin = true;
        } else if ((m = opt_value(argc, argv, &i, "--app", &v)) != 0) {
            if (m < 0) return -1;
            *app = v;
        } else if ((m = opt_value(argc, argv, &i, "--data", &v)) != 0) {
            if (m < 0) return -1;
            *data = v;
        } else if ((m = opt_value(argc, argv, &i, "--timeout", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 1, MAX_TIMEOUT_S, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --timeout: expected a number of seconds from 1 to %d, got '%s'\n",
                        MAX_TIMEOUT_S, v);
                return -1;
            }
            cfg->timeout_ms = n * 1000;
        } else if ((m = opt_value(argc, argv, &i, "--memory-limit", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_size(v) != 0 || strlen(v) >= sizeof cfg->memory_limit) {
                fprintf(stderr,
                        "sxpool: --memory-limit: expected a size from 16M to 64G like 512M or "
                        "2G, got '%s'\n",
                        v);
                return -1;
            }
            snprintf(cfg->memory_limit, sizeof cfg->memory_limit, "%s", v);
        } else if ((m = opt_value(argc, argv, &i, "--max-requests-jitter", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, MAX_RECYCLE_REQUESTS, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --max-requests-jitter: expected a number from 0 to %u, got '%s'\n",
                        MAX_RECYCLE_REQUESTS, v);
                return -1;
            }
            cfg->max_requests_jitter = (uint32_t)n;
        } else if ((m = opt_value(argc, argv, &i, "--max-requests", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, MAX_RECYCLE_REQUESTS, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --max-requests: expected a number from 0 to %u, got '%s'\n",
                        MAX_RECYCLE_REQUESTS, v);
                return -1;
            }
            cfg->max_requests = (uint32_t)n;
        } else if ((m = opt_value(argc, argv, &i, "--max-rss", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, MAX_RSS_MB, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --max-rss: expected a number of megabytes from 0 to %u, got "
                        "'%s'\n",
                        MAX_RSS_MB, v);
                return -1;
            }
            cfg->max_rss_mb = (uint32_t)n;
        } else if ((m = opt_value(argc, argv, &i, "--drain-delay", &v)) != 0) {
            if (m < 0 || parse_seconds("--drain-delay", v, &cfg->drain_delay_ms) != 0) return -1;
        } else if ((m = opt_value(argc, argv, &i, "--graceful-timeout", &v)) != 0) {
            if (m < 0 || parse_seconds("--graceful-timeout", v, &cfg->graceful_ms) != 0) return -1;
        } else if ((m = opt_value(argc, argv, &i, "--inflight", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 1, SUP_MAX_INFLIGHT, &n) != 0) {
                fprintf(stderr, "sxpool: --inflight: expected a number from 1 to %d, got '%s'\n",
                        SUP_MAX_INFLIGHT, v);
                return -1;
            }
            cfg->inflight = (int)n;
        } else if ((m = opt_value(argc, argv, &i, "--transport", &v)) != 0) {
            if (m < 0) return -1;
            int t = ipc_transport_parse(v);
            if (t < 0) {
                fprintf(stderr, "sxpool: --transport: expected unix or nng, got '%s'\n", v);
                return -1;
            }
            cfg->transport = t;
        } else if ((m = opt_value(argc, argv, &i, "--store", &v)) != 0) {
            if (m < 0) return -1;
            if (!store_is_url(v)) {
                fprintf(stderr,
                        "sxpool: --store: expected a postgresql:// URL, got '%s' (LMDB is the "
                        "default, in --data)\n",
                        v);
                return -1;
            }
            cfg->store_url = v;
        } else if ((m = opt_value(argc, argv, &i, "--store-size", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_bytes(v, MIN_STORE_SIZE, MAX_STORE_SIZE, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --store-size: expected a size from 4M to 1T like 64M or 2G, "
                        "got '%s'\n",
                        v);
                return -1;
            }
            cfg->store_size = (size_t)n;
        } else if (strcmp(a, "--reuse-port") == 0) {
            cfg->reuse_port = true;
        } else if ((m = opt_value(argc, argv, &i, "--header-timeout", &v)) != 0) {
            if (m < 0 || parse_timeout("--header-timeout", v, 1, &cfg->header_timeout_ms) != 0)
                return -1;
        } else if ((m = opt_value(argc, argv, &i, "--body-timeout", &v)) != 0) {
            if (m < 0 || parse_timeout("--body-timeout", v, 1, &cfg->body_timeout_ms) != 0)
                return -1;
        } else if ((m = opt_value(argc, argv, &i, "--keepalive-timeout", &v)) != 0) {
            if (m < 0 || parse_timeout("--keepalive-timeout", v, 0, &cfg->keepalive_ms) != 0)
                return -1;
        } else if ((m = opt_value(argc, argv, &i, "--log-level", &v)) != 0) {
            if (m < 0) return -1;
            if ((cfg->log_level = sup__log_parse_level(v)) < 0) {
                fprintf(stderr,
                        "sxpool: --log-level: expected error, warn, info or debug, got '%s'\n", v);
                return -1;
            }
        } else if ((m = opt_value(argc, argv, &i, "--access-log-format", &v)) != 0) {
            if (m < 0) return -1;
            if (strcmp(v, "combined") != 0 && strcmp(v, "json") != 0) {
                fprintf(stderr,
                        "sxpool: --access-log-format: expected combined or json, got '%s'\n", v);
                return -1;
            }
            cfg->access_json = strcmp(v, "json") == 0;
        } else if ((m = opt_value(argc, argv, &i, "--access-log", &v)) != 0) {
            if (m < 0) return -1;
            if (*v == '\0' || strlen(v) >= sizeof cfg->access_log) {
                fprintf(stderr, "sxpool: --access-log: expected a file name or -, got '%s'\n", v);
                return -1;
            }
            snprintf(cfg->access_log, sizeof cfg->access_log, "%s", v);
        } else if ((m = opt_value(argc, argv, &i, "--max-body", &v)) != 0) {
            if (m < 0) return -1;
            if (parse_uint(v, 0, SUP_MAX_BODY_LIMIT, &n) != 0) {
                fprintf(stderr,
                        "sxpool: --max-body: expected a number of bytes from 0 to %u, got '%s'\n",
                        SUP_MAX_BODY_LIMIT, v);
                return -1;
            }
            cfg->max_body = (size_t)n;
        } else if (a[0] == '-') {
            fprintf(stderr, "sxpool: unknown option '%s' (see sxpool --help)\n", a);
            return -1;
        } else {
            fprintf(stderr, "sxpool: unexpected argument '%s' (see sxpool --help)\n", a);
            return -1;
        }
    }
    return 0;
}

/* Resolves --app to an absolute path and checks it has a readable main.sx.
 * @return 0 or 2 (usage: bad app) */
static int check_app(sup_config *cfg, const char *app)
{
    if (!realpath(app, cfg->app)) {
        fprintf(stderr, "sxpool: --app: cannot use '%s': %s\n", app, strerror(errno));
        return 2;
    }
    char main_sx[PATH_MAX + 16];
    snprintf(main_sx, sizeof main_sx, "%s/main.sx", cfg->app);
    if (access(main_sx, R_OK) != 0) {
        fprintf(stderr, "sxpool: --app: '%s' has no readable main.sx: %s\n", app, strerror(errno));
        return 2;
    }
    return 0;
}

/* Creates --data if missing and resolves it to an absolute path. It must be
 * private to this user (store_check_private_dir): it holds the code cache
 * whose shared objects workers load and run. @return 0 or -1 (logged) */
static int check_data(sup_config *cfg, const char *data)
{
    int err = store_mkdirs(data);
    if (err != 0) {
        sup__error("--data: cannot create '%s': %s", data, strerror(-err));
        return -1;
    }
    if (!realpath(data, cfg->data)) {
        sup__error("--data: cannot use '%s': %s", data, strerror(errno));
        return -1;
    }
    char why[PATH_MAX + 128];
    if (store_check_private_dir(cfg->data, why, sizeof why) != 0) {
        sup__error("--data: refusing to use '%s': %s", data, why);
        return -1;
    }
    return 0;
}

/* ---- run directory ------------------------------------------------------- */

#define RUNDIR_PIDFILE "supervisor.pid"

static int make_rundir(sup_server *s)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    int n = snprintf(s->rundir, sizeof s->rundir, "%s/sxpool.XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof s->rundir) {
        sup__error("unable to create the run directory under %s: path too long", tmp);
        s->rundir[0] = '\0';
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(s->rundir)) {
        int e = errno;
        sup__error("unable to create the run directory under %s: %s", tmp, strerror(e));
        s->rundir[0] = '\0';
        return -e;
    }
    if (chmod(s->rundir, 0700) != 0) {
        int e = errno;
        sup__error("unable to make %s private: %s", s->rundir, strerror(e));
        return -e;
    }
    /* Whose it is, for remove_stale_rundirs at a later start if this
     * process dies without removing it (SIGKILL, a crash). */
    char pidfile[PATH_MAX + 16], pid[32];
    snprintf(pidfile, sizeof pidfile, "%s/" RUNDIR_PIDFILE, s->rundir);
    int fd = open(pidfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    int plen = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (fd < 0 || write(fd, pid, (size_t)plen) != plen)
        sup__warn("unable to write %s (it is not removed if sxpool is killed): %s", pidfile,
                  strerror(errno));
    if (fd >= 0) close(fd);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    int rc = flag == FTW_DP ? rmdir(path) : unlink(path);
    if (rc != 0 && errno != ENOENT) sup__warn("unable to remove %s: %s", path, strerror(errno));
    return 0;
}

/* Removes the run directory and what the slots left in it (sockets,
 * scoreboards, the JIT workers' private temporary directories with
 * whatever a compile killed midway left in them). */
/* Removes the run directories (TMPDIR/sxpool.*) that supervisors killed
 * before they could clean up left behind: only directories of this user,
 * not links, whose pid file names a process that is gone. One with no pid
 * file is kept (a supervisor starting right now, or an older version). */
static void remove_stale_rundirs(void)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    DIR *d = opendir(tmp);
    if (!d) return;
    struct dirent *e;
    int removed = 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "sxpool.", 7) != 0) continue;
        char dir[PATH_MAX], pidfile[PATH_MAX + 16], buf[32];
        if (snprintf(dir, sizeof dir, "%s/%s", tmp, e->d_name) >= (int)sizeof dir) continue;
        struct stat st;
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
        snprintf(pidfile, sizeof pidfile, "%s/" RUNDIR_PIDFILE, dir);
        int fd = open(pidfile, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        char *end;
        long pid = strtol(buf, &end, 10);
        if (pid <= 0 || pid == getpid() || (*end != '\n' && *end != '\0')) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to ask */
        if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) == 0) removed++;
    }
    closedir(d);
    if (removed > 0)
        sup__info("removed %d run director%s left by supervisors that were killed", removed,
                  removed == 1 ? "y" : "ies");
}

static void remove_rundir(sup_server *s)
{
    if (!s->rundir[0]) return;
    if (nftw(s->rundir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        sup__warn("unable to remove the run directory %s: %s", s->rundir, strerror(errno));
    s->rundir[0] = '\0';
}

/* ---- signals and shutdown ------------------------------------------------ */

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void enter_stage(sup_server *s, enum sup_stop_stage st)
{
    s->stop = st;
    s->stop_stage_ms = uv_now(s->loop);
}

/* Drain over: nothing more will be answered by a worker. */
static void stop_workers(sup_server *s)
{
    sup__pool_fail_queued(s, 503, "server is shutting down\n");
    sup__pool_stop_workers(s);
    enter_stage(s, STOP_WORKERS);
}

/* No more connections; in-flight requests finish, up to --graceful-timeout. */
static void begin_drain(sup_server *s)
{
    enter_stage(s, STOP_DRAIN);
    sup__http_stop_accepting(s);
    sup__http_close_idle(s);
}

void sup__begin_stop(sup_server *s, const char *why)
{
    switch (s->stop) {
    case STOP_NONE:
        sup__reload_cancel(s);
        sup__systemd_stopping(s);
        if (s->cfg.drain_delay_ms > 0) {
            sup__info("%s; /healthz answers 503 and requests are served for %llu ms more, then "
                      "shutting down",
                      why, (unsigned long long)s->cfg.drain_delay_ms);
            enter_stage(s, STOP_ANNOUNCE);
            break;
        }
        sup__info("%s; shutting down", why);
        begin_drain(s);
        break;
    case STOP_ANNOUNCE:
        sup__info("%s again; shutting down now", why);
        begin_drain(s);
        break;
    case STOP_DRAIN:
        sup__info("%s again; stopping the workers now", why);
        stop_workers(s);
        break;
    case STOP_WORKERS:
        if (!s->workers_killed) {
            sup__pool_kill_all(s, "the server is stopping");
            s->workers_killed = true;
        }
        break;
    case STOP_CLOSING: break;
    }
}

/* SIGUSR1: the access log is reopened (after logrotate moved it). */
static void on_sigusr1(uv_signal_t *h, int signum)
{
    (void)h, (void)signum;
    sup__access_reopen();
}

static void on_signal(uv_signal_t *h, int signum)
{
    sup_server *s = h->data;
    char why[64];
    if (signum == SIGHUP) {
        sup__reload_begin(s);
        return;
    }
    snprintf(why, sizeof why, "received SIG%s", sigabbrev_np(signum));
    sup__begin_stop(s, why);
}

static void stop_tick(sup_server *s, uint64_t now)
{
    switch (s->stop) {
    case STOP_NONE: return;
    case STOP_ANNOUNCE:
        if (now - s->stop_stage_ms >= s->cfg.drain_delay_ms) {
            sup__info("drain delay over; shutting down");
            begin_drain(s);
        }
        return;
    case STOP_DRAIN:
        /* A request a fault job holds is neither queued nor running. */
        if (sup__pool_quiet(s) && sup__store_idle()) {
            stop_workers(s);
        } else if (now - s->stop_stage_ms >= s->cfg.graceful_ms) {
            sup__warn("requests still running after %llu ms (--graceful-timeout); stopping the "
                      "workers anyway",
                      (unsigned long long)s->cfg.graceful_ms);
            stop_workers(s);
        }
        return;
    case STOP_WORKERS:
        if (sup__pool_live(s) == 0) {
            enter_stage(s, STOP_CLOSING);
        } else if (!s->workers_killed && now - s->stop_stage_ms >= SUP_STOP_GRACE_MS) {
            sup__pool_kill_all(s, "it did not stop within the shutdown grace period");
            s->workers_killed = true;
        }
        return;
    case STOP_CLOSING:
        /* Store jobs finish first: their completions answer requests and
         * push to workers' sockets. No worker is left to hold the write
         * lock, so they do finish. */
        if (!sup__store_idle()) return;
        /* Let the last responses finish writing, within a bound. */
        if (s->nconns > 0 && now - s->stop_stage_ms < SUP_LINGER_MS + 500) return;
        sup__http_stop_accepting(s);
        sup__http_close_all(s);
        sup__admin_stop(s);
        sup__cluster_stop(s);
        sup__pool_close(s);
        close_handle((uv_handle_t *)&s->sigint);
        close_handle((uv_handle_t *)&s->sigterm);
        close_handle((uv_handle_t *)&s->sighup);
        close_handle((uv_handle_t *)&s->sigusr1);
        close_handle((uv_handle_t *)&s->housekeeping);
        return;
    }
}

/* Response records exist so a re-dispatched request is not applied twice;
 * a request is re-dispatched only within its deadline, so once a minute the
 * records older than max(10 min, 4 deadlines) are dropped, a bounded batch
 * at a time. The prune is a write transaction: it runs on a thread-pool
 * thread (sup_store.c), so a worker holding the write lock delays the
 * prune, never the loop; a prune still waiting when the next one is due
 * counts as that one.
 *
 * The store's map is bounded too (--store-size; store.h, "Room"): once
 * more than STORE_SHED_WATER percent of it is in use, the same job also
 * deletes the oldest records younger than that, down to STORE_LOW_WATER
 * percent, but never one younger than 4 deadlines: a request lives at
 * most that long (a deadline in each of two queues and two attempts), so
 * no retry can still need it. Writes past STORE_HIGH_WATER percent are
 * refused (507) meanwhile, which keeps free pages for the prune; while
 * the store is that full the job runs every SUP_PRUNE_FULL_EVERY_MS, and
 * says so once per run. */
#define SUP_PRUNE_EVERY_MS 60000
#define SUP_PRUNE_FULL_EVERY_MS 5000
#define SUP_PRUNE_BATCH 20000

typedef struct prune_job {
    sup_store_job base; /* first: a sup_store_job * is a prune_job * */
    int64_t before_ms;  /* records committed before this go */
    int64_t floor_ms;   /* and, in a nearly full store, those before this */
    uint64_t keep_ms, floor_keep_ms;
    int result; /* store_response_prune's */
    int shed;   /* store_response_shed's */
    int usage;  /* store_usage's */
    size_t used, size;
} prune_job;

static bool prune_pending;     /* a prune_job is queued or running */
static bool store_nearly_full; /* the last prune left more than STORE_SHED_WATER % in use */
static uint64_t prune_every_ms = SUP_PRUNE_EVERY_MS;

bool sup__test_hook_ms(const char *name, uint64_t *ms)
{
#ifdef SXPOOL_TEST_HOOKS
    const char *v = getenv("SXPOOL_TEST_HOOK");
    const char *k = v ? strstr(v, name) : NULL;
    size_t n = strlen(name);
    if (!k || k[n] != ':') return false;
    *ms = strtoull(k + n + 1, NULL, 10);
    return true;
#else
    (void)name, (void)ms;
    return false;
#endif
}

/* Test builds only: prune-every:MS runs the prune every MS ms, however full
 * the store, so a test sees a full store recover without waiting a minute. */
static void read_prune_hook(void)
{
    if (sup__test_hook_ms("prune-every", &prune_every_ms))
        sup__info("test hook: response records are pruned every %llu ms",
                  (unsigned long long)prune_every_ms);
}

static void prune_run(sup_store_job *b, store *st)
{
    prune_job *j = (prune_job *)b;
    j->result = store_response_prune(st, j->before_ms, SUP_PRUNE_BATCH);
    j->shed = store_response_shed(st, j->floor_ms, SUP_PRUNE_BATCH);
    j->usage = store_usage(st, &j->used, &j->size);
}

static void prune_done(sup_store_job *b)
{
    prune_job *j = (prune_job *)b;
    if (j->result > 0)
        sup__info("pruned %d response records older than %llu s", j->result,
                  (unsigned long long)(j->keep_ms / 1000));
    else if (j->result < 0)
        sup__error("unable to prune response records: %s", store_strerror(j->result));
    if (j->shed > 0)
        sup__warn("store over %d %% full: pruned %d more response records older than %llu s "
                  "(their requests can no longer be retried)",
                  STORE_SHED_WATER, j->shed, (unsigned long long)(j->floor_keep_ms / 1000));
    else if (j->shed < 0)
        sup__error("unable to make room in the store: %s", store_strerror(j->shed));
    bool full = j->usage == 0 && j->size > 0 && j->used * 100 > j->size * STORE_SHED_WATER;
    if (full)
        sup__warn("store nearly full: %zu of %zu KiB in use; writes past %d %% are answered 507 "
                  "until response records older than %llu s can be pruned or the application "
                  "deletes data (or restart with a larger --store-size)",
                  j->used >> 10, j->size >> 10, STORE_HIGH_WATER,
                  (unsigned long long)(j->floor_keep_ms / 1000));
    else if (store_nearly_full && j->usage == 0)
        sup__info("store has room again: %zu of %zu KiB in use", j->used >> 10, j->size >> 10);
    if (j->usage == 0) store_nearly_full = full;
    free(j);
    prune_pending = false;
}

static void prune_responses(sup_server *s, uint64_t now)
{
    if (s->stop != STOP_NONE || prune_pending) return;
    uint64_t every = prune_every_ms;
    if (store_nearly_full && every > SUP_PRUNE_FULL_EVERY_MS) every = SUP_PRUNE_FULL_EVERY_MS;
    if (now - s->last_prune_ms < every) return;
    prune_job *j = calloc(1, sizeof *j);
    if (!j) return; /* tried again on the next tick */
    s->last_prune_ms = now;
    j->floor_keep_ms = 4 * s->cfg.timeout_ms;
    j->keep_ms = j->floor_keep_ms > 600000 ? j->floor_keep_ms : 600000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    j->before_ms = wall_ms - (int64_t)j->keep_ms;
    j->floor_ms = wall_ms - (int64_t)j->floor_keep_ms;
    j->base.run = prune_run;
    j->base.done = prune_done;
    prune_pending = true;
    sup__store_submit(s->loop, s->store, &j->base);
}

static void on_housekeeping(uv_timer_t *t)
{
    sup_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    sup__http_housekeeping(s, now);
    sup__admin_housekeeping(s, now);
    sup__pool_housekeeping(s, now);
    sup__cluster_housekeeping(s, now);
    prune_responses(s, now);
    sup__access_flush(now);
    sup__systemd_tick(s);
    stop_tick(s, now);
}

/* ---- start-up ------------------------------------------------------------- */

static int start_handles(sup_server *s)
{
    int err;
    if ((err = uv_timer_init(s->loop, &s->housekeeping)) != 0 ||
        (err = uv_signal_init(s->loop, &s->sigint)) != 0 ||
        (err = uv_signal_init(s->loop, &s->sigterm)) != 0 ||
        (err = uv_signal_init(s->loop, &s->sighup)) != 0 ||
        (err = uv_signal_init(s->loop, &s->sigusr1)) != 0) {
        sup__error("unable to set up the event loop: %s", uv_strerror(err));
        return err;
    }
    s->housekeeping.data = s->sigint.data = s->sigterm.data = s->sighup.data = s->sigusr1.data = s;
    if ((err = uv_timer_start(&s->housekeeping, on_housekeeping, SUP_HOUSEKEEPING_MS,
                              SUP_HOUSEKEEPING_MS)) != 0 ||
        (err = uv_signal_start(&s->sigint, on_signal, SIGINT)) != 0 ||
        (err = uv_signal_start(&s->sigterm, on_signal, SIGTERM)) != 0 ||
        (err = uv_signal_start(&s->sighup, on_signal, SIGHUP)) != 0 ||
        (err = uv_signal_start(&s->sigusr1, on_sigusr1, SIGUSR1)) != 0) {
        sup__error("unable to watch signals and time: %s", uv_strerror(err));
        return err;
    }
    return 0;
}

static int count_entry(void *arg, const store_bl_entry *e)
{
    (void)e;
    ++*(int64_t *)arg;
    return 0;
}

/* What needs the data directory, opened as the user the server runs as:
 * the store, the blacklist count, the run directory. @return 0 or -1 */
static int open_data(sup_server *s, const char *data)
{
    if (check_data(&s->cfg, data) != 0) return -1;
    const char *loc = s->cfg.store_url ? s->cfg.store_url : s->cfg.data;
    int err = store_open(loc, s->cfg.store_size, &s->store);
    if (err != 0) {
        if (s->cfg.store_url)
            sup__error("unable to open the store in PostgreSQL: %s", store_strerror(err));
        else
            sup__error("unable to open the store in %s: %s", s->cfg.data, store_strerror(err));
        return -1;
    }
    read_prune_hook();
    s->metrics.start_ns = uv_hrtime();
    err = store_bl_each(s->store, NULL, count_entry, &s->metrics.blacklist_entries);
    if (err != 0)
        sup__warn("unable to count the blacklist entries: %s; the metric starts at 0",
                  store_strerror(err));
    remove_stale_rundirs();
    return make_rundir(s) == 0 ? 0 : -1;
}

/* user: --user's uid and gid when set. */
static int run_server(sup_server *s, const char *data, uid_t uid, gid_t gid)
{
    s->loop = uv_default_loop();
    if (!s->loop) {
        sup__error("unable to create the event loop");
        return 1;
    }
    int err = start_handles(s);
    if (err != 0) return 1; /* handles not running yet: nothing to wind down */
    sup__access_start(s->loop);
    /* Listen first: a busy port fails before any worker is spawned, and a
     * port below 1024 is bound while still root; privileges are dropped
     * before anything is created on disk. */
    if (sup__http_start(s) != 0 || sup__admin_start(s) != 0 ||
        (s->cfg.user[0] && sup__drop_privileges(s->cfg.user, uid, gid) != 0) ||
        open_data(s, data) != 0 || sup__pool_start(s) != 0) {
        /* Wind down whatever started: the loop runs the stop sequence. */
        sup__error("start-up failed; stopping");
        s->exit_code = 1;
        enter_stage(s, STOP_DRAIN);
        sup__http_stop_accepting(s);
        stop_workers(s);
    } else {
        sup__cluster_start(s);
    }
    uv_run(s->loop, UV_RUN_DEFAULT);
    err = uv_loop_close(s->loop);
    if (err != 0) sup__error("event loop closed with handles still open: %s", uv_strerror(err));
    return s->exit_code;
}

int sup_main(int argc, char **argv)
{
    static sup_server server; /* large (frame scratch); one per process */
    sup_server *s = &server;
    const char *app = SXPOOL_DEFAULT_APP, *data = DEFAULT_DATA;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            sup_usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("sxpool %s\n", SXPOOL_VERSION);
            return 0;
        }
    }
    ipc_stage_init();
    s->cfg.workers = DEFAULT_WORKERS;
    s->cfg.cek_workers = DEFAULT_CEK_WORKERS;
    s->cfg.jit_threshold = DEFAULT_JIT_THRESHOLD;
    s->cfg.shadow_canary = 3;
    s->cfg.shadow_rate = 0.01;
    s->cfg.shadow_budget = 1.0;
    snprintf(s->cfg.host, sizeof s->cfg.host, "%s", DEFAULT_HOST);
    s->cfg.port = DEFAULT_PORT;
    s->cfg.timeout_ms = DEFAULT_TIMEOUT_S * 1000ull;
    s->cfg.max_body = DEFAULT_MAX_BODY;
    s->cfg.inflight = DEFAULT_INFLIGHT;
    s->cfg.graceful_ms = SUP_DRAIN_MS;
    s->cfg.store_size = (size_t)DEFAULT_STORE_SIZE;
    s->cfg.header_timeout_ms = SUP_HEADER_TIMEOUT_MS;
    s->cfg.body_timeout_ms = SUP_BODY_TIMEOUT_MS;
    s->cfg.keepalive_ms = SUP_KEEPALIVE_TIMEOUT_MS;
    s->cfg.log_level = SUP_LOG_INFO;
    if (parse_args(argc, argv, &s->cfg, &app, &data) != 0) return 2;
    sup__log_setup(s->cfg.log_level);
    if (sup__systemd_listen_fds(s) != 0) return 1;
    int rc = check_app(&s->cfg, app);
    if (rc != 0) return rc;
    if (s->cfg.access_log[0]) {
        int aerr = sup__access_open(s->cfg.access_log, s->cfg.access_json);
        if (aerr != 0) {
            fprintf(stderr, "sxpool: --access-log: cannot open '%s': %s\n", s->cfg.access_log,
                    strerror(-aerr));
            return 1;
        }
    }
    uid_t uid = 0;
    gid_t gid = 0;
    if (s->cfg.user[0]) {
        if (geteuid() != 0) {
            fprintf(stderr,
                    "sxpool: --user=%s: only root can change user, and sxpool runs as uid %u; "
                    "leave --user out to run as this user\n",
                    s->cfg.user, (unsigned)geteuid());
            return 2;
        }
        if (sup__user_lookup(s->cfg.user, &uid, &gid) != 0) return 2;
        if (uid == 0) {
            fprintf(stderr, "sxpool: --user=%s: that user is root; name an unprivileged user\n",
                    s->cfg.user);
            return 2;
        }
    } else if (geteuid() == 0 && !s->cfg.allow_root) {
        sup__warn("WARNING: running as root without --user: the supervisor and every worker "
                  "keep root's powers; start sxpool with --user=NAME (or as that user), or pass "
                  "--allow-root to say this is meant");
    }
    if (s->cfg.admin_token_file[0] &&
        sup__admin_token_load(s->cfg.admin_token_file, s->admin_token, sizeof s->admin_token,
                              &s->admin_token_len) != 0)
        return 2;

    /* A client that goes away must not kill the server. Children get
     * default dispositions back: libuv resets them before exec. */
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        sup__error("unable to ignore SIGPIPE: %s", strerror(errno));
        return 1;
    }

    size_t exelen = sizeof s->exe;
    int err = uv_exepath(s->exe, &exelen);
    if (err != 0) {
        sup__error("unable to find the sxpool executable to spawn workers: %s", uv_strerror(err));
        return 1;
    }
    /* Every process maps the store at the same size (store_open): workers
     * inherit the environment (uv_spawn) and read it at start. */
    char size_env[32];
    snprintf(size_env, sizeof size_env, "%zu", s->cfg.store_size);
    if (setenv("SXPOOL_STORE_SIZE", size_env, 1) != 0) {
        sup__error("unable to pass --store-size to the workers: %s", strerror(errno));
        return 1;
    }
    /* Ids follow the clock, so two hosts give out the same ones: with a
     * shared store, this run's records are named apart (ipc_record_id). */
    if (s->cfg.store_url) {
        uint64_t tag = 0;
        if (getrandom(&tag, sizeof tag, 0) != (ssize_t)sizeof tag)
            tag = uv_hrtime() ^ ((uint64_t)getpid() << 32);
        snprintf(s->record_prefix, sizeof s->record_prefix, "r%016llx:", (unsigned long long)tag);
    }
    if (setenv("SXPOOL_RECORD_PREFIX", s->record_prefix, 1) != 0) {
        sup__error("unable to pass the record prefix to the workers: %s", strerror(errno));
        return 1;
    }
    /* Workers open the same store: PostgreSQL's URL, or LMDB in --data
     * (in the environment, not argv: a URL may hold a password). */
    if (s->cfg.store_url ? setenv("SXPOOL_STORE", s->cfg.store_url, 1) != 0
                         : unsetenv("SXPOOL_STORE") != 0) {
        sup__error("unable to pass --store to the workers: %s", strerror(errno));
        return 1;
    }
    /* Both ends of a slot must speak the same transport. */
    if (setenv("SXPOOL_TRANSPORT", ipc_transport_name(s->cfg.transport), 1) != 0) {
        sup__error("unable to pass --transport to the workers: %s", strerror(errno));
        return 1;
    }
    rc = run_server(s, data, uid, gid);
    remove_rundir(s);
    store_close(s->store);
    s->store = NULL;
    sup__access_close();
    if (rc == 0) sup__info("stopped");
    return rc;
}
