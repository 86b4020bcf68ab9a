/* store.c: the LMDB environment, error strings, idempotency records and
 * the reader-slot check.
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
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

#define STORE__DEFAULT_MAP ((size_t)1 << 30)
#define STORE__MAX_READERS 256

const char *store_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case STORE_ECONFLICT: return "conflict: a value read by the transaction changed";
    case STORE_ENOTFOUND: return "not found";
    case STORE_ETOOBIG: return "key or value too big";
    case STORE_ELMDB: return "LMDB failure";
    case STORE_EBADTXN: return "transaction already failed";
    case STORE_EDONE: return "the request already committed a response";
    case STORE_EUNSAFE: return "directory not private to this user";
    default: break;
    }
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
}

int store__fail(const char *what, int rc)
{
    fprintf(stderr, "store: unable to %s: %s\n", what, mdb_strerror(rc));
    return STORE_ELMDB;
}

/* True when txn's snapshot is older than the newest meta page. */
static int behind_newest(store *s, MDB_txn *txn)
{
    MDB_envinfo info;

    if (mdb_env_info(s->env, &info) != 0) return 1;
    return info.me_last_txnid > mdb_txn_id(txn);
}

int store__begin_read(store *s, const char *what, MDB_txn **out)
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

int64_t store__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store__put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;

    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

int64_t store__get_i64(const unsigned char *p)
{
    uint64_t u = 0;

    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return (int64_t)u;
}

static int nosync_requested(void)
{
    const char *v = getenv("SXPOOL_STORE_NOSYNC");

    return v != NULL && strcmp(v, "1") == 0;
}

/* Opens (creating) the three named databases in one write transaction. */
static int open_dbs(store *s)
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

int store_open(const char *dir, size_t map_size, store **out)
{
    unsigned flags = MDB_NOTLS;
    store *s;
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
        (rc = mdb_env_set_mapsize(s->env, map_size ? map_size : STORE__DEFAULT_MAP)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, STORE__MAX_READERS)) != 0 ||
        (rc = mdb_env_open(s->env, dir, flags, 0600)) != 0)
        goto fail;
    if ((rc = open_dbs(s)) != 0) {
        mdb_env_close(s->env);
        free(s);
        return rc;
    }
    *out = s;
    return 0;

fail:
    fprintf(stderr, "store: unable to open %s: %s\n", dir, mdb_strerror(rc));
    if (s->env != NULL) mdb_env_close(s->env);
    free(s);
    return rc > 0 ? -rc : STORE_ELMDB;
}

void store_close(store *s)
{
    if (s == NULL) return;
    mdb_env_close(s->env);
    free(s);
}

int store_reader_check(store *s)
{
    int dead = 0, rc;

    if (s == NULL) return -EINVAL;
    if ((rc = mdb_reader_check(s->env, &dead)) != 0) return store__fail("check reader slots", rc);
    return dead;
}

/* LMDB does not say where its map is (me_mapaddr is set only with
 * MDB_FIXEDMAP), so the map is found in /proc/self/maps: the shared
 * mapping ('s') of the data file's device and inode. A private mapping is
 * never touched: MADV_DONTNEED would discard its modified pages. */
int store_release_pages(store *s)
{
    struct stat st;
    mdb_filehandle_t fd;
    char *line = NULL;
    size_t cap = 0;
    int n = 0, rc;

    if (s == NULL) return -EINVAL;
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

int store_response_prune(store *s, int64_t before_ms, size_t max)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc, deleted = 0;

    if (s == NULL) return -EINVAL;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return store__fail("prune response records", rc);
    if ((rc = mdb_cursor_open(txn, s->responses, &cur)) != 0) {
        mdb_txn_abort(txn);
        return store__fail("prune response records", rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && (size_t)deleted < max;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= 8 && store__get_i64(v.mv_data) >= before_ms) break;
        if ((rc = mdb_cursor_del(cur, 0)) != 0) break;
        deleted++;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return store__fail("prune response records", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return store__fail("commit pruned response records", rc);
    return deleted;
}

int store_response_get(store *s, const char *req_id, char **resp, size_t *len)
{
    MDB_txn *txn;
    MDB_val k, v;
    char *copy;
    int rc;

    if (s == NULL || req_id == NULL || resp == NULL || len == NULL) return -EINVAL;
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
