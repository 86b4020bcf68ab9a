/* sup_http.c: the HTTP/1.1 front end: the listening socket, connections,
 * request parsing with llhttp, limits, and writing responses.
 *
 * Runs on the supervisor's loop thread only.
 *
 * A connection has at most one request outstanding. When llhttp completes a
 * message, on_message_complete pauses the parser; bytes behind that message
 * wait in c->pending. The request goes to the pool (or is answered here:
 * errors, and /healthz: 200 "ok" while a worker of either kind is ready,
 * else 503 "no ready worker"). Once its response has been written, the
 * parser resumes on the pending bytes. Reading goes on while the request
 * waits, so a client that closes or resets its connection is seen at once
 * and its request, if still queued, is dropped unrun (sup__pool_abandon; a
 * half-close counts as leaving); what it sends meanwhile is kept in
 * c->pending up to MAX_PENDING, where reading stops until the response is
 * written. So pipelined requests are answered in order, and a client that
 * does not read its responses cannot make the server buffer without bound.
 *
 * Accepting: the listening socket is polled and accepted here (accept4),
 * not by uv_listen, whose EMFILE handling closes clients unseen. Client
 * connections are capped at max_conns, RLIMIT_NOFILE less a reserve for
 * the server and its worker slots (SUP_FD_RESERVE_BASE, SUP_FDS_PER_SLOT),
 * so a respawn always finds its descriptors. At the cap, or when accept
 * fails (EMFILE, ENFILE, ENOMEM...), the listener is no longer polled:
 * new clients wait in the kernel's backlog. Accepting resumes when a
 * connection closes, and after an accept error also every
 * ACCEPT_RETRY_MS. Both are logged at most once per SUP_LOG_EVERY_MS, with
 * a count.
 *
 * Limits: request line + headers SUP_MAX_HEADER_BYTES and SUP_MAX_HEADERS
 * lines (431), body cfg.max_body (413, checked against Content-Length
 * before reading the body, and while reading a chunked one).
 *
 * Timeouts (c->deadline_ms, checked by sup__http_housekeeping): a new
 * connection must begin a request within cfg.header_timeout_ms, and an
 * idle kept-alive one within cfg.keepalive_ms, else it is closed without
 * a word; a request's head must be complete within cfg.header_timeout_ms
 * of its first byte, and its whole body within cfg.body_timeout_ms of the
 * end of the head (one deadline for the body, not one per read: a byte
 * every few seconds cannot hold a connection), else 408 and close; a
 * response must be taken within SUP_SEND_TIMEOUT_MS.
 *
 * Malformed HTTP gets 400 (see "strict framing" below for what malformed
 * means; 501 for an unknown method or transfer coding, 505 for an HTTP
 * version other than 1.0 and 1.1, 414 for a request target longer than
 * MAX_TARGET_BYTES). A chunked body's trailer fields are checked, then
 * dropped: they never reach the request's headers. Every error answer
 * closes the connection: the response is written, our side is shut down,
 * and the remaining input is read and discarded for up to SUP_LINGER_MS so
 * the client sees the response rather than a reset.
 *
 * Access log: every answer is logged (sup__access_log), the connection's
 * own (errors, 408) with the request line as far as it was read (c->rline,
 * kept by scan(), the rest of a refused line included).
 *
 * Memory: a sup_conn is freed only in its close callback; write requests
 * own their buffers. A request being parsed belongs to its connection; a
 * submitted one (c->inflight) belongs to the pool, which answers it through
 * sup__http_respond even after the connection is gone (r->conn == NULL),
 * unless it was still queued: then conn_close has the pool drop it.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <llhttp.h>

#include "supervisor/sup_internal.h"

#define READ_BUF_SIZE 65536
#define MAX_TARGET_BYTES 8192 /* request target; above: 414 */
#define MAX_LEADING_CRLF 64   /* empty-line bytes tolerated before a request */
#define MAX_CHUNK_LINE 4096   /* chunk size line with its extensions */
#define MAX_PENDING 65536     /* input kept behind an outstanding request; then reading stops */
#define ACCEPT_BATCH 64       /* connections accepted per wake-up of the listener */
#define ACCEPT_RETRY_MS 250   /* accept failed: poll the listener again after */

/* Why the listener is not polled (sup_server.accept_paused). */
enum accept_pause {
    ACCEPT_ON,    /* polled */
    ACCEPT_CAP,   /* max_conns connections are open */
    ACCEPT_ERROR, /* accept failed (EMFILE, ENFILE...); retried at accept_retry_ms */
};

typedef struct sup_conn {
    uv_tcp_t tcp;
    uv_shutdown_t shutdown_req;
    sup_server *srv;
    struct sup_conn *prev, *next;
    llhttp_t parser;
    sup_request *cur;      /* being parsed; owned here */
    sup_request *inflight; /* submitted; owned by the pool */
    size_t header_bytes;
    uint32_t name_off, value_off; /* header being parsed, within cur->hdata */
    bool in_name;
    int fail_status; /* set by a parser callback that rejects the request */
    const char *fail_text;
    bool paused;      /* the parser stopped after a complete request */
    bool reading;     /* uv_read_start is in effect */
    bool finishing;   /* the last response is queued; no more requests */
    bool close_after; /* close after the response now outstanding */
    bool lingering;   /* shut down; discarding input until EOF */
    bool closing;     /* uv_close called */
    char *pending;    /* bytes read after the paused request */
    size_t pending_len;
    uint64_t deadline_ms; /* 0: none */
    int writes;           /* writes not finished: uv_write requests and written-at-once ones */
    bool handle_closed;   /* on_conn_closed ran; freed once writes is 0 */
    /* The strict framing check (see "strict framing" below). */
    uint8_t sc_state;       /* enum scan_state */
    uint8_t sc_sub;         /* position in "HTTP/d.d", or the target's form */
    uint8_t sc_major;       /* the version's major digit */
    bool sc_trailers;       /* the field lines are a chunked body's trailers */
    bool sc_semicolon;      /* a chunk line's extensions have begun */
    uint32_t sc_count;      /* bytes of the current chunk line or section */
    uint64_t sc_chunk_left; /* chunk data still to come */
    char remote[48];        /* the client's address, for the access log */
    char rline[256];        /* the request line as scanned so far (its start), for the log */
    uint16_t rline_len;
    const char *feed_end; /* end of the buffer llhttp is running over */
    const char *head_end; /* in that buffer: just past the head's empty line */
    bool in_trailers;     /* llhttp is past the headers: fields are dropped */
} sup_conn;

enum write_action {
    W_INTERIM, /* 100 Continue: nothing to do when written */
    W_KEEP,    /* response; then the next request */
    W_CLOSE,   /* response; then close */
};

typedef struct sup_write {
    uv_write_t req;
    struct sup_write *next_done; /* in the written-at-once list */
    sup_conn *c;
    char *buf; /* owned; NULL for static bytes */
    enum write_action action;
} sup_write;

static char read_buf[READ_BUF_SIZE]; /* data is consumed or copied in on_read */

void sup__request_free(sup_request *r)
{
    if (!r) return;
    sup__buf_free(&r->url);
    sup__buf_free(&r->hdata);
    sup__buf_free(&r->body);
    free(r->headers);
    free(r->shadow.frame);
    free(r->shadow.natives);
    free(r);
}

static uint64_t now_ms(sup_conn *c)
{
    return uv_now(c->srv->loop);
}

/* ---- closing ------------------------------------------------------------------ */

static void resume_accepting(sup_server *s);

static void on_conn_closed(uv_handle_t *h)
{
    sup_conn *c = h->data;
    sup_server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    c->handle_closed = true;
    if (c->writes == 0) free(c); /* else when its written-at-once writes finish */
    resume_accepting(s);         /* a descriptor is free now */
}

static void conn_close(sup_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->inflight) { /* dropped if queued; if running, answered to nobody */
        sup_request *r = c->inflight;
        r->conn = NULL;
        c->inflight = NULL;
        sup__pool_abandon(c->srv, r);
    }
    sup__request_free(c->cur);
    c->cur = NULL;
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    sup_conn *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    c->deadline_ms = now_ms(c) + SUP_LINGER_MS;
}

/* Our side is done: shut down writing, discard input until EOF or timeout. */
static void conn_linger(sup_conn *c)
{
    if (c->closing || c->lingering) return;
    c->lingering = true;
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    c->shutdown_req.data = c;
    c->deadline_ms = now_ms(c) + SUP_LINGER_MS;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

/* ---- writing ------------------------------------------------------------------ */

static void conn_resume(sup_conn *c);

/* ---- writing ------------------------------------------------------------------
 *
 * A response goes out with uv_try_write when nothing is queued before it, as
 * it nearly always is: written whole, it is finished on the loop's next turn
 * (the idle handle), as uv_write would finish it, but without libuv's
 * POLLOUT bookkeeping, which costs an epoll_ctl per response. What the
 * socket does not take at once goes through uv_write. Either way the
 * connection counts the write in c->writes until it is finished, and is
 * not freed before (on_conn_closed). */

static void write_done(sup_write *wr, int status)
{
    sup_conn *c = wr->c;
    enum write_action action = wr->action;
    free(wr->buf);
    free(wr);
    c->writes--;
    if (c->handle_closed) {
        if (c->writes == 0) free(c);
        return;
    }
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (action == W_INTERIM) return;
    if (action == W_CLOSE || c->close_after || c->srv->stop != STOP_NONE)
        conn_linger(c);
    else
        conn_resume(c);
}

static void on_write(uv_write_t *req, int status)
{
    write_done((sup_write *)req, status);
}

static void on_writes_done(uv_idle_t *idle)
{
    sup_server *s = idle->data;
    sup_write *wr = s->wdone_head;
    s->wdone_head = s->wdone_tail = NULL;
    uv_idle_stop(idle);
    while (wr) {
        sup_write *next = wr->next_done;
        write_done(wr, 0);
        wr = next;
    }
}

/* wr was written whole: it finishes on the loop's next turn. */
static int defer_done(sup_server *s, sup_write *wr)
{
    if (!s->wdone_open) {
        int err = uv_idle_init(s->loop, &s->wdone_idle);
        if (err != 0) return err;
        s->wdone_idle.data = s;
        s->wdone_open = true;
    }
    if (!s->wdone_head) {
        int err = uv_idle_start(&s->wdone_idle, on_writes_done);
        if (err != 0) return err;
    }
    wr->next_done = NULL;
    if (s->wdone_tail)
        s->wdone_tail->next_done = wr;
    else
        s->wdone_head = wr;
    s->wdone_tail = wr;
    return 0;
}

/* Ends the written-at-once writes still waiting (the server stops), then
 * the idle handle. */
static void close_writes_done(sup_server *s)
{
    sup_write *wr = s->wdone_head;
    s->wdone_head = s->wdone_tail = NULL;
    while (wr) {
        sup_write *next = wr->next_done;
        write_done(wr, UV_ECANCELED);
        wr = next;
    }
    if (s->wdone_open) {
        s->wdone_open = false;
        uv_close((uv_handle_t *)&s->wdone_idle, NULL);
    }
}

/* Writes or queues buf (owned when `owned`). On failure the connection is
 * closed. */
static void conn_write(sup_conn *c, char *buf, size_t len, bool owned, enum write_action action)
{
    sup_write *wr = malloc(sizeof *wr);
    if (!wr) {
        if (owned) free(buf);
        conn_close(c);
        return;
    }
    wr->c = c;
    wr->buf = owned ? buf : NULL;
    wr->action = action;
    uv_buf_t ub = uv_buf_init(buf, (unsigned int)len);
    int err = 0, n = UV_EAGAIN;
    if (c->writes == 0) n = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
    if (n >= 0 && (size_t)n == len) {
        err = defer_done(c->srv, wr);
    } else if (n >= 0 || n == UV_EAGAIN) {
        if (n > 0) {
            ub.base += n;
            ub.len -= (size_t)n;
        }
        err = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &ub, 1, on_write);
    } else {
        err = n;
    }
    if (err != 0) {
        free(wr->buf);
        free(wr);
        conn_close(c);
        return;
    }
    c->writes++;
    if (action != W_INTERIM) {
        /* A client that does not take its response is dropped in time. */
        c->deadline_ms = now_ms(c) + SUP_SEND_TIMEOUT_MS;
        if (action == W_CLOSE) c->finishing = true;
    }
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    }
    if (status < 200) return "Informational";
    if (status < 300) return "Success";
    if (status < 400) return "Redirection";
    if (status < 500) return "Client Error";
    return "Server Error";
}

static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A handler's header is written only if it cannot break the framing. */
static bool header_ok(const ipc_field *name, const ipc_field *value)
{
    if (name->len == 0) return false;
    for (uint32_t i = 0; i < name->len; i++)
        if (!is_tchar((unsigned char)name->p[i])) return false;
    for (uint32_t i = 0; i < value->len; i++)
        if (value->p[i] == '\r' || value->p[i] == '\n' || value->p[i] == '\0') return false;
    return true;
}

static bool name_is(const ipc_field *name, const char *lit)
{
    size_t n = strlen(lit);
    return name->len == n && strncasecmp(name->p, lit, n) == 0;
}

static int append_str(sup_buf *b, const char *s)
{
    return sup__buf_append(b, s, strlen(s));
}

static bool header_passed(const ipc_field *n, const ipc_field *v)
{
    return !name_is(n, "content-length") && !name_is(n, "transfer-encoding") &&
           !name_is(n, "connection") && header_ok(n, v);
}

static void conn_send(sup_conn *c, int status, const ipc_field *hdrs, int nhdr_fields,
                      const char *body, size_t len, bool head, bool keep)
{
    static const char keep_line[] = "connection: keep-alive\r\n\r\n",
                      close_line[] = "connection: close\r\n\r\n";
    bool bodiless = status < 200 || status == 204 || status == 304;
    bool with_body = !bodiless && !head;
    /* sized first: one allocation per response */
    const char *reason = reason_phrase(status);
    size_t need = 32 + strlen(reason) + 40 + sizeof keep_line + (with_body ? len : 0);
    for (int i = 0; i + 1 < nhdr_fields; i += 2)
        need += hdrs[i].len + hdrs[i + 1].len + 4;
    sup_buf b = {0};
    if (need < len || !(b.p = malloc(need))) {
        sup__error("unable to build a %d response: out of memory; closing the connection", status);
        conn_close(c);
        return;
    }
    b.cap = need;
    char num[24];
    sup__buf_append(&b, "HTTP/1.1 ", 9);
    sup__buf_append(&b, num, ipc_fmt_u64(num, (uint64_t)status));
    sup__buf_append(&b, " ", 1);
    append_str(&b, reason);
    sup__buf_append(&b, "\r\n", 2);
    for (int i = 0; i + 1 < nhdr_fields; i += 2) {
        const ipc_field *n = &hdrs[i], *v = &hdrs[i + 1];
        if (!header_passed(n, v)) continue;
        sup__buf_append(&b, n->p, n->len);
        sup__buf_append(&b, ": ", 2);
        sup__buf_append(&b, v->p, v->len);
        sup__buf_append(&b, "\r\n", 2);
    }
    if (!bodiless) {
        sup__buf_append(&b, "content-length: ", 16);
        sup__buf_append(&b, num, ipc_fmt_u64(num, (uint64_t)len));
        sup__buf_append(&b, "\r\n", 2);
    }
    if (keep)
        sup__buf_append(&b, keep_line, sizeof keep_line - 1);
    else
        sup__buf_append(&b, close_line, sizeof close_line - 1);
    if (with_body) sup__buf_append(&b, body, len);
    conn_write(c, b.p, b.len, true, keep ? W_KEEP : W_CLOSE);
}

static void conn_send_text(sup_conn *c, int status, const char *text, bool head, bool keep)
{
    static const char ct_name[] = "content-type", ct_value[] = "text/plain; charset=utf-8";
    ipc_field hdr[2] = {{ct_name, sizeof ct_name - 1}, {ct_value, sizeof ct_value - 1}};
    conn_send(c, status, hdr, 2, text, strlen(text), head, keep);
}

/* Body bytes a response with status carries (none for HEAD). */
static size_t body_bytes(int status, bool head, size_t len)
{
    return head || status < 200 || status == 204 || status == 304 ? 0 : len;
}

/* An access log line for the answer the connection gives itself (an error
 * or a timeout), with what was read of the request. */
static void log_conn_answer(sup_conn *c, int status, size_t bytes)
{
    if (!sup__access_enabled()) return;
    sup_access a = {.r = c->cur,
                    .remote = c->remote,
                    .line = c->rline,
                    .line_len = c->rline_len,
                    .status = status,
                    .bytes = bytes};
    sup__access_log(c->srv, &a);
}

void sup__http_respond(sup_request *r, int status, const ipc_field *hdrs, int nhdr_fields,
                       const char *body, size_t len)
{
    sup_conn *c = r->conn;
    if (r->shadow.verify) { /* a verify-only shadow run: its client was answered before */
        sup__request_free(r);
        return;
    }
    sup__metrics_response(r->srv, r, status);
    bool sent = c && c->inflight == r && !c->closing;
    if (sup__access_enabled()) {
        sup_access a = {.r = r,
                        .remote = r->remote,
                        .status = status,
                        .bytes = sent ? body_bytes(status, r->head, len) : 0,
                        .client_gone = !sent};
        sup__access_log(r->srv, &a);
    }
    if (sent) {
        c->inflight = NULL;
        bool keep = r->keep_alive && !c->close_after && c->srv->stop == STOP_NONE &&
                    c->srv->cfg.keepalive_ms > 0;
        conn_send(c, status, hdrs, nhdr_fields, body, len, r->head, keep);
        ipc_stage(r->id, STAGE_WRITTEN, 0);
    }
    sup__request_free(r);
}

void sup__http_respond_text(sup_request *r, int status, const char *text)
{
    static const char ct_name[] = "content-type", ct_value[] = "text/plain; charset=utf-8";
    ipc_field hdr[2] = {{ct_name, sizeof ct_name - 1}, {ct_value, sizeof ct_value - 1}};
    sup__http_respond(r, status, hdr, 2, text, strlen(text));
}

/* ---- rejecting a request ---------------------------------------------------------- */

static int reject(sup_conn *c, int status, const char *text)
{
    c->fail_status = status;
    c->fail_text = text;
    return -1;
}

static int count_header_bytes(sup_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > SUP_MAX_HEADER_BYTES)
        return reject(c, 431, "request header fields too large\n");
    return 0;
}

/* ---- strict framing -------------------------------------------------------------- */

/* llhttp (8.1.0, built without LLHTTP_STRICT_MODE; its lenient flags are
 * all off) still accepts things that let two parsers disagree about where a
 * request ends or what it says: any two bytes where the CRLF after chunk
 * data belongs, bare LF line ends, obs-fold, whitespace before a colon, an
 * empty header name, a request line without a version (HTTP/0.9), and
 * control or non-ASCII bytes in the request target. So every byte of the
 * head (request line and header lines) and of a chunked body (chunk lines,
 * chunk data's CRLF, the trailer section) also goes through scan(), a
 * state machine of the RFC 9112 grammar, before llhttp sees it. It only
 * checks; llhttp still parses. A request it rejects gets 400 (505 for an
 * unsupported version, 431 for a trailer section over the header limit).
 *
 * scan() runs over each buffer in feed() until the head is complete; which
 * framing follows is llhttp's decision, so on_headers_complete scans the
 * rest of the buffer when the body is chunked (SC_BODY otherwise: llhttp
 * counts a Content-Length body). It stops at the end of the message (the
 * rest of the buffer comes back as c->pending), and on_message_complete
 * resets it for the next request. The checks of what the header fields say
 * (Host, Transfer-Encoding) are in check_head. */
enum scan_state {
    SC_START,    /* before the request line: only empty lines (CRLF) */
    SC_START_LF, /* CR seen there */
    SC_METHOD,
    SC_TARGET0, /* first byte of the request target */
    SC_TARGET,
    SC_VERSION, /* sc_sub bytes of "HTTP/d.d" seen */
    SC_LINE_LF, /* CR after the version */
    SC_FIELD,   /* start of a field line, or of the empty line */
    SC_NAME,
    SC_VALUE,
    SC_VALUE_LF,
    SC_END_LF,    /* CR of the empty line seen */
    SC_HEAD_DONE, /* waiting for llhttp's on_headers_complete */
    SC_BODY,      /* not chunked: nothing to check until the next request */
    SC_CSIZE0,    /* first hex digit of a chunk size */
    SC_CSIZE,
    SC_CEXT,     /* after the size: BWS, then ";" extensions */
    SC_CSIZE_LF, /* CR of the chunk line seen */
    SC_DATA,
    SC_DATA_CR, /* chunk data done: CRLF must follow */
    SC_DATA_LF,
    SC_DONE, /* message complete; llhttp pauses at its end */
};

/* The request target's form, in sc_sub while in SC_TARGET. */
enum target_form { T_ORIGIN, T_ASTERISK, T_SCHEME, T_ABSOLUTE, T_PCT1, T_PCT2 };

static bool is_alpha(unsigned char ch)
{
    return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
}

static bool is_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static int hex_value(unsigned char ch)
{
    if (ch <= '9') return ch - '0';
    return (ch | 0x20) - 'a' + 10;
}

/* RFC 3986: unreserved, sub-delims, ":" "@" "/" "?" and "[" "]" (an IPv6
 * literal in the absolute form); "%" is checked by the caller. */
static bool is_target_char(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != 0 && strchr("-._~!$&'()*+,;=:@/?[]", ch) != NULL;
}

/* field-value bytes: VCHAR, obs-text, SP, HTAB */
static bool is_field_char(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || (ch >= 0x21 && ch != 0x7f);
}

/* One byte of the request target; sc_sub is its form so far. */
static int scan_target(sup_conn *c, unsigned char ch)
{
    switch (c->sc_sub) {
    case T_PCT1:
    case T_PCT2:
        if (!is_hex(ch)) return reject(c, 400, "bad percent-encoding in the request target\n");
        c->sc_sub = c->sc_sub == T_PCT1 ? T_PCT2 : T_ABSOLUTE;
        return 0;
    case T_ASTERISK: return reject(c, 400, "invalid request target\n");
    case T_SCHEME:
        if (ch == ':') {
            c->sc_sub = T_ABSOLUTE;
            return 0;
        }
        if ((ch >= '0' && ch <= '9') || is_alpha(ch) || ch == '+' || ch == '-' || ch == '.')
            return 0;
        return reject(c, 400, "invalid request target\n");
    }
    if (ch == '%') {
        c->sc_sub = T_PCT1;
        return 0;
    }
    if (!is_target_char(ch)) return reject(c, 400, "invalid character in the request target\n");
    return 0;
}

/* The first byte of the request target decides its form. */
static int scan_target0(sup_conn *c, unsigned char ch)
{
    if (ch == '/')
        c->sc_sub = T_ORIGIN;
    else if (ch == '*')
        c->sc_sub = T_ASTERISK;
    else if (is_alpha(ch))
        c->sc_sub = T_SCHEME;
    else if (ch == ' ')
        return reject(c, 400, "more than one space in the request line\n");
    else
        return reject(c, 400, "invalid request target\n");
    return 0;
}

/* One byte of "HTTP/d.d"; sc_sub of them seen. */
static int scan_version(sup_conn *c, unsigned char ch)
{
    static const char prefix[] = "HTTP/";
    unsigned i = c->sc_sub;
    bool ok = i < 5 ? ch == (unsigned char)prefix[i] : i == 6 ? ch == '.' : ch >= '0' && ch <= '9';
    if (!ok) {
        if (i == 0 && (ch == '\r' || ch == '\n'))
            return reject(c, 400, "request line without an HTTP version\n");
        return reject(c, 400, "invalid HTTP version\n");
    }
    if (i == 5) c->sc_major = (uint8_t)(ch - '0');
    if (i == 7 && (c->sc_major != 1 || (ch != '0' && ch != '1')))
        return reject(c, 505, "HTTP version not supported\n");
    c->sc_sub = (uint8_t)(i + 1);
    return 0;
}

/* One byte of a field line (a header or a trailer). */
static int scan_field(sup_conn *c, unsigned char ch)
{
    switch (c->sc_state) {
    case SC_FIELD:
        if (ch == '\r')
            c->sc_state = SC_END_LF;
        else if (ch == ' ' || ch == '\t')
            return reject(c, 400, "obsolete line folding or leading whitespace in a field line\n");
        else if (ch == ':')
            return reject(c, 400, "empty header field name\n");
        else if (is_tchar(ch))
            c->sc_state = SC_NAME;
        else if (ch == '\n')
            return reject(c, 400, "bare LF line ending\n");
        else
            return reject(c, 400, "invalid character in a header field name\n");
        return 0;
    case SC_NAME:
        if (ch == ':')
            c->sc_state = SC_VALUE;
        else if (ch == ' ' || ch == '\t')
            return reject(c, 400, "whitespace between a header field name and its colon\n");
        else if (!is_tchar(ch))
            return reject(c, 400, "invalid character in a header field name\n");
        return 0;
    case SC_VALUE:
        if (ch == '\r')
            c->sc_state = SC_VALUE_LF;
        else if (ch == '\n')
            return reject(c, 400, "bare LF line ending\n");
        else if (!is_field_char(ch))
            return reject(c, 400, "invalid character in a header field value\n");
        return 0;
    default: /* SC_VALUE_LF */
        if (ch != '\n') return reject(c, 400, "bare CR in a field line\n");
        c->sc_state = SC_FIELD;
        return 0;
    }
}

/* One byte of a chunk line (size, extensions, CRLF) or of chunk data's CRLF. */
static int scan_chunk_line(sup_conn *c, unsigned char ch)
{
    if (++c->sc_count > MAX_CHUNK_LINE) return reject(c, 400, "chunk line too long\n");
    switch (c->sc_state) {
    case SC_DATA_CR:
        if (ch != '\r') return reject(c, 400, "chunk data not followed by CRLF\n");
        c->sc_state = SC_DATA_LF;
        return 0;
    case SC_DATA_LF:
        if (ch != '\n') return reject(c, 400, "chunk data not followed by CRLF\n");
        c->sc_state = SC_CSIZE0;
        c->sc_count = 0;
        return 0;
    case SC_CSIZE0:
    case SC_CSIZE:
        if (is_hex(ch)) {
            if (c->sc_chunk_left > (UINT64_MAX >> 4))
                return reject(c, 400, "chunk size too large\n");
            c->sc_chunk_left = (c->sc_chunk_left << 4) | (uint64_t)hex_value(ch);
            c->sc_state = SC_CSIZE;
            return 0;
        }
        if (c->sc_state == SC_CSIZE0) return reject(c, 400, "invalid chunk size\n");
        if (ch == '\r') {
            c->sc_state = SC_CSIZE_LF;
            return 0;
        }
        c->sc_state = SC_CEXT;
        c->sc_semicolon = false;
        break; /* this byte begins the extensions (or is the CR) */
    case SC_CSIZE_LF:
        if (ch != '\n') return reject(c, 400, "bare CR in a chunk line\n");
        if (c->sc_chunk_left == 0) { /* the last chunk: the trailer section follows */
            c->sc_trailers = true;
            c->sc_state = SC_FIELD;
            c->sc_count = 0;
        } else
            c->sc_state = SC_DATA;
        return 0;
    default: break;
    }
    /* SC_CEXT */
    if (ch == '\r' && !c->sc_semicolon) return reject(c, 400, "whitespace after a chunk size\n");
    if (ch == '\r')
        c->sc_state = SC_CSIZE_LF;
    else if (ch == ';')
        c->sc_semicolon = true;
    else if (ch == '\n')
        return reject(c, 400, "bare LF line ending\n");
    else if (ch != ' ' && ch != '\t' && (!c->sc_semicolon || !is_field_char(ch)))
        return reject(c, 400, "invalid chunk extension\n");
    return 0;
}

/* One byte of the head, up to and including the LF of its empty line. */
static int scan_head(sup_conn *c, unsigned char ch)
{
    switch (c->sc_state) {
    case SC_START:
        if (++c->sc_count > MAX_LEADING_CRLF) return reject(c, 400, "too many empty lines\n");
        if (ch == '\r')
            c->sc_state = SC_START_LF;
        else if (is_tchar(ch))
            c->sc_state = SC_METHOD;
        else
            return reject(c, 400, ch == '\n' ? "bare LF line ending\n" : "invalid request line\n");
        return 0;
    case SC_START_LF:
        ++c->sc_count;
        if (ch != '\n') return reject(c, 400, "bare CR before the request line\n");
        c->sc_state = SC_START;
        return 0;
    case SC_METHOD:
        if (ch == ' ')
            c->sc_state = SC_TARGET0;
        else if (!is_tchar(ch))
            return reject(c, 400, "invalid request method\n");
        return 0;
    case SC_TARGET0: c->sc_state = SC_TARGET; return scan_target0(c, ch);
    case SC_TARGET:
        if (ch == ' ') {
            if (c->sc_sub == T_SCHEME || c->sc_sub == T_PCT1 || c->sc_sub == T_PCT2)
                return reject(c, 400, "invalid request target\n");
            c->sc_state = SC_VERSION;
            c->sc_sub = 0;
            return 0;
        }
        if (ch == '\r' || ch == '\n')
            return reject(c, 400, "request line without an HTTP version\n");
        return scan_target(c, ch);
    case SC_VERSION:
        if (c->sc_sub == 8) {
            if (ch != '\r') return reject(c, 400, "invalid request line ending\n");
            c->sc_state = SC_LINE_LF;
            return 0;
        }
        return scan_version(c, ch);
    case SC_LINE_LF:
        if (ch != '\n') return reject(c, 400, "bare CR after the request line\n");
        c->sc_state = SC_FIELD;
        return 0;
    case SC_END_LF:
        if (ch != '\n') return reject(c, 400, "bare CR at the end of the head\n");
        c->sc_state = c->sc_trailers ? SC_DONE : SC_HEAD_DONE;
        return 0;
    default: return scan_field(c, ch);
    }
}

/* Checks p[0..n) in the current state; stops where llhttp must decide
 * (SC_HEAD_DONE) or at the end of the message. On success sets c->head_end
 * if the head ended here. @return 0, or -1 with c->fail_status set */
static int scan(sup_conn *c, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        switch (c->sc_state) {
        case SC_HEAD_DONE:
        case SC_BODY:
        case SC_DONE: return 0;
        case SC_DATA: {
            size_t take = n - i;
            if (take > c->sc_chunk_left) take = (size_t)c->sc_chunk_left;
            c->sc_chunk_left -= take;
            i += take - 1;
            if (c->sc_chunk_left == 0) {
                c->sc_state = SC_DATA_CR;
                c->sc_count = 0;
            }
            continue;
        }
        case SC_CSIZE0:
        case SC_CSIZE:
        case SC_CEXT:
        case SC_CSIZE_LF:
        case SC_DATA_CR:
        case SC_DATA_LF:
            if (scan_chunk_line(c, ch) != 0) return -1;
            continue;
        default: break;
        }
        if (c->sc_trailers && ++c->sc_count > SUP_MAX_HEADER_BYTES)
            return reject(c, 431, "trailer section too large\n");
        bool in_line = c->sc_state <= SC_VERSION;
        if (in_line && ch != '\r' && ch != '\n' && c->rline_len < sizeof c->rline)
            c->rline[c->rline_len++] = (char)ch; /* kept for the access log */
        if (scan_head(c, ch) != 0) {
            /* the rest of a refused request line is logged too */
            for (size_t j = i + 1;
                 in_line && j < n && p[j] != '\r' && p[j] != '\n' && c->rline_len < sizeof c->rline;
                 j++)
                c->rline[c->rline_len++] = p[j];
            return -1;
        }
        if (c->sc_state == SC_HEAD_DONE) c->head_end = p + i + 1;
    }
    return 0;
}

static void scan_reset(sup_conn *c)
{
    c->rline_len = 0;
    c->sc_state = SC_START;
    c->sc_sub = 0;
    c->sc_trailers = false;
    c->sc_count = 0;
    c->sc_chunk_left = 0;
}

/* ---- parser callbacks ------------------------------------------------------------ */

static int on_message_begin(llhttp_t *p)
{
    sup_conn *c = p->data;
    sup__request_free(c->cur);
    c->cur = calloc(1, sizeof *c->cur);
    if (!c->cur) return reject(c, 503, "out of memory\n");
    c->cur->slot = -1;
    c->cur->srv = c->srv;
    c->cur->arrived_ns = uv_hrtime();
    memcpy(c->cur->remote, c->remote, sizeof c->cur->remote);
    c->header_bytes = 0;
    c->in_name = false;
    c->in_trailers = false;
    c->deadline_ms = now_ms(c) + c->srv->cfg.header_timeout_ms; /* the head, from its first byte */
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    sup_conn *c = p->data;
    if (count_header_bytes(c, n) != 0) return -1;
    if (n > MAX_TARGET_BYTES || c->cur->url.len > MAX_TARGET_BYTES - n)
        return reject(c, 414, "request target too long\n");
    if (sup__buf_append(&c->cur->url, at, n) != 0) return reject(c, 503, "out of memory\n");
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    sup_conn *c = p->data;
    sup_request *r = c->cur;
    if (c->in_trailers) return 0; /* trailers are dropped */
    if (count_header_bytes(c, n) != 0) return -1;
    if (!c->in_name) {
        c->in_name = true;
        c->name_off = (uint32_t)r->hdata.len;
    }
    size_t start = r->hdata.len;
    if (sup__buf_append(&r->hdata, at, n) != 0) return reject(c, 503, "out of memory\n");
    for (size_t i = start; i < r->hdata.len; i++) {
        char ch = r->hdata.p[i];
        if (ch >= 'A' && ch <= 'Z') r->hdata.p[i] = (char)(ch - 'A' + 'a');
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    sup_conn *c = p->data;
    if (c->in_trailers) return 0;
    if (!c->in_name) return reject(c, 400, "empty header field name\n");
    c->in_name = false;
    c->value_off = (uint32_t)c->cur->hdata.len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    sup_conn *c = p->data;
    if (c->in_trailers) return 0;
    if (count_header_bytes(c, n) != 0) return -1;
    if (sup__buf_append(&c->cur->hdata, at, n) != 0) return reject(c, 503, "out of memory\n");
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    sup_conn *c = p->data;
    sup_request *r = c->cur;
    if (c->in_trailers) return 0;
    if (count_header_bytes(c, 4) != 0) return -1; /* ": " and CRLF */
    if (r->nheaders >= SUP_MAX_HEADERS) return reject(c, 431, "too many header fields\n");
    if (r->nheaders == r->cap_headers) {
        int cap = r->cap_headers ? r->cap_headers * 2 : 16;
        sup_header *h = realloc(r->headers, (size_t)cap * sizeof *h);
        if (!h) return reject(c, 503, "out of memory\n");
        r->headers = h;
        r->cap_headers = cap;
    }
    uint32_t end = (uint32_t)r->hdata.len;
    while (end > c->value_off && (r->hdata.p[end - 1] == ' ' || r->hdata.p[end - 1] == '\t'))
        end--;
    sup_header *h = &r->headers[r->nheaders++];
    h->name_off = c->name_off;
    h->name_len = c->value_off - c->name_off;
    h->value_off = c->value_off;
    h->value_len = end - c->value_off;
    return 0;
}

static bool wants_continue(const sup_request *r)
{
    for (int i = 0; i < r->nheaders; i++) {
        const sup_header *h = &r->headers[i];
        if (h->name_len == 6 && memcmp(r->hdata.p + h->name_off, "expect", 6) == 0 &&
            h->value_len == 12 && strncasecmp(r->hdata.p + h->value_off, "100-continue", 12) == 0)
            return true;
    }
    return false;
}

static bool header_is(const sup_request *r, const sup_header *h, const char *lit)
{
    size_t n = strlen(lit);
    return h->name_len == n && memcmp(r->hdata.p + h->name_off, lit, n) == 0;
}

void sup__record_id(const sup_request *r, char out[IPC_RECORD_ID_MAX])
{
    for (int i = 0; i < r->nheaders; i++) {
        const sup_header *h = &r->headers[i];
        if (header_is(r, h, "idempotency-key")) {
            ipc_record_id(r->id, r->hdata.p + h->value_off, h->value_len, NULL, out);
            return;
        }
    }
    ipc_record_id(r->id, NULL, 0, r->srv->record_prefix, out);
}

/* RFC 9112 3.2: uri-host [":" port]; empty is allowed. */
static bool host_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch == '/' || ch == '?' || ch == '@' || ch == '#' || (ch != '%' && !is_target_char(ch)))
            return false;
    }
    return true;
}

/* Transfer-Encoding, all its field lines taken as one list: 0 if it is
 * exactly "chunked", 501 for other codings before a final chunked (none is
 * implemented), else 400. */
static int te_status(const sup_request *r)
{
    int codings = 0, chunked = 0;
    bool last_chunked = false;
    for (int i = 0; i < r->nheaders; i++) {
        const sup_header *h = &r->headers[i];
        if (!header_is(r, h, "transfer-encoding")) continue;
        const char *v = r->hdata.p + h->value_off, *end = v + h->value_len;
        for (;;) {
            const char *comma = memchr(v, ',', (size_t)(end - v));
            const char *e = comma ? comma : end;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            size_t n = (size_t)(e - v);
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            if (n == 0) return 400; /* an empty element: a list gone wrong */
            last_chunked = n == 7 && strncasecmp(v, "chunked", 7) == 0;
            chunked += last_chunked;
            codings++;
            if (!comma) break;
            v = comma + 1;
        }
    }
    if (!last_chunked || chunked > 1) return 400;
    return codings > 1 ? 501 : 0;
}

/* What the header fields say (their syntax is scan()'s): RFC 9112 3.2 and 6. */
static int check_head(sup_conn *c, const llhttp_t *p)
{
    const sup_request *r = c->cur;
    int hosts = 0, te = 0, cl = 0, ikeys = 0;
    const sup_header *host = NULL, *ikey = NULL;
    for (int i = 0; i < r->nheaders; i++) {
        const sup_header *h = &r->headers[i];
        if (header_is(r, h, "host")) {
            hosts++;
            host = h;
        } else if (header_is(r, h, "transfer-encoding"))
            te++;
        else if (header_is(r, h, "content-length"))
            cl++;
        else if (header_is(r, h, "idempotency-key")) {
            ikeys++;
            ikey = h;
        }
    }
    if (p->method == HTTP_CONNECT) return reject(c, 501, "CONNECT is not supported\n");
    if (hosts > 1) return reject(c, 400, "more than one Host header field\n");
    if (hosts == 0 && p->http_major == 1 && p->http_minor >= 1)
        return reject(c, 400, "HTTP/1.1 request without a Host header field\n");
    if (host && !host_ok(r->hdata.p + host->value_off, host->value_len))
        return reject(c, 400, "invalid Host header field\n");
    if (cl > 1) return reject(c, 400, "more than one Content-Length header field\n");
    if (ikeys > 1) return reject(c, 400, "more than one Idempotency-Key header field\n");
    if (ikey && !ipc_idempotency_key_ok(r->hdata.p + ikey->value_off, ikey->value_len))
        return reject(c, 400, "invalid Idempotency-Key: 1 to 200 of A-Z a-z 0-9 - _ . : ~ + / =\n");
    if (te == 0 && !(p->flags & F_CHUNKED)) return 0;
    if (cl > 0) return reject(c, 400, "both Content-Length and Transfer-Encoding\n");
    if (p->http_major == 1 && p->http_minor == 0)
        return reject(c, 400, "Transfer-Encoding in an HTTP/1.0 request\n");
    int status = te_status(r);
    if (status == 501) return reject(c, 501, "transfer coding not implemented\n");
    if (status != 0 || !(p->flags & F_CHUNKED))
        return reject(c, 400, "Transfer-Encoding must be chunked\n");
    return 0;
}

static int on_headers_complete(llhttp_t *p)
{
    static char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    sup_conn *c = p->data;
    sup_request *r = c->cur;
    r->method = llhttp_method_name((llhttp_method_t)p->method);
    r->http_minor = p->http_minor;
    r->head = p->method == HTTP_HEAD;
    c->in_trailers = true; /* header callbacks from now on are a chunked body's trailers */
    if (check_head(c, p) != 0) return -1;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->cfg.max_body)
        return reject(c, 413, "request body too large\n");
    if (p->flags & F_CHUNKED) {
        c->sc_state = SC_CSIZE0;
        c->sc_count = 0;
        c->sc_chunk_left = 0;
        if (c->head_end && c->head_end < c->feed_end &&
            scan(c, c->head_end, (size_t)(c->feed_end - c->head_end)) != 0)
            return -1;
    } else
        c->sc_state = SC_BODY;
    c->head_end = NULL;
    if (p->http_major == 1 && p->http_minor >= 1 && wants_continue(r))
        conn_write(c, continue_line, sizeof continue_line - 1, false, W_INTERIM);
    c->deadline_ms = now_ms(c) + c->srv->cfg.body_timeout_ms; /* the whole body */
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    sup_conn *c = p->data;
    sup_request *r = c->cur;
    if (n > c->srv->cfg.max_body || r->body.len > c->srv->cfg.max_body - n)
        return reject(c, 413, "request body too large\n");
    if (sup__buf_append(&r->body, at, n) != 0) return reject(c, 503, "out of memory\n");
    return 0;
}

/* A chunk larger than what the body may still take is refused before its data. */
static int on_chunk_header(llhttp_t *p)
{
    sup_conn *c = p->data;
    size_t max = c->srv->cfg.max_body, have = c->cur->body.len;
    if (p->content_length > max || have > max - p->content_length)
        return reject(c, 413, "request body too large\n");
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    sup_conn *c = p->data;
    c->cur->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    c->paused = true;
    scan_reset(c);
    return HPE_PAUSED;
}

static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

/* ---- requests --------------------------------------------------------------------- */

/* Splits the request target into path and query; the absolute form
 * (http://host/path?query) is reduced to its path. */
static void split_target(sup_request *r)
{
    const char *u = r->url.p;
    size_t n = u ? r->url.len : 0, start = 0;
    if (n == 0) {
        r->path_off = r->path_len = r->query_off = 0;
        return;
    }
    const char *scheme = n > 3 ? memchr(u, ':', n) : NULL;
    if (u[0] != '/' && scheme && (size_t)(scheme - u) + 3 <= n && scheme[1] == '/' &&
        scheme[2] == '/') {
        size_t auth = (size_t)(scheme - u) + 3;
        const char *slash = memchr(u + auth, '/', n - auth);
        const char *q = memchr(u + auth, '?', n - auth);
        if (slash && (!q || slash < q))
            start = (size_t)(slash - u);
        else
            start = q ? (size_t)(q - u) : n;
    }
    const char *q = start < n ? memchr(u + start, '?', n - start) : NULL;
    r->path_off = start;
    r->path_len = q ? (size_t)(q - (u + start)) : n - start;
    r->query_off = q ? (size_t)(q - u) + 1 : n;
}

static bool is_healthz(const sup_request *r)
{
    return (strcmp(r->method, "GET") == 0 || r->head) && r->path_len == 8 &&
           memcmp(r->url.p + r->path_off, "/healthz", 8) == 0;
}

static void stop_reading(sup_conn *c)
{
    if (!c->reading) return;
    c->reading = false;
    if (uv_read_stop((uv_stream_t *)&c->tcp) != 0) conn_close(c);
}

/* A complete request is waiting in c->cur: answer it or hand it on. */
static void request_ready(sup_conn *c)
{
    sup_request *r = c->cur;
    c->cur = NULL;
    c->deadline_ms = 0; /* the request's own deadline runs now */
    split_target(r);
    r->conn = c;
    c->inflight = r;
    if (c->srv->stop != STOP_NONE) c->close_after = true;
    if (is_healthz(r)) {
        /* healthy while a worker of either kind can take a request and
         * the server is not stopping (a balancer stops sending at once) */
        if (c->srv->stop != STOP_NONE)
            sup__http_respond_text(r, 503, "draining\n");
        else if (sup__pool_ready(c->srv) > 0)
            sup__http_respond_text(r, 200, "ok\n");
        else
            sup__http_respond_text(r, 503, "no ready worker\n");
    } else
        sup__pool_submit(c->srv, r);
}

static int keep_pending(sup_conn *c, const char *data, size_t len)
{
    char *p = malloc(len);
    if (!p) return -ENOMEM;
    memcpy(p, data, len);
    c->pending = p;
    c->pending_len = len;
    return 0;
}

/* Runs the parser over data. c->pending must be empty. */
static void feed(sup_conn *c, const char *data, size_t len)
{
    llhttp_errno_t err = HPE_USER;
    c->feed_end = data + len;
    c->head_end = NULL;
    if (scan(c, data, len) == 0) err = llhttp_execute(&c->parser, data, len);
    c->feed_end = NULL;
    if (err == HPE_OK) return;
    if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && c->paused && c->cur) {
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = (pos && pos >= data && pos <= data + len) ? (size_t)(pos - data) : len;
        /* Reading goes on (on_read keeps what follows), so a client that
         * leaves while its request waits is seen. */
        if (err == HPE_PAUSED_UPGRADE) c->close_after = true; /* no protocol switch */
        if (used < len && !c->close_after && keep_pending(c, data + used, len - used) != 0) {
            sup__warn("unable to keep pipelined input: out of memory; closing after this request");
            c->close_after = true;
        }
        request_ready(c);
        return;
    }
    stop_reading(c);
    if (c->closing) return;
    int status = c->fail_status ? c->fail_status : 400;
    const char *text = c->fail_text ? c->fail_text : "bad request\n";
    if (!c->fail_status && err == HPE_INVALID_METHOD) {
        status = 501;
        text = "method not implemented\n";
    }
    sup__metrics_response(c->srv, c->cur, status);
    log_conn_answer(c, status, strlen(text));
    conn_send_text(c, status, text, false, false);
}

static void conn_start_reading(sup_conn *c)
{
    if (c->reading || c->closing) return;
    int err = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (err != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
}

/* The outstanding response is written: parse what the client sent next. */
static void conn_resume(sup_conn *c)
{
    llhttp_resume(&c->parser);
    c->paused = false;
    c->deadline_ms = now_ms(c) + c->srv->cfg.keepalive_ms; /* idle until a next request begins */
    while (c->pending && !c->paused && !c->finishing && !c->closing) {
        char *buf = c->pending;
        size_t len = c->pending_len;
        c->pending = NULL;
        c->pending_len = 0;
        feed(c, buf, len);
        free(buf);
    }
    if (!c->finishing && c->pending_len < MAX_PENDING) conn_start_reading(c);
}

/* libuv reads into one buffer shared by all connections: on_read consumes
 * or copies everything before returning, so no two reads overlap. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    *buf = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sup_conn *c = st->data;
    if (c->closing) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->lingering || c->finishing) return;
    if (c->paused) {                /* a request is outstanding: keep what follows for later */
        if (c->close_after) return; /* nothing after it will be parsed */
        size_t n = c->pending_len + (size_t)nread;
        char *p = realloc(c->pending, n);
        if (!p) {
            conn_close(c);
            return;
        }
        memcpy(p + c->pending_len, buf->base, (size_t)nread);
        c->pending = p;
        c->pending_len = n;
        if (n >= MAX_PENDING) stop_reading(c); /* until the response is written */
        return;
    }
    feed(c, buf->base, (size_t)nread);
}

/* ---- listening ------------------------------------------------------------------- */

/* The client's address as text ("-" if unknown). */
static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    snprintf(out, cap, "-");
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0) return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)cap);
    else if (ss.ss_family == AF_UNIX)
        snprintf(out, cap, "unix");
}

/* Takes fd, an accepted client socket: a new connection reading its first
 * request. On failure fd is closed. */
static void conn_open(sup_server *s, int fd)
{
    sup_conn *c = calloc(1, sizeof *c);
    if (!c) {
        sup__error("unable to accept a connection: out of memory");
        close(fd);
        return;
    }
    c->srv = s;
    int err = uv_tcp_init(s->loop, &c->tcp);
    if (err != 0) {
        sup__error("unable to accept a connection: %s", uv_strerror(err));
        close(fd);
        free(c);
        return;
    }
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    err = uv_tcp_open(&c->tcp, fd);
    if (err != 0) {
        sup__error("unable to accept a connection: %s", uv_strerror(err));
        close(fd);
        conn_close(c);
        return;
    }
    err = uv_tcp_nodelay(&c->tcp, 1); /* responses are single writes: no need to wait */
    if (err != 0) sup__warn("unable to disable Nagle on a connection: %s", uv_strerror(err));
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    /* Off by default; said here because the strict framing relies on it. */
    llhttp_set_lenient_headers(&c->parser, 0);
    llhttp_set_lenient_chunked_length(&c->parser, 0);
    llhttp_set_lenient_keep_alive(&c->parser, 0);
    llhttp_set_lenient_transfer_encoding(&c->parser, 0);
    c->parser.data = c;
    peer_name(fd, c->remote, sizeof c->remote);
    c->deadline_ms = now_ms(c) + s->cfg.header_timeout_ms; /* a first request must begin */
    conn_start_reading(c);
}

/* Stops polling the listener (why: enum accept_pause); new clients wait
 * in the backlog. Counted here, logged by sup__http_housekeeping. */
static void pause_accepting(sup_server *s, enum accept_pause why, int errnum)
{
    if (s->accept_paused == ACCEPT_ON) {
        int err = uv_poll_stop(&s->listener);
        if (err != 0) sup__error("unable to stop polling the listener: %s", uv_strerror(err));
    }
    s->accept_paused = why;
    if (why == ACCEPT_CAP) {
        s->cap_hits++;
    } else {
        s->accept_errors++;
        s->accept_errno = errnum;
        s->accept_retry_ms = uv_now(s->loop) + ACCEPT_RETRY_MS;
    }
}

static void on_listener(uv_poll_t *h, int status, int events);

/* Polls the listener again if it was paused and there is room for a
 * connection; an accept error pauses it again. */
static void resume_accepting(sup_server *s)
{
    if (s->accept_paused == ACCEPT_ON || !s->listener_open || s->stop > STOP_ANNOUNCE ||
        s->nconns >= s->max_conns)
        return;
    int err = uv_poll_start(&s->listener, UV_READABLE, on_listener);
    if (err != 0) {
        sup__error("unable to poll the listener: %s", uv_strerror(err));
        return;
    }
    s->accept_paused = ACCEPT_ON;
}

static void on_listener(uv_poll_t *h, int status, int events)
{
    sup_server *s = h->data;
    (void)events;
    if (status < 0) {
        pause_accepting(s, ACCEPT_ERROR, -status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH && s->stop <= STOP_ANNOUNCE; i++) {
        if (s->nconns >= s->max_conns) {
            pause_accepting(s, ACCEPT_CAP, 0);
            return;
        }
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
            if (e == EAGAIN || e == EWOULDBLOCK) return;
            pause_accepting(s, ACCEPT_ERROR, e); /* EMFILE, ENFILE, ENOBUFS, ENOMEM */
            return;
        }
        conn_open(s, fd);
    }
}

/* The client connection cap: RLIMIT_NOFILE less what the server and its
 * worker slots may need (see SUP_FD_RESERVE_BASE), logged at start. */
static void set_conn_cap(sup_server *s)
{
    struct rlimit rl;
    rlim_t limit = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        limit = rl.rlim_cur;
    else
        sup__warn("unable to read the descriptor limit: %s; assuming 1024", strerror(errno));
    if (limit == RLIM_INFINITY || limit > (1 << 24)) limit = 1 << 24;
    s->fd_limit = (int)limit;
    s->fd_reserve = SUP_FD_RESERVE_BASE + SUP_FDS_PER_SLOT * sup__pool_slot_count(&s->cfg);
    s->max_conns = s->fd_limit - s->fd_reserve;
    if (s->max_conns < 1) {
        sup__warn("the descriptor limit (%d) is below what the server and its workers keep "
                  "(%d): accepting one client connection at a time; raise it (ulimit -n)",
                  s->fd_limit, s->fd_reserve);
        s->max_conns = 1;
        return;
    }
    sup__info("accepting up to %d client connections (descriptor limit %d, %d kept for the "
              "server and its workers)",
              s->max_conns, s->fd_limit, s->fd_reserve);
}

static void on_listener_closed(uv_handle_t *h)
{
    sup_server *s = h->data;
    if (s->listen_fd >= 0) close(s->listen_fd);
    s->listen_fd = -1;
}

/* A non-blocking listening socket bound to ai (with SO_REUSEPORT if
 * reuse_port: other processes may bind the same address and the kernel
 * spreads connections among them). @return the fd, or -errno */
static int open_listen_socket(const struct addrinfo *ai, bool reuse_port)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 511) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

/* Binds cfg.host:port. @return the listening fd, or a negative error (logged) */
static int bind_listener(sup_server *s)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    s->listen_fd = -1;
    int gerr = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (gerr != 0 || !ai) {
        sup__error("unable to listen on %s:%d: %s", s->cfg.host, s->cfg.port, gai_strerror(gerr));
        return -EINVAL;
    }
    int fd = open_listen_socket(ai, s->cfg.reuse_port);
    freeaddrinfo(ai);
    if (fd < 0)
        sup__error("unable to listen on %s:%d: %s", s->cfg.host, s->cfg.port, uv_err_name(fd));
    return fd;
}

int sup__http_start(sup_server *s)
{
    s->listen_fd = -1;
    bool inherited = s->inherited_fd >= 0;
    int fd = inherited ? s->inherited_fd : bind_listener(s);
    if (fd < 0) return fd;
    s->inherited_fd = -1; /* owned by the listener now */
    int err = uv_poll_init_socket(s->loop, &s->listener, fd);
    if (err != 0) {
        close(fd);
        sup__error("unable to poll the listening socket: %s", uv_strerror(err));
        return err;
    }
    s->listen_fd = fd;
    s->listener.data = s;
    s->listener_open = true;
    s->accept_paused = ACCEPT_ON;
    set_conn_cap(s);
    err = uv_poll_start(&s->listener, UV_READABLE, on_listener);
    if (err != 0) {
        sup__error("unable to poll the listening socket: %s", uv_strerror(err));
        return err;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int bound = s->cfg.port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0) {
        err = -errno;
        sup__error("unable to read the listening address: %s", uv_strerror(err));
        return err;
    }
    const char *how = inherited ? " (socket from systemd)" : "";
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, host, sizeof host);
        bound = ntohs(a->sin6_port);
        sup__notice("listening on http://[%s]:%d%s", host, bound, how);
    } else if (ss.ss_family == AF_UNIX) {
        struct sockaddr_un *a = (struct sockaddr_un *)&ss;
        sup__notice("listening on unix:%s%s", a->sun_path[0] ? a->sun_path : "(abstract)", how);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, host, sizeof host);
        bound = ntohs(a->sin_port);
        sup__notice("listening on http://%s:%d%s", host, bound, how);
    }
    return 0;
}

void sup__http_stop_accepting(sup_server *s)
{
    if (!s->listener_open) return;
    s->listener_open = false;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

void sup__http_close_idle(sup_server *s)
{
    for (sup_conn *c = s->conns; c; c = c->next) {
        if (c->closing) continue;
        if (!c->inflight && c->writes == 0)
            conn_close(c);
        else
            c->close_after = true;
    }
}

void sup__http_close_all(sup_server *s)
{
    for (sup_conn *c = s->conns; c; c = c->next)
        conn_close(c);
    close_writes_done(s);
}

/* Retries a listener paused by an accept error; logs pauses, at most once
 * per SUP_LOG_EVERY_MS, with how often each happened since the last line. */
static void accept_housekeeping(sup_server *s, uint64_t now)
{
    if (s->accept_paused == ACCEPT_ERROR && now >= s->accept_retry_ms) resume_accepting(s);
    if (s->cap_hits == 0 && s->accept_errors == 0) return;
    if (s->accept_log_ms != 0 && now - s->accept_log_ms < SUP_LOG_EVERY_MS) return;
    if (s->accept_errors > 0)
        sup__warn("unable to accept connections: %s (%s), %llu time%s; not accepting, retrying "
                  "every %d ms (%d client connections open)",
                  uv_err_name(-s->accept_errno), uv_strerror(-s->accept_errno),
                  (unsigned long long)s->accept_errors, s->accept_errors == 1 ? "" : "s",
                  ACCEPT_RETRY_MS, s->nconns);
    if (s->cap_hits > 0)
        sup__warn("client connection limit reached: %d connections open (descriptor limit %d "
                  "less %d kept for the server and its workers), %llu time%s; new clients wait "
                  "until one closes",
                  s->nconns, s->fd_limit, s->fd_reserve, (unsigned long long)s->cap_hits,
                  s->cap_hits == 1 ? "" : "s");
    s->accept_errors = s->cap_hits = 0;
    s->accept_log_ms = now;
}

/* A connection past its deadline is closed; one in the middle of a request
 * (its head or body too slow) is told so first (408). */
void sup__http_housekeeping(sup_server *s, uint64_t now)
{
    accept_housekeeping(s, now);
    for (sup_conn *c = s->conns; c; c = c->next) {
        if (c->closing || c->deadline_ms == 0 || now < c->deadline_ms) continue;
        if (c->cur && !c->inflight && c->writes == 0 && !c->lingering && !c->finishing) {
            stop_reading(c);
            if (!c->closing) {
                static const char text[] = "request timeout\n";
                sup__debug("a request from %s timed out in its %s; answering 408", c->remote,
                           c->cur->method ? "body" : "head");
                sup__metrics_response(s, c->cur, 408);
                log_conn_answer(c, 408, sizeof text - 1);
                conn_send_text(c, 408, text, false, false);
            }
        } else {
            if (!c->lingering && c->writes == 0)
                sup__debug("closed an idle connection from %s", c->remote);
            conn_close(c);
        }
    }
}
