/* sup_cluster.c: blacklist entries from the other hosts that share this
 * server's PostgreSQL store.
 *
 * An entry another host adds (a fault in its native code) is in the
 * database at once, and every worker that starts anywhere later loads it;
 * the JIT workers running here hear of it through this file: the store
 * listens on a connection of its own (store_bl_listen: LISTEN/NOTIFY) and
 * the loop polls its socket, so an entry reaches this host's JIT workers
 * (sup__pool_push_blacklist) a round trip after it was committed. Only
 * entries of an ABI hash one of this host's JIT workers has are pushed;
 * this host's own entries are not echoed back (sup_fault.c pushed them).
 *
 * When the listening connection breaks (the server restarted), entries may
 * have been missed: the housekeeping tick listens again, from a store job
 * (connecting may take a while; the loop never waits for it), and that job
 * reads the whole blacklist, whose entries are pushed as if just heard.
 * Pushing an entry a worker already dropped costs it nothing.
 *
 * Loop thread only, except each job's run (a thread-pool thread, through
 * sup_store.c), which touches only the store. One listener per process:
 * the state is process-wide, like the server. With LMDB nothing here runs.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor/sup_internal.h"
#include "supervisor/sup_store.h"

#define SUP_CLUSTER_RETRY_MS 1000

typedef struct listen_job {
    sup_store_job base; /* first: a sup_store_job * is a listen_job * */
    sup_server *s;
    bool catch_up; /* read every entry too: some may have been missed */
    int err, fd;
    store_bl_entry *e;
    size_t n, cap;
} listen_job;

static struct {
    bool on;           /* PostgreSQL: listening, or trying to */
    bool pending;      /* a listen job is queued or running */
    bool failing;      /* the last attempt failed (logged once) */
    uv_poll_t *poll;   /* on the listening connection's socket, or NULL */
    uint64_t retry_at; /* when the housekeeping tick listens again */
} C;

/* Pushes e to this host's JIT workers if one of them has its ABI hash. */
static void push(sup_server *s, const store_bl_entry *e, const char *how)
{
    bool ours = false;
    for (int i = 0; i < s->nslots && !ours; i++) {
        const sup_slot *w = &s->slots[i];
        ours = !w->cek && w->running && strcmp(w->abi, e->abi_hash) == 0;
    }
    if (!ours) return;
    int told = sup__pool_push_blacklist(s, e->function, e->code_hash);
    sup__info("blacklist: %s (code %s) %s; told %d JIT worker%s to drop its native code",
              e->function, e->code_hash, how, told, told == 1 ? "" : "s");
}

static int on_entry(void *arg, const store_bl_entry *e)
{
    push(arg, e, "was blacklisted on another host");
    return 0;
}

static void close_poll(void)
{
    if (C.poll == NULL) return;
    uv_close((uv_handle_t *)C.poll, (uv_close_cb)free);
    C.poll = NULL;
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    sup_server *s = p->data;
    (void)events;
    int n = status < 0 ? STORE_ECONN : store_bl_notified(s->store, on_entry, s);
    if (n >= 0) return;
    sup__warn("blacklist: not hearing of other hosts' entries: %s; listening again in %d ms",
              store_strerror(n), SUP_CLUSTER_RETRY_MS);
    close_poll();
    C.retry_at = uv_now(s->loop) + SUP_CLUSTER_RETRY_MS;
}

static int collect(void *arg, const store_bl_entry *e)
{
    listen_job *j = arg;
    if (j->n == j->cap) {
        size_t ncap = j->cap ? j->cap * 2 : 16;
        store_bl_entry *ne = realloc(j->e, ncap * sizeof *ne);
        if (!ne) return 1; /* the rest stays unpushed until the workers' next start */
        j->e = ne;
        j->cap = ncap;
    }
    j->e[j->n++] = *e;
    return 0;
}

/* Pool thread: the store only. */
static void listen_run(sup_store_job *b, store *st)
{
    listen_job *j = (listen_job *)b;
    j->err = store_bl_listen(st, &j->fd);
    if (j->err == 0 && j->catch_up) j->err = store_bl_each(st, NULL, collect, j);
}

static void listen_done(sup_store_job *b)
{
    listen_job *j = (listen_job *)b;
    sup_server *s = j->s;
    C.pending = false;
    int err = j->err;
    if (err == 0 && s->stop == STOP_NONE) {
        C.poll = malloc(sizeof *C.poll);
        if (!C.poll)
            err = -ENOMEM;
        else if ((err = uv_poll_init(s->loop, C.poll, j->fd)) != 0) {
            free(C.poll);
            C.poll = NULL;
        } else {
            C.poll->data = s;
            if ((err = uv_poll_start(C.poll, UV_READABLE, on_readable)) != 0) close_poll();
        }
        if (err != 0)
            sup__error("blacklist: unable to poll the listening connection: %s", uv_strerror(err));
    } else if (err != 0 && !C.failing) {
        sup__warn("blacklist: unable to listen for other hosts' entries: %s; trying again "
                  "every %d ms (logged again once it works)",
                  store_strerror(err), SUP_CLUSTER_RETRY_MS);
    }
    if (err == 0 && C.failing) sup__info("blacklist: listening for other hosts' entries again");
    C.failing = err != 0;
    if (err == 0)
        for (size_t i = 0; i < j->n; i++)
            push(s, &j->e[i], "is in the store (read again after the connection was lost)");
    else
        C.retry_at = uv_now(s->loop) + SUP_CLUSTER_RETRY_MS;
    free(j->e);
    free(j);
}

static void submit(sup_server *s, bool catch_up)
{
    listen_job *j = calloc(1, sizeof *j);
    if (!j) {
        C.retry_at = uv_now(s->loop) + SUP_CLUSTER_RETRY_MS;
        return;
    }
    j->s = s;
    j->catch_up = catch_up;
    j->base.run = listen_run;
    j->base.done = listen_done;
    C.pending = true;
    sup__store_submit(s->loop, s->store, &j->base);
}

void sup__cluster_start(sup_server *s)
{
    if (strcmp(store_backend(s->store), "postgresql") != 0) return;
    C.on = true;
    submit(s, false); /* the workers load the whole blacklist as they start */
}

void sup__cluster_housekeeping(sup_server *s, uint64_t now)
{
    if (!C.on || C.poll || C.pending || s->stop != STOP_NONE || now < C.retry_at) return;
    submit(s, true);
}

void sup__cluster_stop(sup_server *s)
{
    (void)s;
    C.on = false;
    close_poll();
}
