/* store_lmdb.c: the LMDB backend (store__ops): the environment, the
 * backend side of request transactions (store_txn.c keeps the rest),
 * idempotency records and the reader-slot check; its blacklist is in
 * store_bl.c.
 *
 * One struct store per process per data directory, opened after exec (LMDB
 * must not be used across fork, and must not be opened twice by one process).
 * The environment is opened with MDB_NOTLS so that read transactions belong
 * to their MDB_txn, not to a thread: a request transaction keeps a read
 * snapshot while the same thread opens the short write transaction of its
 * commit, and a future caller may move transactions between threads.
 *
 * Durability: commits are synced by default. SXPOOL_STORE_NOSYNC=1 in the
 * environment adds MDB_NOSYNC (tests, benchmarks): a process crash still
 * loses nothing committed, a machine crash may lose the last commits.
 *
 * Response records ("responses") are stored as an 8-byte little-endian
 * commit time in milliseconds followed by the response bytes, so that old
 * records can be pruned by age; store_response_get() returns only the bytes.
 * Request ids grow with time, so the prune stops at the first record of an
 * id that is too young; records named by a client's Idempotency-Key ("k:"
 * and the key, which sort after every id) are each checked.
 *
 * Room (store.h): the map is a hard limit, and LMDB needs free pages to
 * delete. Request commits stop at the high-water mark (store_txn.c, with
 * store__room); the prune here deletes in transactions of at most
 * STORE__PRUNE_CHUNK records, halving the chunk on MDB_MAP_FULL, so each
 * needs only a few pages of what the high-water mark keeps free.
 */
#include "store/store_lmdb.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#define STORE__PRUNE_CHUNK 256
#define STORE__MAX_READERS 256

int store__fail(const char *what, int rc)
{
    fprintf(stderr, "store: unable to %s: %s\n", what, mdb_strerror(rc));
    return rc == MDB_MAP_FULL ? STORE_EFULL : STORE_ELMDB;
}

int store__pages(store_lmdb *s, MDB_txn *txn, size_t *used, size_t *total)
{
    /* 0 and 1 are LMDB's own free list and catalog of named databases */
    MDB_dbi dbis[] = {0, 1, s->kv, s->responses, s->blacklist};
    MDB_envinfo info;
    MDB_stat st;
    size_t n = 2; /* the meta pages */
    int rc;

    for (size_t i = 0; i < sizeof dbis / sizeof dbis[0]; i++) {
        if ((rc = mdb_stat(txn, dbis[i], &st)) != 0) return rc;
        n += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    }
    if ((rc = mdb_env_info(s->env, &info)) != 0) return rc;
    *used = n;
    *total = info.me_mapsize / st.ms_psize;
    return 0;
}

static int lmdb_room(store_lmdb *s, MDB_txn *txn, unsigned pct)
{
    size_t used, total;
    int rc = store__pages(s, txn, &used, &total);

    if (rc != 0) return rc;
    return used * 100 > total * pct ? STORE_EFULL : 0;
}

static int lmdb_usage(store *base, size_t *used, size_t *size)
{
    store_lmdb *s = store__lmdb(base);
    MDB_txn *txn;
    MDB_stat st;
    size_t u, t;
    int rc;

    if ((rc = store__begin_read(s, "measure the store", &txn)) != 0) return rc;
    rc = store__pages(s, txn, &u, &t);
    if (rc == 0) rc = mdb_env_stat(s->env, &st);
    mdb_txn_abort(txn);
    if (rc != 0) return store__fail("measure the store", rc);
    *used = u * st.ms_psize;
    *size = t * st.ms_psize;
    return 0;
}

/* True when txn's snapshot is older than the newest meta page. */
static int behind_newest(store_lmdb *s, MDB_txn *txn)
{
    MDB_envinfo info;

    if (mdb_env_info(s->env, &info) != 0) return 1;
    return info.me_last_txnid > mdb_txn_id(txn);
}

int store__begin_read(store_lmdb *s, const char *what, MDB_txn **out)
{
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) return store__fail(what, rc);
    if (!behind_newest(s, txn)) {
        *out = txn;
        return 0;
    }
    mdb_txn_abort(txn);
    /* Taking the write lock publishes the newest commit. */
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) return store__fail(what, rc);
    mdb_txn_abort(txn);
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) return store__fail(what, rc);
    *out = txn;
    return 0;
}

static const store__ops lmdb_ops;

static int nosync_requested(void)
{
    const char *v = getenv("SXPOOL_STORE_NOSYNC");

    return v != NULL && strcmp(v, "1") == 0;
}

/* Opens (creating) the three named databases in one write transaction. */
static int open_dbs(store_lmdb *s)
{
    MDB_txn *txn;
    int rc;

    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return store__fail("open the databases", rc);
    if ((rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &s->kv)) != 0 ||
        (rc = mdb_dbi_open(txn, "responses", MDB_CREATE, &s->responses)) != 0 ||
        (rc = mdb_dbi_open(txn, "blacklist", MDB_CREATE, &s->blacklist)) != 0) {
        mdb_txn_abort(txn);
        return store__fail("open the databases", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return store__fail("open the databases", rc);
    return 0;
}

int store__lmdb_open(const char *dir, size_t map_size, store **out)
{
    unsigned flags = MDB_NOTLS;
    store_lmdb *s;
    int rc;

    if (dir == NULL || out == NULL) return -EINVAL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = -errno;
        fprintf(stderr, "store: unable to create %s: %s\n", dir, strerror(errno));
        return rc;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) return -ENOMEM;
    if (nosync_requested()) flags |= MDB_NOSYNC;
    if ((rc = mdb_env_create(&s->env)) != 0) {
        s->env = NULL;
        goto fail;
    }
    if ((rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, map_size ? map_size : STORE_DEFAULT_MAP_SIZE)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, STORE__MAX_READERS)) != 0 ||
        (rc = mdb_env_open(s->env, dir, flags, 0600)) != 0)
        goto fail;
    if ((rc = open_dbs(s)) != 0) {
        mdb_env_close(s->env);
        free(s);
        return rc;
    }
    s->base.ops = &lmdb_ops;
    *out = &s->base;
    return 0;

fail:
    fprintf(stderr, "store: unable to open %s: %s\n", dir, mdb_strerror(rc));
    if (s->env != NULL) mdb_env_close(s->env);
    free(s);
    return rc > 0 ? -rc : STORE_ELMDB;
}

static void lmdb_close(store *base)
{
    store_lmdb *s = store__lmdb(base);

    mdb_env_close(s->env);
    free(s);
}

static int lmdb_reader_check(store *base)
{
    store_lmdb *s = store__lmdb(base);
    int dead = 0, rc;

    if ((rc = mdb_reader_check(s->env, &dead)) != 0) return store__fail("check reader slots", rc);
    return dead;
}

/* LMDB does not say where its map is (me_mapaddr is set only with
 * MDB_FIXEDMAP), so the map is found in /proc/self/maps: the shared
 * mapping ('s') of the data file's device and inode. A private mapping is
 * never touched: MADV_DONTNEED would discard its modified pages. */
static int lmdb_release_pages(store *base)
{
    store_lmdb *s = store__lmdb(base);
    struct stat st;
    mdb_filehandle_t fd;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, rc;

    if ((rc = mdb_env_get_fd(s->env, &fd)) != 0) return store__fail("find the data file", rc);
    if (fstat(fd, &st) != 0) return -errno;
    FILE *f = fopen("/proc/self/maps", "re");
    if (f == NULL) return -errno;
    while (getline(&line, &cap, f) > 0) {
        unsigned long lo, hi, ino;
        unsigned maj, min;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s %*s %x:%x %lu", &lo, &hi, perms, &maj, &min, &ino) != 6)
            continue;
        if (perms[3] != 's' || ino != (unsigned long)st.st_ino || makedev(maj, min) != st.st_dev)
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) {
            n = -errno;
            break;
        }
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

/* Deletes, in one write transaction, up to max of the oldest records
 * committed before before_ms; *more is set when it stopped at max (older
 * records may be left). @return 0 or an LMDB error (nothing deleted) */
static int prune_txn(store_lmdb *s, int64_t before_ms, size_t max, size_t *deleted, int *more)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t n = 0;
    int rc;

    *more = 0;
    *deleted = 0;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) return rc;
    if ((rc = mdb_cursor_open(txn, s->responses, &cur)) != 0) {
        mdb_txn_abort(txn);
        return rc;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= 8 && store__get_i64(v.mv_data) >= before_ms) {
            /* Records named by a client's key ("k:...", after the ids)
             * are in no time order: each is looked at. */
            if (k.mv_size >= 2 && memcmp(k.mv_data, "k:", 2) == 0) continue;
            k.mv_data = (void *)"k:";
            k.mv_size = 2;
            rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
            if (rc != 0) break;
            if (v.mv_size >= 8 && store__get_i64(v.mv_data) >= before_ms) continue;
        }
        if (n == max) {
            *more = 1;
            break;
        }
        if ((rc = mdb_cursor_del(cur, 0)) != 0) break;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return rc;
    }
    if (n == 0) {
        mdb_txn_abort(txn);
        return 0;
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return rc;
    *deleted = n;
    return 0;
}

/* Sets *is_over when the newest commit leaves more than pct percent of
 * the map in use. @return 0 or an LMDB error */
static int over(store_lmdb *s, unsigned pct, int *is_over)
{
    MDB_txn *txn;
    size_t used, total;
    int rc;

    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0) return rc;
    rc = store__pages(s, txn, &used, &total);
    mdb_txn_abort(txn);
    if (rc != 0) return rc;
    *is_over = used * 100 > total * pct;
    return 0;
}

/* Deletes up to max records committed before before_ms, oldest first, a
 * chunk per transaction; with until_pct, stops once at most that percent
 * of the map is in use. @return the number deleted or an error */
static int lmdb_prune(store *base, int64_t before_ms, size_t max, unsigned until_pct)
{
    store_lmdb *s = store__lmdb(base);
    size_t chunk = STORE__PRUNE_CHUNK, total = 0, n;
    int more = 1, full, rc;

    if (max > INT_MAX) max = INT_MAX;
    while (more && total < max) {
        if (until_pct > 0) {
            if ((rc = over(s, until_pct, &full)) != 0) return store__fail("measure the store", rc);
            if (!full) break;
        }
        rc = prune_txn(s, before_ms, chunk < max - total ? chunk : max - total, &n, &more);
        if (rc == MDB_MAP_FULL && chunk > 1) { /* fewer deletes need fewer free pages */
            chunk /= 2;
            more = 1;
            continue;
        }
        if (rc != 0) {
            if (rc == MDB_MAP_FULL && total > 0) break; /* progress made: report it */
            return store__fail("commit pruned response records", rc);
        }
        total += n;
    }
    return (int)total;
}

static int lmdb_response_get(store *base, const char *req_id, char **resp, size_t *len)
{
    store_lmdb *s = store__lmdb(base);
    MDB_txn *txn;
    MDB_val k, v;
    char *copy;
    int rc;

    k.mv_data = (void *)req_id;
    k.mv_size = strlen(req_id);
    if (k.mv_size == 0 || k.mv_size > STORE_MAX_KEY) return STORE_ENOTFOUND;
    if ((rc = store__begin_read(s, "read a response record", &txn)) != 0) return rc;
    rc = mdb_get(txn, s->responses, &k, &v);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return STORE_ENOTFOUND;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store__fail("read a response record", rc);
    }
    if (v.mv_size < 8) {
        mdb_txn_abort(txn);
        fprintf(stderr, "store: unable to read the response record of %s: malformed\n", req_id);
        return STORE_ELMDB;
    }
    copy = malloc(v.mv_size - 8 + 1);
    if (copy == NULL) {
        mdb_txn_abort(txn);
        return -ENOMEM;
    }
    memcpy(copy, (const char *)v.mv_data + 8, v.mv_size - 8);
    copy[v.mv_size - 8] = '\0';
    *len = v.mv_size - 8;
    *resp = copy;
    mdb_txn_abort(txn);
    return 0;
}

/* ---- the backend side of request transactions -------------------------- *
 * A store__tx is an MDB_txn and its store; a store__cur is an MDB_cursor.
 * A snapshot is a read-only transaction (store__begin_read: never older
 * than the newest durable commit) or, locked, LMDB's one write
 * transaction; a commit's write transaction is a new one (optimistic) or
 * that same locked one. */

struct store__tx {
    store_lmdb *s;
    MDB_txn *txn;
};

static store__val val_of(MDB_val v)
{
    return (store__val){v.mv_size, v.mv_data};
}

static int tx_new(store_lmdb *s, MDB_txn *txn, store__tx **out)
{
    store__tx *x = malloc(sizeof *x);

    if (x == NULL) {
        mdb_txn_abort(txn);
        return -ENOMEM;
    }
    x->s = s;
    x->txn = txn;
    *out = x;
    return 0;
}

static int lmdb_begin(store *base, int locked, store__tx **out)
{
    store_lmdb *s = store__lmdb(base);
    MDB_txn *txn;
    int rc;

    if (!locked) {
        if ((rc = store__begin_read(s, "begin a read transaction", &txn)) != 0) return rc;
    } else if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        return store__fail("begin a locked transaction", rc);
    }
    return tx_new(s, txn, out);
}

static int lmdb_get(store__tx *x, const char *key, size_t klen, store__val *v)
{
    MDB_val k = {klen, (void *)key}, mv;
    int rc = mdb_get(x->txn, x->s->kv, &k, &mv);

    if (rc == MDB_NOTFOUND) return STORE_ENOTFOUND;
    if (rc != 0) return store__fail("read a key", rc);
    *v = val_of(mv);
    return 0;
}

static int lmdb_cur_open(store__tx *x, store__cur **out)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(x->txn, x->s->kv, &cur);

    if (rc != 0) return store__fail("scan", rc);
    *out = (store__cur *)cur;
    return 0;
}

static int cur_get(store__cur *c, MDB_val *mk, store__val *k, store__val *v, MDB_cursor_op op)
{
    MDB_val mv;
    int rc = mdb_cursor_get((MDB_cursor *)c, mk, &mv, op);

    if (rc == MDB_NOTFOUND) return 0;
    if (rc != 0) return store__fail("scan", rc);
    *k = val_of(*mk);
    *v = val_of(mv);
    return 1;
}

static int lmdb_cur_first(store__cur *c, const char *key, size_t klen, store__val *k, store__val *v)
{
    MDB_val mk = {klen, (void *)key};

    return cur_get(c, &mk, k, v, klen ? MDB_SET_RANGE : MDB_FIRST);
}

static int lmdb_cur_next(store__cur *c, store__val *k, store__val *v)
{
    MDB_val mk;

    return cur_get(c, &mk, k, v, MDB_NEXT);
}

static void lmdb_cur_close(store__cur *c)
{
    mdb_cursor_close((MDB_cursor *)c);
}

static void lmdb_end(store__tx *x)
{
    mdb_txn_abort(x->txn);
    free(x);
}

static int lmdb_wbegin(store__tx *snap, int locked, store__tx **out)
{
    MDB_txn *txn;
    int rc;

    if (locked) { /* its reads are the write transaction's */
        *out = snap;
        return 0;
    }
    if ((rc = mdb_txn_begin(snap->s->env, NULL, 0, &txn)) != 0) return store__fail("commit", rc);
    return tx_new(snap->s, txn, out);
}

static int lmdb_resp_absent(store__tx *w, const char *id)
{
    MDB_val k = {strlen(id), (void *)id}, v;
    int rc = mdb_get(w->txn, w->s->responses, &k, &v);

    if (rc == 0) return STORE_EDONE;
    return rc == MDB_NOTFOUND ? 0 : store__fail("commit", rc);
}

static int lmdb_put(store__tx *w, const char *key, size_t klen, const char *val, size_t vlen)
{
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int rc = mdb_put(w->txn, w->s->kv, &k, &v, 0);

    return rc == 0 ? 0 : store__fail("commit", rc);
}

static int lmdb_del(store__tx *w, const char *key, size_t klen)
{
    MDB_val k = {klen, (void *)key};
    int rc = mdb_del(w->txn, w->s->kv, &k, NULL);

    return rc == 0 || rc == MDB_NOTFOUND ? 0 : store__fail("commit", rc);
}

static int lmdb_resp_put(store__tx *w, const char *id, const char *resp, size_t len)
{
    MDB_val k = {strlen(id), (void *)id}, v = {len + 8, NULL};
    int rc = mdb_put(w->txn, w->s->responses, &k, &v, MDB_RESERVE);

    if (rc != 0) return store__fail("commit", rc);
    store__put_i64(v.mv_data, store__now_ms());
    if (len > 0) memcpy((char *)v.mv_data + 8, resp, len);
    return 0;
}

static int lmdb_tx_room(store__tx *w, unsigned pct)
{
    int rc = lmdb_room(w->s, w->txn, pct);

    return rc > 0 ? store__fail("commit", rc) : rc;
}

static int lmdb_commit(store__tx *w)
{
    int rc = mdb_txn_commit(w->txn);

    free(w);
    return rc == 0 ? 0 : store__fail("commit", rc);
}

static const store__ops lmdb_ops = {
    .name = "lmdb",
    .begin = lmdb_begin,
    .get = lmdb_get,
    .cur_open = lmdb_cur_open,
    .cur_first = lmdb_cur_first,
    .cur_next = lmdb_cur_next,
    .cur_close = lmdb_cur_close,
    .end = lmdb_end,
    .wbegin = lmdb_wbegin,
    .resp_absent = lmdb_resp_absent,
    .put = lmdb_put,
    .del = lmdb_del,
    .resp_put = lmdb_resp_put,
    .room = lmdb_tx_room,
    .commit = lmdb_commit,
    .close = lmdb_close,
    .reader_check = lmdb_reader_check,
    .release_pages = lmdb_release_pages,
    .usage = lmdb_usage,
    .response_get = lmdb_response_get,
    .response_prune = lmdb_prune,
    .bl_add = store__lmdb_bl_add,
    .bl_remove = store__lmdb_bl_remove,
    .bl_each = store__lmdb_bl_each,
    .bl_clear = store__lmdb_bl_clear,
};
