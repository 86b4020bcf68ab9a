/* sup_shadow.c: shadow verification, the supervisor's half: native code
 * earns trust by agreeing with the reference evaluator.
 *
 * A JIT worker answers CHECKED instead of RESPONSE for a request that ran
 * native code still in its first --shadow-canary requests in that worker
 * (a canary) or, after that, for --shadow-rate of them (a sample). CHECKED
 * carries the native run's response, its snapshot (the keys and scans it
 * read, with what it saw) and its write-set digest (ipc.h).
 *
 *   canary   the JIT worker committed nothing. The request goes to the
 *            retry queue (CEK workers only) as a SHADOW frame: the CEK
 *            worker runs it pinned to the snapshot (store_txn_pin: every
 *            key the native run read reads as it saw it), compares, and
 *            commits its own result, whose validation checks those values
 *            against the store as it is then, so what is committed is the
 *            reference evaluator's result on a snapshot still current (a
 *            conflict runs it again, unpinned, like any conflict). The
 *            client gets the CEK run's response, always. The canary
 *            attempt is not counted: the shadow run is the request's first
 *            real run, so a death of either worker is re-dispatched as any
 *            first attempt's is (sup_fault.c).
 *   sample   the JIT worker committed and its response is answered at
 *            once; a copy of the request, with no client, is sent as a
 *            verify-only SHADOW to an idle CEK worker when nothing waits
 *            in a queue and the budget allows (else skipped and counted):
 *            its run is pinned the same way and aborted.
 *
 * Budget. A sample's check runs on the CEK evaluator, many times slower
 * than the native run it checks, on the same CPUs as the JIT workers.
 * --shadow-budget=PCT bounds it: the time from sending a sample to its
 * result (wall time, so an upper bound of its CPU time) is taken from a
 * bucket that fills at PCT percent of the time passing, times the JIT
 * workers, up to SHADOW_BUCKET_S seconds of that; a sample arriving while the
 * bucket is empty is skipped. Canaries are not limited: they decide what a
 * client is answered.
 *
 * A verdict "differs" blacklists every function the native run entered,
 * pool-wide, through the fault path (sup__fault_shadow_mismatch): one log
 * line "fault: FUNCTION: shadow mismatch; WHAT; ..." per function.
 * "inconclusive" (the CEK run hit a resource limit, or a scan saw other
 * entries than the native run's) blacklists nothing and is counted.
 *
 * Loop thread only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_internal.h"

static bool field_is(const ipc_field *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->p, s, f->len) == 0;
}

/* A copy of r's request, without a client, for a verify-only run. */
static sup_request *copy_request(const sup_request *r)
{
    sup_request *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->id = r->id;
    c->srv = r->srv;
    c->arrived_ns = r->arrived_ns;
    c->slot = -1;
    c->method = r->method;
    c->http_minor = r->http_minor;
    c->path_off = r->path_off;
    c->path_len = r->path_len;
    c->query_off = r->query_off;
    c->nheaders = c->cap_headers = r->nheaders;
    c->headers = r->nheaders ? malloc(sizeof *c->headers * (size_t)r->nheaders) : NULL;
    if ((r->nheaders && !c->headers) || sup__buf_append(&c->url, r->url.p, r->url.len) != 0 ||
        sup__buf_append(&c->hdata, r->hdata.p, r->hdata.len) != 0 ||
        sup__buf_append(&c->body, r->body.p, r->body.len) != 0) {
        sup__request_free(c);
        return NULL;
    }
    if (r->nheaders) memcpy(c->headers, r->headers, sizeof *c->headers * (size_t)r->nheaders);
    return c;
}

/* The most budget the bucket keeps: ten seconds' worth at its rate. */
#define SHADOW_BUCKET_S 10

/* Refills the budget's bucket. @return whether a sample may run now */
static bool budget_allows(sup_server *s)
{
    double pct = s->cfg.shadow_budget;
    if (pct >= 100) return true;
    double rate = pct / 100 * (s->cfg.workers > 0 ? s->cfg.workers : 1);
    double cap = rate * SHADOW_BUCKET_S * 1e9;
    uint64_t now = uv_hrtime();
    if (s->shadow_refill_ns == 0)
        s->shadow_tokens_ns = cap; /* the first sample: a full bucket */
    else
        s->shadow_tokens_ns += (double)(now - s->shadow_refill_ns) * rate;
    if (s->shadow_tokens_ns > cap) s->shadow_tokens_ns = cap;
    s->shadow_refill_ns = now;
    return s->shadow_tokens_ns > 0;
}

void sup__shadow_checked(sup_slot *w, sup_request *r, const ipc_frame *f)
{
    sup_server *s = w->srv;
    static ipc_frame inner;
    bool canary = field_is(&f->fields[0], "canary");
    const char *mode = canary ? "commit" : "verify";
    ipc_field pre[4] = {{mode, (uint32_t)strlen(mode)}, f->fields[1], f->fields[2], f->fields[3]};
    char *natives = malloc(f->fields[4].len + 1);
    int err = natives ? ipc_decode(f->fields[1].p, f->fields[1].len, &inner) : -1;
    if (err == 0 && inner.type != IPC_RESPONSE) err = -1;
    if (err == 0) err = ipc_encode(IPC_SHADOW, r->id, pre, 4, &r->shadow.frame, &r->shadow.len);
    if (err != 0) {
        free(natives);
        sup__error("request %llu: worker %d (pid %d) sent a CHECKED reply that cannot be used",
                   (unsigned long long)r->id, w->index, w->pid);
        sup__http_respond_text(r, 502, "the worker sent a malformed response\n");
        return;
    }
    memcpy(natives, f->fields[4].p, f->fields[4].len);
    natives[f->fields[4].len] = '\0';
    r->shadow.natives = natives;
    snprintf(r->shadow.abi, sizeof r->shadow.abi, "%s", w->abi);
    r->shadow.jit_worker = w->index;
    r->shadow.jit_pid = w->pid;
    if (canary) {
        r->attempts--;               /* it committed nothing and answered nothing */
        sup__pool_retry(s, r, true); /* frees r if its client has gone */
        return;
    }
    bool allowed = budget_allows(s);
    sup_request *v = allowed ? copy_request(r) : NULL;
    if (v) {
        v->shadow = r->shadow;
        v->shadow.verify = true;
        v->shadow.sent_ns = uv_hrtime();
        r->shadow.frame = NULL;
        r->shadow.natives = NULL;
    }
    sup__pool_answer(w, r, &inner);
    if (!v || !sup__pool_send_idle_cek(s, v)) {
        s->metrics.shadow_skipped[allowed ? 0 : 1]++;
        sup__request_free(v);
    }
}

int sup__shadow_encode(const sup_request *r, const ipc_field *req, int n, char **buf, size_t *len)
{
    static ipc_frame pre;
    static ipc_field fields[IPC_MAX_FIELDS];
    int err = ipc_decode(r->shadow.frame, r->shadow.len, &pre);
    if (err != 0) return err;
    if (pre.nfields != 4 || n + 4 > IPC_MAX_FIELDS) return IPC_EFIELDS;
    memcpy(fields, pre.fields, sizeof *fields * 4);
    memcpy(fields + 4, req, sizeof *fields * (size_t)n);
    return ipc_encode(IPC_SHADOW, r->id, fields, n + 4, buf, len);
}

/* Answers r from the reply (an encoded RESPONSE or ERROR frame) a CEK
 * worker sent inside SHADOW_RESULT. */
static void answer(sup_server *s, sup_request *r, const char *reply, size_t len)
{
    static ipc_frame f;
    long long status = 0;
    if (len == 0 || ipc_decode(reply, len, &f) != 0 || f.id != r->id) {
        sup__error("request %llu: a SHADOW_RESULT without a usable reply",
                   (unsigned long long)r->id);
        sup__http_respond_text(r, 502, "the worker sent a malformed response\n");
    } else if (f.type == IPC_RESPONSE && f.nfields >= 2 && (f.nfields - 2) % 2 == 0 &&
               ipc_field_int(&f, 0, &status) == 0 && status >= 200 && status <= 599) {
        sup__http_respond(r, (int)status, &f.fields[2], f.nfields - 2, f.fields[1].p,
                          f.fields[1].len);
    } else if (f.type == IPC_RESPONSE) {
        sup__http_respond_text(r, 500, "bad-status: a handler status must be 200 to 599\n");
    } else if (f.type == IPC_ERROR && f.nfields >= 3) {
        if (ipc_field_int(&f, 0, &status) != 0 || status < 400 || status > 599) status = 500;
        sup__pool_reply_error(s, r, (int)status, f.fields[1].p, f.fields[1].len, f.fields[2].p,
                              f.fields[2].len);
    } else {
        sup__http_respond_text(r, 502, "the worker sent a malformed response\n");
    }
}

/* A canary the CEK run disagreed with: answered once its native functions
 * are blacklisted pool-wide, so no later request can run them natively. */
typedef struct deferred {
    sup_server *s;
    sup_request *r;
    size_t len;
    char reply[];
} deferred;

static void answer_deferred(void *arg)
{
    deferred *d = arg;
    answer(d->s, d->r, d->reply, d->len);
    free(d);
}

void sup__shadow_result(sup_slot *w, sup_request *r, const ipc_frame *f)
{
    sup_server *s = w->srv;
    char detail[600], where[160];
    ipc_field_str(f, 1, detail, sizeof detail);
    snprintf(where, sizeof where,
             "request %llu, native run on worker %d (pid %d), CEK run on %d (pid %d)",
             (unsigned long long)r->id, r->shadow.jit_worker, r->shadow.jit_pid, w->index, w->pid);
    s->metrics.shadow_runs[r->shadow.verify ? 1 : 0]++;
    if (r->shadow.verify) {
        uint64_t spent = uv_hrtime() - r->shadow.sent_ns;
        s->metrics.shadow_sample_ns += spent;
        s->shadow_tokens_ns -= (double)spent;
    }
    const char *natives = r->shadow.natives ? r->shadow.natives : "";
    if (field_is(&f->fields[0], "differs")) {
        s->metrics.shadow_mismatches++;
        deferred *d = r->shadow.verify ? NULL : malloc(sizeof *d + f->fields[2].len);
        if (d) {
            d->s = s;
            d->r = r;
            d->len = f->fields[2].len;
            memcpy(d->reply, f->fields[2].p, d->len);
        }
        sup__fault_shadow_mismatch(s, r->shadow.abi, natives, detail, where,
                                   d ? answer_deferred : NULL, d);
        if (d) return;
    } else if (!field_is(&f->fields[0], "same")) {
        s->metrics.shadow_inconclusive++;
        sup__info("shadow run inconclusive: %s; %s", detail, where);
    }
    if (r->shadow.verify) {
        sup__request_free(r);
        return;
    }
    answer(s, r, f->fields[2].p, f->fields[2].len);
}
