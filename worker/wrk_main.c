/* wrk_main.c: the worker process (`sxpool worker ...`), started by the
 * supervisor with uv_spawn.
 *
 * Single-threaded apart from nng's own threads: it opens its LMDB
 * environment and dials its slot's nng socket after exec, loads the app,
 * announces READY and then serves one request at a time:
 *
 *   REQUEST -> answered from the response record if this request id was
 *              already committed (a re-dispatch after a death), otherwise
 *              (handle req) runs in a store transaction; a RESPONSE is
 *              committed together with the writes under the request id,
 *              then sent. A conflict at commit reruns the handler (nothing
 *              was applied). An SX error aborts the transaction: ERROR.
 *   SHUTDOWN -> exit 0.
 *
 * Any failure of the link to the supervisor ends the process: the
 * supervisor respawns the slot.
 */
#include <errno.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ipc/ipc.h"
#include "store/store.h"
#include "vm/vm.h"
#include "worker/worker.h"
#include "worker/wrk_internal.h"

#define WRK_MAX_RETRIES 64

typedef struct wrk {
    int slot;
    const char *rundir, *app, *data, *mode;
    store *st;
    ipc_conn *conn;
    store_txn *txn; /* the running request's transaction */
    sx_options opt;
} wrk;

static void wlog(const wrk *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void wlog(const wrk *w, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sxpool worker %d (pid %d): ", w->slot, (int)getpid());
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
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

static void fx_log(void *arg, const char *line, size_t len)
{
    wrk *w = arg;
    fprintf(stderr, "sxpool worker %d: log: %.*s\n", w->slot, (int)len, line);
}

/* ---- frames ---------------------------------------------------------------- */

static int send_frame(wrk *w, int type, uint64_t id, const ipc_field *f, int n)
{
    char *buf;
    size_t len;
    int rc = ipc_encode(type, id, f, n, &buf, &len);
    if (rc == 0) {
        rc = ipc_send(w->conn, buf, len);
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

/* Encodes a RESPONSE frame for resp. */
static int encode_response(uint64_t id, const sx_response *resp, char **buf, size_t *len)
{
    int n = 2 + 2 * resp->nheaders;
    ipc_field *f = calloc((size_t)n, sizeof *f);
    if (!f) return -ENOMEM;
    char status[16];
    snprintf(status, sizeof status, "%d", resp->status);
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

static void backoff(int attempt)
{
    struct timespec ts = {0, (long)(50000 + (rand() % 200000)) * (attempt < 8 ? attempt + 1 : 8)};
    nanosleep(&ts, NULL);
}

/* Runs the handler until its transaction commits; returns 0 and the
 * encoded RESPONSE, 1 after an SX error (fail filled), < 0 on a store error. */
static int run_request(wrk *w, const sx_request *r, uint64_t id, char **out, size_t *outlen,
                       sx_failure *fail)
{
    for (int attempt = 0; attempt < WRK_MAX_RETRIES; attempt++) {
        int rc = store_txn_begin(w->st, &w->txn);
        if (rc != 0) return rc;
        sx_response resp;
        if (sx_vm_handle(r, &resp, fail) != 0) {
            store_txn_abort(w->txn);
            w->txn = NULL;
            return 1;
        }
        rc = encode_response(id, &resp, out, outlen);
        sx_response_free(&resp);
        if (rc != 0) {
            store_txn_abort(w->txn);
            w->txn = NULL;
            return rc;
        }
        /* read-only requests commit no record: running them again is harmless */
        bool writes = store_txn_nwrites(w->txn) > 0;
        rc = store_txn_commit(w->txn, writes ? r->id : NULL, *out, *outlen);
        w->txn = NULL;
        if (rc == 0) return 0;
        free(*out);
        *out = NULL;
        if (rc != STORE_ECONFLICT) return rc;
        backoff(attempt);
    }
    wlog(w, "request %s: gave up after %d commit conflicts", r->id, WRK_MAX_RETRIES);
    return STORE_ECONFLICT;
}

static int serve_request(wrk *w, const ipc_frame *fr)
{
    char id[32];
    snprintf(id, sizeof id, "%llu", (unsigned long long)fr->id);
    if (fr->nfields < 4 || (fr->nfields - 4) % 2) {
        wlog(w, "malformed REQUEST frame: %d fields", fr->nfields);
        return -1;
    }
    char *prior;
    size_t prior_len;
    if (store_response_get(w->st, id, &prior, &prior_len) == 0) {
        /* committed by an earlier attempt: answer from the record, never rerun */
        int rc = ipc_send(w->conn, prior, prior_len);
        free(prior);
        return rc;
    }
    sx_header *hs = calloc((size_t)(fr->nfields / 2 + 1), sizeof *hs);
    if (!hs) return -ENOMEM;
    sx_request r;
    request_of(fr, id, &r, hs);
    char *out = NULL;
    size_t outlen = 0;
    sx_failure fail;
    int rc = run_request(w, &r, fr->id, &out, &outlen, &fail);
    free(hs);
    if (rc == 1) return send_error(w, fr->id, &fail);
    if (rc < 0) {
        snprintf(fail.kind, sizeof fail.kind, "effect-error");
        snprintf(fail.message, sizeof fail.message, "store: %s", store_strerror(rc));
        return send_error(w, fr->id, &fail);
    }
    rc = ipc_send(w->conn, out, outlen);
    free(out);
    return rc;
}

/* ---- start-up ---------------------------------------------------------------- */

static int parse_flags(wrk *w, int argc, char **argv)
{
    w->slot = -1;
    w->mode = "jit";
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
        } else {
            fprintf(stderr, "sxpool worker: unknown flag '%s'\n", a);
            return -1;
        }
    }
    if (w->slot < 0 || !w->rundir || !w->app || !w->data) {
        fputs("usage: sxpool worker --slot=N --rundir=DIR --app=DIR --data=DIR "
              "[--mode=jit|cek]\n",
              stderr);
        return -1;
    }
    if (strcmp(w->mode, "jit") && strcmp(w->mode, "cek")) {
        fprintf(stderr, "sxpool worker: --mode: expected jit or cek, got '%s'\n", w->mode);
        return -1;
    }
    return 0;
}

static int send_ready(wrk *w)
{
    char slot[16], pid[16];
    snprintf(slot, sizeof slot, "%d", w->slot);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    ipc_field f[4] = {fstr(slot), fstr(pid), fstr(w->mode), fstr("sxpool-" SXPOOL_VERSION)};
    return send_frame(w, IPC_READY, 0, f, 4);
}

int wrk_main(int argc, char **argv)
{
    wrk w = {0};
    if (parse_flags(&w, argc, argv) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    srand((unsigned)getpid());
    int rc = store_open(w.data, 0, &w.st);
    if (rc != 0) {
        wlog(&w, "unable to open the store in %s: %s", w.data, store_strerror(rc));
        return 1;
    }
    /* JIT workers run the bytecode VM (native code comes later); CEK workers the reference */
    w.opt.tier = strcmp(w.mode, "cek") ? SX_TIER_VM : SX_TIER_CEK;
    sx_vm_init(&w.opt);
    fx = (sx_effects){&w, fx_get, fx_put, fx_del, fx_scan, fx_log, ""};
    sx_vm_set_effects(&fx);
    char path[4096];
    snprintf(path, sizeof path, "%s/main.sx", w.app);
    sx_failure fail;
    if (sx_vm_load_file(path, &fail) != 0) {
        wlog(&w, "unable to load %s: %s", path, fail.line);
        return 1;
    }
    char url[4200];
    ipc_slot_url(w.rundir, w.slot, url, sizeof url);
    rc = ipc_dial(url, 5000, &w.conn);
    if (rc != 0) {
        wlog(&w, "unable to connect to the supervisor at %s: %s", url, ipc_strerror(rc));
        return 1;
    }
    if (send_ready(&w) != 0) return 1;
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
        if (fr->type == IPC_REQUEST)
            rc = serve_request(&w, fr);
        else
            wlog(&w, "ignoring a frame of type %d", fr->type);
        free(buf);
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
