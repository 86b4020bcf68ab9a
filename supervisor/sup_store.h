/* sup_store.h: the supervisor's own store work (adding and lifting
 * blacklist entries, response record lookups, response record pruning,
 * listening for other hosts' entries), run off the loop thread. (The
 * loop's own store calls: store_reader_check after a worker's death, with
 * LMDB only, which takes the reader table's lock, never the write lock;
 * and store_bl_notified, which reads a socket without blocking.) Only
 * sup_store.c, sup_fault.c, sup_cluster.c and sup_main.c include it.
 */
#ifndef SXPOOL_SUP_STORE_H
#define SXPOOL_SUP_STORE_H

#include <stdbool.h>
#include <uv.h>

#include "store/store.h"

typedef struct sup_store_job sup_store_job;

/* One piece of store work. The submitter fills run and done (and whatever
 * larger struct embeds the job); the rest is sup_store.c's. */
struct sup_store_job {
    /* On a libuv thread-pool thread: the LMDB calls, nothing else (no
     * loop state, no request, no slot). May wait for the write lock. */
    void (*run)(sup_store_job *j, store *st);
    /* On the loop thread, after run returned: takes ownership of j back
     * (frees it, or submits it again). */
    void (*done)(sup_store_job *j);
    /* private */
    uv_work_t work;
    sup_store_job *next;
    store *st;
};

/**
 * Queues j. Jobs run one at a time, in the order they were submitted, so
 * a later job sees everything an earlier one wrote (a blacklist entry is
 * lifted only after it was added). From the call until done runs, j is
 * sup_store.c's. Loop thread only.
 */
void sup__store_submit(uv_loop_t *loop, store *st, sup_store_job *j);

/* True when no job is queued or running. Loop thread only. */
bool sup__store_idle(void);

#endif
