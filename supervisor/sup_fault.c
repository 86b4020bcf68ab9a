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
 *                                is up, else to any
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
 * Runs on the supervisor's loop thread. The scoreboard is read only after
 * its worker has exited, so nothing writes it while we read.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_internal.h"

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

/* Adds the entry and pushes it. Describes what was done in done[cap]. */
static void blacklist(sup_slot *w, const char *fn, const char *hash, const char *abi,
                      const char *reason, char *done, size_t cap)
{
    sup_server *s = w->srv;
    int err = store_bl_add(s->store, fn, hash, abi, reason);
    if (err != 0) {
        /* Still pushed: the live workers stop running it even if the
         * store could not keep it. */
        snprintf(done, cap, "unable to store its blacklist entry (%s), ", store_strerror(err));
        size_t n = strlen(done);
        int told = sup__pool_push_blacklist(s, fn, hash);
        snprintf(done + n, cap - n, "told %d JIT worker%s to drop it", told, told == 1 ? "" : "s");
        return;
    }
    int told = sup__pool_push_blacklist(s, fn, hash);
    snprintf(done, cap, "blacklisted it (code %s, abi %s) and told %d JIT worker%s",
             *hash ? hash : "-", *abi ? abi : "-", told, told == 1 ? "" : "s");
}

/* Answers r (and frees it) from the RESPONSE frame one of its attempts
 * committed under its id, if there is one. On the loop thread: the lookup
 * waits for the write lock only when a writer died mid-commit or is just
 * publishing one (store_response_get), and it runs only for a request that
 * failed twice or cannot run again. @return true if answered */
static bool answer_from_record(sup_server *s, sup_request *r)
{
    char id[32], *rec;
    size_t len;
    snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
    int err = store_response_get(s->store, id, &rec, &len);
    if (err != 0) {
        if (err != STORE_ENOTFOUND)
            sup__log("unable to read the response record of request %s: %s", id,
                     store_strerror(err));
        return false;
    }
    ipc_frame *f = malloc(sizeof *f);
    long long status = 0;
    bool ok = f && ipc_decode(rec, len, f) == 0 && f->type == IPC_RESPONSE && f->id == r->id &&
              f->nfields >= 2 && (f->nfields - 2) % 2 == 0 && ipc_field_int(f, 0, &status) == 0;
    if (!ok)
        sup__log("unable to answer request %s from its response record: %s", id,
                 f ? "the record is not a RESPONSE frame" : "out of memory");
    else if (status < 200 || status > 599)
        sup__http_respond_text(r, 500, "bad-status: a handler status must be 200 to 599\n");
    else
        sup__http_respond(r, (int)status, &f->fields[2], f->nfields - 2, f->fields[1].p,
                          f->fields[1].len);
    free(f);
    free(rec);
    return ok;
}

/* r failed on w: queue it for its second attempt, or answer 502 if this
 * was its second (from its response record instead if an attempt
 * committed). Describes what was done in done[cap]. */
static void settle(sup_slot *w, sup_request *r, bool need_cek, char *done, size_t cap)
{
    sup_server *s = w->srv;
    if (!r) {
        snprintf(done, cap, "no request was running");
        return;
    }
    unsigned long long id = (unsigned long long)r->id;
    if ((r->attempts >= 2 || s->stop >= STOP_WORKERS) && answer_from_record(s, r)) {
        snprintf(done, cap, "answered request %llu from the response record it committed", id);
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
    snprintf(done, cap, "re-dispatched request %llu to %s", id,
             need_cek ? "a CEK worker" : "a CEK worker if one is up, else any worker");
    sup__pool_retry(s, r, need_cek);
}

void sup__fault_jit_reply(sup_slot *w, sup_request *r, const ipc_frame *f)
{
    char fn[IPC_BOARD_NAME], kind[48], msg[256], hash[IPC_BOARD_HASH] = "", abi[IPC_BOARD_HASH];
    ipc_field_str(f, 0, fn, sizeof fn);
    ipc_field_str(f, 1, kind, sizeof kind);
    ipc_field_str(f, 2, msg, sizeof msg);
    if (f->nfields >= 4) ipc_field_str(f, 3, hash, sizeof hash);
    const char *a = abi_of(w, abi, sizeof abi);
    char reason[128], did_bl[256], did_req[160];
    snprintf(reason, sizeof reason, "%s escaped native code", kind);
    blacklist(w, fn, hash, a, reason, did_bl, sizeof did_bl);
    if (r && r->attempts < 2) {
        r->fault.set = true;
        snprintf(r->fault.function, sizeof r->fault.function, "%s", fn);
        snprintf(r->fault.code_hash, sizeof r->fault.code_hash, "%s", hash);
        snprintf(r->fault.abi, sizeof r->fault.abi, "%s", a);
        snprintf(r->fault.kind, sizeof r->fault.kind, "%s", kind);
    }
    settle(w, r, true, did_req, sizeof did_req);
    sup__log("fault: %s: %s escaped its native code (%s); worker %d (pid %d); %s; %s", fn, kind,
             msg, w->index, w->pid, did_bl, did_req);
    sup__pool_dispatch(w->srv);
}

void sup__fault_error_reply(sup_slot *w, sup_request *r, const ipc_frame *f)
{
    if (!r->fault.set) return;
    char kind[48];
    ipc_field_str(f, 1, kind, sizeof kind);
    if (strcmp(kind, r->fault.kind) != 0) return;
    int err = store_bl_remove(w->srv->store, r->fault.function, r->fault.code_hash, r->fault.abi);
    char did[160];
    if (err == 0 || err == STORE_ENOTFOUND)
        snprintf(did, sizeof did, "lifted its blacklist entry");
    else
        snprintf(did, sizeof did, "unable to lift its blacklist entry: %s", store_strerror(err));
    sup__log("fault: %s: the CEK worker %d (pid %d) failed request %llu with the same %s, so the "
             "program is at fault, not the native code; %s; answering the error",
             r->fault.function, w->index, w->pid, (unsigned long long)r->id, kind, did);
    r->fault.set = false;
}

/* Death with a crash record naming a native function. */
static void crash_in_native(sup_slot *w, sup_request *r, int sig)
{
    char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH], abi[IPC_BOARD_HASH], sname[32];
    board_str(fn, sizeof fn, w->board->crash_fn.name, IPC_BOARD_NAME);
    board_str(hash, sizeof hash, w->board->crash_fn.code_hash, IPC_BOARD_HASH);
    const char *a = abi_of(w, abi, sizeof abi);
    char reason[128], did_bl[256], did_req[160];
    snprintf(reason, sizeof reason, "%s in native code", sig_name(sig, sname, sizeof sname));
    blacklist(w, fn, hash, a, reason, did_bl, sizeof did_bl);
    settle(w, r, true, did_req, sizeof did_req);
    sup__log("fault: %s: its native code died of %s; worker %d (pid %d); %s; %s; respawning the "
             "slot",
             fn, sname, w->index, w->pid, did_bl, did_req);
}

/* Death while the JIT was compiling: every function of the batch. */
static void died_compiling(sup_slot *w, sup_request *r, const char *how)
{
    char abi[IPC_BOARD_HASH], did_req[160];
    const char *a = abi_of(w, abi, sizeof abi);
    uint32_t n = w->board->batch_len;
    if (n > IPC_BOARD_BATCH) n = IPC_BOARD_BATCH;
    settle(w, r, true, did_req, sizeof did_req);
    bool named = false;
    for (uint32_t i = 0; i < n; i++) {
        char fn[IPC_BOARD_NAME], hash[IPC_BOARD_HASH], reason[128], did_bl[256];
        board_str(fn, sizeof fn, w->board->batch[i].name, IPC_BOARD_NAME);
        board_str(hash, sizeof hash, w->board->batch[i].code_hash, IPC_BOARD_HASH);
        if (!fn[0]) continue;
        snprintf(reason, sizeof reason, "the compiler died compiling it (%s)", how);
        blacklist(w, fn, hash, a, reason, did_bl, sizeof did_bl);
        sup__log("fault: %s: the compiler %s while compiling it (batch of %u); worker %d (pid %d); "
                 "%s; %s; respawning the slot",
                 fn, how, n, w->index, w->pid, did_bl, did_req);
        named = true;
    }
    if (!named)
        sup__log("worker %d (pid %d) %s while the native tier was compiling, with no function "
                 "recorded; %s; respawning the slot",
                 w->index, w->pid, how, did_req);
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

    if (named) {
        crash_in_native(w, r, sig);
    } else if (compiling && ((sig == 0 && status == 4) || fault_sig)) {
        died_compiling(w, r, how);
    } else if (r) {
        char did[160];
        unsigned long long id = (unsigned long long)r->id; /* settle may free r */
        /* No native function to blame: not a native-code fault, so the
         * request may run on any worker, preferably a CEK one. */
        settle(w, r, false, did, sizeof did);
        sup__log("worker %d (pid %d) %s%s while running request %llu; %s", w->index, w->pid, how,
                 fault_sig ? " with no native function in its crash record" : "", id, did);
    }
    sup__pool_dispatch(w->srv);
}
