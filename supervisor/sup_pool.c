/* sup_pool.c: the worker slots: spawning, READY, dispatch, replies, death,
 * respawn with backoff, and per-request deadlines.
 *
 * Slots 0 .. workers-1 run JIT workers (--mode=jit), the next cek_workers
 * slots CEK workers (--mode=cek). Dispatch: a first attempt goes to an idle
 * JIT worker, or to a CEK worker when no JIT worker is up (ready: IDLE or
 * BUSY); it waits otherwise, keeping the CEK workers free for re-dispatches.
 * Second attempts (the retry queue, see sup_fault.c) go first, to CEK
 * workers (need_cek: only there; else to any idle worker when no CEK worker
 * is up, or when the CEK workers have been busy for retry_cek_wait_ms).
 * Each slot's crash scoreboard is created before its first spawn and zeroed
 * before every spawn.
 *
 * A JIT worker's CHECKED reply and a CEK worker's SHADOW_RESULT go to
 * sup_shadow.c; a request holding a SHADOW frame (r->shadow.frame) is sent
 * as SHADOW instead of REQUEST, and only ever to a CEK worker.
 *
 * Threads: with the unix transport (the default) the slots' sockets are
 * served by the loop itself (ipc_listen_on_loop) and on_recv handles each
 * frame at once. With nng, on_recv runs on nng's threads and does nothing
 * but copy the frame into the inbox under inbox_lock and uv_async_send.
 * Everything else here runs on the loop thread, which alone decodes frames
 * and touches the slots, the queue and the requests.
 *
 * Invariants:
 *   - one listening socket per slot, listened on before the slot's first
 *     spawn and closed only at the very end (nng closes are slow and risky);
 *   - a slot gets a request only in SLOT_IDLE or SLOT_BUSY, i.e. after the
 *     READY of the process now running in it (READY carries the pid, so a late READY
 *     from a dead predecessor is recognised and ignored);
 *   - a slot holds up to --inflight requests (one for a CEK slot), sent and
 *     not answered, in w->inflight (SLOT_BUSY); the worker runs them in
 *     order, so the next one is already there when it finishes one (no
 *     round trip between requests). A reply is accepted only if its id is
 *     inflight[0]'s, so a late reply from a killed worker can never answer
 *     another request. At a death, the request the worker's scoreboard
 *     says it was running takes the death (sup_fault.c); the others never
 *     started: they go back to the front of their queue, uncounted;
 *   - a request sent ahead is taken back (try_take_back, through the
 *     scoreboard: ipc_board's protocol) if the worker has not started it,
 *     when its client leaves (freed unrun) or for a JIT worker that became
 *     free (take_back); it leaves w->inflight at once and the worker skips
 *     its frame without a reply;
 *   - a request is answered exactly once: whoever takes it off w->inflight
 *     or the queue answers it;
 *   - a queue holds only requests whose client is still connected: when a
 *     connection closes, its queued request is taken out and freed unrun
 *     (sup__pool_abandon), and one whose client left while it ran is not
 *     queued again (requeue_unstarted, sup__pool_retry); so the queue's
 *     length, which SUP_MAX_QUEUE limits, counts live requests only;
 *   - a pid is signalled only while `running` (between spawn and exit_cb),
 *     so a reused pid is never hit.
 *
 * Slot life (state x event):
 *   DOWN     --spawn ok-->        STARTING  (spawn failed: DOWN, retried)
 *   STARTING --READY-->           IDLE      (no READY in time: killed)
 *   IDLE     --dispatch-->        BUSY
 *   BUSY     --reply-->           IDLE      (deadline: killed; once its exit is seen,
 *                                            504 unless committed)
 *   any      --kill/SHUTDOWN-->   DYING
 *   any      --exit-->            DOWN      (the death and its in-flight
 *                                            request go to sup_fault.c: run
 *                                            again once, or 502; respawn as
 *                                            the cause says, below)
 *
 * Restart intensity by cause (decide_respawn; every death is logged with
 * its cause and what is done):
 *   - died before its READY (exit, crash, no READY in time, spawn failure):
 *     a start failure; respawned after SUP_START_BACKOFF_MS, doubling with
 *     each start failure in a row up to SUP_START_BACKOFF_MAX_MS; a READY
 *     resets the count;
 *   - ready, then killed by SIGKILL from outside (an operator, the OOM
 *     killer, a chaos test), killed by the supervisor (deadline, bad frame)
 *     or exited with status 0: replaced at once, never throttled;
 *   - ready, then crashed (a fault signal or a non-zero exit status):
 *     replaced at once, unless the slot's ready workers crashed more than
 *     SUP_DEATHS_BEFORE_BACKOFF times within SUP_DEATH_WINDOW_MS (a crash
 *     loop): then after a backoff of 500 ms doubling up to
 *     SUP_BACKOFF_MAX_MS.
 *
 * Generations (SIGHUP, sup_reload.c): every slot's process belongs to a
 * generation of the app; requests go only to workers of the server's
 * generation (s->gen). A reload starts the next generation in spare slots;
 * once all of it is READY it becomes s->gen and the old workers are retired
 * the way a recycled worker is (below): no new request, SHUTDOWN once the
 * requests they hold are answered, never respawned.
 *
 * Recycling (--max-requests with --max-requests-jitter, --max-rss): the
 * pool has one spare slot per worker slot (spare: no process, never
 * respawned), shared with reloads. After each reply the worker's count (and, with
 * --max-rss, its RSS from /proc/PID/statm) is checked; a worker due for
 * recycling keeps serving while a replacement of its kind starts in a spare
 * slot (none free: retried at housekeeping). Once the replacement is READY
 * the old worker takes no new request (retire_now) and, as soon as it has
 * none in flight, gets SHUTDOWN (DYING) and exits through its normal path;
 * its last reply is therefore always in before its exit. The old slot is
 * retired: whatever way its process ends, it is not respawned and becomes a
 * spare. If the old worker dies before the replacement is READY, the
 * replacement simply takes its place.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/sup_internal.h"

/* Test builds only (SXPOOL_TEST_HOOKS, sxpool-test): SXPOOL_TEST_HOOK's
 * kill-delay:MS sends a deadline's SIGKILL MS later, standing for a worker
 * that takes that long to die (in a disk write, on a loaded machine), so a
 * test can land a commit between the deadline and the death. The release
 * binary never reads the variable. */
static uint64_t hook_kill_delay_ms;

static void read_hooks(void)
{
    if (sup__test_hook_ms("kill-delay", &hook_kill_delay_ms))
        sup__info("test hook: a deadline's SIGKILL is sent %llu ms late",
                  (unsigned long long)hook_kill_delay_ms);
}

/* ---- the inbox: nng threads -> loop thread --------------------------------- */

static void handle_frame(sup_server *s, sup_slot *w, const char *data, size_t len);

/* The loop's thread (unix transport): the frame is handled now. Else an
 * nng thread, which must not block and must not touch anything but the
 * inbox. */
static void on_recv(void *arg, const char *buf, size_t len)
{
    sup_slot *w = arg;
    sup_server *s = w->srv;
    if (s->cfg.transport == IPC_TRANSPORT_UNIX) {
        handle_frame(s, w, buf, len);
        return;
    }
    size_t copy = len > IPC_MAX_FRAME ? 0 : len; /* oversize: keep only the length */
    sup_msg *m = malloc(sizeof *m + copy);
    if (!m) {
        sup__error("unable to queue a frame from worker slot %d: out of memory", w->index);
        return;
    }
    m->next = NULL;
    m->slot = w;
    m->len = len;
    memcpy(m->data, buf, copy);
    uv_mutex_lock(&s->inbox_lock);
    if (s->inbox_tail)
        s->inbox_tail->next = m;
    else
        s->inbox_head = m;
    s->inbox_tail = m;
    uv_mutex_unlock(&s->inbox_lock);
    int err = uv_async_send(&s->inbox_async);
    if (err != 0) sup__error("unable to wake the loop for a worker frame: %s", uv_strerror(err));
}

static sup_msg *inbox_take(sup_server *s)
{
    uv_mutex_lock(&s->inbox_lock);
    sup_msg *m = s->inbox_head;
    s->inbox_head = s->inbox_tail = NULL;
    uv_mutex_unlock(&s->inbox_lock);
    return m;
}

/* ---- queues ----------------------------------------------------------------- */

static void queue_push(sup_queue *q, sup_request *r, bool front)
{
    r->prev = r->next = NULL;
    r->queue = q;
    if (!q->head) {
        q->head = q->tail = r;
    } else if (front) {
        r->next = q->head;
        q->head->prev = r;
        q->head = r;
    } else {
        r->prev = q->tail;
        q->tail->next = r;
        q->tail = r;
    }
    q->len++;
}

static sup_request *queue_pop(sup_queue *q)
{
    sup_request *r = q->head;
    if (!r) return NULL;
    q->head = r->next;
    if (q->head)
        q->head->prev = NULL;
    else
        q->tail = NULL;
    r->prev = r->next = NULL;
    r->queue = NULL;
    q->len--;
    return r;
}

/* Takes r, wherever it is, off its queue. */
static void queue_remove(sup_request *r)
{
    sup_queue *q = r->queue;
    if (r->prev)
        r->prev->next = r->next;
    else
        q->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        q->tail = r->prev;
    r->prev = r->next = NULL;
    r->queue = NULL;
    q->len--;
}

/* r, in no queue, has no client any more: freed unrun, counted for the
 * housekeeping's log line. */
static void drop_gone(sup_server *s, sup_request *r)
{
    s->gone_dropped++;
    s->metrics.dropped++;
    sup__request_free(r);
}

static bool try_take_back(sup_slot *w, sup_request *r);
static void dispatch(sup_server *s);

void sup__pool_abandon(sup_server *s, sup_request *r)
{
    if (r->queue) {
        queue_remove(r);
        drop_gone(s, r);
        return;
    }
    /* On a worker: freed unrun if the worker has not started it (it was
     * sent ahead); else, or with a fault job, answered to nobody. */
    if (r->slot < 0 || r->slot >= s->nslots) return;
    sup_slot *w = &s->slots[r->slot];
    for (int i = 0; i < w->ninflight; i++)
        if (w->inflight[i] == r) {
            if (try_take_back(w, r)) {
                s->metrics.taken_back[0]++;
                drop_gone(s, r);
                dispatch(s);
            }
            return;
        }
}

/* ---- killing and spawning ------------------------------------------------- */

static void kill_worker(sup_slot *w, const char *reason)
{
    if (!w->running) return;
    if (!w->killed) {
        w->killed = true;
        snprintf(w->kill_reason, sizeof w->kill_reason, "%s", reason);
        sup__warn("killing worker %d (pid %d): %s", w->index, w->pid, reason);
    }
    w->state = SLOT_DYING;
    int err = uv_process_kill(&w->proc, SIGKILL);
    if (err != 0 && err != UV_ESRCH)
        sup__error("unable to kill worker %d (pid %d): %s", w->index, w->pid, uv_strerror(err));
}

static void on_exit_cb(uv_process_t *p, int64_t status, int sig);
static void on_proc_closed(uv_handle_t *h);

/* The request w's worker runs now (or runs next), or NULL. */
static sup_request *inflight_head(const sup_slot *w)
{
    return w->ninflight > 0 ? w->inflight[0] : NULL;
}

/* Takes inflight[0], answered, off w: IDLE again once it holds none. The
 * next one starts now: its deadline runs from here, not from when it was
 * sent ahead. */
static void inflight_pop(sup_slot *w)
{
    memmove(&w->inflight[0], &w->inflight[1], sizeof w->inflight[0] * (size_t)(w->ninflight - 1));
    w->inflight[--w->ninflight] = NULL;
    if (w->ninflight == 0 && w->state == SLOT_BUSY) w->state = SLOT_IDLE;
    if (w->ninflight > 0) {
        uint64_t now = uv_now(w->srv->loop);
        w->head_since_ms = now;
        if (!w->inflight[0]->timed_out) w->inflight[0]->deadline_ms = now + w->srv->cfg.timeout_ms;
    }
}

/* Takes r, which w holds, back if w's process has not started it (the
 * protocol is ipc_board's). @return true if taken back: r is off
 * w->inflight and the worker will skip it */
static bool try_take_back(sup_slot *w, sup_request *r)
{
    ipc_board *b = w->board;
    int i = 0;
    /* a worker that could not map its board (its pid is not there) would
     * run the request all the same */
    if (!b || r->shadow.frame || __atomic_load_n(&b->pid, __ATOMIC_ACQUIRE) != (uint32_t)w->pid)
        return false;
    for (; i < IPC_BOARD_TAKEN; i++) {
        uint64_t none = 0;
        if (__atomic_compare_exchange_n(&b->taken[i], &none, r->id, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            break;
    }
    if (i == IPC_BOARD_TAKEN) return false;
    bool taken = __atomic_load_n(&b->started, __ATOMIC_SEQ_CST) < r->seq;
    if (!taken) { /* it has got to r: whoever clears the entry decides */
        uint64_t id = r->id;
        taken = !__atomic_compare_exchange_n(&b->taken[i], &id, 0, false, __ATOMIC_SEQ_CST,
                                             __ATOMIC_SEQ_CST);
    }
    if (!taken) return false;
    int k = 0;
    while (k < w->ninflight && w->inflight[k] != r)
        k++;
    if (k == w->ninflight) return false; /* not expected: the caller found it there */
    if (k == 0) {
        inflight_pop(w);
    } else {
        memmove(&w->inflight[k], &w->inflight[k + 1],
                sizeof w->inflight[0] * (size_t)(w->ninflight - k - 1));
        w->inflight[--w->ninflight] = NULL;
    }
    r->slot = -1;
    r->attempts--;
    return true;
}

/* r was sent to a worker that died before starting it: back to the front
 * of its queue, the attempt not counted (it had no effect). */
static void requeue_unstarted(sup_server *s, sup_slot *w, sup_request *r)
{
    if (!r->conn) {
        drop_gone(s, r);
        return;
    }
    sup__warn("worker %d (pid %d) died before starting request %llu; queued it again", w->index,
              w->pid, (unsigned long long)r->id);
    r->attempts--;
    r->slot = -1;
    r->queued_ms = uv_now(s->loop);
    queue_push(r->attempts > 0 ? &s->retry : &s->queue, r, true);
}

/* The current process of w never sent its READY (cause says why it is
 * gone): respawn after a backoff that doubles with each start failure in a
 * row. */
static void start_failed(sup_slot *w, const char *cause)
{
    unsigned k = w->start_failures < 16 ? w->start_failures : 16;
    uint64_t d = (uint64_t)SUP_START_BACKOFF_MS << k;
    if (d > SUP_START_BACKOFF_MAX_MS) d = SUP_START_BACKOFF_MAX_MS;
    w->start_failures++;
    w->respawn_delay_ms = d;
    char who[48] = "";
    if (w->pid > 0) snprintf(who, sizeof who, " (pid %d)", w->pid);
    sup__warn("worker %d%s failed to start: %s; %u start failure%s in a row; respawning it in "
              "%llu ms",
              w->index, who, cause, w->start_failures, w->start_failures == 1 ? "" : "s",
              (unsigned long long)d);
}

/* xorshift64*, seeded once from the clock and the pid: jitter only. */
static uint64_t next_random(sup_server *s)
{
    static uint64_t x;
    if (x == 0) x = (uv_hrtime() ^ ((uint64_t)getpid() << 32)) | 1;
    (void)s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return x * 0x2545F4914F6CDD1Dull;
}

static void spawn_slot(sup_slot *w)
{
    sup_server *s = w->srv;
    if (w->spawned_ms != 0) {
        /* a respawn: nng 1.5.2 can stop accepting on a listener whose last
         * peer vanished mid-handshake, so listen afresh (no worker of this
         * slot runs now; -EBUSY means nng has not noticed the death yet and
         * the listener is still accepting) */
        int err = ipc_listen_restart(w->ipc);
        if (err != 0 && err != -EBUSY)
            sup__error("unable to listen again for worker %d: %s", w->index, ipc_strerror(err));
    }
    char slot_arg[32], rundir_arg[PATH_MAX + 16], app_arg[PATH_MAX + 16], data_arg[PATH_MAX + 16];
    snprintf(slot_arg, sizeof slot_arg, "--slot=%d", w->index);
    snprintf(rundir_arg, sizeof rundir_arg, "--rundir=%s", s->rundir);
    snprintf(app_arg, sizeof app_arg, "--app=%s", s->cfg.app);
    snprintf(data_arg, sizeof data_arg, "--data=%s", s->cfg.data);
    char mem_arg[64], threshold_arg[48], exclude_arg[sizeof s->cfg.jit_exclude + 16];
    snprintf(mem_arg, sizeof mem_arg, "--memory-limit=%s",
             s->cfg.memory_limit[0] ? s->cfg.memory_limit : "1G");
    snprintf(threshold_arg, sizeof threshold_arg, "--jit-threshold=%u",
             (unsigned)s->cfg.jit_threshold);
    snprintf(exclude_arg, sizeof exclude_arg, "--jit-exclude=%s", s->cfg.jit_exclude);
    char wmem_arg[48];
    snprintf(wmem_arg, sizeof wmem_arg, "--worker-memory=%zu", s->cfg.worker_memory);
    char canary_arg[48], rate_arg[48], sexclude_arg[sizeof s->cfg.shadow_exclude + 20];
    snprintf(canary_arg, sizeof canary_arg, "--shadow-canary=%u", (unsigned)s->cfg.shadow_canary);
    snprintf(rate_arg, sizeof rate_arg, "--shadow-rate=%.6f", s->cfg.shadow_rate);
    snprintf(sexclude_arg, sizeof sexclude_arg, "--shadow-exclude=%s", s->cfg.shadow_exclude);
    char *args[24] = {s->exe, "worker", slot_arg, rundir_arg, app_arg, data_arg, mem_arg};
    int n = 7;
    if (s->cfg.worker_memory) args[n++] = wmem_arg;
    if (s->cfg.core_dumps) args[n++] = "--core-dumps";
    if (s->cfg.no_seccomp) args[n++] = "--no-seccomp";
    if (w->cek) {
        args[n++] = "--mode=cek";
    } else {
        args[n++] = "--mode=jit";
        args[n++] = threshold_arg;
        if (s->cfg.jit_exclude[0]) args[n++] = exclude_arg;
        args[n++] = canary_arg;
        args[n++] = rate_arg;
        if (s->cfg.shadow_exclude[0]) args[n++] = sexclude_arg;
    }
    args[n] = NULL;

    /* A fresh scoreboard: nothing a predecessor recorded may be read as
     * this process's. No process maps it now (the previous one exited). */
    memset(w->board, 0, sizeof *w->board);
    w->board->magic = IPC_BOARD_MAGIC;
    w->sent = 0;
    __atomic_thread_fence(__ATOMIC_RELEASE);

    uv_stdio_container_t stdio[3];
    memset(stdio, 0, sizeof stdio);
    stdio[0].flags = UV_IGNORE;
    stdio[1].flags = UV_INHERIT_FD;
    /* With --access-log=- stdout is the access log's alone: a worker's
     * output goes to stderr, so it cannot split an access log line. */
    stdio[1].data.fd = sup__access_to_stdout() ? 2 : 1;
    stdio[2].flags = UV_INHERIT_FD;
    stdio[2].data.fd = 2;

    uv_process_options_t o;
    memset(&o, 0, sizeof o);
    o.exit_cb = on_exit_cb;
    o.file = s->exe;
    o.args = args;
    o.stdio_count = 3;
    o.stdio = stdio;

    w->respawn_at_ms = 0;
    w->respawn_delay_ms = 0;
    w->spare = false;
    w->retired = false;
    w->served = 0;
    w->recycle_due = false;
    w->retire_now = false;
    w->replaced_by = -1;
    w->recycle_why[0] = '\0';
    w->recycle_after = 0;
    if (s->cfg.max_requests > 0) {
        w->recycle_after = s->cfg.max_requests;
        if (s->cfg.max_requests_jitter > 0)
            w->recycle_after += next_random(s) % ((uint64_t)s->cfg.max_requests_jitter + 1);
    }
    w->killed = false;
    w->was_ready = false;
    w->kill_reason[0] = '\0';
    w->mode[0] = w->abi[0] = '\0';
    w->pid = 0;
    w->proc.data = w;
    int err = uv_spawn(s->loop, &w->proc, &o);
    w->proc_open = true; /* initialised even when the spawn failed */
    if (err != 0) {
        sup__error("unable to spawn worker %d: %s", w->index, uv_strerror(err));
        w->state = SLOT_DOWN;
        char cause[128];
        snprintf(cause, sizeof cause, "unable to spawn it (%s)", uv_strerror(err));
        start_failed(w, cause);
        uv_close((uv_handle_t *)&w->proc, on_proc_closed);
        return;
    }
    w->running = true;
    w->pid = w->proc.pid;
    w->state = SLOT_STARTING;
    s->metrics.starts[w->cek ? 1 : 0]++;
    w->spawned_ms = uv_now(s->loop);
}

void sup__pool_spawn(sup_slot *w)
{
    spawn_slot(w);
}

void sup__pool_kill(sup_slot *w, const char *reason)
{
    kill_worker(w, reason);
}

bool sup__pool_spare_free(const sup_slot *w)
{
    return w->spare && !w->proc_open && !w->running && w->state == SLOT_DOWN;
}

static const char *signal_name(int sig, char *buf, size_t cap)
{
    const char *abbrev = sigabbrev_np(sig);
    snprintf(buf, cap, "SIG%s", abbrev ? abbrev : "?");
    return buf;
}

/* w's process, ready before, crashed: counts the crash in the slot's ring.
 * @return the delay before the respawn: 0 unless the slot crash-loops */
static uint64_t crash_delay(sup_slot *w, uint64_t now, unsigned *recent_out)
{
    w->deaths[w->ndeaths++ % SUP_DEATH_RING] = now;
    unsigned recent = 0, n = w->ndeaths < SUP_DEATH_RING ? w->ndeaths : SUP_DEATH_RING;
    for (unsigned i = 0; i < n; i++)
        if (now - w->deaths[i] < SUP_DEATH_WINDOW_MS) recent++;
    *recent_out = recent;
    if (recent <= SUP_DEATHS_BEFORE_BACKOFF) return 0;
    unsigned extra = recent - SUP_DEATHS_BEFORE_BACKOFF - 1;
    uint64_t d = 500ull << (extra > 4 ? 4 : extra);
    return d > SUP_BACKOFF_MAX_MS ? SUP_BACKOFF_MAX_MS : d;
}

/* w's process has exited (status, sig): decides by the cause how soon the
 * slot gets a new one (w->respawn_delay_ms) and logs it. */
static void decide_respawn(sup_slot *w, int64_t status, int sig)
{
    char sname[32], cause[192];
    if (sig != 0)
        snprintf(cause, sizeof cause, "signal %s", signal_name(sig, sname, sizeof sname));
    else
        snprintf(cause, sizeof cause, "exit status %lld", (long long)status);
    w->respawn_delay_ms = 0;
    if (!w->was_ready) {
        if (w->killed) snprintf(cause, sizeof cause, "sxpool killed it (%s)", w->kill_reason);
        start_failed(w, cause);
        return;
    }
    const char *what;
    if (w->killed)
        what = "was killed by sxpool";
    else if (sig == SIGKILL)
        what = "got SIGKILL from outside sxpool";
    else if (sig == 0 && status == 0)
        what = "exited cleanly";
    else
        what = NULL; /* a crash */
    if (what) {
        sup__warn("worker %d (pid %d) was ready and %s; replacing it now", w->index, w->pid, what);
        return;
    }
    unsigned recent;
    uint64_t delay = crash_delay(w, uv_now(w->srv->loop), &recent);
    w->respawn_delay_ms = delay;
    if (delay == 0)
        sup__warn("worker %d (pid %d) was ready and crashed (%s); crash %u of slot %d within %d s; "
                  "replacing it now",
                  w->index, w->pid, cause, recent, w->index, SUP_DEATH_WINDOW_MS / 1000);
    else
        sup__warn("worker %d (pid %d) was ready and crashed (%s); %u crashes of slot %d within "
                  "%d s; respawning it in %llu ms",
                  w->index, w->pid, cause, recent, w->index, SUP_DEATH_WINDOW_MS / 1000,
                  (unsigned long long)delay);
}

static void on_proc_closed(uv_handle_t *h)
{
    sup_slot *w = h->data;
    sup_server *s = w->srv;
    w->proc_open = false;
    if (w->retired) { /* a replacement took over: this slot is a spare now */
        w->retired = false;
        w->spare = true;
        w->respawn_delay_ms = w->respawn_at_ms = 0;
        w->state = SLOT_DOWN;
        sup__reload_tick(s);
        return;
    }
    if (s->stop >= STOP_WORKERS) return; /* while draining, queued requests need workers */
    uint64_t delay = w->respawn_delay_ms;
    w->respawn_delay_ms = 0;
    if (delay == 0) {
        spawn_slot(w);
        return;
    }
    w->respawn_at_ms = uv_now(s->loop) + delay;
}

static void describe_exit(char *dst, size_t cap, int64_t status, int sig)
{
    if (sig != 0) {
        const char *abbrev = sigabbrev_np(sig);
        snprintf(dst, cap, "killed by signal %d (SIG%s)", sig, abbrev ? abbrev : "?");
    } else {
        snprintf(dst, cap, "exited with status %lld", (long long)status);
    }
}

static void dispatch(sup_server *s);
static void on_take_back_timer(uv_timer_t *t);

static void on_exit_cb(uv_process_t *p, int64_t status, int sig)
{
    sup_slot *w = p->data;
    sup_server *s = w->srv;
    char how[96];
    describe_exit(how, sizeof how, status, sig);
    sup__logf(status == 0 && sig == 0 ? SUP_LOG_INFO : SUP_LOG_WARN, "worker %d (pid %d) %s",
              w->index, w->pid, how);
    w->running = false;
    w->state = SLOT_DOWN;

    /* Its native-tier totals move to the server's, once (the board keeps
     * them until the next spawn zeroes it). */
    if (w->board) {
        ipc_board *b = w->board;
        sup_metrics *m = &s->metrics;
        m->jit_compiled += b->jit_compiled;
        m->jit_cache_loads += b->jit_cache_loads;
        m->jit_failed += b->jit_failed;
        m->jit_compile_us += b->jit_compile_us;
        m->jit_native_calls += b->jit_native_calls;
        m->jit_vm_calls += b->jit_vm_calls;
        b->jit_compiled = b->jit_cache_loads = b->jit_failed = b->jit_compile_us = 0;
        b->jit_native_calls = b->jit_vm_calls = 0;
    }
    /* What the worker held: the request it was running (its scoreboard
     * says which; the oldest if none) takes the death; one past its
     * deadline is answered from the store (dead now: whatever it committed
     * is there); the others never started and go back to their queue. */
    int n = w->ninflight;
    sup_request *held[SUP_MAX_INFLIGHT];
    memcpy(held, w->inflight, sizeof held[0] * (size_t)n);
    memset(w->inflight, 0, sizeof w->inflight);
    w->ninflight = 0;
    w->kill_at_ms = 0;
    uint64_t running = w->board ? __atomic_load_n(&w->board->request_id, __ATOMIC_ACQUIRE) : 0;
    int charged = 0;
    for (int i = 0; i < n; i++)
        if (held[i]->id == running) charged = i;
    /* It lost its store connection between requests: nothing ran */
    if (sig == 0 && status == IPC_EXIT_STORE_LOST && w->board && running == 0) charged = -1;
    sup_request *r = NULL;
    for (int i = n - 1; i >= 0; i--) { /* pushed to the front: keeps their order */
        if (held[i]->timed_out)
            sup__fault_late(s, w, held[i], 504, "the request ran past its deadline\n");
        else if (i == charged)
            r = held[i];
        else
            requeue_unstarted(s, w, held[i]);
    }
    sup__fault_death(w, r, status, sig); /* re-dispatches r, or answers it */
    /* LMDB: a dead reader's slot must be cleared. PostgreSQL ends a dead
     * client's session itself, and its check is a round trip this loop
     * must not wait for; a COMMIT the worker sent just before it died may
     * land after the request is re-dispatched, and then the retry's own
     * commit conflicts with it (the same response record) and is answered
     * from the record. */
    int cleared = strcmp(store_backend(s->store), "lmdb") == 0 ? store_reader_check(s->store) : 0;
    if (cleared < 0)
        sup__warn("unable to clear stale store readers after worker %d died: %s", w->index,
                  store_strerror(cleared));
    sup__reload_exit(w, how); /* a new generation's failed start retires w */
    if (w->replaced_by >= 0) {
        /* recycled (or died while its replacement started): not respawned */
        sup_slot *n = &s->slots[w->replaced_by];
        if (n->replacing == w->index) n->replacing = -1;
        w->replaced_by = -1;
        w->retired = true;
        w->respawn_delay_ms = 0;
    } else if (w->retired) {
        w->respawn_delay_ms = 0; /* its generation was replaced: not respawned */
    } else if (s->stop < STOP_WORKERS) {
        decide_respawn(w, status, sig);
    }
    uv_close((uv_handle_t *)&w->proc, on_proc_closed);
}

/* ---- frames from workers --------------------------------------------------- */

static void malformed(sup_slot *w, const char *why)
{
    if (!w->running) {
        sup__warn("dropped a bad frame on worker slot %d, which has no live worker: %s", w->index,
                  why);
        return;
    }
    char reason[256];
    snprintf(reason, sizeof reason, "it sent a bad frame (%s)", why);
    /* The worker is not to be trusted any more; its exit answers its request. */
    kill_worker(w, reason);
}

/* Sends SHUTDOWN to w. @return 0, or -1 (w killed instead) */
static int send_shutdown(sup_slot *w)
{
    char *buf = NULL;
    size_t len = 0;
    int err = ipc_encode(IPC_SHUTDOWN, 0, NULL, 0, &buf, &len);
    if (err == 0) err = ipc_send(w->ipc, buf, len);
    free(buf);
    if (err != 0) {
        sup__warn("unable to send SHUTDOWN to worker %d (pid %d): %s", w->index, w->pid,
                  ipc_strerror(err));
        kill_worker(w, "SHUTDOWN could not be sent");
        return -1;
    }
    w->state = SLOT_DYING;
    return 0;
}

/* w, replaced, is idle: SHUTDOWN (it exits through its normal path). It is
 * sent only with no request in flight, so the worker's last reply always
 * reaches the loop before its exit does. */
static void retire_idle(sup_slot *w)
{
    w->retire_now = false;
    if (w->replaced_by < 0) { /* a reload retired it (sup_reload.c) */
        sup__info("reload: worker %d (pid %d) of generation %u stopping after %llu request%s",
                  w->index, w->pid, (unsigned)w->gen, (unsigned long long)w->served,
                  w->served == 1 ? "" : "s");
        send_shutdown(w);
        return;
    }
    const sup_slot *nw = &w->srv->slots[w->replaced_by];
    sup__info("worker %d (pid %d) recycled after %llu requests%s; worker %d (pid %d) replaces it",
              w->index, w->pid, (unsigned long long)w->served, w->recycle_why, nw->index, nw->pid);
    send_shutdown(w);
}

void sup__pool_retire_idle(sup_slot *w)
{
    retire_idle(w);
}

/* nw, a replacement, is READY: the worker it replaces takes no new request
 * and gets SHUTDOWN once idle. */
static void retire_replaced(sup_slot *nw)
{
    sup_slot *old = &nw->srv->slots[nw->replacing];
    int old_pid = nw->replacing_pid;
    nw->replacing = -1;
    if (!old->running || old->pid != old_pid || old->replaced_by != nw->index) return;
    if (old->state == SLOT_DYING) return; /* already told to stop, or killed */
    if (old->state == SLOT_IDLE)
        retire_idle(old);
    else
        old->retire_now = true; /* BUSY: after its reply (on_reply) */
}

static void on_ready(sup_slot *w, ipc_frame *f)
{
    long long slot, pid;
    if (f->nfields < 4 || ipc_field_int(f, 0, &slot) != 0 || ipc_field_int(f, 1, &pid) != 0) {
        malformed(w, "READY without slot and pid");
        return;
    }
    if (!w->running || pid != w->pid) {
        sup__warn("ignored a READY from pid %lld on slot %d (its worker is pid %d)", pid, w->index,
                  w->running ? w->pid : 0);
        return;
    }
    if (slot != w->index) {
        malformed(w, "READY names another slot");
        return;
    }
    if (w->state != SLOT_STARTING) {
        if (w->state != SLOT_DYING) malformed(w, "a second READY");
        return;
    }
    ipc_field_str(f, 2, w->mode, sizeof w->mode);
    ipc_field_str(f, 3, w->abi, sizeof w->abi);
    w->state = SLOT_IDLE;
    w->was_ready = true;
    w->start_failures = 0;
    sup__info("worker %d (pid %d) ready (mode %s, abi %s)", w->index, w->pid, w->mode, w->abi);
    if (w->replacing >= 0) retire_replaced(w);
    if (w->gen != w->srv->gen) sup__reload_ready(w);
    dispatch(w->srv);
}

void sup__pool_reply_error(sup_server *s, sup_request *r, int status, const char *kind,
                           size_t kind_len, const char *msg, size_t msg_len)
{
    sup_buf body = {0};
    int err = sup__buf_append(&body, kind, kind_len);
    if (err == 0 && !s->cfg.hide_errors) {
        err = sup__buf_append(&body, ": ", 2);
        if (err == 0) err = sup__buf_append(&body, msg, msg_len);
    }
    if (err == 0) err = sup__buf_append(&body, "\n", 1);
    if (err != 0) {
        sup__buf_free(&body);
        sup__http_respond_text(r, 500, "error\n");
        return;
    }
    static const char ct_name[] = "content-type", ct_value[] = "text/plain; charset=utf-8";
    ipc_field hdr[2] = {{ct_name, sizeof ct_name - 1}, {ct_value, sizeof ct_value - 1}};
    sup__http_respond(r, status, hdr, 2, body.p, body.len);
    sup__buf_free(&body);
}

/* The HTTP status of an ERROR frame: its own when it is 400-599, else 500. */
static int error_status(const ipc_frame *f)
{
    long long status = 500;
    if (ipc_field_int(f, 0, &status) != 0 || status < 400 || status > 599) status = 500;
    return (int)status;
}

/* The resident set of pid in bytes, or 0 if it cannot be read. */
static uint64_t rss_bytes(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2) return 0;
    long page = sysconf(_SC_PAGESIZE);
    return (uint64_t)resident * (uint64_t)(page > 0 ? page : 4096);
}

/* Starts the replacement of w, due for recycling, in a spare slot; with no
 * spare free it stays due and housekeeping tries again. */
static void start_replacement(sup_slot *w)
{
    sup_server *s = w->srv;
    /* During a reload the spares are for the new generation, and a worker
     * of an older one is retired, not recycled. */
    if (s->reload_gen != 0 || w->gen != s->gen) return;
    sup_slot *n = NULL;
    for (int i = 0; i < s->nslots && !n; i++)
        if (sup__pool_spare_free(&s->slots[i])) n = &s->slots[i];
    if (!n) return;
    w->recycle_due = false;
    w->replaced_by = n->index;
    n->cek = w->cek;
    n->gen = w->gen;
    n->replacing = w->index;
    n->replacing_pid = w->pid;
    n->start_failures = 0;
    n->ndeaths = 0;
    spawn_slot(n);
}

/* After a reply: is w due for recycling (--max-requests, --max-rss)? */
static void check_recycle(sup_slot *w)
{
    sup_server *s = w->srv;
    if (s->stop != STOP_NONE || !w->running || w->state == SLOT_DYING || w->replaced_by >= 0 ||
        w->recycle_due)
        return;
    if (w->recycle_after > 0 && w->served >= w->recycle_after) {
        w->recycle_why[0] = '\0';
    } else if (s->cfg.max_rss_mb > 0) {
        uint64_t rss = rss_bytes(w->pid);
        if (rss <= (uint64_t)s->cfg.max_rss_mb << 20) return;
        snprintf(w->recycle_why, sizeof w->recycle_why, ": RSS %llu MB over --max-rss=%u",
                 (unsigned long long)(rss >> 20), (unsigned)s->cfg.max_rss_mb);
    } else {
        return;
    }
    w->recycle_due = true;
    start_replacement(w);
}

/* Answers r from a RESPONSE or ERROR frame (r already off w). A frame
 * that does not hold what it should (a reply nested in SHADOW_RESULT or
 * CHECKED) is answered 502. */
void sup__pool_answer(sup_slot *w, sup_request *r, const ipc_frame *f)
{
    long long status = 0;
    ipc_stage(r->id, STAGE_ANSWERED, 0);
    if (f->type == IPC_RESPONSE) {
        if (f->nfields < 2 || (f->nfields - 2) % 2 != 0 || ipc_field_int(f, 0, &status) != 0) {
            sup__error("request %llu: worker %d (pid %d) sent a malformed response",
                       (unsigned long long)r->id, w->index, w->pid);
            sup__http_respond_text(r, 502, "the worker sent a malformed response\n");
            return;
        }
        if (status < 200 || status > 599) { /* the handler's mistake, not the worker's */
            sup__warn("request %llu: the handler returned status %lld; answering 500",
                      (unsigned long long)r->id, status);
            sup__http_respond_text(r, 500, "bad-status: a handler status must be 200 to 599\n");
            return;
        }
        sup__http_respond(r, (int)status, &f->fields[2], f->nfields - 2, f->fields[1].p,
                          f->fields[1].len);
    } else if (f->type == IPC_ERROR && f->nfields >= 3) {
        if (!sup__fault_error_reply(w, r, f, error_status(f)))
            sup__pool_reply_error(w->srv, r, error_status(f), f->fields[1].p, f->fields[1].len,
                                  f->fields[2].p, f->fields[2].len);
    } else {
        sup__error("request %llu: worker %d (pid %d) sent a reply of type %d",
                   (unsigned long long)r->id, w->index, w->pid, f->type);
        sup__http_respond_text(r, 502, "the worker sent a malformed response\n");
    }
}

static void on_reply(sup_slot *w, ipc_frame *f)
{
    /* A worker told to stop (DYING) may still finish its requests: take them. */
    sup_request *r = inflight_head(w);
    if (!r || r->id != f->id) {
        sup__warn("ignored a reply for request %llu on slot %d: not the request in flight",
                  (unsigned long long)f->id, w->index);
        return;
    }
    long long status = 0;
    switch (f->type) {
    case IPC_RESPONSE:
        if (f->nfields < 2 || (f->nfields - 2) % 2 != 0) {
            malformed(w, "RESPONSE with a bad field count");
            return;
        }
        if (ipc_field_int(f, 0, &status) != 0) {
            malformed(w, "RESPONSE without a numeric status");
            return;
        }
        inflight_pop(w);
        sup__pool_answer(w, r, f);
        break;
    case IPC_ERROR:
        if (f->nfields < 3) {
            malformed(w, "ERROR with fewer than 3 fields");
            return;
        }
        inflight_pop(w);
        sup__pool_answer(w, r, f);
        break;
    case IPC_JIT_FAULT:
        if (f->nfields < 3) {
            malformed(w, "JIT_FAULT with fewer than 3 fields");
            return;
        }
        inflight_pop(w);
        sup__fault_jit_reply(w, r, f);
        break;
    case IPC_CHECKED:
        if (f->nfields < 5 || w->cek) {
            malformed(w, "CHECKED with fewer than 5 fields, or from a CEK worker");
            return;
        }
        inflight_pop(w);
        sup__shadow_checked(w, r, f);
        break;
    case IPC_SHADOW_RESULT:
        if (f->nfields < 3 || !w->cek) {
            malformed(w, "SHADOW_RESULT with fewer than 3 fields, or from a JIT worker");
            return;
        }
        inflight_pop(w);
        sup__shadow_result(w, r, f);
        break;
    }
    w->served++;
    if (w->retire_now && w->state == SLOT_IDLE)
        retire_idle(w);
    else
        check_recycle(w);
    dispatch(w->srv);
}

static void handle_frame(sup_server *s, sup_slot *w, const char *data, size_t len)
{
    ipc_frame *f = &s->frame;
    int err = len > IPC_MAX_FRAME ? IPC_ETOOBIG : ipc_decode(data, len, f);
    if (err != 0) {
        malformed(w, ipc_strerror(err));
        return;
    }
    switch (f->type) {
    case IPC_READY: on_ready(w, f); break;
    case IPC_RESPONSE:
    case IPC_ERROR:
    case IPC_JIT_FAULT:
    case IPC_CHECKED:
    case IPC_SHADOW_RESULT: on_reply(w, f); break;
    default: malformed(w, "a frame type workers do not send"); break;
    }
}

static void on_inbox(uv_async_t *a)
{
    sup_server *s = a->data;
    sup_msg *m = inbox_take(s);
    while (m) {
        sup_msg *next = m->next;
        handle_frame(s, m->slot, m->data, m->len);
        free(m);
        m = next;
    }
}

/* ---- dispatch -------------------------------------------------------------- */

enum pick { PICK_JIT, PICK_CEK, PICK_ANY };

static bool kind_ok(const sup_slot *w, enum pick kind)
{
    return kind == PICK_ANY || w->cek == (kind == PICK_CEK);
}

/* How many requests w may hold: --inflight for a JIT worker; one for a
 * CEK worker, kept free for second attempts. */
static int depth(const sup_server *s, const sup_slot *w)
{
    return w->cek ? 1 : s->cfg.inflight;
}

/* Requests taken back from w's process that it has not got to yet (it
 * skips them when it does). */
static int taken_unreached(const sup_slot *w)
{
    int n = 0;
    for (int i = 0; w->board && i < IPC_BOARD_TAKEN; i++)
        n += __atomic_load_n(&w->board->taken[i], __ATOMIC_RELAXED) != 0;
    return n;
}

/* A ready worker of that kind with room for one more request: an idle one
 * (round-robin) if any, else the one holding the fewest. Requests taken
 * back count against the room for sending ahead until the worker has
 * skipped them, so that a worker stuck on a long request is sent no more
 * than --inflight behind it, whatever is taken back. */
static sup_slot *pick_worker(sup_server *s, enum pick kind)
{
    sup_slot *best = NULL;
    for (int k = 0; k < s->nslots; k++) {
        sup_slot *w = &s->slots[(s->next_slot + k) % s->nslots];
        if ((w->state != SLOT_IDLE && w->state != SLOT_BUSY) || w->retire_now || w->gen != s->gen ||
            !kind_ok(w, kind) || w->ninflight >= depth(s, w) ||
            (w->ninflight > 0 && w->ninflight + taken_unreached(w) >= depth(s, w)))
            continue;
        if (!best || w->ninflight < best->ninflight) best = w;
        if (w->ninflight == 0) break;
    }
    if (best) s->next_slot = (best->index + 1) % s->nslots;
    return best;
}

/* True if a worker of that kind is ready (idle or busy). */
static bool any_up(const sup_server *s, enum pick kind)
{
    for (int i = 0; i < s->nslots; i++) {
        const sup_slot *w = &s->slots[i];
        if ((w->state == SLOT_IDLE || w->state == SLOT_BUSY) && w->gen == s->gen &&
            kind_ok(w, kind))
            return true;
    }
    return false;
}

/* How long a second attempt that may run anywhere (not need_cek) waits
 * for a busy CEK worker before it goes to any worker with room: a quarter
 * of the request deadline, at most SUP_RETRY_CEK_WAIT_MS. A burst of
 * deaths queues their requests behind the CEK workers, which run one
 * request each; past this, a JIT worker is the better place for them than
 * the queue, whose deadline answers 503. */
static uint64_t retry_cek_wait_ms(const sup_server *s)
{
    uint64_t q = s->cfg.timeout_ms / 4;
    return q < SUP_RETRY_CEK_WAIT_MS ? q : SUP_RETRY_CEK_WAIT_MS;
}

/* The worker for the request at the head of q, or NULL (it waits). */
static sup_slot *pick_for(sup_server *s, const sup_request *r, bool retry)
{
    if (retry) {
        sup_slot *w = pick_worker(s, PICK_CEK);
        if (w || r->need_cek) return w;
        if (!any_up(s, PICK_CEK)) return pick_worker(s, PICK_ANY);
        uint64_t waited = uv_now(s->loop) - r->queued_ms;
        if (waited < retry_cek_wait_ms(s) || !(w = pick_worker(s, PICK_ANY))) return NULL;
        sup__info("request %llu waited %llu ms for a busy CEK worker; sending it to worker %d "
                  "(pid %d) instead (more --cek-workers would take such bursts)",
                  (unsigned long long)r->id, (unsigned long long)waited, w->index, w->pid);
        return w;
    }
    sup_slot *w = pick_worker(s, PICK_JIT);
    if (!w && !any_up(s, PICK_JIT)) w = pick_worker(s, PICK_CEK);
    return w;
}

/* @return 0 sent (w owns r now), 1 r answered, -1 not sent (r untouched) */
static int send_request(sup_server *s, sup_slot *w, sup_request *r)
{
    static ipc_field fields[4 + 2 * SUP_MAX_HEADERS];
    int n = 0;
    fields[n++] = (ipc_field){r->method, (uint32_t)strlen(r->method)};
    if (r->path_len > 0)
        fields[n++] = (ipc_field){r->url.p + r->path_off, (uint32_t)r->path_len};
    else
        fields[n++] = (ipc_field){"/", 1};
    fields[n++] = (ipc_field){r->url.p + r->query_off, (uint32_t)(r->url.len - r->query_off)};
    fields[n++] = (ipc_field){r->body.p, (uint32_t)r->body.len};
    for (int i = 0; i < r->nheaders; i++) {
        const sup_header *h = &r->headers[i];
        fields[n++] = (ipc_field){r->hdata.p + h->name_off, h->name_len};
        fields[n++] = (ipc_field){r->hdata.p + h->value_off, h->value_len};
    }
    char *buf;
    size_t len;
    int err = r->shadow.frame ? sup__shadow_encode(r, fields, n, &buf, &len)
                              : ipc_encode(r->attempts == 0 ? IPC_FIRST_REQUEST : IPC_REQUEST,
                                           r->id, fields, n, &buf, &len);
    if (err != 0) {
        sup__error("unable to encode request %llu for a worker: %s", (unsigned long long)r->id,
                   ipc_strerror(err));
        sup__http_respond_text(r, err == IPC_ETOOBIG ? 413 : 500,
                               "the request could not be passed to a worker\n");
        return 1;
    }
    ipc_stage(r->id, STAGE_SENT, 0);
    err = ipc_send(w->ipc, buf, len);
    free(buf);
    if (err != 0) {
        sup__error("unable to send request %llu to worker %d (pid %d): %s",
                   (unsigned long long)r->id, w->index, w->pid, ipc_strerror(err));
        kill_worker(w, "its socket refused a request");
        return -1;
    }
    w->inflight[w->ninflight++] = r;
    w->state = SLOT_BUSY;
    r->slot = w->index;
    r->attempts++;
    r->seq = ++w->sent;
    /* the worker waits for it in recv() (ipc_set_due) */
    if (w->board) __atomic_store_n(&w->board->sent, w->sent, __ATOMIC_RELEASE);
    r->deadline_ms = uv_now(s->loop) + s->cfg.timeout_ms;
    if (w->ninflight == 1) w->head_since_ms = uv_now(s->loop);
    sup__debug("request %llu (attempt %d) sent to worker %d (pid %d)", (unsigned long long)r->id,
               r->attempts, w->index, w->pid);
    return 0;
}

/* Sends the requests of q to workers while there are workers for them. */
static void dispatch_queue(sup_server *s, sup_queue *q, bool retry)
{
    while (q->head && s->stop < STOP_WORKERS) {
        if (!q->head->conn) { /* not expected: sup__pool_abandon takes them out */
            drop_gone(s, queue_pop(q));
            continue;
        }
        sup_slot *w = pick_for(s, q->head, retry);
        if (!w) return;
        sup_request *r = queue_pop(q);
        if (send_request(s, w, r) < 0) queue_push(q, r, true);
    }
}

/* Taking back (--inflight above 1): when a JIT worker is free and another
 * holds requests sent ahead behind one that has run for SUP_TAKE_BACK_MS,
 * the oldest of those it has not started is taken back (try_take_back) and
 * put first in line, to run on the free worker, unless a request in the
 * queue arrived before it. A request behind a short one is left where it
 * is. Runs before the queue is dispatched (dispatch). */
static void take_back(sup_server *s)
{
    if (s->cfg.inflight < 2 || s->stop != STOP_NONE || !s->take_back_open) return;
    int free_jit = 0;
    for (int i = 0; i < s->nslots; i++) {
        const sup_slot *w = &s->slots[i];
        if (!w->cek && w->gen == s->gen && !w->retire_now && w->state == SLOT_IDLE) free_jit++;
    }
    uint64_t now = uv_now(s->loop), due = 0;
    for (int i = 0; i < s->nslots && free_jit > 0; i++) {
        sup_slot *w = &s->slots[i];
        if (w->cek || w->state != SLOT_BUSY || w->ninflight < 2) continue;
        if (now - w->head_since_ms < SUP_TAKE_BACK_MS) {
            uint64_t at = w->head_since_ms + SUP_TAKE_BACK_MS;
            if (due == 0 || at < due) due = at;
            continue;
        }
        for (int k = 1; k < w->ninflight && free_jit > 0; k++) {
            sup_request *r = w->inflight[k];
            if (!r->conn || (s->queue.head && s->queue.head->arrived_ns < r->arrived_ns) ||
                !try_take_back(w, r))
                continue;
            s->metrics.taken_back[1]++;
            sup__debug("request %llu taken back from worker %d (pid %d)", (unsigned long long)r->id,
                       w->index, w->pid);
            r->queued_ms = now;
            queue_push(r->attempts > 0 ? &s->retry : &s->queue, r, true);
            free_jit--;
            k--; /* inflight[k] is the next one now */
        }
    }
    if (free_jit > 0 && due > 0)
        uv_timer_start(&s->take_back_timer, on_take_back_timer, due - now, 0);
}

static void dispatch(sup_server *s)
{
    dispatch_queue(s, &s->retry, true);
    take_back(s);
    dispatch_queue(s, &s->retry, true);
    dispatch_queue(s, &s->queue, false);
}

static void on_take_back_timer(uv_timer_t *t)
{
    dispatch(t->data);
}

void sup__pool_dispatch(sup_server *s)
{
    dispatch(s);
}

bool sup__pool_send_idle_cek(sup_server *s, sup_request *r)
{
    if (s->queue.len > 0 || s->retry.len > 0 || s->stop != STOP_NONE) return false;
    sup_slot *w = pick_worker(s, PICK_CEK);
    if (!w || w->ninflight > 0) return false;
    return send_request(s, w, r) == 0;
}

void sup__pool_retry(sup_server *s, sup_request *r, bool need_cek)
{
    if (!r->conn) { /* its client left while the first attempt ran */
        drop_gone(s, r);
        return;
    }
    r->slot = -1;
    r->need_cek = need_cek || r->shadow.frame; /* a SHADOW frame is for CEK workers only */
    r->queued_ms = uv_now(s->loop);
    queue_push(&s->retry, r, false);
}

int sup__pool_push_blacklist(sup_server *s, const char *function, const char *code_hash)
{
    ipc_field f[2] = {{function, (uint32_t)strlen(function)},
                      {code_hash, (uint32_t)strlen(code_hash)}};
    char *buf;
    size_t len;
    int err = ipc_encode(IPC_BLACKLIST, 0, f, 2, &buf, &len);
    if (err != 0) {
        sup__error("unable to encode a BLACKLIST frame for %s: %s", function, ipc_strerror(err));
        return 0;
    }
    int told = 0;
    for (int i = 0; i < s->nslots; i++) {
        sup_slot *w = &s->slots[i];
        if (w->cek || !w->running || w->state == SLOT_DYING) continue;
        err = ipc_send(w->ipc, buf, len);
        if (err == 0) {
            told++;
        } else if (err == IPC_ECLOSED && w->state == SLOT_STARTING) {
            /* Not connected yet: it reads the store's blacklist once it is. */
        } else {
            sup__error("unable to send BLACKLIST %s to worker %d (pid %d): %s", function, w->index,
                       w->pid, ipc_strerror(err));
            kill_worker(w, "it could not be told to drop a blacklisted function");
        }
    }
    free(buf);
    return told;
}

/* Request ids must never repeat for a data directory, across restarts too:
 * a worker answers a known id from its committed response record. So an
 * id follows the wall clock: (milliseconds since the epoch << 20), or the
 * previous id + 1 when that is not larger. Ids of a later run start above
 * every id of an earlier one as long as the clock does not step back and
 * fewer than 2^20 requests arrive per millisecond on average. */
static uint64_t next_request_id(sup_server *s)
{
    uv_timeval64_t tv;
    uint64_t id = 0;
    if (uv_gettimeofday(&tv) == 0)
        id = ((uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000) << 20;
    if (id <= s->last_id) id = s->last_id + 1;
    s->last_id = id;
    return id;
}

void sup__pool_submit(sup_server *s, sup_request *r)
{
    r->id = next_request_id(s);
    r->slot = -1;
    if (s->stop >= STOP_WORKERS) {
        sup__http_respond_text(r, 503, "server is shutting down\n");
        return;
    }
    if (s->queue.len >= SUP_MAX_QUEUE) {
        sup__http_respond_text(r, 503, "too many requests are waiting for a worker\n");
        return;
    }
    r->queued_ms = uv_now(s->loop);
    ipc_stage(r->id, STAGE_ARRIVED, r->arrived_ns);
    ipc_stage(r->id, STAGE_PARSED, 0);
    queue_push(&s->queue, r, false);
    dispatch(s);
}

/* ---- housekeeping ---------------------------------------------------------- */

static void check_slot(sup_server *s, sup_slot *w, uint64_t now)
{
    if (w->recycle_due && w->replaced_by < 0 && w->running && w->state != SLOT_DYING &&
        s->stop == STOP_NONE)
        start_replacement(w);
    sup_request *head = inflight_head(w);
    if (w->state == SLOT_BUSY && head && now >= head->deadline_ms) {
        /* The request stays on the slot until the worker's exit is seen:
         * until then its commit may still land (a process does not die
         * the instant it is signalled), so the response record is looked
         * up only after on_exit_cb. A reply that comes first answers it. */
        sup_request *r = head;
        r->timed_out = true;
        snprintf(w->kill_reason, sizeof w->kill_reason, "request %llu ran past its %llu s deadline",
                 (unsigned long long)r->id, (unsigned long long)(s->cfg.timeout_ms / 1000));
        w->state = SLOT_DYING;
        w->kill_at_ms = now + hook_kill_delay_ms;
    }
    if (w->kill_at_ms != 0 && now >= w->kill_at_ms) {
        w->kill_at_ms = 0;
        char reason[128];
        snprintf(reason, sizeof reason, "%s", w->kill_reason);
        kill_worker(w, reason);
    } else if (w->state == SLOT_STARTING && now - w->spawned_ms >= SUP_READY_TIMEOUT_MS) {
        kill_worker(w, "it sent no READY in time");
    } else if (w->state == SLOT_DOWN && !w->proc_open && w->respawn_at_ms != 0 &&
               now >= w->respawn_at_ms && s->stop < STOP_WORKERS) {
        spawn_slot(w);
    }
}

void sup__pool_housekeeping(sup_server *s, uint64_t now)
{
    for (int i = 0; i < s->nslots; i++)
        check_slot(s, &s->slots[i], now);
    sup__reload_tick(s);
    if (s->gone_dropped > 0 && (s->gone_log_ms == 0 || now - s->gone_log_ms >= SUP_LOG_EVERY_MS)) {
        sup__info("dropped %llu request%s waiting for a worker: the client closed the connection",
                  (unsigned long long)s->gone_dropped, s->gone_dropped == 1 ? "" : "s");
        s->gone_dropped = 0;
        s->gone_log_ms = now;
    }
    /* a second attempt may have waited long enough for a CEK worker (pick_for) */
    if (s->retry.head) dispatch_queue(s, &s->retry, true);
    sup_queue *qs[2] = {&s->retry, &s->queue};
    for (int k = 0; k < 2; k++) {
        while (qs[k]->head && now - qs[k]->head->queued_ms >= s->cfg.timeout_ms) {
            sup_request *r = queue_pop(qs[k]);
            const char *text = "no worker was free within the request deadline\n";
            if (r->attempts > 0)
                sup__fault_late(s, NULL, r, 503, text); /* an attempt may have committed */
            else
                sup__http_respond_text(r, 503, text);
        }
    }
}

/* ---- start and stop ---------------------------------------------------------- */

int sup__pool_start(sup_server *s)
{
    read_hooks();
    int err = uv_mutex_init(&s->inbox_lock);
    if (err != 0) {
        sup__error("unable to create the worker inbox lock: %s", uv_strerror(err));
        return err;
    }
    err = uv_async_init(s->loop, &s->inbox_async, on_inbox);
    if (err != 0) {
        sup__error("unable to create the worker inbox: %s", uv_strerror(err));
        return err;
    }
    s->inbox_async.data = s;
    s->async_open = true;
    if ((err = uv_timer_init(s->loop, &s->take_back_timer)) != 0) {
        sup__error("unable to create the take-back timer: %s", uv_strerror(err));
        return err;
    }
    s->take_back_timer.data = s;
    s->take_back_open = true;
    int active = s->cfg.workers + s->cfg.cek_workers;
    int n = sup__pool_slot_count(&s->cfg);
    s->slots = calloc((size_t)n, sizeof *s->slots);
    if (!s->slots) {
        sup__error("unable to allocate %d worker slots: out of memory", n);
        return -ENOMEM;
    }
    s->nslots = n;
    s->gen = s->last_gen = 1;
    for (int i = 0; i < s->nslots; i++) {
        sup_slot *w = &s->slots[i];
        w->srv = s;
        w->index = i;
        w->state = SLOT_DOWN;
        w->cek = i >= s->cfg.workers;
        w->spare = i >= active;
        w->gen = 1;
        w->replaced_by = w->replacing = -1;
        char board[PATH_MAX + 64];
        ipc_board_path(s->rundir, i, board, sizeof board);
        err = ipc_board_map(board, 1, &w->board);
        if (err != 0) {
            sup__error("unable to create the crash scoreboard %s: %s", board, strerror(-err));
            w->board = NULL;
            return err;
        }
        char url[PATH_MAX + 64];
        ipc_slot_url(s->rundir, i, s->cfg.transport, url, sizeof url);
        err = ipc_listen_on_loop(s->loop, url, on_recv, w, &w->ipc);
        if (err != 0) {
            sup__error("unable to listen for worker %d on %s: %s", i, url, ipc_strerror(err));
            w->ipc = NULL;
            return err;
        }
    }
    for (int i = 0; i < active; i++)
        spawn_slot(&s->slots[i]);
    return 0;
}

int sup__pool_slot_count(const sup_config *cfg)
{
    /* one spare per worker: for recycling replacements and for the next
     * generation of a reload */
    return 2 * (cfg->workers + cfg->cek_workers);
}

int sup__pool_recycle_all(sup_server *s, const char *why)
{
    int n = 0;
    if (s->stop != STOP_NONE) return 0;
    for (int i = 0; i < s->nslots; i++) {
        sup_slot *w = &s->slots[i];
        if (!w->running || w->state == SLOT_DYING || w->replaced_by >= 0 || w->recycle_due)
            continue;
        snprintf(w->recycle_why, sizeof w->recycle_why, ": %s", why);
        w->recycle_due = true;
        n++;
    }
    /* replacements start now as far as spare slots go, the rest at the
     * next housekeeping ticks (check_slot) */
    for (int i = 0; i < s->nslots; i++)
        if (s->slots[i].recycle_due && s->slots[i].replaced_by < 0) start_replacement(&s->slots[i]);
    return n;
}

bool sup__pool_quiet(const sup_server *s)
{
    if (s->queue.len > 0 || s->retry.len > 0) return false;
    for (int i = 0; i < s->nslots; i++)
        if (s->slots[i].ninflight > 0) return false;
    return true;
}

void sup__pool_fail_queued(sup_server *s, int status, const char *text)
{
    sup_request *r;
    while ((r = queue_pop(&s->retry)) != NULL)
        sup__http_respond_text(r, status, text);
    while ((r = queue_pop(&s->queue)) != NULL)
        sup__http_respond_text(r, status, text);
}

void sup__pool_stop_workers(sup_server *s)
{
    char *buf = NULL;
    size_t len = 0;
    int err = ipc_encode(IPC_SHUTDOWN, 0, NULL, 0, &buf, &len);
    if (err != 0) sup__error("unable to encode SHUTDOWN: %s", ipc_strerror(err));
    for (int i = 0; i < s->nslots; i++) {
        sup_slot *w = &s->slots[i];
        w->respawn_at_ms = 0;
        if (!w->running || w->state == SLOT_DYING) continue;
        if (!buf || (err = ipc_send(w->ipc, buf, len)) != 0) {
            kill_worker(w, "SHUTDOWN could not be sent");
            continue;
        }
        w->state = SLOT_DYING;
    }
    free(buf);
}

void sup__pool_kill_all(sup_server *s, const char *reason)
{
    for (int i = 0; i < s->nslots; i++)
        kill_worker(&s->slots[i], reason);
}

int sup__pool_ready(const sup_server *s)
{
    int n = 0;
    for (int i = 0; i < s->nslots; i++) {
        const sup_slot *w = &s->slots[i];
        if ((w->state == SLOT_IDLE || w->state == SLOT_BUSY) && w->gen == s->gen) n++;
    }
    return n;
}

int sup__pool_live(const sup_server *s)
{
    int n = 0;
    for (int i = 0; i < s->nslots; i++)
        if (s->slots[i].proc_open) n++;
    return n;
}

void sup__pool_close(sup_server *s)
{
    for (int i = 0; i < s->nslots; i++) {
        if (s->slots[i].ipc) ipc_close(s->slots[i].ipc);
        s->slots[i].ipc = NULL;
    }
    if (s->async_open) {
        sup_msg *m = inbox_take(s);
        while (m) {
            sup_msg *next = m->next;
            free(m);
            m = next;
        }
        uv_close((uv_handle_t *)&s->inbox_async, NULL);
        s->async_open = false;
        uv_mutex_destroy(&s->inbox_lock);
    }
    if (s->take_back_open) {
        uv_close((uv_handle_t *)&s->take_back_timer, NULL);
        s->take_back_open = false;
    }
    if (sup__pool_live(s) == 0) {
        for (int i = 0; i < s->nslots; i++)
            ipc_board_unmap(s->slots[i].board);
        free(s->slots);
        s->slots = NULL;
        s->nslots = 0;
    }
}
