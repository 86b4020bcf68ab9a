/* wrk_main.c: the worker process (`sxpool worker ...`), started by the
 * supervisor with uv_spawn.
 *
 * Single-threaded apart from nng's own threads (and, in jit mode, the JIT's
 * compiler thread): it sets its resource limits (wrk_sandbox.c), maps its
 * slot's crash scoreboard, opens its LMDB environment, turns the native
 * tier on (jit mode only: CEK workers never load native code), drops the
 * native code of every function blacklisted for its ABI hash, reads the
 * app's source, dials its slot's nng socket, turns its seccomp filter on
 * (unless --no-seccomp), loads the app, announces READY and then serves
 * one request at a time:
 *
 *   REQUEST -> answered from the response record if this request id was
 *              already committed (a re-dispatch after a death), otherwise
 *              (handle req) runs in a store transaction; a RESPONSE is
 *              committed together with the writes under the request id,
 *              then sent (a RESPONSE over STORE_MAX_RECORD bytes commits
 *              a stand-in instead: a 502 saying the request was applied
 *              but its response was too large to keep, which is what a
 *              re-dispatch then answers; the request never runs twice).
 *              A response past the RESPONSE frame's limits (ipc.h) is
 *              answered ERROR response-too-large, nothing applied.
 *              A full store (STORE_EFULL) answers 507, nothing applied.
 *              A conflict at commit reruns the handler on a fresh
 *              snapshot (nothing was applied), after a few conflicts
 *              holding the write lock, which cannot conflict. A commit that
 *              finds the request's record already there answers from it.
 *              An SX error aborts the transaction: ERROR, or JIT_FAULT when
 *              it escaped from native code.
 *              In a JIT worker, a run whose native functions are still in
 *              their canary period is answered CHECKED "canary" instead and
 *              not committed; --shadow-rate of the others are committed and
 *              answered CHECKED "sample" (see "shadow verification" below).
 *   SHADOW  -> (CEK workers) the request runs pinned to the native run's
 *              snapshot and is compared with it; SHADOW_RESULT carries the
 *              verdict and the reply REQUEST would have sent (nothing is
 *              committed for a verify-only one).
 *   BLACKLIST -> drops that function's native code (before the next
 *              request, since frames are handled in order).
 *   SHUTDOWN -> exit 0.
 *
 * The scoreboard says which request is running (set before the handler,
 * cleared after the reply); the crash handler (wrk_crash.c) adds the signal
 * and the native function when the process dies of a fault.
 *
 * Test-only hooks (SXPOOL_TEST_HOOK, wrk_hook.c) can make the worker die
 * right after a commit, at start, or at a request's start, or hold the
 * write lock at a request's start.
 *
 * Any failure of the link to the supervisor ends the process: the
 * supervisor respawns the slot.
 */
#include <errno.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "ipc/ipc_stage.h"
#include "store/store.h"
#include "vm/vm.h"
#include "worker/worker.h"
#include "worker/wrk_internal.h"

#define WRK_DEFAULT_JIT_THRESHOLD 1000
#define WRK_MAX_EXCLUDE 4096

typedef struct wrk {
    int slot;
    const char *rundir, *app, *data, *mode;
    bool jit_mode;                 /* --mode=jit */
    bool native;                   /* the native tier is on in this process */
    uint32_t jit_threshold;        /* --jit-threshold */
    char exclude[WRK_MAX_EXCLUDE]; /* --jit-exclude globs, comma-separated */
    char abi[IPC_BOARD_HASH];      /* what READY announces */
    bool bl_quiet;                 /* load_blacklist: no line per entry */
    bool core_dumps;               /* --core-dumps: keep RLIMIT_CORE */
    size_t data_limit;             /* --worker-memory: RLIMIT_DATA, 0 none */
    bool no_seccomp;               /* --no-seccomp: no seccomp filter */
    store *st;
    ipc_conn *conn;
    store_txn *txn; /* the running request's transaction */
    sx_options opt;
    /* Shadow verification (JIT workers): --shadow-canary, --shadow-rate,
     * --shadow-exclude (path globs) */
    uint32_t shadow_canary;
    double shadow_rate;
    char shadow_exclude[WRK_MAX_EXCLUDE];
    struct shadow_run *sh; /* the SHADOW frame being served (CEK workers), or NULL */
    /* while sh is set, the reply is kept here instead of being sent */
    char *captured;
    size_t captured_len;
} wrk;

/* A SHADOW frame being served: the native run's result, what this run
 * concluded about it. */
typedef struct shadow_run {
    bool verify;         /* verify-only: commit nothing */
    ipc_field expected;  /* the native run's RESPONSE frame */
    ipc_field snapshot;  /* what it read */
    ipc_field digest;    /* its write set's digest */
    const char *verdict; /* "same", "differs" or "inconclusive" */
    char detail[512];    /* what differed */
    bool compared;
} shadow_run;

static void wlog(const wrk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(const wrk *w, const char *fmt, ...)
{
    /* One write per line: the supervisor and every worker share stderr. */
    char msg[2048], line[2048];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (m < 0) m = 0;
    if ((size_t)m >= sizeof msg) m = (int)sizeof msg - 1;
    /* request ids are ours, but names and messages come from the app */
    int n = snprintf(line, sizeof line, "sxpool worker %d (pid %d): ", w->slot, (int)getpid());
    size_t len = (size_t)n + ipc_escape_line(line + n, sizeof line - (size_t)n - 1, msg, (size_t)m);
    line[len++] = '\n';
    ssize_t wr = write(STDERR_FILENO, line, len);
    (void)wr; /* nowhere left to report a failed log write */
}

/* ---- effects backed by the request transaction ------------------------- */

static int fx_result(sx_effects *fx, int rc)
{
    if (rc == 0) return 0;
    if (rc == STORE_ENOTFOUND) return 1;
    snprintf(fx->errmsg, sizeof fx->errmsg, "%s", store_strerror(rc));
    return -1;
}

static sx_effects fx;

static int fx_get(void *arg, const char *k, size_t kl, const char **v, size_t *vl)
{
    return fx_result(&fx, store_get(((wrk *)arg)->txn, k, kl, v, vl));
}

static int fx_put(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    return fx_result(&fx, store_put(((wrk *)arg)->txn, k, kl, v, vl));
}

static int fx_del(void *arg, const char *k, size_t kl)
{
    return fx_result(&fx, store_del(((wrk *)arg)->txn, k, kl));
}

static int fx_scan(void *arg, const char *p, size_t pl, size_t limit, sx_scan_item_fn fn, void *c)
{
    return fx_result(&fx, store_scan(((wrk *)arg)->txn, p, pl, limit, fn, c));
}

/* :log from the app: one line, escaped (a newline in the value cannot
 * forge a log line of its own), at most 2 kB of it. */
static void fx_log(void *arg, const char *line, size_t len)
{
    wlog(arg, "log: %.*s", (int)(len > 2000 ? 2000 : len), line);
}

/* ---- frames ---------------------------------------------------------------- */

/* Sends an encoded reply, or, while a SHADOW frame is served, keeps a copy
 * for its SHADOW_RESULT. */
static int reply_bytes(wrk *w, const char *buf, size_t len)
{
    if (!w->sh) return ipc_send(w->conn, buf, len);
    free(w->captured);
    w->captured = malloc(len ? len : 1);
    if (!w->captured) return -ENOMEM;
    memcpy(w->captured, buf, len);
    w->captured_len = len;
    return 0;
}

static int send_frame(wrk *w, int type, uint64_t id, const ipc_field *f, int n)
{
    char *buf;
    size_t len;
    int rc = ipc_encode(type, id, f, n, &buf, &len);
    if (rc == 0) {
        wrk_board_totals();
        rc = type == IPC_READY ? ipc_send(w->conn, buf, len) : reply_bytes(w, buf, len);
        free(buf);
    }
    if (rc != 0) wlog(w, "unable to send a frame to the supervisor: %s", ipc_strerror(rc));
    return rc;
}

static ipc_field fstr(const char *s)
{
    return (ipc_field){s, (uint32_t)strlen(s)};
}

static int send_error(wrk *w, uint64_t id, const sx_failure *fail)
{
    ipc_field f[3] = {fstr("500"), fstr(fail->kind), fstr(fail->message)};
    return send_frame(w, IPC_ERROR, id, f, 3);
}

/* The error escaped from native code: the supervisor blacklists the
 * function and runs the request again on a CEK worker. */
static int send_jit_fault(wrk *w, uint64_t id, const sx_failure *fail)
{
    wlog(w, "request %llu: %s escaped native code in %s: %s", (unsigned long long)id, fail->kind,
         fail->native_fn, fail->message);
    ipc_field f[4] = {fstr(fail->native_fn), fstr(fail->kind), fstr(fail->message),
                      fstr(fail->code_hash)};
    return send_frame(w, IPC_JIT_FAULT, id, f, 4);
}

/* Checks resp against the RESPONSE frame's limits (ipc.h): a handler's
 * response past one is its mistake, answered 500 response-too-large with
 * a message naming the limit. @return true within them (else fail set) */
static bool response_fits(const sx_response *resp, sx_failure *fail)
{
    size_t hbytes = 0;
    for (int i = 0; i < resp->nheaders; i++)
        hbytes += resp->headers[i].name_len + resp->headers[i].value_len;
    memset(fail, 0, sizeof *fail);
    if (resp->nheaders > IPC_MAX_RESPONSE_HEADERS)
        snprintf(fail->message, sizeof fail->message,
                 "response has %d headers, over the limit of %d", resp->nheaders,
                 IPC_MAX_RESPONSE_HEADERS);
    else if (hbytes > IPC_MAX_RESPONSE_HEADER_BYTES)
        snprintf(fail->message, sizeof fail->message,
                 "response headers of %zu bytes exceed the limit of %u bytes", hbytes,
                 IPC_MAX_RESPONSE_HEADER_BYTES);
    else if (resp->body_len > IPC_MAX_RESPONSE_BODY)
        snprintf(fail->message, sizeof fail->message,
                 "response body of %zu bytes exceeds the limit of %u bytes", resp->body_len,
                 IPC_MAX_RESPONSE_BODY);
    else
        return true;
    snprintf(fail->kind, sizeof fail->kind, "response-too-large");
    snprintf(fail->line, sizeof fail->line, "error: %s: %s", fail->kind, fail->message);
    return false;
}

/* Encodes a RESPONSE frame for resp. */
static int encode_response(uint64_t id, const sx_response *resp, char **buf, size_t *len)
{
    int n = 2 + 2 * resp->nheaders;
    ipc_field *f = calloc((size_t)n, sizeof *f);
    if (!f) return -ENOMEM;
    char status[24]; /* 100 to 999 (sx_vm_handle checks) */
    ipc_fmt_u64(status, (uint64_t)resp->status);
    f[0] = fstr(status);
    f[1] = (ipc_field){resp->body, (uint32_t)resp->body_len};
    for (int i = 0; i < resp->nheaders; i++) {
        f[2 + 2 * i] = (ipc_field){resp->headers[i].name, (uint32_t)resp->headers[i].name_len};
        f[3 + 2 * i] = (ipc_field){resp->headers[i].value, (uint32_t)resp->headers[i].value_len};
    }
    int rc = ipc_encode(IPC_RESPONSE, id, f, n, buf, len);
    free(f);
    return rc;
}

/* The record committed in place of a RESPONSE of len bytes, too large to
 * keep (STORE_MAX_RECORD): what a re-dispatch of the request answers. The
 * request's effects are committed, so it must not run again, and its real
 * response is gone: an error that says so, not a made-up success. */
static int encode_stand_in(uint64_t id, int status, size_t len, char **buf, size_t *len_out)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "sxpool: request %llu was applied, but its %d response (%zu bytes) was "
                     "larger than the %u bytes kept for a retry; it was not run again\n",
                     (unsigned long long)id, status, len, STORE_MAX_RECORD);
    static const char ct[] = "content-type", ctv[] = "text/plain; charset=utf-8";
    ipc_field f[4] = {fstr("502"), {body, (uint32_t)n}, {ct, sizeof ct - 1}, {ctv, sizeof ctv - 1}};
    return ipc_encode(IPC_RESPONSE, id, f, 4, buf, len_out);
}

/* ---- one request ------------------------------------------------------------ */

static void request_of(const ipc_frame *fr, const char *id, sx_request *r, sx_header *hs)
{
    memset(r, 0, sizeof *r);
    r->id = id;
    r->id_len = strlen(id);
    r->method = fr->fields[0].p;
    r->method_len = fr->fields[0].len;
    r->path = fr->fields[1].p;
    r->path_len = fr->fields[1].len;
    r->query = fr->fields[2].p;
    r->query_len = fr->fields[2].len;
    r->body = fr->fields[3].p;
    r->body_len = fr->fields[3].len;
    int nh = (fr->nfields - 4) / 2;
    for (int i = 0; i < nh; i++) {
        hs[i].name = fr->fields[4 + 2 * i].p;
        hs[i].name_len = fr->fields[4 + 2 * i].len;
        hs[i].value = fr->fields[5 + 2 * i].p;
        hs[i].value_len = fr->fields[5 + 2 * i].len;
    }
    r->headers = hs;
    r->nheaders = nh;
}

/* The name of the request's response record, which is also the request
 * id the handler sees: its Idempotency-Key header (the supervisor checked
 * it) or its id (ipc_record_id). @return true for a key */
static bool record_id(const ipc_frame *fr, char out[IPC_RECORD_ID_MAX])
{
    for (int i = 4; i + 1 < fr->nfields; i += 2)
        if (fr->fields[i].len == 15 && strncasecmp(fr->fields[i].p, "idempotency-key", 15) == 0 &&
            ipc_idempotency_key_ok(fr->fields[i + 1].p, fr->fields[i + 1].len)) {
            ipc_record_id(fr->id, fr->fields[i + 1].p, fr->fields[i + 1].len, NULL, out);
            return true;
        }
    static const char *prefix;
    if (!prefix) prefix = getenv("SXPOOL_RECORD_PREFIX") ? getenv("SXPOOL_RECORD_PREFIX") : "";
    ipc_record_id(fr->id, NULL, 0, prefix, out);
    return false;
}

/* Optimistic runs of a request before it runs holding the write lock. */
#define WRK_OPTIMISTIC_RUNS 3

/* Bounded, jittered: 50-250 us after the first conflict, up to 3x that. */
static void backoff(int attempt)
{
    struct timespec ts = {0, (long)(50000 + (rand() % 200000)) * (attempt < 3 ? attempt + 1 : 3)};
    nanosleep(&ts, NULL);
}

enum { RUN_OK, RUN_SX_ERROR, RUN_DONE_BEFORE };

/* ---- shadow verification ------------------------------------------------------ *
 *
 * A JIT worker knows which native functions ran during a request (their
 * prologues stamp the request's epoch, jit_request_entered) and how many
 * requests each has run in here. While any of them is within its first
 * --shadow-canary requests, the request is a canary: it is not committed;
 * the reply is CHECKED "canary" with its response, its snapshot (every
 * key and scan it read, with what it saw) and its write-set digest, and
 * the supervisor has a CEK worker run it pinned to that snapshot, compare,
 * and commit its own result. Afterwards --shadow-rate of the requests that
 * ran native code are committed as usual and answered CHECKED "sample",
 * for a verify-only shadow run. Not checked: a locked run (it records no
 * reads), a path matching --shadow-exclude, and a run that read the clock
 * (current-time-ms): its result cannot be repeated. */

static bool shadow_excluded(const wrk *w, const sx_request *r)
{
    if (!w->shadow_exclude[0]) return false;
    char path[1024], globs[WRK_MAX_EXCLUDE], *save = NULL;
    snprintf(path, sizeof path, "%.*s", (int)(r->path_len < 1000 ? r->path_len : 1000), r->path);
    snprintf(globs, sizeof globs, "%s", w->shadow_exclude);
    for (char *g = strtok_r(globs, ",", &save); g; g = strtok_r(NULL, ",", &save))
        if (fnmatch(g, path, 0) == 0) return true;
    return false;
}

#define WRK_MAX_ENTERED 64

/* What the native run of a request is to be: 0 not checked, 1 a canary,
 * 2 a sample; natives gets "NAME HASH\n" per function that ran natively. */
static int shadow_kind(wrk *w, char *natives, size_t cap)
{
    jit_entered e[WRK_MAX_ENTERED];
    int n = jit_request_entered(e, WRK_MAX_ENTERED);
    if (n <= 0) return 0;
    bool canary = n > WRK_MAX_ENTERED && w->shadow_canary > 0;
    for (int i = 0; i < n && i < WRK_MAX_ENTERED; i++)
        if (e[i].requests < w->shadow_canary) canary = true;
    int kind = canary ? 1
               : w->shadow_rate > 0 && (double)rand() / ((double)RAND_MAX + 1.0) < w->shadow_rate
                   ? 2
                   : 0;
    if (kind == 0) return 0; /* the list is built only for a request that is checked */
    size_t len = 0;
    natives[0] = '\0';
    for (int i = 0; i < n && i < WRK_MAX_ENTERED; i++) {
        int m = snprintf(natives + len, cap - len, "%s %s\n", e[i].name, e[i].hash);
        if (m > 0 && (size_t)m < cap - len) len += (size_t)m;
    }
    return kind;
}

/* Encodes CHECKED for the response resp (an encoded RESPONSE frame). */
static int encode_checked(wrk *w, uint64_t id, int kind, const char *resp, size_t resp_len,
                          const char *natives, char **out, size_t *out_len)
{
    char *snap;
    size_t snap_len;
    char digest[STORE_DIGEST_HEX];
    int rc = store_txn_snapshot(w->txn, &snap, &snap_len);
    if (rc != 0) return rc;
    store_txn_write_digest(w->txn, digest);
    ipc_field f[5] = {fstr(kind == 1 ? "canary" : "sample"),
                      {resp, (uint32_t)resp_len},
                      {snap, (uint32_t)snap_len},
                      fstr(digest),
                      fstr(natives)};
    /* The SHADOW frame carries all this and the request (its body at most
     * SUP_MAX_BODY_LIMIT, 32 MiB): a quarter of a frame leaves room. */
    rc = resp_len + snap_len > IPC_MAX_FRAME / 4 ? IPC_ETOOBIG
                                                 : ipc_encode(IPC_CHECKED, id, f, 5, out, out_len);
    free(snap);
    return rc;
}

/* Appends to dst an escaped excerpt of b around offset at. */
static void excerpt(char *dst, size_t cap, const char *b, size_t len, size_t at)
{
    size_t from = at > 16 ? at - 16 : 0, n = len - from < 48 ? len - from : 48;
    size_t have = strlen(dst);
    if (have + 4 >= cap) return;
    dst[have++] = '"';
    have += ipc_escape_line(dst + have, cap - have - 2, b + from, n);
    dst[have++] = '"';
    dst[have] = '\0';
}

/* What differs between two RESPONSE frames, in detail; false if nothing. */
static bool responses_differ(const char *a, size_t alen, const char *b, size_t blen, char *detail,
                             size_t cap)
{
    static ipc_frame fa, fb;
    if (alen == blen && memcmp(a, b, alen) == 0) return false;
    if (ipc_decode(a, alen, &fa) != 0 || ipc_decode(b, blen, &fb) != 0 || fa.nfields < 2 ||
        fb.nfields < 2) {
        snprintf(detail, cap, "the responses differ");
        return true;
    }
    char sa[16], sb[16];
    ipc_field_str(&fa, 0, sa, sizeof sa);
    ipc_field_str(&fb, 0, sb, sizeof sb);
    if (strcmp(sa, sb) != 0) {
        snprintf(detail, cap, "status: native %s, CEK %s", sa, sb);
        return true;
    }
    const ipc_field *ba = &fa.fields[1], *bb = &fb.fields[1];
    if (ba->len != bb->len || memcmp(ba->p, bb->p, ba->len) != 0) {
        size_t at = 0;
        while (at < ba->len && at < bb->len && ba->p[at] == bb->p[at])
            at++;
        snprintf(detail, cap, "body at byte %zu: native ", at);
        excerpt(detail, cap, ba->p, ba->len, at);
        snprintf(detail + strlen(detail), cap - strlen(detail), ", CEK ");
        excerpt(detail, cap, bb->p, bb->len, at);
        return true;
    }
    for (int i = 2; i < fa.nfields || i < fb.nfields; i += 2) {
        const ipc_field *na = i < fa.nfields ? &fa.fields[i] : NULL;
        const ipc_field *nb = i < fb.nfields ? &fb.fields[i] : NULL;
        const ipc_field *h = na ? na : nb;
        bool same = na && nb && i + 1 < fa.nfields && i + 1 < fb.nfields && na->len == nb->len &&
                    !memcmp(na->p, nb->p, na->len) &&
                    fa.fields[i + 1].len == fb.fields[i + 1].len &&
                    !memcmp(fa.fields[i + 1].p, fb.fields[i + 1].p, fa.fields[i + 1].len);
        if (!same) {
            snprintf(detail, cap, "header %.*s", (int)(h->len > 64 ? 64 : h->len), h->p);
            return true;
        }
    }
    snprintf(detail, cap, "the responses differ");
    return true;
}

/* The CEK run of a SHADOW frame has its response (mine, an encoded
 * RESPONSE frame) and its writes in w->txn: the verdict. */
static void shadow_compare(wrk *w, shadow_run *sh, const char *mine, size_t mine_len)
{
    char digest[STORE_DIGEST_HEX], why[400];
    sh->compared = true;
    store_txn_write_digest(w->txn, digest);
    int inputs = store_txn_pin_check(w->txn, why, sizeof why);
    bool differs = responses_differ(sh->expected.p, sh->expected.len, mine, mine_len, sh->detail,
                                    sizeof sh->detail);
    if (!differs &&
        (sh->digest.len != strlen(digest) || memcmp(sh->digest.p, digest, sh->digest.len) != 0)) {
        snprintf(sh->detail, sizeof sh->detail, "the writes differ");
        differs = true;
    }
    if (inputs == 2) { /* the scans saw other entries: the store moved, or the paths differed */
        sh->verdict = differs ? "inconclusive" : "same";
        if (differs) snprintf(sh->detail, sizeof sh->detail, "%s", why);
    } else if (inputs == 1) { /* a read the native run did not make: another path */
        sh->verdict = "differs";
        if (!differs) snprintf(sh->detail, sizeof sh->detail, "%s", why);
    } else {
        sh->verdict = differs ? "differs" : "same";
    }
}

/* The CEK run of a SHADOW frame failed with an SX error. */
static void shadow_failed(shadow_run *sh, const sx_failure *fail)
{
    sh->compared = true;
    /* a limit of the reference evaluator (it uses more memory and stack
     * than the VM) says nothing about the native code */
    bool limit = !strcmp(fail->kind, "memory-limit") || !strcmp(fail->kind, "timeout") ||
                 !strcmp(fail->kind, "stack-overflow");
    sh->verdict = limit ? "inconclusive" : "differs";
    snprintf(sh->detail, sizeof sh->detail, "the CEK run raised %s: %.200s", fail->kind,
             fail->message);
}

/* Runs the handler until its transaction commits. A conflict runs it again
 * on a fresh snapshot after a short backoff; after WRK_OPTIMISTIC_RUNS
 * conflicts it runs in a locked transaction, whose reads nobody can change,
 * so a request never livelocks and a conflict never reaches the client.
 * In a JIT worker a run that is a canary (above) is not committed: *out is
 * its CHECKED frame; a sample is committed and *out is its CHECKED frame.
 * A SHADOW frame's run (w->sh) is pinned to the native run's snapshot on
 * its first attempt, whose result is compared; a verify-only one is then
 * aborted, else committed as any run (a conflict runs it again unpinned:
 * the reference evaluator's answer on the store as it is is always right).
 * @return RUN_OK (the encoded reply in *out), RUN_SX_ERROR (fail
 *         filled), RUN_DONE_BEFORE (a response is already committed under
 *         the request id: answer from it) or a negative store error */
static int run_request(wrk *w, const sx_request *r, uint64_t id, char **out, size_t *outlen,
                       sx_failure *fail)
{
    shadow_run *sh = w->sh;
    bool checkable =
        w->native && (w->shadow_canary > 0 || w->shadow_rate > 0) && !shadow_excluded(w, r);
    for (int attempt = 0;; attempt++) {
        bool locked = attempt >= WRK_OPTIMISTIC_RUNS;
        int rc = locked ? store_txn_begin_locked(w->st, &w->txn) : store_txn_begin(w->st, &w->txn);
        if (rc != 0) return rc;
        bool pinned = sh && attempt == 0;
        if (pinned && (rc = store_txn_pin(w->txn, sh->snapshot.p, sh->snapshot.len)) != 0) {
            store_txn_abort(w->txn);
            w->txn = NULL;
            return rc;
        }
        if (checkable) jit_request_begin();
        uint64_t nondet = sx_vm_nondet_calls();
        sx_response resp;
        memset(fail, 0, sizeof *fail); /* native_fn stays empty unless native code failed */
        int handled = sx_vm_handle(r, &resp, fail);
        ipc_stage(id, STAGE_BUILT, resp.built_ns);
        ipc_stage(id, STAGE_HANDLED, 0);
        if (handled != 0) {
            if (pinned) shadow_failed(sh, fail);
            store_txn_abort(w->txn);
            w->txn = NULL;
            return RUN_SX_ERROR;
        }
        if (!response_fits(&resp, fail)) {
            sx_response_free(&resp);
            store_txn_abort(w->txn);
            w->txn = NULL;
            wlog(w, "request %s: %s; answering 500, nothing applied", r->id, fail->message);
            return RUN_SX_ERROR;
        }
        int status = resp.status;
        *out = NULL;
        rc = encode_response(id, &resp, out, outlen);
        sx_response_free(&resp);
        ipc_stage(id, STAGE_ENCODED, 0);
        char natives[4096];
        int kind = rc == 0 && checkable && !locked && sx_vm_nondet_calls() == nondet
                       ? shadow_kind(w, natives, sizeof natives)
                       : 0;
        char *checked = NULL;
        size_t checked_len = 0;
        if (kind && encode_checked(w, id, kind, *out, *outlen, natives, &checked, &checked_len))
            kind = 0;    /* too large to check, or out of memory: served unchecked */
        if (kind == 1) { /* a canary: the CEK worker's run is the one committed */
            store_txn_abort(w->txn);
            w->txn = NULL;
            free(*out);
            *out = checked;
            *outlen = checked_len;
            return RUN_OK;
        }
        if (rc == 0 && pinned) {
            shadow_compare(w, sh, *out, *outlen);
            if (sh->verify) {
                store_txn_abort(w->txn);
                w->txn = NULL;
                return RUN_OK;
            }
        }
        /* read-only requests commit no record: running them again is harmless */
        bool writes = store_txn_nwrites(w->txn) > 0;
        char *rec = *out;
        size_t reclen = *outlen;
        if (rc == 0 && writes && *outlen > STORE_MAX_RECORD)
            rc = encode_stand_in(id, status, *outlen, &rec, &reclen);
        if (rc != 0) {
            store_txn_abort(w->txn);
            w->txn = NULL;
            free(*out);
            free(checked);
            *out = NULL;
            return rc;
        }
        if (writes) wrk_hook_before_commit(r->path, r->path_len);
        rc = store_txn_commit(w->txn, writes ? r->id : NULL, rec, reclen);
        ipc_stage(id, STAGE_COMMITTED, 0);
        if (rec != *out) free(rec);
        w->txn = NULL;
        if (rc == 0) {
            if (writes) wrk_hook_after_commit(r->path, r->path_len);
            if (checked) { /* a sample: the committed response goes out inside CHECKED */
                free(*out);
                *out = checked;
                *outlen = checked_len;
            }
            return RUN_OK;
        }
        free(*out);
        free(checked);
        *out = NULL;
        if (rc == STORE_EDONE) return RUN_DONE_BEFORE;
        if (rc != STORE_ECONFLICT) return rc;
        if (locked) { /* cannot happen: nothing changes under the write lock */
            wlog(w, "request %s: a locked transaction conflicted", r->id);
            return rc;
        }
        backoff(attempt);
    }
}

/* Looks up the RESPONSE an earlier attempt of request id committed and, if
 * there is one, sends it and sets *sent.
 * @return the send's result when sent, else STORE_ENOTFOUND or a store
 *         error (logged) */
static int reply_from_record(wrk *w, const char *id, uint64_t fid, bool *sent)
{
    char *prior;
    size_t prior_len;
    *sent = false;
    int rc = store_response_get(w->st, id, &prior, &prior_len);
    if (rc != 0) {
        if (rc != STORE_ENOTFOUND)
            wlog(w, "request %s: unable to read its response record: %s", id, store_strerror(rc));
        return rc;
    }
    *sent = true;
    wrk_board_totals();
    ipc_frame_set_id(prior, prior_len, fid); /* a keyed record: the first request's id */
    rc = reply_bytes(w, prior, prior_len);
    free(prior);
    return rc;
}

static int serve_request_body(wrk *w, const ipc_frame *fr, bool first)
{
    char id[IPC_RECORD_ID_MAX];
    bool keyed = record_id(fr, id);
    if (fr->nfields < 4 || (fr->nfields - 4) % 2) {
        wlog(w, "malformed REQUEST frame: %d fields", fr->nfields);
        return -1;
    }
    /* Committed by an earlier attempt (whose worker died before replying),
     * or by an earlier request with the same Idempotency-Key: answer from
     * the record, never run again. A failed lookup runs the handler: its
     * commit checks the record again. A FIRST_REQUEST without a key has no
     * earlier attempt: no lookup (a store round trip on PostgreSQL). */
    bool sent = false;
    int rc = 0;
    /* (a verify-only shadow run checks a request the native run committed:
     * its record is there, and it must run all the same; it commits nothing) */
    if ((!w->sh || !w->sh->verify) && !(first && !keyed))
        rc = reply_from_record(w, id, fr->id, &sent);
    if (sent) return rc;
    if (rc == STORE_ECONN) return -ENOTCONN; /* nothing of it ran: see serve() */
    sx_header *hs = calloc((size_t)(fr->nfields / 2 + 1), sizeof *hs);
    if (!hs) return -ENOMEM;
    sx_request r;
    request_of(fr, id, &r, hs);
    wrk_hook_before_request(r.path, r.path_len);
    wrk_hook_hold_lock(w->st, r.path, r.path_len);
    wrk_hook_probe_sandbox(r.path, r.path_len);
    char *out = NULL;
    size_t outlen = 0;
    sx_failure fail;
    rc = run_request(w, &r, fr->id, &out, &outlen, &fail);
    free(hs);
    /* the connection to PostgreSQL broke under the request (the handler
     * may have seen it as an effect error): no answer, the worker dies */
    if (rc != RUN_OK && (rc == STORE_ECONN || store_broken(w->st))) return STORE_ECONN;
    if (rc == RUN_SX_ERROR) {
        if (w->native && fail.native_fn[0]) return send_jit_fault(w, fr->id, &fail);
        return send_error(w, fr->id, &fail);
    }
    if (rc == RUN_DONE_BEFORE) {
        /* the record appeared after the lookup above: answer from it */
        rc = reply_from_record(w, id, fr->id, &sent);
        if (sent) return rc;
        if (rc == STORE_ENOTFOUND)
            wlog(w, "request %s: its response record vanished after its commit found it", id);
    }
    if (rc == STORE_EFULL) { /* nothing applied; room comes back once records are pruned */
        ipc_field f[3] = {fstr("507"), fstr("insufficient-storage"), fstr(store_strerror(rc))};
        return send_frame(w, IPC_ERROR, fr->id, f, 3);
    }
    if (rc < 0) {
        memset(&fail, 0, sizeof fail);
        snprintf(fail.kind, sizeof fail.kind, "effect-error");
        /* the store's errors, or the encoding's (out of memory, a frame
         * limit response_fits did not foresee) */
        if (rc <= -20000)
            snprintf(fail.message, sizeof fail.message, "store: %s", store_strerror(rc));
        else if (rc <= -10000)
            snprintf(fail.message, sizeof fail.message, "unable to encode the response: %s",
                     ipc_strerror(rc));
        else
            snprintf(fail.message, sizeof fail.message, "unable to encode the response: %s",
                     strerror(-rc));
        wlog(w, "request %s: %s", id, fail.message);
        return send_error(w, fr->id, &fail);
    }
    wrk_board_totals();
    ipc_stage(fr->id, STAGE_REPLIED, 0);
    rc = reply_bytes(w, out, outlen);
    free(out);
    return rc;
}

static int serve_request(wrk *w, const ipc_frame *fr)
{
    ipc_stage(fr->id, STAGE_RECEIVED, 0);
    wrk_board_request_begin(fr->id);
    int rc = serve_request_body(w, fr, fr->type == IPC_FIRST_REQUEST);
    wrk_board_request_end();
    return rc;
}

/* A SHADOW frame (CEK workers): the request runs as REQUEST would, pinned
 * to the native run's snapshot (run_request); the reply it would have
 * sent goes back inside SHADOW_RESULT with the verdict. */
static int serve_shadow(wrk *w, const ipc_frame *fr)
{
    if (fr->nfields < 8) {
        wlog(w, "malformed SHADOW frame: %d fields", fr->nfields);
        return -1;
    }
    ipc_frame *req = malloc(sizeof *req);
    if (!req) return -ENOMEM;
    req->type = IPC_REQUEST;
    req->id = fr->id;
    req->nfields = fr->nfields - 4;
    memcpy(req->fields, fr->fields + 4, sizeof *req->fields * (size_t)req->nfields);
    shadow_run sh = {0};
    sh.verify = fr->fields[0].len == 6 && !memcmp(fr->fields[0].p, "verify", 6);
    sh.expected = fr->fields[1];
    sh.snapshot = fr->fields[2];
    sh.digest = fr->fields[3];
    sh.verdict = "inconclusive";
    snprintf(sh.detail, sizeof sh.detail, "answered from the request's response record");
    w->sh = &sh;
    int rc = serve_request_body(w, req, false);
    w->sh = NULL;
    free(req);
    if (rc == 0 && !sh.compared && w->captured)
        snprintf(sh.detail, sizeof sh.detail, "the CEK run did not get to compare");
    if (rc == 0) {
        ipc_field f[3] = {
            fstr(sh.verdict),
            fstr(sh.detail),
            {sh.verify ? "" : w->captured, sh.verify ? 0 : (uint32_t)w->captured_len}};
        char *buf;
        size_t len;
        rc = ipc_encode(IPC_SHADOW_RESULT, fr->id, f, 3, &buf, &len);
        if (rc == 0) {
            rc = ipc_send(w->conn, buf, len);
            free(buf);
        }
    }
    free(w->captured);
    w->captured = NULL;
    w->captured_len = 0;
    return rc;
}

/* ---- the blacklist -------------------------------------------------------------- */

static void drop_native(wrk *w, const char *fn, const char *code_hash, const char *why)
{
    wrk_native_blacklist(fn, code_hash && *code_hash ? code_hash : NULL);
    wlog(w, "dropped the native code of %s (code %s): %s", fn,
         code_hash && *code_hash ? code_hash : "any", why);
}

static int load_entry(void *arg, const store_bl_entry *e)
{
    wrk *w = arg;
    if (w->bl_quiet)
        wrk_native_blacklist(e->function, e->code_hash[0] ? e->code_hash : NULL);
    else
        drop_native(w, e->function, e->code_hash, "blacklisted in the store");
    return 0;
}

/* Drops every function blacklisted for this worker's ABI hash (dropping one
 * twice is harmless; quiet: without a log line per function). */
static int load_blacklist(wrk *w, bool quiet)
{
    if (!w->native) return 0;
    w->bl_quiet = quiet;
    int rc = store_bl_each(w->st, w->abi, load_entry, w);
    if (rc != 0) wlog(w, "unable to read the blacklist: %s", store_strerror(rc));
    return rc;
}

/* A BLACKLIST frame: function, code hash. CEK workers have no native code. */
static void on_blacklist(wrk *w, const ipc_frame *fr)
{
    if (fr->nfields < 1 || fr->fields[0].len == 0) {
        wlog(w, "ignoring a BLACKLIST frame without a function name");
        return;
    }
    if (!w->native) return;
    char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH] = "";
    ipc_field_str(fr, 0, fn, sizeof fn);
    if (fr->nfields >= 2) ipc_field_str(fr, 1, hash, sizeof hash);
    drop_native(w, fn, hash, "blacklisted by the supervisor");
}

/* ---- start-up ---------------------------------------------------------------- */

/* Appends one --jit-exclude value to the comma-separated list. */
static int add_exclude(wrk *w, const char *globs)
{
    size_t have = strlen(w->exclude), add = strlen(globs);
    if (add == 0 || have + add + 2 > sizeof w->exclude) return -1;
    if (have > 0) w->exclude[have++] = ',';
    memcpy(w->exclude + have, globs, add + 1);
    return 0;
}

static int parse_threshold(const char *v, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno != 0 || n > UINT32_MAX) return -1;
    *out = (uint32_t)n;
    return 0;
}

static int parse_flags(wrk *w, int argc, char **argv)
{
    w->slot = -1;
    w->mode = "jit";
    w->jit_threshold = WRK_DEFAULT_JIT_THRESHOLD;
    w->shadow_canary = 0; /* the supervisor passes its --shadow-canary and --shadow-rate */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--slot=", 7))
            w->slot = atoi(a + 7);
        else if (!strncmp(a, "--rundir=", 9))
            w->rundir = a + 9;
        else if (!strncmp(a, "--app=", 6))
            w->app = a + 6;
        else if (!strncmp(a, "--data=", 7))
            w->data = a + 7;
        else if (!strncmp(a, "--mode=", 7))
            w->mode = a + 7;
        else if (!strncmp(a, "--memory-limit=", 15)) {
            if (!wrk_parse_size(a + 15, &w->opt.heap_limit)) {
                fprintf(stderr, "sxpool worker: --memory-limit: bad size '%s'\n", a + 15);
                return -1;
            }
        } else if (!strncmp(a, "--worker-memory=", 16)) {
            if (!wrk_parse_size(a + 16, &w->data_limit)) {
                fprintf(stderr, "sxpool worker: --worker-memory: bad size '%s'\n", a + 16);
                return -1;
            }
        } else if (!strcmp(a, "--core-dumps")) {
            w->core_dumps = true;
        } else if (!strcmp(a, "--no-seccomp")) {
            w->no_seccomp = true;
        } else if (!strncmp(a, "--jit-threshold=", 16)) {
            if (parse_threshold(a + 16, &w->jit_threshold) != 0) {
                fprintf(stderr, "sxpool worker: --jit-threshold: bad count '%s'\n", a + 16);
                return -1;
            }
        } else if (!strncmp(a, "--shadow-canary=", 16)) {
            if (parse_threshold(a + 16, &w->shadow_canary) != 0) {
                fprintf(stderr, "sxpool worker: --shadow-canary: bad count '%s'\n", a + 16);
                return -1;
            }
        } else if (!strncmp(a, "--shadow-rate=", 14)) {
            char *end;
            w->shadow_rate = strtod(a + 14, &end);
            if (end == a + 14 || *end || !(w->shadow_rate >= 0 && w->shadow_rate <= 1)) {
                fprintf(stderr, "sxpool worker: --shadow-rate: expected 0 to 1, got '%s'\n",
                        a + 14);
                return -1;
            }
        } else if (!strncmp(a, "--shadow-exclude=", 17)) {
            snprintf(w->shadow_exclude, sizeof w->shadow_exclude, "%s", a + 17);
        } else if (!strncmp(a, "--jit-exclude=", 14)) {
            if (add_exclude(w, a + 14) != 0) {
                fprintf(stderr, "sxpool worker: --jit-exclude: empty or too long '%s'\n", a + 14);
                return -1;
            }
        } else {
            fprintf(stderr, "sxpool worker: unknown flag '%s'\n", a);
            return -1;
        }
    }
    if (w->slot < 0 || !w->rundir || !w->app || !w->data) {
        fputs("usage: sxpool worker --slot=N --rundir=DIR --app=DIR --data=DIR "
              "[--mode=jit|cek] [--jit-threshold=N] [--jit-exclude=GLOBS] "
              "[--worker-memory=SIZE] [--core-dumps] [--no-seccomp] [--shadow-canary=K]\n"
              "       [--shadow-rate=R] [--shadow-exclude=GLOBS]\n",
              stderr);
        return -1;
    }
    if (strcmp(w->mode, "jit") && strcmp(w->mode, "cek")) {
        fprintf(stderr, "sxpool worker: --mode: expected jit or cek, got '%s'\n", w->mode);
        return -1;
    }
    w->jit_mode = strcmp(w->mode, "jit") == 0;
    return 0;
}

/* jit mode: turns the native tier on; the worker runs the bytecode VM
 * without it if it is not available. */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* libgccjit, and the as and ld it runs, write under $TMPDIR: a JIT worker
 * gets a directory of its own in the run directory, emptied first (a
 * predecessor in this slot killed mid-compile may have left files in it)
 * and removed by the supervisor with the run directory. */
static void private_tmpdir(wrk *w)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/tmp-%d", w->rundir, w->slot) >= (int)sizeof tmp) return;
    nftw(tmp, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    if (mkdir(tmp, 0700) != 0) {
        wlog(w, "unable to create %s: %s; compiling under $TMPDIR", tmp, strerror(errno));
        return;
    }
    setenv("TMPDIR", tmp, 1);
}

static void start_native(wrk *w)
{
    snprintf(w->abi, sizeof w->abi, "sxpool-%s", SXPOOL_VERSION);
    if (!w->jit_mode) return;
    private_tmpdir(w);
    char cache[4200], why[4400];
    snprintf(cache, sizeof cache, "%s/jit-cache", w->data);
    jit_options o = {cache, w->jit_threshold, w->exclude[0] ? w->exclude : NULL};
    if (wrk_native_cache_dir(cache, why, sizeof why) != 0) {
        wlog(w, "not using the code cache %s: %s; compiling without it", cache, why);
        o.cache_dir = NULL;
    }
    jit_hooks hooks;
    wrk_board_hooks(&hooks);
    int rc = wrk_native_init(&o, &hooks);
    if (rc != 0) {
        wlog(w, "unable to start the native tier: %s; running the bytecode VM only", strerror(-rc));
        return;
    }
    const char *abi = wrk_native_abi_hash();
    if (!abi) {
        wlog(w, "the native tier is unavailable (libgccjit: see above); running the bytecode VM "
                "only");
        return;
    }
    w->native = true;
    snprintf(w->abi, sizeof w->abi, "%s", abi);
}

static int send_ready(wrk *w)
{
    char slot[16], pid[16];
    snprintf(slot, sizeof slot, "%d", w->slot);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    ipc_field f[4] = {fstr(slot), fstr(pid), fstr(w->mode), fstr(w->abi)};
    return send_frame(w, IPC_READY, 0, f, 4);
}

/* Everything before READY. @return 0 or the process exit status */
static int start(wrk *w)
{
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        wlog(w, "unable to ignore SIGPIPE: %s", strerror(errno));
        return 1;
    }
    srand((unsigned)getpid());
    ipc_stage_init(); /* before the sandbox: it opens a file */
    char why[256];
    int rc = wrk_sandbox_limits(w->core_dumps, w->data_limit, why, sizeof why);
    if (rc != 0) wlog(w, "%s", why);
    if (rc < 0) return 1;
    wrk_hook_init(w->mode);
    if (wrk_hook_exit_at_start()) {
        wlog(w, "test hook: exiting at start");
        return 1;
    }
    rc = wrk_board_open(w->rundir, w->slot);
    if (rc != 0)
        wlog(w, "unable to map the crash scoreboard of slot %d: %s; crashes will go unexplained",
             w->slot, strerror(-rc));
    /* The supervisor's --store-size, in bytes: every process must map the
     * store at the same size (store_open). */
    size_t map_size = 0;
    const char *v = getenv("SXPOOL_STORE_SIZE");
    if (v && *v) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (*end != '\0' || errno != 0 || *v == '-' || n > SIZE_MAX) {
            wlog(w, "unable to open the store: SXPOOL_STORE_SIZE is not a size in bytes: '%s'", v);
            return 1;
        }
        map_size = (size_t)n;
    }
    /* the supervisor's --store (a PostgreSQL URL), else LMDB in --data */
    const char *pg = getenv("SXPOOL_STORE");
    rc = store_open(pg && *pg ? pg : w->data, map_size, &w->st);
    if (rc != 0) {
        if (pg && *pg)
            wlog(w, "unable to open the store in PostgreSQL: %s", store_strerror(rc));
        else
            wlog(w, "unable to open the store in %s: %s", w->data, store_strerror(rc));
        return 1;
    }
    /* JIT workers run the VM and native code; CEK workers the reference evaluator only */
    w->opt.tier = w->jit_mode ? SX_TIER_VM : SX_TIER_CEK;
    /* response bodies (up to the memory limit) are malloc'd: a fixed mmap
     * threshold gives each big one its own mapping, returned at free,
     * where glibc's sliding one would keep them in the arena after the
     * first */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    if (sx_vm_init(&w->opt) != 0) {
        wlog(w, "unable to start the SX runtime");
        return 1;
    }
    start_native(w);
    wrk_board_identity(w->abi);
    rc = wrk_crash_install(w->native);
    if (rc != 0) wlog(w, "unable to install the crash handler: %s", strerror(-rc));
    if (load_blacklist(w, false) != 0) return 1;
    fx = (sx_effects){w, fx_get, fx_put, fx_del, fx_scan, fx_log, ""};
    sx_vm_set_effects(&fx);
    /* The application's source is read now: once the filter is on, a CEK
     * worker cannot open files. */
    char path[4096];
    snprintf(path, sizeof path, "%s/main.sx", w->app);
    sx_sources src;
    sx_failure rfail;
    memset(&rfail, 0, sizeof rfail);
    if (sx_vm_sources_read(path, &src, &rfail) != 0) {
        wlog(w, "unable to load %s: %s", path, rfail.line);
        return 1;
    }
    char url[4200];
    int transport = ipc_transport_parse(getenv("SXPOOL_TRANSPORT"));
    if (transport < 0) {
        wlog(w, "SXPOOL_TRANSPORT is '%s': expected unix or nng", getenv("SXPOOL_TRANSPORT"));
        return 1;
    }
    ipc_slot_url(w->rundir, w->slot, transport, url, sizeof url);
    rc = ipc_dial(url, 5000, &w->conn);
    if (rc != 0) {
        wlog(w, "unable to connect to the supervisor at %s: %s", url, ipc_strerror(rc));
        sx_vm_sources_free(&src);
        return 1;
    }
    /* A frame known to be on its way is waited for in recv(), the others
     * in poll() (ipc_set_due). */
    if (wrk_board()) ipc_set_due(w->conn, wrk_board_frame_due, NULL);
    /* Again, now that BLACKLIST frames reach us: an entry added while we
     * were not yet connected was not pushed to us. */
    if (load_blacklist(w, true) != 0) {
        sx_vm_sources_free(&src);
        return 1;
    }
    /* Everything a worker opens is open: no application code has run yet. */
    if (!w->no_seccomp && wrk_sandbox_enter(w->jit_mode, why, sizeof why) != 0) {
        wlog(w, "%s (--no-seccomp runs workers without the filter)", why);
        sx_vm_sources_free(&src);
        return 1;
    }
    sx_failure fail;
    memset(&fail, 0, sizeof fail);
    rc = sx_vm_sources_load(&src, &fail);
    sx_vm_sources_free(&src);
    if (rc != 0) {
        wlog(w, "unable to load %s: %s", path, fail.line);
        return 1;
    }
    return send_ready(w) != 0 ? 1 : 0;
}

static int serve(int argc, char **argv)
{
    wrk w = {0};
    if (parse_flags(&w, argc, argv) != 0) return 2;
    int rc = start(&w);
    if (rc != 0) return rc;
    ipc_frame *fr = malloc(sizeof *fr);
    if (!fr) return 1;
    for (;;) {
        char *buf;
        size_t len;
        rc = ipc_recv(w.conn, -1, &buf, &len);
        if (rc != 0) {
            wlog(&w, "lost the supervisor: %s", ipc_strerror(rc));
            return 1;
        }
        rc = ipc_decode(buf, len, fr);
        if (rc != 0) {
            wlog(&w, "dropping the supervisor after a malformed frame: %s", ipc_strerror(rc));
            free(buf);
            return 1;
        }
        if (fr->type == IPC_SHUTDOWN) {
            free(buf);
            break;
        }
        if ((fr->type == IPC_REQUEST || fr->type == IPC_FIRST_REQUEST || fr->type == IPC_SHADOW) &&
            !wrk_board_start(fr->id)) {
            free(buf); /* taken back: it runs elsewhere, or its client left */
            continue;
        }
        if ((fr->type == IPC_REQUEST || fr->type == IPC_FIRST_REQUEST || fr->type == IPC_SHADOW) &&
            store_check(w.st) != 0) {
            /* Nothing of the request has run: the supervisor queues it
             * again, uncharged, and a new worker connects (this one's
             * sandbox lets it open no socket). */
            wlog(&w, "the connection to PostgreSQL is closed (the server restarted?); exiting "
                     "so that a new worker connects");
            free(buf);
            free(fr);
            return IPC_EXIT_STORE_LOST;
        }
        if (fr->type == IPC_REQUEST || fr->type == IPC_FIRST_REQUEST)
            rc = serve_request(&w, fr);
        else if (fr->type == IPC_SHADOW && !w.native) {
            wrk_board_request_begin(fr->id);
            rc = serve_shadow(&w, fr);
            wrk_board_request_end();
        } else if (fr->type == IPC_BLACKLIST)
            on_blacklist(&w, fr);
        else
            wlog(&w, "ignoring a frame of type %d", fr->type);
        free(buf);
        if (rc == -ENOTCONN) { /* found out before anything of the request ran */
            wlog(&w, "the connection to PostgreSQL is closed; exiting so that a new worker "
                     "connects");
            return IPC_EXIT_STORE_LOST;
        }
        if (rc == STORE_ECONN) {
            /* Whether its commit landed is unknown: die, and the
             * supervisor retries the request once, as after any death,
             * answered from its record if the commit did land. */
            wlog(&w, "lost the connection to PostgreSQL during a request; exiting so that it "
                     "is retried");
            return 1;
        }
        if (rc != 0) {
            wlog(&w, "unable to answer a request: %s", ipc_strerror(rc));
            return 1;
        }
    }
    free(fr);
    ipc_close(w.conn);
    store_close(w.st);
    return 0;
}

int wrk_main(int argc, char **argv)
{
    int rc = serve(argc, argv);
    jit_shutdown(); /* never exit while libgccjit is inside a compile */
    return rc;
}
