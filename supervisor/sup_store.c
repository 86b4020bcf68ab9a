/* sup_store.c: runs the supervisor's own LMDB work off the loop thread, so
 * a worker holding LMDB's write lock (a locked request transaction, a slow
 * commit) never stalls HTTP: the loop keeps accepting, answering /healthz
 * and dispatching while a blacklist write or a prune waits for the lock.
 *
 * Jobs form one FIFO; the head runs on a libuv thread-pool thread
 * (uv_queue_work) and its done callback runs on the loop, which then starts
 * the next. One job at a time: this process opens at most one LMDB write
 * transaction at a time from here, and jobs take effect in submission
 * order. The store is opened with MDB_NOTLS (store.c), so read
 * transactions may be begun on any thread; each write transaction is
 * begun, committed or aborted on one thread, inside one run callback.
 *
 * The queue is process-wide, like the server (one per process): the loop
 * thread alone touches it. A job still queued or running keeps the loop
 * alive (its uv_work_t is an active request), and the shutdown sequence
 * waits for sup__store_idle() before closing anything its done callbacks
 * use (sup_main.c).
 */
#include <stddef.h>

#include "supervisor/sup_internal.h"
#include "supervisor/sup_store.h"

static struct {
    uv_loop_t *loop;
    sup_store_job *head, *tail; /* head is the running one while running */
    bool running;
} Q;

static sup_store_job *job_of(uv_work_t *w)
{
    return (sup_store_job *)((char *)w - offsetof(sup_store_job, work));
}

static void on_work(uv_work_t *w)
{
    sup_store_job *j = job_of(w);
    j->run(j, j->st);
    /* The job's reads mapped pages of the data file into this process;
     * LMDB's copy-on-write puts every commit's pages somewhere new, so
     * without this each job (a lookup after a worker's death, a prune)
     * adds its pages, and their fault-around neighbours, to the
     * supervisor's RSS for good: about 1 kB per death under chaos. A
     * job's results are copies, so nothing points into the map now. */
    int err = store_release_pages(j->st);
    /* Only the first failure in a row is logged: out of descriptors, it
     * would fail for every job until they are back, and cost nothing but
     * some RSS meanwhile. Jobs run one at a time, so this needs no lock. */
    static int failing;
    if (err < 0 && !failing++)
        sup__error("unable to unmap the store's pages: %s (logged again only after it worked)",
                   store_strerror(err));
    else if (err >= 0)
        failing = 0;
}

static sup_store_job *pop(void)
{
    sup_store_job *j = Q.head;
    Q.head = j->next;
    if (!Q.head) Q.tail = NULL;
    j->next = NULL;
    return j;
}

static void start_next(void);

static void on_after_work(uv_work_t *w, int status)
{
    (void)status; /* never cancelled */
    sup_store_job *j = pop();
    (void)w;
    Q.running = false;
    j->done(j); /* may submit more */
    start_next();
}

static void start_next(void)
{
    while (Q.head && !Q.running) {
        sup_store_job *j = Q.head;
        int err = uv_queue_work(Q.loop, &j->work, on_work, on_after_work);
        if (err == 0) {
            Q.running = true;
            return;
        }
        /* uv_queue_work fails only on bad arguments; do the work here
         * rather than lose it. */
        sup__warn("unable to hand store work to a thread (%s); doing it on the loop thread",
                  uv_strerror(err));
        pop();
        j->run(j, j->st);
        j->done(j);
    }
}

void sup__store_submit(uv_loop_t *loop, store *st, sup_store_job *j)
{
    Q.loop = loop;
    j->st = st;
    j->next = NULL;
    if (Q.tail)
        Q.tail->next = j;
    else
        Q.head = j;
    Q.tail = j;
    start_next();
}

bool sup__store_idle(void)
{
    return Q.head == NULL && !Q.running;
}
