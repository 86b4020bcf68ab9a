/* sup_fault.c: the fault classifier. Every JIT_FAULT reply and every worker
 * death comes here and gets what DESIGN.md's fault table says:
 *
 *   JIT_FAULT reply              blacklist the function, push it to the JIT
 *                                workers, run the request again on a CEK
 *                                worker; if that fails with the same error
 *                                kind, lift the entry and answer the 500
 *   death by SIGSEGV, SIGBUS,    blacklist the native function the crash
 *   SIGILL, SIGFPE, SIGABRT      record names, re-dispatch to a CEK worker
 *   with a crash record
 *   exit status 4 (or one of     blacklist every function of the batch the
 *   those signals with no        scoreboard says was compiling; re-dispatch
 *   native function) while       to a CEK worker
 *   compiling
 *   any other death              re-dispatch once: to a CEK worker if one
 *                                is up, else to any (also when the CEK
 *                                workers stay busy: sup_pool.c, pick_for)
 *   a second failure             502; a request never runs a third time
 *
 * A request runs again under the same id (so a worker answers it from its
 * committed response record if the first attempt committed), through a
 * queue served before new requests, with a full deadline of its own: a
 * request of death costs at most two workers and two deadlines. A request
 * whose second attempt fails too, or that cannot run again because the
 * server is stopping, is answered from its response record when one of its
 * attempts committed before its worker died (its effects were applied:
 * the client gets the committed response, not a 502).
 *
 * Respawning is sup_pool.c's (after every death, with backoff). Each fault
 * gets one log line, "fault: FUNCTION: what happened; worker N (pid P);
 * what was done", so an operator can grep for them.
 *
 * A lifted entry is removed from the store only: live JIT workers that were
 * told to drop the function keep running it on the VM until they are
 * replaced (a worker cannot take native code back), new workers compile it
 * again.
 *
 * Threads: the classifier runs on the supervisor's loop thread, which never
 * waits on the store. Each fault's LMDB work (adding its blacklist entries;
 * looking up the response record of a request that cannot run again) is a
 * fault job run on a thread-pool thread through sup_store.c, in fault
 * order; the job's completion, back on the loop, pushes the entries to the
 * JIT workers, then re-dispatches or answers the request, then logs. Until
 * then the request is the job's: not queued, not answered. So a worker
 * holding the write lock delays only the faulted request, and the order
 * the table above implies still holds: an entry is stored before any
 * worker is told of it, and before its request is answered or runs again.
 * Lifting an entry (a CEK worker failed the same way) is a job too; the
 * error is answered in its completion, once the entry is gone.
 *
 * The scoreboard is read only after its worker has exited, so nothing
 * writes it while we read; what a job needs of it is copied at once (the
 * slot is respawned, and its board zeroed, while the job waits).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_internal.h"
#include "supervisor/sup_store.h"

/* NUL-terminated copy of a fixed-size field a dead worker wrote. */
static void board_str(char *dst, size_t cap, const char *src, size_t src_cap)
{
    size_t n = strnlen(src, src_cap);
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static bool is_fault_signal(int sig)
{
    return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGABRT;
}

static const char *sig_name(int sig, char *buf, size_t cap)
{
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, cap, "SIG%s", abbrev ? abbrev : "?");
    return buf;
}

/* The ABI hash to key w's entries by: its READY's, else its scoreboard's
 * (a worker can fault while loading the app, before READY). */
static const char *abi_of(sup_slot *w, char *buf, size_t cap)
{
    if (w->abi[0]) return w->abi;
    board_str(buf, cap, w->board ? w->board->abi_hash : "", IPC_BOARD_HASH);
    return buf;
}

/* ---- fault jobs: the store work of one fault, off the loop thread --------- */

/* A blacklist entry a fault adds. */
typedef struct fault_entry {
    char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH], reason[128];
    char head[640]; /* its log line up to what was done */
    char did[256];  /* what was done with it (set when pushed) */
    int err;        /* store_bl_add's result */
} fault_entry;

/* One fault: the entries to add, then the request to settle. The loop
 * submits it; its run (a pool thread) adds the entries and, when the
 * request needs it, looks up the request's response record; its done (the
 * loop) pushes the entries to the JIT workers, settles the request and
 * logs. So an entry is in the store before any worker is told of it, and
 * a failed request is re-dispatched or answered only after its entries
 * were stored and pushed and its record looked up. The job owns r from
 * submission until done settles it. */
typedef struct fault_job {
    sup_store_job base; /* first: a sup_store_job * is a fault_job * */
    sup_server *s;
    bool heap; /* malloc'd (else the caller's, run inline) */
    char abi[80];
    int n;
    fault_entry e[IPC_BOARD_BATCH];
    bool stored; /* the entries were added (run) and pushed (done) */
    sup_request *r;
    char rec_id[IPC_RECORD_ID_MAX]; /* r's response record, for run */
    bool need_cek;
    enum sup_redispatch_reason why; /* counted if r runs again */
    bool lookup;                    /* run looks up r's response record */
    int late_status;                /* r ran out of time: this status unless it has a record */
    char late_text[80];
    int rec_err; /* its result: 0 (rec, rec_len set) or an error */
    char *rec;
    size_t rec_len;
    char head[640];           /* the log line of a fault with no entry, up to what was done */
    char tail[64];            /* appended to every log line */
    char noreq[96];           /* what settle says when there is no request (default: none ran) */
    void (*after)(void *arg); /* called once the entries are stored and pushed */
    void *after_arg;
} fault_job;

static void job_run(sup_store_job *b, store *st);
static void job_done(sup_store_job *b);

/* An empty job. Never fails: without memory, *spare is used and run
 * inline on the loop thread (as if the store were not busy). */
static fault_job *job_alloc(sup_server *s, fault_job *spare)
{
    fault_job *j = malloc(sizeof *j);
    bool heap = j != NULL;
    if (!j) {
        sup__warn("out of memory for a fault's store work; doing it on the loop thread");
        j = spare;
    }
    memset(j, 0, sizeof *j);
    j->heap = heap;
    j->s = s;
    j->base.run = job_run;
    j->base.done = job_done;
    return j;
}

/* A job for w's fault (job_alloc's). */
static fault_job *job_new(sup_slot *w, fault_job *spare)
{
    fault_job *j = job_alloc(w->srv, spare);
    char abi[IPC_BOARD_HASH];
    snprintf(j->abi, sizeof j->abi, "%s", abi_of(w, abi, sizeof abi));
    return j;
}

/* Adds an entry for fn to j (ignored past IPC_BOARD_BATCH). @return it or NULL */
static fault_entry *job_entry(fault_job *j, const char *fn, const char *hash, const char *reason)
{
    if (j->n >= IPC_BOARD_BATCH) return NULL;
    fault_entry *e = &j->e[j->n++];
    snprintf(e->fn, sizeof e->fn, "%s", fn);
    snprintf(e->hash, sizeof e->hash, "%s", hash);
    snprintf(e->reason, sizeof e->reason, "%s", reason);
    return e;
}

/* r (or NULL) failed on its worker: j settles it. It needs its response
 * record looked up when this was its second attempt or it cannot run
 * again (the server is stopping). */
static void job_request(fault_job *j, sup_request *r, bool need_cek)
{
    j->r = r;
    if (r) sup__record_id(r, j->rec_id);
    j->need_cek = need_cek;
    j->lookup = r && (r->attempts >= 2 || j->s->stop >= STOP_WORKERS);
}

static void job_submit(fault_job *j)
{
    if (j->heap) {
        sup__store_submit(j->s->loop, j->s->store, &j->base);
    } else {
        job_run(&j->base, j->s->store);
        job_done(&j->base);
    }
}

/* Pool thread: the LMDB work only. */
static void job_run(sup_store_job *b, store *st)
{
    fault_job *j = (fault_job *)b;
    if (!j->stored)
        for (int i = 0; i < j->n; i++)
            j->e[i].err = store_bl_add(st, j->e[i].fn, j->e[i].hash, j->abi, j->e[i].reason);
    if (j->lookup) {
        j->rec_err = store_response_get(st, j->rec_id, &j->rec, &j->rec_len);
    }
}

/* Pushes each stored entry to the JIT workers. */
static void push_entries(fault_job *j)
{
    for (int i = 0; i < j->n; i++) {
        fault_entry *e = &j->e[i];
        /* Pushed even when the store could not keep it: the live workers
         * stop running it all the same. */
        int told = sup__pool_push_blacklist(j->s, e->fn, e->hash);
        /* An approximation: a fault on a function already listed only
         * bumps its entry's count, but is counted here again. */
        if (e->err == 0) j->s->metrics.blacklist_entries++;
        if (e->err != 0)
            snprintf(e->did, sizeof e->did,
                     "unable to store its blacklist entry (%s), told %d JIT worker%s to drop it",
                     store_strerror(e->err), told, told == 1 ? "" : "s");
        else
            snprintf(e->did, sizeof e->did,
                     "blacklisted it (code %s, abi %s) and told %d JIT worker%s",
                     *e->hash ? e->hash : "-", *j->abi ? j->abi : "-", told, told == 1 ? "" : "s");
    }
}

/* Answers r (and frees it) from the RESPONSE frame one of its attempts
 * committed, which job_run read. @return true if answered */
static bool answer_from_record(fault_job *j, sup_request *r)
{
    unsigned long long id = (unsigned long long)r->id;
    if (j->rec_err != 0) {
        if (j->rec_err != STORE_ENOTFOUND)
            sup__error("unable to read the response record of request %llu: %s", id,
                       store_strerror(j->rec_err));
        return false;
    }
    ipc_frame *f = malloc(sizeof *f);
    long long status = 0;
    bool ok = f && ipc_decode(j->rec, j->rec_len, f) == 0 && f->type == IPC_RESPONSE &&
              (f->id == r->id || strncmp(j->rec_id, "k:", 2) == 0) && f->nfields >= 2 &&
              (f->nfields - 2) % 2 == 0 && ipc_field_int(f, 0, &status) == 0;
    if (!ok)
        sup__error("unable to answer request %llu from its response record: %s", id,
                   f ? "the record is not a RESPONSE frame" : "out of memory");
    else if (status < 200 || status > 599)
        sup__http_respond_text(r, 500, "bad-status: a handler status must be 200 to 599\n");
    else
        sup__http_respond(r, (int)status, &f->fields[2], f->nfields - 2, f->fields[1].p,
                          f->fields[1].len);
    free(f);
    return ok;
}

/* r failed on its worker: queues it for its second attempt, or answers
 * 502 if this was its second (from its response record instead if an
 * attempt committed). Describes what was done in done[cap]. */
static void settle(fault_job *j, char *done, size_t cap)
{
    sup_server *s = j->s;
    sup_request *r = j->r;
    j->r = NULL;
    if (!r) {
        snprintf(done, cap, "%s", j->noreq[0] ? j->noreq : "no request was running");
        return;
    }
    unsigned long long id = (unsigned long long)r->id;
    if (j->lookup && answer_from_record(j, r)) {
        snprintf(done, cap, "answered request %llu from the response record it committed", id);
        return;
    }
    if (j->late_status) {
        /* as without a record: the kill (if any) was logged, nothing more */
        j->head[0] = '\0';
        snprintf(done, cap, "answered request %llu with %d", id, j->late_status);
        sup__http_respond_text(r, j->late_status, j->late_text);
        return;
    }
    if (r->attempts >= 2) {
        snprintf(done, cap, "answered request %llu with 502 (it failed on two workers)", id);
        sup__http_respond_text(r, 502, "the request failed on two workers\n");
        return;
    }
    if (s->stop >= STOP_WORKERS) {
        snprintf(done, cap, "answered request %llu with 502 (the server is stopping)", id);
        sup__http_respond_text(r, 502, "the worker handling this request died\n");
        return;
    }
    if (!r->conn)
        snprintf(done, cap, "dropped request %llu (its client has gone)", id);
    else {
        snprintf(done, cap, "re-dispatched request %llu to %s", id,
                 j->need_cek ? "a CEK worker" : "a CEK worker if one is up, else any worker");
        s->metrics.redispatches[j->why]++;
    }
    sup__pool_retry(s, r, j->need_cek); /* frees r if its client has gone */
}

/* Loop thread, after job_run. */
static void job_done(sup_store_job *b)
{
    fault_job *j = (fault_job *)b;
    sup_server *s = j->s;
    if (!j->stored) {
        push_entries(j);
        j->stored = true;
    }
    if (j->r && !j->lookup && s->stop >= STOP_WORKERS) {
        /* The server began stopping meanwhile: r cannot run again, so it
         * is answered from its record if it has one; look it up first. */
        j->lookup = true;
        job_submit(j);
        return;
    }
    char did_req[160];
    settle(j, did_req, sizeof did_req);
    for (int i = 0; i < j->n; i++)
        sup__warn("%s; %s; %s%s", j->e[i].head, j->e[i].did, did_req, j->tail);
    if (j->n == 0 && j->head[0]) sup__warn("%s; %s%s", j->head, did_req, j->tail);
    if (j->after) j->after(j->after_arg);
    free(j->rec);
    j->rec = NULL;
    if (j->heap) free(j);
    sup__pool_dispatch(s);
}

void sup__fault_jit_reply(sup_slot *w, sup_request *r, const ipc_frame *f)
{
    char fn[IPC_BOARD_NAME], kind[48], msg[256], hash[IPC_BOARD_HASH] = "";
    ipc_field_str(f, 0, fn, sizeof fn);
    ipc_field_str(f, 1, kind, sizeof kind);
    ipc_field_str(f, 2, msg, sizeof msg);
    if (f->nfields >= 4) ipc_field_str(f, 3, hash, sizeof hash);
    fault_job spare, *j = job_new(w, &spare);
    char reason[128];
    snprintf(reason, sizeof reason, "%s escaped native code", kind);
    fault_entry *e = job_entry(j, fn, hash, reason);
    snprintf(e->head, sizeof e->head,
             "fault: %s: %s escaped its native code (%s); worker %d (pid %d)", fn, kind, msg,
             w->index, w->pid);
    if (r && r->attempts < 2) {
        r->fault.set = true;
        snprintf(r->fault.function, sizeof r->fault.function, "%s", fn);
        snprintf(r->fault.code_hash, sizeof r->fault.code_hash, "%s", hash);
        snprintf(r->fault.abi, sizeof r->fault.abi, "%s", j->abi);
        snprintf(r->fault.kind, sizeof r->fault.kind, "%s", kind);
    }
    j->why = REDISPATCH_JIT_FAULT;
    job_request(j, r, true);
    job_submit(j);
    sup__pool_dispatch(w->srv);
}

/* Lifting an entry: the store work of an ERROR reply to a request that
 * ran again after a JIT fault and failed with the same error kind. Its run
 * removes the entry (a pool thread); its done logs and answers the error,
 * so the entry is gone before the client hears of the error. The job owns
 * r and a copy of the error from submission until done. */
typedef struct lift_job {
    sup_store_job base; /* first: a sup_store_job * is a lift_job * */
    sup_server *s;
    sup_request *r;
    char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH], abi[80], kind[48];
    int worker, pid;
    int status;
    char *msg; /* the error's message, msg_len bytes */
    size_t msg_len;
    int err; /* store_bl_remove's result */
} lift_job;

static void lift_run(sup_store_job *b, store *st)
{
    lift_job *j = (lift_job *)b;
    j->err = store_bl_remove(st, j->fn, j->hash, j->abi);
}

static void lift_done(sup_store_job *b)
{
    lift_job *j = (lift_job *)b;
    char did[160];
    if (j->err == 0) j->s->metrics.blacklist_entries--;
    if (j->err == 0 || j->err == STORE_ENOTFOUND)
        snprintf(did, sizeof did, "lifted its blacklist entry");
    else
        snprintf(did, sizeof did, "unable to lift its blacklist entry: %s", store_strerror(j->err));
    sup__warn("fault: %s: the CEK worker %d (pid %d) failed request %llu with the same %s, so the "
              "program is at fault, not the native code; %s; answering the error",
              j->fn, j->worker, j->pid, (unsigned long long)j->r->id, j->kind, did);
    sup__pool_reply_error(j->s, j->r, j->status, j->kind, strlen(j->kind), j->msg, j->msg_len);
    free(j->msg);
    free(j);
}

bool sup__fault_error_reply(sup_slot *w, sup_request *r, const ipc_frame *f, int status)
{
    if (!r->fault.set) return false;
    char kind[48];
    ipc_field_str(f, 1, kind, sizeof kind);
    if (strcmp(kind, r->fault.kind) != 0) return false;
    r->fault.set = false;
    lift_job *j = calloc(1, sizeof *j);
    char *msg = j ? malloc(f->fields[2].len + 1) : NULL;
    if (!msg) {
        free(j);
        sup__warn("fault: %s: the CEK worker %d (pid %d) failed request %llu with the same %s, "
                  "so the program is at fault; out of memory to lift its blacklist entry, which "
                  "stays; answering the error",
                  r->fault.function, w->index, w->pid, (unsigned long long)r->id, kind);
        return false;
    }
    memcpy(msg, f->fields[2].p, f->fields[2].len);
    j->base.run = lift_run;
    j->base.done = lift_done;
    j->s = w->srv;
    j->r = r;
    snprintf(j->fn, sizeof j->fn, "%s", r->fault.function);
    snprintf(j->hash, sizeof j->hash, "%s", r->fault.code_hash);
    snprintf(j->abi, sizeof j->abi, "%s", r->fault.abi);
    snprintf(j->kind, sizeof j->kind, "%s", kind);
    j->worker = w->index;
    j->pid = w->pid;
    j->status = status;
    j->msg = msg;
    j->msg_len = f->fields[2].len;
    sup__store_submit(w->srv->loop, w->srv->store, &j->base);
    return true;
}

/* Death with a crash record naming a native function. */
static void crash_in_native(sup_slot *w, sup_request *r, int sig)
{
    char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH], sname[32];
    board_str(fn, sizeof fn, w->board->crash_fn.name, IPC_BOARD_NAME);
    board_str(hash, sizeof hash, w->board->crash_fn.code_hash, IPC_BOARD_HASH);
    fault_job spare, *j = job_new(w, &spare);
    char reason[128];
    snprintf(reason, sizeof reason, "%s in native code", sig_name(sig, sname, sizeof sname));
    fault_entry *e = job_entry(j, fn, hash, reason);
    snprintf(e->head, sizeof e->head, "fault: %s: its native code died of %s; worker %d (pid %d)",
             fn, sname, w->index, w->pid);
    snprintf(j->tail, sizeof j->tail, "; respawning the slot");
    j->why = REDISPATCH_NATIVE_CRASH;
    job_request(j, r, true);
    job_submit(j);
}

/* Death while the JIT was compiling: every function of the batch. */
static void died_compiling(sup_slot *w, sup_request *r, const char *how)
{
    fault_job spare, *j = job_new(w, &spare);
    uint32_t n = w->board->batch_len;
    if (n > IPC_BOARD_BATCH) n = IPC_BOARD_BATCH;
    for (uint32_t i = 0; i < n; i++) {
        char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH], reason[128];
        board_str(fn, sizeof fn, w->board->batch[i].name, IPC_BOARD_NAME);
        board_str(hash, sizeof hash, w->board->batch[i].code_hash, IPC_BOARD_HASH);
        if (!fn[0]) continue;
        snprintf(reason, sizeof reason, "the compiler died compiling it (%s)", how);
        fault_entry *e = job_entry(j, fn, hash, reason);
        snprintf(e->head, sizeof e->head,
                 "fault: %s: the compiler %s while compiling it (batch of %u); worker %d (pid %d)",
                 fn, how, n, w->index, w->pid);
    }
    snprintf(j->head, sizeof j->head,
             "worker %d (pid %d) %s while the native tier was compiling, with no function "
             "recorded",
             w->index, w->pid, how);
    snprintf(j->tail, sizeof j->tail, "; respawning the slot");
    j->why = REDISPATCH_COMPILER_CRASH;
    job_request(j, r, true);
    job_submit(j);
}

void sup__fault_late(sup_server *s, sup_slot *w, sup_request *r, int status, const char *text)
{
    fault_job spare, *j;
    if (w) {
        j = job_new(w, &spare);
        snprintf(j->head, sizeof j->head,
                 "request %llu timed out on worker %d (pid %d), which was killed",
                 (unsigned long long)r->id, w->index, w->pid);
    } else {
        /* a request waiting to run again: no slot, no blacklist entry */
        j = job_alloc(s, &spare);
        snprintf(j->head, sizeof j->head, "request %llu waited past its deadline to run again",
                 (unsigned long long)r->id);
    }
    job_request(j, r, false);
    j->lookup = true;
    j->late_status = status;
    snprintf(j->late_text, sizeof j->late_text, "%s", text);
    job_submit(j);
}

void sup__fault_death(sup_slot *w, sup_request *r, int64_t status, int sig)
{
    ipc_board *b = w->board;
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    bool fault_sig = is_fault_signal(sig);
    bool named = b && fault_sig && b->crash_signal == sig && b->crash_fn.name[0] != '\0';
    bool compiling = b && (b->state == IPC_BOARD_COMPILING || b->batch_len > 0);
    char how[64], sname[32];
    if (sig != 0)
        snprintf(how, sizeof how, "died of %s", sig_name(sig, sname, sizeof sname));
    else
        snprintf(how, sizeof how, "exited with status %lld", (long long)status);

    enum sup_death_cause cause;
    if (named)
        cause = DEATH_NATIVE_CRASH;
    else if (compiling && ((sig == 0 && status == 4) || fault_sig))
        cause = DEATH_COMPILER;
    else if (w->killed)
        cause = DEATH_KILLED_BY_SXPOOL;
    else if (sig == SIGKILL)
        cause = DEATH_SIGKILL;
    else if (sig != 0)
        cause = DEATH_SIGNAL;
    else
        cause = status == 0 ? DEATH_EXIT_CLEAN : DEATH_EXIT_ERROR;
    w->srv->metrics.deaths[cause]++;

    if (named) {
        crash_in_native(w, r, sig);
    } else if (compiling && ((sig == 0 && status == 4) || fault_sig)) {
        died_compiling(w, r, how);
    } else if (r) {
        /* No native function to blame: not a native-code fault, so the
         * request may run on any worker, preferably a CEK one. It still
         * goes through a job: its response record may need a lookup. */
        fault_job spare, *j = job_new(w, &spare);
        snprintf(j->head, sizeof j->head, "worker %d (pid %d) %s%s while running request %llu",
                 w->index, w->pid, how,
                 fault_sig ? " with no native function in its crash record" : "",
                 (unsigned long long)r->id);
        j->why = REDISPATCH_WORKER_DEATH;
        job_request(j, r, false);
        job_submit(j);
    }
    sup__pool_dispatch(w->srv);
}

/* A shadow run disagreed with the native run: every function that ran
 * natively is blacklisted (the mismatch cannot say which one is wrong).
 * The request itself is not the job's: it is answered with the CEK run's
 * result, or was answered already (a sample). */
void sup__fault_shadow_mismatch(sup_server *s, const char *abi, const char *natives,
                                const char *detail, const char *where, void (*after)(void *),
                                void *arg)
{
    fault_job spare, *j = job_alloc(s, &spare);
    snprintf(j->abi, sizeof j->abi, "%s", abi);
    snprintf(j->noreq, sizeof j->noreq, "the client gets the CEK worker's answer");
    j->after = after;
    j->after_arg = arg;
    const char *p = natives;
    while (*p) {
        const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH];
        if (sp) {
            snprintf(fn, sizeof fn, "%.*s", (int)(sp - p), p);
            snprintf(hash, sizeof hash, "%.*s", (int)(end - sp - 1), sp + 1);
            fault_entry *e = job_entry(j, fn, hash, "shadow mismatch");
            if (e)
                snprintf(e->head, sizeof e->head, "fault: %s: shadow mismatch; %s; %s", fn, detail,
                         where);
        }
        p = nl ? nl + 1 : end;
    }
    if (j->n == 0)
        snprintf(j->head, sizeof j->head,
                 "fault: shadow mismatch; %s; %s (no native function named)", detail, where);
    job_request(j, NULL, false);
    job_submit(j);
}
