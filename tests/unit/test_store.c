/* test_store.c: request transactions (optimistic and locked), response
 * records and the blacklist of store/, each test in its own mkdtemp data
 * directory, or, with SXPOOL_TEST_PG_URL set (tests/integration/pgserver.py
 * sets it to a running server), the same tests against PostgreSQL, each in
 * a database of its own (created with psql, schema by store_migrate).
 * test_full is LMDB's alone: it fills LMDB's map, which PostgreSQL has not.
 *
 * LMDB must not be used across fork() nor opened twice by one process, so
 * the multi-process tests fork before any environment on their directory is
 * open and every child opens its own. A test that could hang on the write
 * lock runs under alarm(): a hang fails it.
 */
#include "store/store.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/check.h"

/* ---- helpers ------------------------------------------------------------ */

#define PSQL "/usr/lib/postgresql/15/bin/psql -X -q -v ON_ERROR_STOP=1"

/* The server's URL without a database, or NULL: test LMDB. */
static const char *pg_url(void)
{
    const char *u = getenv("SXPOOL_TEST_PG_URL");

    return u && *u ? u : NULL;
}

/* A fresh store's location: a data directory, or a new database's URL. */
static char *new_dir(void)
{
    static int n;
    char cmd[512], *d;

    if (pg_url() == NULL) {
        d = strdup("/tmp/sxpool-store-XXXXXX");
        CHECK(d != NULL);
        CHECK(mkdtemp(d) != NULL);
        return d;
    }
    d = malloc(512);
    CHECK(d != NULL);
    snprintf(d, 512, "%s/sxt_%d_%d", pg_url(), (int)getpid(), n++);
    snprintf(cmd, sizeof cmd, PSQL " -d '%s/postgres' -c 'CREATE DATABASE %s'", pg_url(),
             strrchr(d, '/') + 1);
    CHECK_EQ(system(cmd), 0);
    CHECK_EQ(store_migrate(d), 0);
    return d;
}

static void rm_dir(char *d)
{
    char cmd[512];

    if (pg_url() == NULL)
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    else
        snprintf(cmd, sizeof cmd, PSQL " -d '%s/postgres' -c 'DROP DATABASE %s WITH (FORCE)'",
                 pg_url(), strrchr(d, '/') + 1);
    CHECK_EQ(system(cmd), 0);
    free(d);
}

static store *open_store(const char *dir)
{
    store *s;

    CHECK_EQ(store_open(dir, 64u << 20, &s), 0);
    return s;
}

static int put(store_txn *t, const char *k, const char *v)
{
    return store_put(t, k, strlen(k), v, strlen(v));
}

static int del(store_txn *t, const char *k)
{
    return store_del(t, k, strlen(k));
}

/* The value of k as a string ("" if absent: compare the status too). */
static int get(store_txn *t, const char *k, char *out, size_t cap)
{
    const char *v;
    size_t n;
    int rc = store_get(t, k, strlen(k), &v, &n);

    out[0] = '\0';
    if (rc == 0) {
        CHECK(n < cap);
        memcpy(out, v, n);
        out[n] = '\0';
    }
    return rc;
}

/* Commits one write of k = v in its own txn. */
static void set1(store *s, const char *k, const char *v)
{
    store_txn *t;

    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(put(t, k, v), 0);
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), 0);
}

/* Collects a scan as "k=v;k=v;" in buf. */
typedef struct collect {
    char buf[1024];
    int stop_after; /* stop once this many were seen (0: never) */
    int seen;
} collect;

static int collect_cb(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    collect *c = arg;
    size_t n = strlen(c->buf);

    CHECK(n + kl + vl + 3 < sizeof(c->buf));
    snprintf(c->buf + n, sizeof(c->buf) - n, "%.*s=%.*s;", (int)kl, k, (int)vl, v);
    c->seen++;
    return c->stop_after && c->seen >= c->stop_after;
}

static const char *scan(store_txn *t, const char *prefix, size_t limit, collect *c)
{
    memset(c, 0, sizeof(*c));
    CHECK_EQ(store_scan(t, prefix, strlen(prefix), limit, collect_cb, c), 0);
    return c->buf;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_own_writes(void)
{
    char *dir = new_dir(), v[64];
    store *s = open_store(dir);
    store_txn *t;
    collect c;

    set1(s, "a:1", "one");
    set1(s, "a:3", "three");
    set1(s, "b:1", "bee");

    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "a:1", v, sizeof(v)), 0);
    CHECK_STR(v, "one");
    CHECK_EQ(get(t, "a:2", v, sizeof(v)), STORE_ENOTFOUND);
    CHECK_EQ(put(t, "a:2", "two"), 0);
    CHECK_EQ(get(t, "a:2", v, sizeof(v)), 0);
    CHECK_STR(v, "two");
    CHECK_EQ(put(t, "a:1", "uno"), 0);
    CHECK_EQ(get(t, "a:1", v, sizeof(v)), 0);
    CHECK_STR(v, "uno");
    CHECK_EQ(del(t, "a:3"), 0);
    CHECK_EQ(del(t, "a:3"), STORE_ENOTFOUND);
    CHECK_EQ(del(t, "a:9"), STORE_ENOTFOUND);
    CHECK_EQ(get(t, "a:3", v, sizeof(v)), STORE_ENOTFOUND);
    CHECK_EQ(put(t, "a:0", ""), 0);
    CHECK_EQ(get(t, "a:0", v, sizeof(v)), 0);
    CHECK_STR(v, "");

    CHECK_STR(scan(t, "a:", 100, &c), "a:0=;a:1=uno;a:2=two;");
    CHECK_STR(scan(t, "a:", 2, &c), "a:0=;a:1=uno;");
    CHECK_STR(scan(t, "", 100, &c), "a:0=;a:1=uno;a:2=two;b:1=bee;");
    CHECK_STR(scan(t, "b", 100, &c), "b:1=bee;");
    CHECK_STR(scan(t, "c", 100, &c), "");
    CHECK_STR(scan(t, "a:", 0, &c), "");
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    CHECK_EQ(store_scan(t, "a:", 2, 100, collect_cb, &c), 0);
    CHECK_STR(c.buf, "a:0=;");

    /* limits */
    {
        static char big[STORE_MAX_KEY + 1];

        memset(big, 'k', sizeof(big));
        CHECK_EQ(store_put(t, big, STORE_MAX_KEY + 1, "v", 1), STORE_ETOOBIG);
        CHECK_EQ(store_put(t, big, STORE_MAX_KEY, "v", 1), 0);
        CHECK_EQ(store_put(t, "x", 1, big, (size_t)STORE_MAX_VALUE + 1), STORE_ETOOBIG);
        CHECK_EQ(store_get(t, big, STORE_MAX_KEY + 1, &(const char *){0}, &(size_t){0}),
                 STORE_ETOOBIG);
        CHECK_EQ(store_put(t, "", 0, "v", 1), -EINVAL);
    }
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), 0);

    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_STR(scan(t, "a:", 100, &c), "a:0=;a:1=uno;a:2=two;");
    store_txn_abort(t);
    store_close(s);
    rm_dir(dir);
}

static void test_abort_and_visibility(void)
{
    char *dir = new_dir(), v[64];
    store *s = open_store(dir);
    store_txn *t, *old;

    set1(s, "k", "v0");
    /* a transaction's snapshot is the newest commit at its first read */
    CHECK_EQ(store_txn_begin(s, &t), 0);
    set1(s, "k", "v-1");
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "v-1");
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), 0);
    set1(s, "k", "v0");
    CHECK_EQ(store_txn_begin(s, &old), 0);
    CHECK_EQ(get(old, "new", v, sizeof(v)), STORE_ENOTFOUND); /* snapshot before the commits */

    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(put(t, "k", "aborted"), 0);
    CHECK_EQ(put(t, "new", "aborted"), 0);
    store_txn_abort(t);
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "v0");
    CHECK_EQ(get(t, "new", v, sizeof(v)), STORE_ENOTFOUND);
    store_txn_abort(t);

    set1(s, "k", "v1");
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "v1");
    store_txn_abort(t);

    /* the older snapshot still reads v0; read-only, it commits fine */
    CHECK_EQ(get(old, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "v0");
    CHECK_EQ(store_txn_commit(old, NULL, NULL, 0), 0);
    store_close(s);
    rm_dir(dir);
}

static void test_conflicts(void)
{
    char *dir = new_dir(), v[64];
    store *s = open_store(dir);
    store_txn *a, *b;
    collect c;

    set1(s, "k", "0");

    /* A reads k, B writes k and commits first: A conflicts, applies nothing */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(get(a, "k", v, sizeof(v)), 0);
    CHECK_EQ(put(a, "k", "a"), 0);
    CHECK_EQ(put(a, "other", "a"), 0);
    CHECK_EQ(put(b, "k", "b"), 0);
    CHECK_EQ(store_txn_commit(b, NULL, NULL, 0), 0);
    CHECK_EQ(store_txn_commit(a, "req-a", "resp", 4), STORE_ECONFLICT);
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(get(a, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "b");
    CHECK_EQ(get(a, "other", v, sizeof(v)), STORE_ENOTFOUND);
    store_txn_abort(a);
    CHECK_EQ(store_response_get(s, "req-a", &(char *){0}, &(size_t){0}), STORE_ENOTFOUND);

    /* reading an absent key, then someone creates it */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(get(a, "absent", v, sizeof(v)), STORE_ENOTFOUND);
    CHECK_EQ(put(a, "x", "1"), 0);
    set1(s, "absent", "now");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), STORE_ECONFLICT);

    /* del reports existence: a concurrent delete conflicts */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(del(a, "absent"), 0);
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(del(b, "absent"), 0);
    CHECK_EQ(store_txn_commit(b, NULL, NULL, 0), 0);
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), STORE_ECONFLICT);

    /* blind writes do not conflict: last committer wins */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(put(a, "blind", "a"), 0);
    set1(s, "blind", "b");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), 0);

    /* same value written back: no conflict */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(get(a, "k", v, sizeof(v)), 0);
    CHECK_EQ(put(a, "y", "1"), 0);
    set1(s, "k", "b");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), 0);

    /* a scan sees a phantom insert in its range */
    set1(s, "p:1", "1");
    set1(s, "p:3", "3");
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_STR(scan(a, "p:", 100, &c), "p:1=1;p:3=3;");
    CHECK_EQ(put(a, "sum", "4"), 0);
    set1(s, "p:2", "2");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), STORE_ECONFLICT);
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(get(a, "sum", v, sizeof(v)), STORE_ENOTFOUND);
    store_txn_abort(a);

    /* ... a change of a value it returned, a delete ... */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_STR(scan(a, "p:", 100, &c), "p:1=1;p:2=2;p:3=3;");
    CHECK_EQ(put(a, "sum", "6"), 0);
    set1(s, "p:3", "33");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), STORE_ECONFLICT);

    /* ... but not a change past where a limited scan stopped */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_STR(scan(a, "p:", 2, &c), "p:1=1;p:2=2;");
    CHECK_EQ(put(a, "first2", "3"), 0);
    set1(s, "p:3", "333");
    set1(s, "q", "outside");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), 0);

    /* a write of the txn's own inside the scanned range, then a concurrent
     * insert of the same key: still a conflict */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_STR(scan(a, "p:", 100, &c), "p:1=1;p:2=2;p:3=333;");
    CHECK_EQ(put(a, "p:4", "mine"), 0);
    set1(s, "p:4", "theirs");
    CHECK_EQ(store_txn_commit(a, NULL, NULL, 0), STORE_ECONFLICT);

    store_close(s);
    rm_dir(dir);
}

/* A scan callback that writes into the txn while it scans. */
static int writing_cb(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    store_txn *t = arg;
    char key[64];

    (void)v;
    (void)vl;
    if (kl == 3 && memcmp(k, "w:1", 3) == 0) {
        CHECK_EQ(put(t, "w:0", "before"), 0); /* behind us: not delivered */
        CHECK_EQ(put(t, "w:2", "ahead"), 0);  /* ahead of us: delivered */
        CHECK_EQ(del(t, "w:3"), 0);           /* ahead, deleted: skipped */
    }
    snprintf(key, sizeof(key), "seen:%.*s", (int)kl, k);
    CHECK_EQ(put(t, key, "1"), 0);
    return 0;
}

static void test_scan_writer(void)
{
    char *dir = new_dir(), v[64];
    store *s = open_store(dir);
    store_txn *t;
    collect c;

    set1(s, "w:1", "1");
    set1(s, "w:3", "3");
    set1(s, "w:4", "4");
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(store_scan(t, "w:", 2, 100, writing_cb, t), 0);
    CHECK_EQ(get(t, "seen:w:1", v, sizeof(v)), 0);
    CHECK_EQ(get(t, "seen:w:2", v, sizeof(v)), 0);
    CHECK_EQ(get(t, "seen:w:3", v, sizeof(v)), STORE_ENOTFOUND);
    CHECK_EQ(get(t, "seen:w:4", v, sizeof(v)), 0);
    CHECK_EQ(get(t, "seen:w:0", v, sizeof(v)), STORE_ENOTFOUND);
    CHECK_STR(scan(t, "w:", 100, &c), "w:0=before;w:1=1;w:2=ahead;w:4=4;");
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), 0);
    store_close(s);
    rm_dir(dir);
}

static void test_responses(void)
{
    char *dir = new_dir(), *resp, v[64];
    store *s = open_store(dir);
    store_txn *t;
    size_t len;

    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(put(t, "k", "v"), 0);
    CHECK_EQ(store_txn_commit(t, "req-1", "HTTP 200\0ok", 11), 0);
    CHECK_EQ(store_response_get(s, "req-1", &resp, &len), 0);
    CHECK_EQ(len, 11);
    CHECK(memcmp(resp, "HTTP 200\0ok", 11) == 0);
    free(resp);
    CHECK_EQ(store_response_get(s, "req-2", &resp, &len), STORE_ENOTFOUND);

    /* read-only request with a response record */
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(store_txn_commit(t, "req-2", "", 0), 0);
    CHECK_EQ(store_response_get(s, "req-2", &resp, &len), 0);
    CHECK_EQ(len, 0);
    free(resp);

    /* the same request committed a second time applies nothing: done
     * before, even though what it read changed meanwhile (not a conflict) */
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    set1(s, "k", "changed");
    CHECK_EQ(put(t, "k", "again"), 0);
    CHECK_EQ(store_txn_commit(t, "req-1", "other", 5), STORE_EDONE);
    CHECK_EQ(store_response_get(s, "req-1", &resp, &len), 0);
    CHECK_EQ(len, 11);
    free(resp);
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "changed");
    store_txn_abort(t);
    store_close(s);
    rm_dir(dir);
}

/* ---- blacklist ------------------------------------------------------------ */

typedef struct bl_list {
    char buf[2048];
    int n;
    store_bl_entry last;
} bl_list;

static int bl_cb(void *arg, const store_bl_entry *e)
{
    bl_list *l = arg;
    size_t n = strlen(l->buf);

    snprintf(l->buf + n, sizeof(l->buf) - n, "%s/%s/%s:%u;", e->function, e->code_hash, e->abi_hash,
             e->count);
    l->n++;
    l->last = *e;
    return 0;
}

static const char *bl_all(store *s, const char *abi, bl_list *l)
{
    memset(l, 0, sizeof(*l));
    CHECK_EQ(store_bl_each(s, abi, bl_cb, l), 0);
    return l->buf;
}

/* Entries another process adds reach a listener at once (PostgreSQL's
 * NOTIFY); its own are not echoed. LMDB, one host, has no listener. */
static void test_bl_notify(void)
{
    char *dir = new_dir();
    store *s = open_store(dir);
    bl_list l;
    int fd, status;

    if (pg_url() == NULL) {
        CHECK_EQ(store_bl_listen(s, &fd), -ENOTSUP);
        store_close(s);
        rm_dir(dir);
        return;
    }
    CHECK_EQ(store_bl_listen(s, &fd), 0);
    CHECK_EQ(store_bl_add(s, "own", "c0", "abi1", "r"), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        store *c;
        int rc = store_open(dir, 0, &c) != 0 || store_bl_add(c, "fib", "c1", "abi1", "x") != 0;
        free(dir);
        _exit(rc);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    memset(&l, 0, sizeof l);
    for (int i = 0; i < 50 && l.n == 0; i++) {
        struct pollfd p = {fd, POLLIN, 0};
        CHECK(poll(&p, 1, 100) >= 0);
        CHECK(store_bl_notified(s, bl_cb, &l) >= 0);
    }
    CHECK_STR(l.buf, "fib/c1/abi1:0;"); /* no reason, time nor count: just which */
    CHECK_EQ(store_bl_notified(s, bl_cb, &l), 0);
    store_close(s);
    rm_dir(dir);
}

/* Old response records are pruned oldest first; newer ones stay. */
static void test_response_prune(void)
{
    char *dir = new_dir(), *resp;
    store *s = open_store(dir);
    store_txn *t;
    size_t len;
    struct timespec ts;

    for (int i = 1; i <= 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "100000000000000000%d", i);
        CHECK_EQ(store_txn_begin(s, &t), 0);
        CHECK_EQ(store_txn_commit(t, id, "r", 1), 0);
    }
    CHECK_EQ(store_response_prune(s, 0, 100), 0); /* nothing is older than 1970 */
    CHECK_EQ(store_response_get(s, "1000000000000000001", &resp, &len), 0);
    free(resp);
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t later = (int64_t)ts.tv_sec * 1000 + 60000;
    CHECK_EQ(store_response_prune(s, later, 2), 2); /* bounded batch, oldest first */
    CHECK_EQ(store_response_get(s, "1000000000000000001", &resp, &len), STORE_ENOTFOUND);
    CHECK_EQ(store_response_get(s, "1000000000000000002", &resp, &len), STORE_ENOTFOUND);
    CHECK_EQ(store_response_get(s, "1000000000000000003", &resp, &len), 0);
    free(resp);
    CHECK_EQ(store_response_prune(s, later, 100), 1);
    CHECK_EQ(store_response_prune(s, later, 100), 0);
    store_close(s);
    rm_dir(dir);
}

/* Commits a put of key (1 byte) and, with rlen, a response record of rlen
 * bytes under id. @return store_txn_commit's result */
static int commit_sized(store *s, const char *key, const char *id, size_t rlen)
{
    static char resp[STORE_MAX_RECORD];
    store_txn *t;

    memset(resp, 'r', sizeof resp);
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(put(t, key, "v"), 0);
    return store_txn_commit(t, id, rlen ? resp : NULL, rlen);
}

/* Fills s with records of rlen bytes until a commit is refused. @return
 * how many committed */
static int fill(store *s, int *next_id, size_t rlen)
{
    char id[32], key[32];
    int n = 0, rc;

    for (;; n++) {
        CHECK(n < 100000);
        snprintf(id, sizeof id, "%019d", (*next_id)++);
        snprintf(key, sizeof key, "k%d", *next_id);
        if ((rc = commit_sized(s, key, id, rlen)) != 0) break;
    }
    CHECK_EQ(rc, STORE_EFULL);
    return n;
}

/* A full map: writes are refused with STORE_EFULL before LMDB's own
 * MDB_MAP_FULL, a delete still commits, the prune has room, and writes
 * succeed again afterwards, in the same process and after reopening. */
static void test_full(void)
{
    if (pg_url() != NULL) return; /* LMDB's map: PostgreSQL has no such limit */
    char *dir = new_dir(), *big = malloc(3u << 20);
    store *s;
    store_txn *t;
    size_t used, size;
    int id = 1, n;
    struct timespec ts;

    CHECK(big != NULL);
    setenv("SXPOOL_STORE_NOSYNC", "1", 1); /* thousands of commits; crashes are not tested here */
    CHECK_EQ(store_open(dir, 2u << 20, &s), 0);
    CHECK_EQ(store_usage(s, &used, &size), 0);
    CHECK_EQ(size, 2u << 20);
    CHECK(used < size / 10);
    CHECK(strstr(store_strerror(STORE_EFULL), "store full") != NULL);

    /* bigger than the map: LMDB's MDB_MAP_FULL, reported as STORE_EFULL */
    memset(big, 'b', 3u << 20);
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(store_put(t, "huge", 4, big, 3u << 20), 0);
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), STORE_EFULL);
    CHECK_EQ(commit_sized(s, "x", "1", STORE_MAX_RECORD + 1), STORE_ETOOBIG);

    n = fill(s, &id, 32u << 10); /* large records, then small ones */
    CHECK(n > 20);
    fill(s, &id, 16);
    CHECK_EQ(store_usage(s, &used, &size), 0);
    CHECK(used * 100 <= size * STORE_HIGH_WATER);
    CHECK(used * 100 > size * (STORE_HIGH_WATER - 5));
    CHECK_EQ(commit_sized(s, "small", NULL, 0), STORE_EFULL);

    /* at the high-water mark, a request that only deletes still commits */
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(del(t, "k5"), 0);
    CHECK_EQ(store_txn_commit(t, "9000000000000000000", "deleted", 7), 0);

    /* not over the age: nothing goes; over the high-water mark: the
     * oldest records go, down to the low-water mark */
    CHECK_EQ(store_response_prune(s, 0, 100000), 0);
    CHECK_EQ(store_response_shed(s, 0, 100000), 0);
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t later = (int64_t)ts.tv_sec * 1000 + 60000;
    n = store_response_shed(s, later, 100000);
    CHECK(n > 0);
    CHECK_EQ(store_usage(s, &used, &size), 0);
    CHECK(used * 100 <= size * STORE_LOW_WATER);
    CHECK_EQ(store_response_shed(s, later, 100000), 0); /* below the mark: nothing */
    CHECK_EQ(commit_sized(s, "small", "9000000000000000001", 16), 0);

    /* full again, closed and reopened: still refused, still recovers */
    fill(s, &id, 32u << 10);
    fill(s, &id, 16);
    store_close(s);
    CHECK_EQ(store_open(dir, 2u << 20, &s), 0);
    CHECK(fill(s, &id, 16) <= 1); /* a page's difference at most */
    n = store_response_prune(s, later, 100000);
    CHECK(n > 0);
    CHECK_EQ(commit_sized(s, "small2", NULL, 0), 0);
    store_close(s);

    /* a bigger map at open: the same data has room */
    CHECK_EQ(store_open(dir, 2u << 20, &s), 0);
    fill(s, &id, 32u << 10);
    fill(s, &id, 16);
    store_close(s);
    CHECK_EQ(store_open(dir, 4u << 20, &s), 0);
    CHECK_EQ(store_usage(s, &used, &size), 0);
    CHECK_EQ(size, 4u << 20);
    CHECK_EQ(commit_sized(s, "small3", "9000000000000000002", 16), 0);
    store_close(s);
    unsetenv("SXPOOL_STORE_NOSYNC");
    free(big);
    rm_dir(dir);
}

static void test_blacklist(void)
{
    char *dir = new_dir(), longname[300];
    store *s = open_store(dir);
    bl_list l;

    CHECK_EQ(store_bl_add(s, "fib", "c1", "abi1", "type-error"), 0);
    CHECK_STR(bl_all(s, NULL, &l), "fib/c1/abi1:1;");
    CHECK_STR(l.last.reason, "type-error");
    CHECK(l.last.time_ms > 1600000000000LL);
    CHECK_EQ(store_bl_add(s, "fib", "c1", "abi1", "SIGSEGV"), 0);
    CHECK_STR(bl_all(s, NULL, &l), "fib/c1/abi1:2;");
    CHECK_STR(l.last.reason, "SIGSEGV");

    CHECK_EQ(store_bl_add(s, "fib", "c2", "abi1", "x"), 0);
    CHECK_EQ(store_bl_add(s, "fact", "c1", "abi2", "x"), 0);
    CHECK_EQ(store_bl_add(s, "app/render", "c9", "abi2", NULL), 0);
    CHECK_EQ(store_bl_add(s, "map", "c1", "abi1", "x"), 0);
    CHECK_STR(bl_all(s, NULL, &l),
              "app/render/c9/abi2:1;fact/c1/abi2:1;fib/c1/abi1:2;fib/c2/abi1:1;map/c1/abi1:1;");
    CHECK_STR(bl_all(s, "abi2", &l), "app/render/c9/abi2:1;fact/c1/abi2:1;");
    CHECK_STR(bl_all(s, "abi3", &l), "");

    CHECK_EQ(store_bl_remove(s, "fib", "c2", "abi1"), 0);
    CHECK_EQ(store_bl_remove(s, "fib", "c2", "abi1"), STORE_ENOTFOUND);
    CHECK_EQ(store_bl_clear(s, "f*"), 2);
    CHECK_STR(bl_all(s, NULL, &l), "app/render/c9/abi2:1;map/c1/abi1:1;");
    CHECK_EQ(store_bl_clear(s, "nomatch"), 0);
    CHECK_EQ(store_bl_clear(s, "app/*"), 1);
    CHECK_EQ(store_bl_add(s, "fib", "c1", "abi1", "x"), 0);
    CHECK_EQ(store_bl_clear(s, NULL), 2);
    CHECK_STR(bl_all(s, NULL, &l), "");
    CHECK_EQ(store_bl_add(s, "a", "c", "x", "r"), 0);
    CHECK_EQ(store_bl_add(s, "b", "c", "x", "r"), 0);
    CHECK_EQ(store_bl_clear(s, "*"), 2);

    memset(longname, 'f', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    CHECK_EQ(store_bl_add(s, longname, "c", "a", "r"), STORE_ETOOBIG);

    /* entries survive a reopen */
    CHECK_EQ(store_bl_add(s, "keep", "c", "a", "r"), 0);
    store_close(s);
    s = open_store(dir);
    CHECK_STR(bl_all(s, NULL, &l), "keep/c/a:1;");
    CHECK_EQ(store_reader_check(s), 0);
    store_close(s);
    rm_dir(dir);
}

/* ---- many processes, one counter -------------------------------------- */

#define NPROC 4
#define NINC 250

static int child_increments(const char *dir)
{
    store *s;
    int conflicts = 0;

    if (store_open(dir, 64u << 20, &s) != 0) return 2;
    for (int i = 0; i < NINC; i++) {
        for (;;) {
            store_txn *t;
            const char *v;
            size_t n;
            char buf[32];
            long cur = 0;
            int rc;

            if (store_txn_begin(s, &t) != 0) return 3;
            rc = store_get(t, "counter", 7, &v, &n);
            if (rc == 0) {
                if (n >= sizeof(buf)) return 4;
                memcpy(buf, v, n);
                buf[n] = '\0';
                cur = strtol(buf, NULL, 10);
            } else if (rc != STORE_ENOTFOUND) {
                return 5;
            }
            snprintf(buf, sizeof(buf), "%ld", cur + 1);
            if (store_put(t, "counter", 7, buf, strlen(buf)) != 0) return 6;
            rc = store_txn_commit(t, NULL, NULL, 0);
            if (rc == 0) break;
            if (rc != STORE_ECONFLICT) return 7;
            conflicts++;
        }
    }
    store_close(s);
    printf("counter child %d: %d conflicts retried\n", (int)getpid(), conflicts);
    fflush(stdout);
    return 0;
}

static void test_counter(void)
{
    char *dir = new_dir(), v[32];
    pid_t pids[NPROC];
    store *s;
    store_txn *t;

    for (int i = 0; i < NPROC; i++) {
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            int rc = child_increments(dir);
            free(dir); /* under valgrind, a leak would change the exit status */
            _exit(rc);
        }
    }
    for (int i = 0; i < NPROC; i++) {
        int status;

        CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 0);
    }
    s = open_store(dir);
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "counter", v, sizeof(v)), 0);
    CHECK_STR(v, "1000");
    store_txn_abort(t);
    store_close(s);
    rm_dir(dir);
}

/* ---- locked transactions ------------------------------------------------- */

/* The counter as a number (0 when absent). */
static long counter_of(store_txn *t, const char *k)
{
    char v[32];
    int rc = get(t, k, v, sizeof(v));

    if (rc == STORE_ENOTFOUND) return 0;
    CHECK_EQ(rc, 0);
    return strtol(v, NULL, 10);
}

static void put_counter(store_txn *t, const char *k, long n)
{
    char v[32];

    snprintf(v, sizeof(v), "%ld", n);
    CHECK_EQ(put(t, k, v), 0);
}

/* In a forked child: dies with the test (a failed CHECK exits it), rather
 * than waiting forever on a pipe another child keeps open. */
static void die_with_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) _exit(99);
}

/* One byte from fd within ms milliseconds, or -1. */
static int read_byte(int fd, int ms)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;

    if (poll(&p, 1, ms) != 1 || read(fd, &c, 1) != 1) return -1;
    return c;
}

/* The locked path within one process: reads see the newest commit, the
 * commit applies without validation, a done request is STORE_EDONE, and
 * every way out (commit with writes, read-only commit, abort, EDONE)
 * releases the write lock, or the next begin_locked would hang. */
static void test_locked_txn(void)
{
    char *dir = new_dir(), *resp, v[64];
    store *s = open_store(dir);
    store_txn *t, *old;
    size_t len;
    collect c;

    alarm(20);
    set1(s, "k", "1");
    set1(s, "p:1", "a");
    CHECK_EQ(store_txn_begin(s, &old), 0);      /* an older snapshot, still open */
    CHECK_EQ(get(old, "p:1", v, sizeof(v)), 0); /* taken at its first read */
    set1(s, "k", "2");

    CHECK_EQ(store_txn_begin_locked(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "2");
    CHECK_EQ(put(t, "k", "3"), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0); /* own writes */
    CHECK_STR(v, "3");
    CHECK_EQ(put(t, "p:2", "b"), 0);
    CHECK_STR(scan(t, "p:", 100, &c), "p:1=a;p:2=b;");
    CHECK_EQ(store_txn_commit(t, "req-L", "locked", 6), 0);
    CHECK_EQ(store_response_get(s, "req-L", &resp, &len), 0);
    CHECK_EQ(len, 6);
    CHECK(memcmp(resp, "locked", 6) == 0);
    free(resp);

    /* the older snapshot read k before the locked commit: it conflicts */
    CHECK_EQ(get(old, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "1");
    CHECK_EQ(put(old, "k", "old"), 0);
    CHECK_EQ(store_txn_commit(old, NULL, NULL, 0), STORE_ECONFLICT);

    /* read-only locked commit, abort, done before: each lets the next in */
    CHECK_EQ(store_txn_begin_locked(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "3");
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), 0);
    CHECK_EQ(store_txn_begin_locked(s, &t), 0);
    CHECK_EQ(put(t, "k", "aborted"), 0);
    store_txn_abort(t);
    CHECK_EQ(store_txn_begin_locked(s, &t), 0);
    CHECK_EQ(put(t, "k", "twice"), 0);
    CHECK_EQ(store_txn_commit(t, "req-L", "again", 5), STORE_EDONE);
    CHECK_EQ(store_txn_begin_locked(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "3");
    CHECK_EQ(put(t, "k", "4"), 0);
    CHECK_EQ(store_txn_commit(t, NULL, NULL, 0), 0);

    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(get(t, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "4");
    store_txn_abort(t);
    alarm(0);
    store_close(s);
    rm_dir(dir);
}

/* Child of test_locked_excludes: opens the store (which takes the write
 * lock once) and reports it ('o'); after "go", reads the counter, reports
 * it read ('r'), increments it optimistically until a commit succeeds and
 * reports that ('d'). Exits with the number of conflicts. */
static int optimistic_incr_child(const char *dir, int go, int report)
{
    store *s;
    int conflicts = 0;
    char c;

    if (store_open(dir, 64u << 20, &s) != 0) return 100;
    if (write(report, "o", 1) != 1 || read(go, &c, 1) != 1) return 105;
    for (;;) {
        store_txn *t;
        int rc;

        if (store_txn_begin(s, &t) != 0) return 101;
        put_counter(t, "n", counter_of(t, "n") + 1);
        if (conflicts == 0 && write(report, "r", 1) != 1) return 102;
        rc = store_txn_commit(t, NULL, NULL, 0);
        if (rc == 0) break;
        if (rc != STORE_ECONFLICT) return 103;
        conflicts++;
    }
    if (write(report, "d", 1) != 1) return 104;
    store_close(s);
    return conflicts;
}

/* Across processes: while a locked txn is open, another process's commit
 * waits; the locked txn's read cannot be changed under it, so its commit
 * succeeds and the other one conflicts (it read the value before), runs
 * again and counts on: no update lost, none doubled. */
static void test_locked_excludes(void)
{
    char *dir = new_dir();
    int go[2], report[2], status;
    store *s;
    store_txn *t;
    pid_t pid, parent = getpid();

    alarm(30);
    CHECK_EQ(pipe(go), 0);
    CHECK_EQ(pipe(report), 0);
    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        die_with_parent(parent);
        int rc = optimistic_incr_child(dir, go[0], report[1]);
        free(dir);
        _exit(rc);
    }
    s = open_store(dir);
    CHECK_EQ(read_byte(report[0], 10000), 'o');
    CHECK_EQ(store_txn_begin_locked(s, &t), 0);
    CHECK_EQ(counter_of(t, "n"), 0);
    CHECK_EQ(write(go[1], "g", 1), 1);
    CHECK_EQ(read_byte(report[0], 10000), 'r'); /* it read 0 and tries to commit */
    CHECK_EQ(read_byte(report[0], 300), -1);    /* ... and waits for the lock */
    put_counter(t, "n", 1);
    CHECK_EQ(store_txn_commit(t, "req-locked", "1", 1), 0);
    CHECK_EQ(read_byte(report[0], 10000), 'd');
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 1); /* exactly one conflict: it read 0 */
    CHECK_EQ(store_txn_begin(s, &t), 0);
    CHECK_EQ(counter_of(t, "n"), 2);
    store_txn_abort(t);
    alarm(0);
    close(go[0]), close(go[1]), close(report[0]), close(report[1]);
    store_close(s);
    rm_dir(dir);
}

/* ---- a writer killed mid-commit ------------------------------------------ */

#define KILL_ROUNDS 30

/* Child of test_killed_writer: after "go", counts "n" up, each increment
 * committed (synced) with its response record "dead-N", until killed. */
static int committing_child(const char *dir, int go, int report)
{
    store *s;
    char c;

    if (read(go, &c, 1) != 1 || store_open(dir, 64u << 20, &s) != 0) return 100;
    if (write(report, "s", 1) != 1) return 101;
    for (;;) {
        store_txn *t;
        char id[32];
        long n;

        if (store_txn_begin(s, &t) != 0) return 102;
        n = counter_of(t, "n") + 1;
        put_counter(t, "n", n);
        snprintf(id, sizeof(id), "dead-%ld", n);
        if (store_txn_commit(t, id, "r", 1) != 0) return 103;
    }
}

/* A writer SIGKILLed at a random point of its commits. LMDB publishes a
 * commit to new readers only after writing its meta page, so a kill during
 * the synced meta write leaves a durable commit that readers would miss
 * until the next writer: every snapshot and every response lookup must
 * still see it (the lookup of a request whose first worker died so). The
 * locked txn, a write transaction, sees the truth to compare with. */
static void test_killed_writer(void)
{
    char *dir = new_dir(), *resp, id[32];
    int go[KILL_ROUNDS][2], report[2], status;
    pid_t pids[KILL_ROUNDS], parent = getpid();
    size_t len;
    store *s;
    store_txn *t;

    alarm(120);
    CHECK_EQ(pipe(report), 0);
    for (int i = 0; i < KILL_ROUNDS; i++) {
        CHECK_EQ(pipe(go[i]), 0);
        pids[i] = fork();
        CHECK(pids[i] >= 0);
        if (pids[i] == 0) {
            die_with_parent(parent);
            int rc = committing_child(dir, go[i][0], report[1]);
            free(dir);
            _exit(rc);
        }
    }
    s = open_store(dir);
    srand((unsigned)getpid());
    for (int i = 0; i < KILL_ROUNDS; i++) {
        long seen, truth;

        CHECK_EQ(write(go[i][1], "g", 1), 1);
        CHECK_EQ(read_byte(report[0], 10000), 's');
        usleep(2000 + (useconds_t)(rand() % 20000));
        CHECK_EQ(kill(pids[i], SIGKILL), 0);
        CHECK_EQ(waitpid(pids[i], &status, 0), pids[i]);
        CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        /* first the readers, before any other writer has run since the
         * kill, once the dead process is cleared up after (as the
         * supervisor does after every worker death): PostgreSQL may still
         * be applying the COMMIT the child sent before it died */
        CHECK(store_reader_check(s) >= 0);
        CHECK_EQ(store_txn_begin(s, &t), 0);
        seen = counter_of(t, "n");
        store_txn_abort(t);
        snprintf(id, sizeof(id), "dead-%ld", seen + 1);
        CHECK_EQ(store_response_get(s, id, &resp, &len), STORE_ENOTFOUND);
        snprintf(id, sizeof(id), "dead-%ld", seen);
        if (seen > 0) {
            CHECK_EQ(store_response_get(s, id, &resp, &len), 0);
            free(resp);
        }
        CHECK_EQ(store_txn_begin_locked(s, &t), 0);
        truth = counter_of(t, "n");
        store_txn_abort(t);
        CHECK_EQ(seen, truth);
        CHECK(store_reader_check(s) >= 0);
    }
    alarm(0);
    for (int i = 0; i < KILL_ROUNDS; i++)
        close(go[i][0]), close(go[i][1]);
    close(report[0]), close(report[1]);
    store_close(s);
    rm_dir(dir);
}

static void test_strerror(void)
{
    for (int e = STORE_EFULL; e <= STORE_ECONFLICT; e++)
        CHECK(strcmp(store_strerror(e), "unknown error") != 0);
    CHECK_STR(store_strerror(-ENOENT), strerror(ENOENT));
}

/* Shadow runs: a snapshot, a txn pinned to it, the digest, the checks. */
static void test_pinned(void)
{
    char *dir = new_dir(), v[64], detail[400], d1[STORE_DIGEST_HEX], d2[STORE_DIGEST_HEX];
    store *s = open_store(dir);
    store_txn *a, *b;
    collect c;
    char *snap;
    size_t snap_len;

    set1(s, "k", "1");
    set1(s, "p/1", "x");
    /* the first run reads k, an absent key and a scan, and writes */
    CHECK_EQ(store_txn_begin(s, &a), 0);
    CHECK_EQ(get(a, "k", v, sizeof(v)), 0);
    CHECK_EQ(get(a, "none", v, sizeof(v)), STORE_ENOTFOUND);
    scan(a, "p/", 10, &c);
    CHECK_EQ(put(a, "k", "2"), 0);
    CHECK_EQ(store_txn_snapshot(a, &snap, &snap_len), 0);
    store_txn_write_digest(a, d1);
    store_txn_abort(a);

    /* the store moves on; a run pinned to the snapshot still sees k = 1 */
    set1(s, "k", "5");
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(store_txn_pin(b, snap, snap_len), 0);
    CHECK_EQ(get(b, "k", v, sizeof(v)), 0);
    CHECK_STR(v, "1");
    CHECK_EQ(get(b, "none", v, sizeof(v)), STORE_ENOTFOUND);
    scan(b, "p/", 10, &c);
    CHECK_EQ(put(b, "k", "2"), 0);
    store_txn_write_digest(b, d2);
    CHECK_STR(d1, d2);
    CHECK_EQ(store_txn_pin_check(b, detail, sizeof detail), 0);
    /* its commit validates the pinned k = 1 against the store (5): conflict */
    CHECK_EQ(store_txn_commit(b, "req-b", "r", 1), STORE_ECONFLICT);
    CHECK_EQ(store_response_get(s, "req-b", &(char *){0}, &(size_t){0}), STORE_ENOTFOUND);

    /* with the store back at k = 1 the pinned run commits */
    set1(s, "k", "1");
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(store_txn_pin(b, snap, snap_len), 0);
    CHECK_EQ(get(b, "k", v, sizeof(v)), 0);
    CHECK_EQ(put(b, "k", "3"), 0);
    store_txn_write_digest(b, d2);
    CHECK(strcmp(d1, d2) != 0); /* other writes, another digest */
    CHECK_EQ(store_txn_commit(b, NULL, NULL, 0), 0);

    /* a key the snapshot lacks is read from the store and reported */
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(store_txn_pin(b, snap, snap_len), 0);
    CHECK_EQ(get(b, "p/1", v, sizeof(v)), 0);
    CHECK_STR(v, "x");
    CHECK_EQ(store_txn_pin_check(b, detail, sizeof detail), 1);
    CHECK(strstr(detail, "p/1") != NULL);
    store_txn_abort(b);

    /* a scan that sees other entries than the snapshot's */
    set1(s, "p/2", "y");
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(store_txn_pin(b, snap, snap_len), 0);
    scan(b, "p/", 10, &c);
    CHECK_EQ(store_txn_pin_check(b, detail, sizeof detail), 2);
    store_txn_abort(b);

    /* a malformed snapshot is refused */
    CHECK_EQ(store_txn_begin(s, &b), 0);
    CHECK_EQ(store_txn_pin(b, snap, snap_len - 1), -EINVAL);
    CHECK_EQ(store_txn_pin(b, "g\1\0\0", 4), -EINVAL);
    store_txn_abort(b);
    free(snap);
    store_close(s);
    rm_dir(dir);
}

int main(void)
{
    test_strerror();
    test_own_writes();
    test_abort_and_visibility();
    test_conflicts();
    test_scan_writer();
    test_responses();
    test_response_prune();
    test_full();
    test_blacklist();
    test_bl_notify();
    test_counter();
    test_locked_txn();
    test_locked_excludes();
    test_killed_writer();
    test_pinned();
    printf("test_store: ok\n");
    return 0;
}
