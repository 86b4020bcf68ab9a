/* fuzz_sup_env.h: the supervisor's HTTP front end (supervisor/sup_http.c,
 * compiled in whole, byte for byte, static functions included) in a fake
 * world with no socket and no event loop, for fuzz_http.c and fuzz_record.c.
 *
 * sup_http.c talks to the outside through libuv, the pool (sup_pool.c), the
 * metrics (sup_admin.c) and the helpers of sup_main.c. All of them are
 * defined here instead, and libuv is not linked, so a call this file does
 * not fake is a link error rather than a real socket operation:
 *
 *   - uv_try_write takes nothing (UV_EAGAIN), so every response goes
 *     through uv_write, whole; the idle handle that finishes responses
 *     written at once is never started (a start is a failure).
 *   - uv_write appends the bytes to fz_out, checks that they are one
 *     well-formed response (fz_check_response) and queues its callback;
 *     uv_shutdown and uv_close queue theirs; fz_run_loop runs the queue in
 *     order, as libuv would on its next turn. Starting and stopping reads
 *     only succeed: sup_http.c keeps c->reading itself, and the harness
 *     delivers bytes only while it is set.
 *   - time is fz_now, moved by the harness (uv_now, uv_hrtime).
 *   - the pool keeps a submitted request in fz_pool until the harness
 *     answers it (fz_answer_pool) or the connection abandons it; at most one
 *     request may be outstanding per connection.
 *
 * Only one fake connection exists at a time. Broken properties print what
 * was seen and abort(), which libFuzzer records as a crash.
 */
#ifndef SXPOOL_FUZZ_SUP_ENV_H
#define SXPOOL_FUZZ_SUP_ENV_H

#include "supervisor/sup_http.c"

static _Noreturn void fz_fail(const char *what)
{
    fprintf(stderr, "fuzz: %s\n", what);
    abort();
}

/* ---- sup_main.c's helpers ---------------------------------------------------- */

void sup__logf(int level, const char *fmt, ...)
{
    if (!getenv("FUZZ_VERBOSE")) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%d sxpool: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* The access log is on, so sup_http.c gathers what it says: a line must
 * name a status, and a request it names must not be freed yet (ASan). */
bool sup__access_enabled(void)
{
    return true;
}

void sup__access_log(sup_server *s, const sup_access *a)
{
    if (a->status < 100 || a->status > 599) fz_fail("an access log line with a bad status");
    if (a->line_len > sizeof((sup_conn *)0)->rline) fz_fail("an access log request line too long");
    volatile size_t sink = a->line_len ? (size_t)(unsigned char)a->line[a->line_len - 1] : 0;
    if (a->r) sink += a->r->url.len + a->r->hdata.len + (size_t)a->r->nheaders;
    (void)sink;
}

int sup__buf_append(sup_buf *b, const void *src, size_t n)
{
    if (n == 0) return 0;
    if (b->len + n < b->len) return -ENOMEM;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
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

/* ---- metrics and the pool ---------------------------------------------------------- */

void sup__metrics_response(sup_server *s, const sup_request *r, int status)
{
    if (status < 100 || status > 599) fz_fail("a response status outside 100..599");
}

static sup_request *fz_pool; /* the submitted request, until answered or abandoned */
static int fz_submitted;
static bool fz_pool_answering; /* inside fz_answer_pool: an app's status, any */

void sup__pool_submit(sup_server *s, sup_request *r)
{
    if (fz_pool) fz_fail("a second request submitted while one is outstanding");
    if (!r->conn || r->conn->inflight != r) fz_fail("a submitted request is not in flight");
    if (!r->method || r->path_off + r->path_len > r->url.len || r->query_off > r->url.len)
        fz_fail("a submitted request has no method or a path outside its target");
    fz_pool = r;
    fz_submitted++;
}

void sup__pool_abandon(sup_server *s, sup_request *r)
{
    if (r != fz_pool) fz_fail("abandoned a request the pool does not hold");
    fz_pool = NULL;
    sup__request_free(r);
}

int sup__pool_ready(const sup_server *s)
{
    return 1;
}

int sup__pool_slot_count(const sup_config *cfg)
{
    return 1;
}

/* Answers the outstanding request, as a worker's reply would. @return 1 if
 * there was one */
__attribute__((unused)) static int fz_answer_pool(int status, bool with_headers)
{
    static const char n1[] = "content-type", v1[] = "text/plain", n2[] = "x-app", v2[] = "1";
    ipc_field h[4] = {
        {n1, sizeof n1 - 1}, {v1, sizeof v1 - 1}, {n2, sizeof n2 - 1}, {v2, sizeof v2 - 1}};
    sup_request *r = fz_pool;
    if (!r) return 0;
    fz_pool = NULL;
    fz_pool_answering = true;
    sup__http_respond(r, status, h, with_headers ? 4 : 0, "answer\n", 7);
    fz_pool_answering = false;
    return 1;
}

/* ---- what was written ---------------------------------------------------------------- */

static sup_buf fz_out;     /* every byte written to the client */
static int fz_responses;   /* final responses written */
static bool fz_close_sent; /* a W_CLOSE response was written: nothing may follow */
static int fz_last_status; /* of the last final response */

static bool fz_is_tchar(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Checks that p[0..n) is one response: a status line, field lines that
 * cannot break the framing, one Connection field saying what action does,
 * a Content-Length exactly when the status has a body, and then either
 * that many bytes or none (HEAD). @return the status */
static int fz_check_response(const char *p, size_t n, enum write_action action)
{
    if (n < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[12] != ' ')
        fz_fail("a response without a status line");
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9') fz_fail("a status that is not three digits");
        status = status * 10 + (p[i] - '0');
    }
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    if (!end) fz_fail("a response head without its empty line");
    size_t head = (size_t)(end - p) + 4;
    if (action == W_INTERIM) {
        if (status != 100 || head != n) fz_fail("an interim response that is not a bare 100");
        return status;
    }
    const char *line = memchr(p, '\n', n) + 1;
    int conn = 0, cls = 0;
    long long cl = -1;
    while (line < p + head - 2) {
        const char *eol = memchr(line, '\n', (size_t)(p + head - line));
        if (!eol || eol[-1] != '\r') fz_fail("a field line not ended by CRLF");
        const char *colon = memchr(line, ':', (size_t)(eol - line));
        if (!colon || colon == line) fz_fail("a field line without a name");
        for (const char *q = line; q < colon; q++)
            if (!fz_is_tchar((unsigned char)*q)) fz_fail("a field name with a non-token byte");
        for (const char *q = colon + 1; q < eol - 1; q++)
            if (*q == '\r' || *q == '\n' || *q == '\0') fz_fail("a field value with CR, LF or NUL");
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vl = (size_t)(eol - 1 - v);
        while (vl > 0 && *v == ' ')
            v++, vl--;
        if (nl == 10 && strncasecmp(line, "connection", 10) == 0) {
            conn++;
            cls = vl == 5 && memcmp(v, "close", 5) == 0;
            if (!cls && !(vl == 10 && memcmp(v, "keep-alive", 10) == 0))
                fz_fail("a Connection field that is neither close nor keep-alive");
        } else if (nl == 14 && strncasecmp(line, "content-length", 14) == 0) {
            if (cl >= 0) fz_fail("two Content-Length fields");
            cl = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') fz_fail("a Content-Length that is not a number");
                cl = cl * 10 + (v[i] - '0');
            }
        } else if (nl == 17 && strncasecmp(line, "transfer-encoding", 17) == 0)
            fz_fail("a Transfer-Encoding field in a response");
        line = eol + 1;
    }
    if (conn != 1) fz_fail("not exactly one Connection field");
    if (cls != (action == W_CLOSE)) fz_fail("the Connection field does not say what is done");
    bool bodiless = status < 200 || status == 204 || status == 304;
    if (bodiless != (cl < 0)) fz_fail("a Content-Length where none belongs, or none where due");
    size_t body = n - head;
    if (bodiless ? body != 0 : (body != 0 && (long long)body != cl))
        fz_fail("the body is not as long as its Content-Length");
    return status;
}

/* ---- libuv, faked --------------------------------------------------------------------- */

static uint64_t fz_now = 1000;

uint64_t uv_now(const uv_loop_t *loop)
{
    return fz_now;
}

uint64_t uv_hrtime(void)
{
    return fz_now * 1000000u;
}

enum fz_kind { FZ_WRITE, FZ_SHUTDOWN, FZ_CLOSE };
typedef struct fz_event {
    enum fz_kind kind;
    void *req;
    union {
        uv_write_cb w;
        uv_shutdown_cb s;
        uv_close_cb c;
    } cb;
} fz_event;

#define FZ_MAX_EVENTS 64 /* callbacks queued at once; more means something piles up */
static fz_event fz_events[FZ_MAX_EVENTS];
static int fz_nevents;

static void fz_queue(enum fz_kind kind, void *req, void (*cb)(void))
{
    if (fz_nevents == FZ_MAX_EVENTS) fz_fail("callbacks pile up (writes, shutdowns, closes)");
    fz_event *e = &fz_events[fz_nevents++];
    e->kind = kind;
    e->req = req;
    memcpy(&e->cb, &cb, sizeof cb);
}

/* Runs the queued callbacks, and those they queue. @return how many ran */
static int fz_run_loop(void)
{
    int ran = 0;
    while (fz_nevents > 0) {
        fz_event e = fz_events[0];
        memmove(fz_events, fz_events + 1, (size_t)(--fz_nevents) * sizeof *fz_events);
        switch (e.kind) {
        case FZ_WRITE: e.cb.w(e.req, 0); break;
        case FZ_SHUTDOWN: e.cb.s(e.req, 0); break;
        case FZ_CLOSE: e.cb.c(e.req); break;
        }
        ran++;
    }
    return ran;
}

int uv_write(uv_write_t *req, uv_stream_t *handle, const uv_buf_t bufs[], unsigned int nbufs,
             uv_write_cb cb)
{
    const sup_write *wr = (const sup_write *)req;
    if (nbufs != 1) fz_fail("a response in more than one buffer");
    if (wr->c->closing) fz_fail("a write on a closing connection");
    if (fz_close_sent) fz_fail("a write after the response that closes the connection");
    int status = fz_check_response(bufs[0].base, bufs[0].len, wr->action);
    if (wr->action != W_INTERIM) {
        fz_responses++;
        fz_last_status = status;
        if (wr->action == W_CLOSE) fz_close_sent = true;
        /* the server's own error answers (not an app's) close the connection */
        if (status >= 400 && !fz_pool_answering && wr->action != W_CLOSE)
            fz_fail("an error response that keeps the connection open");
    }
    if (sup__buf_append(&fz_out, bufs[0].base, bufs[0].len) != 0) fz_fail("out of memory");
    fz_queue(FZ_WRITE, req, (void (*)(void))cb);
    return 0;
}

int uv_try_write(uv_stream_t *handle, const uv_buf_t bufs[], unsigned int nbufs)
{
    return UV_EAGAIN;
}

int uv_idle_init(uv_loop_t *loop, uv_idle_t *idle)
{
    fz_fail("uv_idle_init, though uv_try_write never wrote anything");
}

int uv_idle_start(uv_idle_t *idle, uv_idle_cb cb)
{
    fz_fail("uv_idle_start, though uv_try_write never wrote anything");
}

int uv_idle_stop(uv_idle_t *idle)
{
    fz_fail("uv_idle_stop, though uv_try_write never wrote anything");
}

int uv_shutdown(uv_shutdown_t *req, uv_stream_t *handle, uv_shutdown_cb cb)
{
    fz_queue(FZ_SHUTDOWN, req, (void (*)(void))cb);
    return 0;
}

void uv_close(uv_handle_t *handle, uv_close_cb cb)
{
    fz_queue(FZ_CLOSE, handle, (void (*)(void))cb);
}

int uv_read_start(uv_stream_t *st, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    return 0;
}

int uv_read_stop(uv_stream_t *st)
{
    return 0;
}

uv_buf_t uv_buf_init(char *base, unsigned int len)
{
    uv_buf_t b;
    b.base = base;
    b.len = len;
    return b;
}

int uv_tcp_init(uv_loop_t *loop, uv_tcp_t *h)
{
    memset(h, 0, sizeof *h);
    return 0;
}

int uv_tcp_open(uv_tcp_t *h, uv_os_sock_t sock)
{
    return 0;
}

int uv_tcp_nodelay(uv_tcp_t *h, int enable)
{
    return 0;
}

/* Not reached: the harness never listens. */
int uv_poll_init_socket(uv_loop_t *loop, uv_poll_t *h, uv_os_sock_t s)
{
    fz_fail("uv_poll_init_socket called");
}

int uv_poll_start(uv_poll_t *h, int events, uv_poll_cb cb)
{
    fz_fail("uv_poll_start called");
}

int uv_poll_stop(uv_poll_t *h)
{
    fz_fail("uv_poll_stop called");
}

int uv_ip4_name(const struct sockaddr_in *src, char *dst, size_t size)
{
    fz_fail("uv_ip4_name called");
}

int uv_ip6_name(const struct sockaddr_in6 *src, char *dst, size_t size)
{
    fz_fail("uv_ip6_name called");
}

const char *uv_strerror(int err)
{
    return "fake error";
}

const char *uv_err_name(int err)
{
    return "EFAKE";
}

/* ---- the fake server and connection ---------------------------------------------------- */

static sup_server fz_srv;

/* A fresh server (max_body as given) and one connection, opened by the real
 * conn_open. */
static sup_conn *fz_open(size_t max_body)
{
    memset(&fz_srv, 0, sizeof fz_srv);
    fz_srv.cfg.max_body = max_body;
    fz_srv.cfg.header_timeout_ms = SUP_HEADER_TIMEOUT_MS;
    fz_srv.cfg.body_timeout_ms = SUP_BODY_TIMEOUT_MS;
    fz_srv.cfg.keepalive_ms = SUP_KEEPALIVE_TIMEOUT_MS;
    fz_srv.max_conns = 16;
    fz_srv.listen_fd = -1;
    fz_srv.stop = STOP_NONE;
    fz_now = 1000;
    fz_nevents = 0;
    fz_pool = NULL;
    fz_submitted = fz_responses = fz_last_status = 0;
    fz_close_sent = false;
    fz_out.len = 0;
    conn_open(&fz_srv, -1);
    if (!fz_srv.conns || fz_srv.nconns != 1) fz_fail("conn_open made no connection");
    return fz_srv.conns;
}

#endif
