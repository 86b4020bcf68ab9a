/* test_sup_store.c: the supervisor's store jobs (supervisor/sup_store.c).
 *
 * While the loop thread holds LMDB's write lock (a locked transaction),
 * three jobs are submitted: add a blacklist entry, prune response records,
 * lift the entry. The loop keeps running its timer meanwhile (it never
 * waits on the store); no job finishes before the lock is released; then
 * they run one at a time in submission order (the entry added first is
 * gone at the end), each run on a thread other than the loop's and each
 * done on the loop's. Runs under alarm(): a hang fails it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "store/store.h"
#include "supervisor/sup_store.h"

#include "tests/unit/check.h"

enum { ADD, PRUNE, LIFT, NJOBS };

typedef struct job {
    sup_store_job base; /* first */
    int kind;
    int result;
    pthread_t run_thread;
} job;

static pthread_t loop_thread;
static int run_order[NJOBS], nrun; /* written by runs, one at a time */
static int done_order[NJOBS], ndone;
static int ticks, ticks_at_release = -1;
static store_txn *held;
static uv_timer_t timer;

static void job_run(sup_store_job *b, store *st)
{
    job *j = (job *)b;
    j->run_thread = pthread_self();
    run_order[nrun++] = j->kind;
    switch (j->kind) {
    case ADD: j->result = store_bl_add(st, "f", "c0de", "ab1", "test"); break;
    case PRUNE: j->result = store_response_prune(st, 0, 10) < 0 ? -1 : 0; break;
    case LIFT: j->result = store_bl_remove(st, "f", "c0de", "ab1"); break;
    }
}

static void job_done(sup_store_job *b)
{
    job *j = (job *)b;
    CHECK(pthread_equal(pthread_self(), loop_thread));
    CHECK(!pthread_equal(j->run_thread, loop_thread));
    CHECK(ticks_at_release >= 0); /* nothing finished while the lock was held */
    CHECK_EQ(j->result, 0);
    done_order[ndone++] = j->kind;
}

static void on_tick(uv_timer_t *t)
{
    ticks++;
    if (ticks == 30) { /* 300 ms with the lock held */
        CHECK_EQ(ndone, 0);
        ticks_at_release = ticks;
        store_txn_abort(held);
        held = NULL;
    }
    if (ndone == NJOBS) uv_close((uv_handle_t *)t, NULL);
}

static int count_entry(void *arg, const store_bl_entry *e)
{
    if (strcmp(e->function, "f") == 0) ++*(int *)arg;
    return 0;
}

int main(void)
{
    alarm(60);
    char dir[] = "/tmp/sxpool-supstore-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    store *st;
    CHECK_EQ(store_open(dir, 0, &st), 0);
    uv_loop_t *loop = uv_default_loop();
    loop_thread = pthread_self();

    CHECK(sup__store_idle());
    CHECK_EQ(store_txn_begin_locked(st, &held), 0);
    static job jobs[NJOBS];
    for (int k = 0; k < NJOBS; k++) {
        jobs[k].kind = k;
        jobs[k].base.run = job_run;
        jobs[k].base.done = job_done;
        sup__store_submit(loop, st, &jobs[k].base);
    }
    CHECK(!sup__store_idle());
    CHECK_EQ(uv_timer_init(loop, &timer), 0);
    CHECK_EQ(uv_timer_start(&timer, on_tick, 10, 10), 0);
    CHECK_EQ(uv_run(loop, UV_RUN_DEFAULT), 0);

    CHECK(sup__store_idle());
    CHECK_EQ(ndone, NJOBS);
    CHECK_EQ(nrun, NJOBS);
    for (int k = 0; k < NJOBS; k++) {
        CHECK_EQ(run_order[k], k);
        CHECK_EQ(done_order[k], k);
    }
    CHECK(ticks_at_release >= 30);
    int n = 0;
    CHECK_EQ(store_bl_each(st, NULL, count_entry, &n), 0);
    CHECK_EQ(n, 0); /* lifted after it was added */
    CHECK_EQ(uv_loop_close(loop), 0);
    store_close(st);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
    printf("ok: 3 store jobs in order, none before the lock was released, loop ticked %d times "
           "meanwhile\n",
           ticks_at_release);
    return 0;
}
