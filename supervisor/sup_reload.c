/* sup_reload.c: SIGHUP, a zero-downtime reload of the app through
 * generations of workers.
 *
 * Runs on the supervisor's loop thread only. Owns s->gen, s->reload_gen,
 * s->retiring_gen and the slots' gen while a reload runs; sup_pool.c does
 * the spawning, dispatch and retiring.
 *
 * A reload, step by step:
 *   1. SIGHUP: main.sx must be readable; the next generation number is
 *      taken (numbers never repeat, a failed generation's included) and a
 *      worker of each kind the pool has (--workers JIT, --cek-workers CEK)
 *      is spawned in a spare slot with that generation. Spare slots taken
 *      by a recycling replacement are waited for (sup__reload_tick).
 *   2. The old generation keeps serving: dispatch sends requests only to
 *      workers of s->gen, so a new worker that is READY waits, idle.
 *   3. Every new worker READY: the new generation becomes s->gen (commit).
 *      From then on every request goes to it. Each old worker is retired:
 *      it takes no new request, and is sent SHUTDOWN once the requests it
 *      holds are answered (an idle one at once); it is never respawned and
 *      its slot becomes a spare when its process is gone. A request one of
 *      them held when it died is run again on the new generation, as after
 *      any death (sup_fault.c).
 *   4. The last old process gone: the reload is over; a SIGHUP that came
 *      meanwhile starts the next one now.
 *
 * Loading the app is the check: a worker of the new generation that dies
 * before its READY (the app does not load, a spawn fails, no READY within
 * SUP_READY_TIMEOUT_MS) fails the reload: every worker of the new
 * generation is stopped and the old one serves on as if nothing happened.
 * So there is always a generation with ready workers, and no request waits
 * for or is answered by a worker whose app did not load.
 *
 * The blacklist needs nothing here: entries are keyed by the function's
 * code hash (store_bl.c), and a worker drops only native code whose hash
 * matches, so an entry of a function the new app changed does not apply
 * to it, and one of an unchanged function does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/sup_internal.h"

static int needed(const sup_server *s, int cek)
{
    return cek ? s->cfg.cek_workers : s->cfg.workers;
}

/* True if w's slot holds a process, or will again. */
static bool occupied(const sup_slot *w)
{
    return w->running || w->proc_open || (!w->spare && w->state != SLOT_DOWN) ||
           (!w->spare && w->respawn_at_ms != 0);
}

/* Takes every process of generation gen off the pool: stopped at once
 * (they hold no request) or, busy, after their requests; none respawned.
 * @return how many processes are still to exit */
static int retire_generation(sup_server *s, uint32_t gen, bool started)
{
    int left = 0;
    for (int i = 0; i < s->nslots; i++) {
        sup_slot *w = &s->slots[i];
        if (w->gen != gen || w->spare) continue;
        /* a recycling link between two old workers is cut: both leave */
        if (w->replaced_by >= 0 && s->slots[w->replaced_by].replacing == w->index)
            s->slots[w->replaced_by].replacing = -1;
        w->replaced_by = w->replacing = -1;
        w->recycle_due = false;
        if (w->running) {
            w->retired = true;
            left++;
            if (w->state == SLOT_STARTING)
                sup__pool_kill(w, started ? "its generation was replaced before it was ready"
                                          : "the reload it belonged to failed");
            else if (w->state == SLOT_IDLE)
                sup__pool_retire_idle(w);
            else if (w->state == SLOT_BUSY)
                w->retire_now = true; /* SHUTDOWN after its last reply (sup_pool.c) */
        } else if (w->proc_open) {
            w->retired = true; /* exited, handle closing: a spare once closed */
            left++;
        } else {
            w->spare = true; /* down, waiting for a respawn: never respawned */
            w->retired = false;
            w->respawn_at_ms = w->respawn_delay_ms = 0;
            w->state = SLOT_DOWN;
        }
    }
    return left;
}

static int count_gen(const sup_server *s, uint32_t gen, bool ready_only)
{
    int n = 0;
    for (int i = 0; i < s->nslots; i++) {
        const sup_slot *w = &s->slots[i];
        if (w->gen != gen || w->spare) continue;
        if (ready_only ? (w->state == SLOT_IDLE || w->state == SLOT_BUSY) : occupied(w)) n++;
    }
    return n;
}

static void fail(sup_server *s, const char *why)
{
    uint32_t gen = s->reload_gen;
    s->reload_gen = 0;
    s->metrics.reloads[1]++;
    int left = retire_generation(s, gen, false);
    sup__error("reload: generation %u failed: %s; generation %u serves on with %d worker%s "
               "(fix the app and send SIGHUP again)",
               (unsigned)gen, why, (unsigned)s->gen, count_gen(s, s->gen, true),
               count_gen(s, s->gen, true) == 1 ? "" : "s");
    s->retiring_gen = gen;
    s->reload_failed = true;
    if (left == 0) sup__reload_tick(s);
}

static void commit(sup_server *s)
{
    uint32_t old = s->gen, gen = s->reload_gen;
    s->gen = gen;
    s->reload_gen = 0;
    s->metrics.reloads[0]++;
    int nold = count_gen(s, old, false);
    uint64_t ms = uv_now(s->loop) - s->reload_ms;
    sup__info("reload: generation %u ready (%d workers in %llu ms), %d old worker%s retiring",
              (unsigned)gen, count_gen(s, gen, true), (unsigned long long)ms, nold,
              nold == 1 ? "" : "s");
    int left = retire_generation(s, old, true);
    s->retiring_gen = old;
    s->reload_failed = false;
    sup__pool_dispatch(s);
    if (left == 0) sup__reload_tick(s);
}

/* Spawns the workers the generation starting still lacks, in free spares. */
static void fill(sup_server *s)
{
    for (int cek = 0; cek < 2 && s->reload_gen != 0; cek++) {
        while (s->reload_gen != 0 && s->reload_started[cek] < needed(s, cek)) {
            sup_slot *w = NULL;
            for (int i = 0; i < s->nslots && !w; i++)
                if (sup__pool_spare_free(&s->slots[i])) w = &s->slots[i];
            if (!w) return; /* a recycling replacement holds one: at the next tick */
            w->gen = s->reload_gen;
            w->cek = cek != 0;
            w->replacing = w->replaced_by = -1;
            w->start_failures = 0;
            w->ndeaths = 0;
            s->reload_started[cek]++;
            sup__pool_spawn(w);
            if (w->state == SLOT_DOWN) { /* logged by the spawn */
                char why[96];
                snprintf(why, sizeof why, "worker %d could not be spawned", w->index);
                fail(s, why);
            }
        }
    }
}

static void maybe_commit(sup_server *s)
{
    if (s->reload_gen == 0 || s->stop != STOP_NONE) return;
    for (int cek = 0; cek < 2; cek++)
        if (s->reload_started[cek] < needed(s, cek)) return;
    int want = needed(s, 0) + needed(s, 1);
    if (count_gen(s, s->reload_gen, true) >= want) commit(s);
}

void sup__reload_begin(sup_server *s)
{
    if (s->stop != STOP_NONE) {
        sup__info("reload: SIGHUP ignored: the server is stopping");
        return;
    }
    if (s->reload_gen != 0 || s->retiring_gen != 0) {
        if (!s->reload_pending)
            sup__info("reload: SIGHUP while generation %u is %s; reloading again once it is done",
                      (unsigned)(s->reload_gen ? s->reload_gen : s->retiring_gen),
                      s->reload_gen ? "starting" : "leaving");
        s->reload_pending = true;
        return;
    }
    char main_sx[PATH_MAX + 16];
    snprintf(main_sx, sizeof main_sx, "%s/main.sx", s->cfg.app);
    s->last_gen++;
    if (access(main_sx, R_OK) != 0) {
        int e = errno;
        s->metrics.reloads[1]++;
        sup__error("reload: generation %u failed: unable to read %s: %s; generation %u serves on",
                   (unsigned)s->last_gen, main_sx, strerror(e), (unsigned)s->gen);
        return;
    }
    s->reload_gen = s->last_gen;
    s->reload_started[0] = s->reload_started[1] = 0;
    s->reload_ms = uv_now(s->loop);
    sup__info("reload: starting generation %u (%d JIT, %d CEK workers) from %s; generation %u "
              "serves until it is ready",
              (unsigned)s->reload_gen, needed(s, 0), needed(s, 1), main_sx, (unsigned)s->gen);
    fill(s);
    maybe_commit(s);
}

void sup__reload_cancel(sup_server *s)
{
    s->reload_pending = false;
    if (s->reload_gen == 0) return;
    uint32_t gen = s->reload_gen;
    s->reload_gen = 0;
    retire_generation(s, gen, false);
    sup__info("reload: generation %u abandoned: the server is stopping", (unsigned)gen);
}

void sup__reload_ready(sup_slot *w)
{
    sup_server *s = w->srv;
    if (w->gen != s->reload_gen) return;
    maybe_commit(s);
}

void sup__reload_exit(sup_slot *w, const char *how)
{
    sup_server *s = w->srv;
    if (s->reload_gen == 0 || w->gen != s->reload_gen || w->was_ready || w->retired) return;
    char why[384];
    if (w->killed)
        snprintf(why, sizeof why, "its worker %d (pid %d) was killed before it was ready (%s)",
                 w->index, w->pid, w->kill_reason);
    else
        snprintf(why, sizeof why,
                 "its worker %d (pid %d) %s before it was ready (the worker's log above says "
                 "why)",
                 w->index, w->pid, how);
    fail(s, why);
}

void sup__reload_tick(sup_server *s)
{
    if (!s->slots) return;
    if (s->reload_gen != 0) {
        if (s->stop != STOP_NONE) {
            sup__reload_cancel(s);
            return;
        }
        fill(s);
        maybe_commit(s);
        return;
    }
    if (s->retiring_gen != 0) {
        if (count_gen(s, s->retiring_gen, false) > 0) return;
        if (!s->reload_failed)
            sup__info("reload: generation %u has left; generation %u serves with %d workers",
                      (unsigned)s->retiring_gen, (unsigned)s->gen, count_gen(s, s->gen, true));
        s->retiring_gen = 0;
        s->reload_failed = false;
    }
    if (s->reload_pending && s->stop == STOP_NONE) {
        s->reload_pending = false;
        sup__reload_begin(s);
    }
}
