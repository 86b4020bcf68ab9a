/* sup_log.c: the supervisor's two logs: the error log on stderr, with
 * levels (--log-level), and the access log (--access-log), one line per
 * answered request in the combined format or as JSON.
 *
 * Runs on the supervisor's loop thread (and before the loop exists, for
 * start-up messages); the access log's file writes run on libuv's thread
 * pool (uv_fs_write), one at a time.
 *
 * Error log: every line is "TIME LEVEL sxpool: MESSAGE", TIME in UTC with
 * milliseconds (2026-12-05T20:43:21.123Z), LEVEL one of error, warn,
 * notice, info, debug. notice lines (where the server listens) are written
 * whatever the level, since a port picked by the kernel is only learnt
 * from them. When stderr is the systemd journal (JOURNAL_STREAM names it)
 * the time is left to the journal and the level becomes a "<N>" syslog
 * priority prefix, which journald reads. The message is escaped
 * (ipc_escape_line), so whatever a client or an app put in it stays on
 * one line; one write() per line, so lines of the workers, which share
 * stderr, never interleave with ours.
 *
 * Access log: lines are built into `pending` as responses are queued, and
 * written in batches: on the housekeeping tick, or at once when
 * ACCESS_FLUSH_AT bytes wait. While a batch is being written, new lines
 * gather in `pending`; past ACCESS_MAX_PENDING they are dropped and
 * counted (a stuck disk must not eat the server's memory), and the count
 * is logged. Nothing is lost on a graceful stop: the loop does not end
 * while a write is in flight, and sup__access_close writes what is left.
 * SIGUSR1 reopens the file (sup__access_reopen), after the batch being
 * written, so logrotate can move it away.
 *
 * Every value that comes from a request or the app is escaped so one
 * request is one line: in the combined format as nginx does (", \, control
 * bytes and bytes from 0x7f up become \xHH); in JSON as a JSON string
 * (control bytes as \u00HH, a byte that is not part of valid UTF-8 as
 * U+FFFD).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "supervisor/sup_internal.h"

#define ACCESS_FLUSH_AT (64 * 1024)           /* write at once when this much waits */
#define ACCESS_MAX_PENDING (16 * 1024 * 1024) /* then drop lines until a write ends */
#define ACCESS_MAX_VALUE 8192                 /* bytes of one value logged; the rest "..." */

/* ---- the error log --------------------------------------------------------- */

static int log_level = SUP_LOG_INFO;
static bool log_journal; /* stderr is the journal: "<N>" prefixes, no time */

static const char *const level_names[] = {"notice", "error", "warn", "info", "debug"};
static const int level_syslog[] = {5, 3, 4, 6, 7}; /* LOG_NOTICE, LOG_ERR, ... */

int sup__log_parse_level(const char *name)
{
    for (int i = SUP_LOG_ERROR; i <= SUP_LOG_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

void sup__log_setup(int level)
{
    log_level = level;
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
        (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
        log_journal = true;
}

void sup__logf(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    char msg[2048], line[2200];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    if ((size_t)m >= sizeof msg) m = (int)sizeof msg - 1;
    int n;
    if (log_journal) {
        n = snprintf(line, sizeof line, "<%d>sxpool: ", level_syslog[level]);
    } else {
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        n = snprintf(line, sizeof line, "%s.%03ldZ %s sxpool: ", stamp, ts.tv_nsec / 1000000,
                     level_names[level]);
    }
    /* names and messages that come from the app or a client are in msg:
     * escaped, so one event stays one line */
    size_t len = (size_t)n + ipc_escape_line(line + n, sizeof line - (size_t)n - 1, msg, (size_t)m);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

/* ---- the access log: escaping ------------------------------------------------ */

static const char hexd[] = "0123456789ABCDEF";

/* The combined format's escaping (nginx's): "-" for an absent value. */
static void esc_combined(sup_buf *b, const char *p, size_t n)
{
    if (!p || n == 0) {
        sup__buf_append(b, "-", 1);
        return;
    }
    bool cut = n > ACCESS_MAX_VALUE;
    if (cut) n = ACCESS_MAX_VALUE;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') continue;
        sup__buf_append(b, p + start, i - start);
        char e[4] = {'\\', 'x', hexd[ch >> 4], hexd[ch & 15]};
        sup__buf_append(b, e, 4);
        start = i + 1;
    }
    sup__buf_append(b, p + start, n - start);
    if (cut) sup__buf_append(b, "...", 3);
}

/* Length of the valid UTF-8 sequence at p[0..n), or 0 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    return len;
}

/* A JSON string, or null for an absent value. */
static void esc_json(sup_buf *b, const char *s, size_t n, bool present)
{
    if (!present) {
        sup__buf_append(b, "null", 4);
        return;
    }
    const unsigned char *p = (const unsigned char *)s;
    bool cut = n > ACCESS_MAX_VALUE;
    if (cut) n = ACCESS_MAX_VALUE;
    sup__buf_append(b, "\"", 1);
    size_t i = 0, start = 0;
    while (i < n) {
        unsigned char ch = p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            i++;
            continue;
        }
        if (ch >= 0x80) {
            size_t k = utf8_len(p + i, n - i);
            if (k > 0) {
                i += k;
                continue;
            }
        }
        sup__buf_append(b, s + start, i - start);
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            sup__buf_append(b, e, 2);
        } else if (ch >= 0x80) {
            sup__buf_append(b, "\\ufffd", 6);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hexd[ch >> 4], hexd[ch & 15]};
            sup__buf_append(b, e, 6);
        }
        start = ++i;
    }
    sup__buf_append(b, s + start, n - start);
    if (cut) sup__buf_append(b, "...", 3);
    sup__buf_append(b, "\"", 1);
}

/* ---- the access log: what a line says ------------------------------------------- */

/* One field of a request: its value, absent when p is NULL. */
typedef struct span {
    const char *p;
    size_t n;
} span;

static span header_value(const sup_request *r, const char *name)
{
    size_t len = strlen(name);
    for (int i = 0; r && i < r->nheaders; i++) {
        const sup_header *h = &r->headers[i];
        if (h->name_len == len && memcmp(r->hdata.p + h->name_off, name, len) == 0)
            return (span){r->hdata.p + h->value_off, h->value_len};
    }
    return (span){NULL, 0};
}

/* The next space-separated token of line[*at..n), absent if empty. */
static span next_token(const char *line, size_t n, size_t *at)
{
    size_t i = *at;
    while (i < n && line[i] != ' ')
        i++;
    span t = {i > *at ? line + *at : NULL, i - *at};
    *at = i < n ? i + 1 : n;
    return t;
}

typedef struct access_fields {
    span method, target, protocol, ua, referer;
    char proto_buf[16];
    double duration_ms;
    bool has_duration;
} access_fields;

static void gather(sup_server *s, const sup_access *a, access_fields *f)
{
    const sup_request *r = a->r;
    memset(f, 0, sizeof *f);
    if (r && r->method) { /* a parsed request line */
        f->method = (span){r->method, strlen(r->method)};
        f->target = (span){r->url.p ? r->url.p : "", r->url.len};
        snprintf(f->proto_buf, sizeof f->proto_buf, "HTTP/1.%d", r->http_minor);
        f->protocol = (span){f->proto_buf, strlen(f->proto_buf)};
    } else if (a->line_len > 0) { /* as far as it was read */
        size_t at = 0;
        f->method = next_token(a->line, a->line_len, &at);
        f->target = next_token(a->line, a->line_len, &at);
        f->protocol = (span){at < a->line_len ? a->line + at : NULL, a->line_len - at};
    }
    f->ua = header_value(r, "user-agent");
    f->referer = header_value(r, "referer");
    if (r && r->arrived_ns) {
        f->duration_ms = (double)(uv_hrtime() - r->arrived_ns) / 1e6;
        f->has_duration = true;
    }
    (void)s;
}

static void line_combined(sup_buf *b, sup_server *s, const sup_access *a, const access_fields *f,
                          const struct timespec *ts)
{
    struct tm tm;
    char t[64];
    localtime_r(&ts->tv_sec, &tm);
    strftime(t, sizeof t, "%d/%b/%Y:%H:%M:%S %z", &tm);
    esc_combined(b, a->remote, a->remote ? strlen(a->remote) : 0);
    sup__buf_append(b, " - - [", 6);
    sup__buf_append(b, t, strlen(t));
    sup__buf_append(b, "] \"", 3);
    if (!f->method.p) {
        sup__buf_append(b, "-", 1);
    } else {
        esc_combined(b, f->method.p, f->method.n);
        if (f->target.p) {
            sup__buf_append(b, " ", 1);
            esc_combined(b, f->target.p, f->target.n);
        }
        if (f->protocol.p) {
            sup__buf_append(b, " ", 1);
            esc_combined(b, f->protocol.p, f->protocol.n);
        }
    }
    char num[64];
    int k = snprintf(num, sizeof num, "\" %d %zu \"", a->status, a->bytes);
    sup__buf_append(b, num, (size_t)k);
    esc_combined(b, f->referer.p, f->referer.n);
    sup__buf_append(b, "\" \"", 3);
    esc_combined(b, f->ua.p, f->ua.n);
    sup__buf_append(b, "\"\n", 2);
    (void)s;
}

static void json_key(sup_buf *b, const char *key)
{
    sup__buf_append(b, ",\"", 2);
    sup__buf_append(b, key, strlen(key));
    sup__buf_append(b, "\":", 2);
}

static void line_json(sup_buf *b, sup_server *s, const sup_access *a, const access_fields *f,
                      const struct timespec *ts)
{
    struct tm tm;
    char t[64], num[64];
    gmtime_r(&ts->tv_sec, &tm);
    size_t k = strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(t + k, sizeof t - k, ".%03ldZ", ts->tv_nsec / 1000000);
    sup__buf_append(b, "{\"time\":\"", 9);
    sup__buf_append(b, t, strlen(t));
    sup__buf_append(b, "\"", 1);
    json_key(b, "remote");
    esc_json(b, a->remote, a->remote ? strlen(a->remote) : 0, a->remote && a->remote[0]);
    json_key(b, "method");
    esc_json(b, f->method.p, f->method.n, f->method.p != NULL);
    json_key(b, "target");
    esc_json(b, f->target.p, f->target.n, f->target.p != NULL);
    json_key(b, "protocol");
    esc_json(b, f->protocol.p, f->protocol.n, f->protocol.p != NULL);
    json_key(b, "status");
    sup__buf_append(b, num, (size_t)snprintf(num, sizeof num, "%d", a->status));
    json_key(b, "bytes");
    sup__buf_append(b, num, (size_t)snprintf(num, sizeof num, "%zu", a->bytes));
    json_key(b, "duration_ms");
    if (f->has_duration)
        sup__buf_append(b, num, (size_t)snprintf(num, sizeof num, "%.3f", f->duration_ms));
    else
        sup__buf_append(b, "null", 4);
    json_key(b, "user_agent");
    esc_json(b, f->ua.p, f->ua.n, f->ua.p != NULL);
    json_key(b, "referer");
    esc_json(b, f->referer.p, f->referer.n, f->referer.p != NULL);
    json_key(b, "request_id");
    if (a->r && a->r->id) /* a string: 64 bits do not fit a JSON reader's double */
        sup__buf_append(
            b, num, (size_t)snprintf(num, sizeof num, "\"%llu\"", (unsigned long long)a->r->id));
    else
        sup__buf_append(b, "null", 4);
    const sup_slot *w = NULL;
    if (a->r && a->r->slot >= 0 && a->r->slot < s->nslots && s->slots) w = &s->slots[a->r->slot];
    json_key(b, "worker");
    if (w)
        sup__buf_append(b, num, (size_t)snprintf(num, sizeof num, "%d", w->index));
    else
        sup__buf_append(b, "null", 4);
    json_key(b, "tier");
    const char *tier = w ? (w->mode[0] ? w->mode : w->cek ? "cek" : "jit") : NULL;
    esc_json(b, tier, tier ? strlen(tier) : 0, tier != NULL);
    json_key(b, "client_gone");
    sup__buf_append(b, a->client_gone ? "true" : "false", a->client_gone ? 4 : 5);
    sup__buf_append(b, "}\n", 2);
}

/* ---- the access log: the file ------------------------------------------------- */

static struct {
    int fd;                /* -1: no access log */
    bool own_fd;           /* opened from a path (not stdout) */
    bool json;             /* --access-log-format=json */
    char path[PATH_MAX];   /* empty for stdout */
    uv_loop_t *loop;       /* NULL until sup__access_start: writes are synchronous */
    sup_buf pending;       /* lines not yet handed to a write */
    sup_buf writing;       /* the batch being written */
    size_t write_off;      /* of writing, done so far */
    uv_fs_t req;           /* the write in flight, while busy */
    uv_buf_t buf;          /* what it writes */
    bool busy, reopen_due; /* a write is in flight; SIGUSR1 came meanwhile */
    uint64_t dropped;      /* lines dropped (memory, write errors) since the last warning */
    int last_err;          /* the last write error */
    uint64_t warn_ms;      /* when the last warning was logged */
} alog = {.fd = -1};

static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    return fd < 0 ? -errno : fd;
}

int sup__access_open(const char *path, bool json)
{
    alog.json = json;
    if (strcmp(path, "-") == 0) {
        alog.fd = STDOUT_FILENO;
        alog.own_fd = false;
        alog.path[0] = '\0';
        return 0;
    }
    if (strlen(path) >= sizeof alog.path) return -ENAMETOOLONG;
    int fd = open_log(path);
    if (fd < 0) return fd;
    alog.fd = fd;
    alog.own_fd = true;
    snprintf(alog.path, sizeof alog.path, "%s", path);
    return 0;
}

bool sup__access_enabled(void)
{
    return alog.fd >= 0;
}

bool sup__access_to_stdout(void)
{
    return alog.fd >= 0 && !alog.own_fd;
}

static void do_reopen(void)
{
    if (!alog.own_fd) return;
    int fd = open_log(alog.path);
    if (fd < 0) {
        sup__error("unable to reopen the access log %s: %s; still writing to the old file",
                   alog.path, strerror(-fd));
        return;
    }
    close(alog.fd);
    alog.fd = fd;
    sup__info("reopened the access log %s", alog.path);
}

static void submit(void);

static void on_written(uv_fs_t *req)
{
    ssize_t n = req->result;
    uv_fs_req_cleanup(req);
    if (n <= 0) {
        /* the batch is lost; counted and logged on the next tick */
        alog.last_err = n < 0 ? (int)n : -EIO;
        for (size_t i = alog.write_off; i < alog.writing.len; i++)
            alog.dropped += alog.writing.p[i] == '\n';
    } else if ((alog.write_off += (size_t)n) < alog.writing.len) {
        alog.busy = false;
        submit(); /* the rest of this batch */
        return;
    }
    alog.writing.len = 0;
    alog.write_off = 0;
    alog.busy = false;
    if (alog.reopen_due) {
        alog.reopen_due = false;
        do_reopen();
    }
    if (alog.pending.len >= ACCESS_FLUSH_AT) submit();
}

/* Hands writing[write_off..) to a thread, or, if writing is done, the
 * pending lines first. */
static void submit(void)
{
    if (alog.busy || !alog.loop) return;
    if (alog.write_off >= alog.writing.len) {
        if (alog.pending.len == 0) return;
        sup_buf t = alog.writing;
        alog.writing = alog.pending;
        alog.pending = t;
        alog.pending.len = 0;
        alog.write_off = 0;
    }
    alog.buf =
        uv_buf_init(alog.writing.p + alog.write_off, (unsigned)(alog.writing.len - alog.write_off));
    int err = uv_fs_write(alog.loop, &alog.req, alog.fd, &alog.buf, 1, -1, on_written);
    if (err != 0) {
        alog.last_err = err;
        for (size_t i = alog.write_off; i < alog.writing.len; i++)
            alog.dropped += alog.writing.p[i] == '\n';
        alog.writing.len = alog.write_off = 0;
        return;
    }
    alog.busy = true;
}

void sup__access_start(uv_loop_t *loop)
{
    alog.loop = loop;
}

void sup__access_log(sup_server *s, const sup_access *a)
{
    if (alog.fd < 0) return;
    if (alog.pending.len >= ACCESS_MAX_PENDING) {
        alog.dropped++;
        return;
    }
    access_fields f;
    gather(s, a, &f);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    size_t before = alog.pending.len;
    if (alog.json)
        line_json(&alog.pending, s, a, &f, &ts);
    else
        line_combined(&alog.pending, s, a, &f, &ts);
    /* out of memory part way: the line goes, never half of it */
    if (alog.pending.len == 0 || alog.pending.p[alog.pending.len - 1] != '\n') {
        alog.pending.len = before;
        alog.dropped++;
    }
    if (alog.pending.len >= ACCESS_FLUSH_AT) submit();
}

void sup__access_flush(uint64_t now)
{
    if (alog.fd < 0) return;
    submit();
    if (alog.dropped > 0 && (alog.warn_ms == 0 || now - alog.warn_ms >= SUP_LOG_EVERY_MS)) {
        sup__warn("access log: %llu line%s lost%s%s", (unsigned long long)alog.dropped,
                  alog.dropped == 1 ? "" : "s", alog.last_err ? ": " : " (writes too slow)",
                  alog.last_err ? uv_strerror(alog.last_err) : "");
        alog.dropped = 0;
        alog.last_err = 0;
        alog.warn_ms = now;
    }
}

void sup__access_reopen(void)
{
    if (alog.fd < 0) return;
    if (alog.busy)
        alog.reopen_due = true;
    else
        do_reopen();
}

/* Writes what is left, synchronously; the loop has ended. */
void sup__access_close(void)
{
    if (alog.fd < 0) return;
    const sup_buf *bufs[2] = {&alog.writing, &alog.pending};
    size_t offs[2] = {alog.write_off, 0};
    for (int i = 0; i < 2 && !alog.busy; i++) {
        size_t off = offs[i];
        while (off < bufs[i]->len) {
            ssize_t n = write(alog.fd, bufs[i]->p + off, bufs[i]->len - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                sup__error("unable to write the access log's last lines: %s",
                           n < 0 ? strerror(errno) : "nothing written");
                break;
            }
            off += (size_t)n;
        }
    }
    sup__buf_free(&alog.writing);
    sup__buf_free(&alog.pending);
    if (alog.own_fd) close(alog.fd);
    alog.fd = -1;
}
