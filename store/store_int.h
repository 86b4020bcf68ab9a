/* store_int.h: what the files of store/ share. Not for other modules.
 *
 * A store is one of two backends behind one table of operations
 * (store__ops): LMDB (store_lmdb.c, store_bl.c) and PostgreSQL
 * (store_pg.c). store.c dispatches the public API to it; store_txn.c
 * keeps a request transaction's write, read and scan sets above the
 * backend, so both backends give a request the same semantics: reads
 * from a snapshot, writes buffered, and a commit that validates every
 * read against the newest state before it applies anything.
 *
 * Every operation returns 0 or a store error (store.h); a backend failure
 * is logged by the backend before it returns STORE_ELMDB or STORE_EPG.
 */
#ifndef SXPOOL_STORE_INT_H
#define SXPOOL_STORE_INT_H

#include "store/store.h"

/* Bytes the backend owns: valid until the transaction that returned them
 * ends (store__ops.end or .commit). */
typedef struct store__val {
    size_t size;
    const void *data;
} store__val;

/* A backend transaction: a request's snapshot, or the write transaction
 * its commit runs in (which may be the snapshot itself, see .wbegin). */
typedef struct store__tx store__tx;
typedef struct store__cur store__cur;

typedef struct store__ops {
    const char *name;
    /* Begins a snapshot of the newest commit; locked: one that holds the
     * backend's write lock until it ends, whose reads nobody can change. */
    int (*begin)(store *s, int locked, store__tx **out);
    /* @return 0 (*v set), STORE_ENOTFOUND or an error */
    int (*get)(store__tx *x, const char *key, size_t klen, store__val *v);
    /* A cursor over "kv" in byte order. first: to the first key >= key.
     * @return 1 positioned (*k, *v set), 0 past the end, or an error */
    int (*cur_open)(store__tx *x, store__cur **out);
    int (*cur_first)(store__cur *c, const char *key, size_t klen, store__val *k, store__val *v);
    int (*cur_next)(store__cur *c, store__val *k, store__val *v);
    void (*cur_close)(store__cur *c);
    /* Ends a transaction without applying anything. */
    void (*end)(store__tx *x);
    /* Begins the write transaction of a commit while snap, a snapshot
     * from .begin, still holds what was read: its reads (.get, cursors)
     * see the newest state. *out may be snap itself (a locked one, or a
     * backend whose snapshot lives on), which is then ended by .commit
     * or .end on *out, not again on snap; values read through snap stay
     * valid until then. */
    int (*wbegin)(store__tx *snap, int locked, store__tx **out);
    /* @return 0 when no response is committed under id, STORE_EDONE, or an error */
    int (*resp_absent)(store__tx *w, const char *id);
    int (*put)(store__tx *w, const char *key, size_t klen, const char *val, size_t vlen);
    /* A key that is not there is no error. */
    int (*del)(store__tx *w, const char *key, size_t klen);
    int (*resp_put)(store__tx *w, const char *id, const char *resp, size_t len);
    /* @return 0 or STORE_EFULL when w leaves more than pct percent in use */
    int (*room)(store__tx *w, unsigned pct);
    /* Commits w and ends it, whatever the result.
     * @return 0, STORE_ECONFLICT, STORE_EFULL or an error */
    int (*commit)(store__tx *w);

    void (*close)(store *s);
    int (*reader_check)(store *s);
    int (*check)(store *s);
    int (*release_pages)(store *s);
    int (*usage)(store *s, size_t *used, size_t *size);
    int (*response_get)(store *s, const char *req_id, char **resp, size_t *len);
    int (*response_prune)(store *s, int64_t before_ms, size_t max, unsigned until_pct);
    int (*bl_add)(store *s, const char *function, const char *code_hash, const char *abi_hash,
                  const char *reason);
    int (*bl_remove)(store *s, const char *function, const char *code_hash, const char *abi_hash);
    int (*bl_each)(store *s, const char *abi_hash, store_bl_cb cb, void *arg);
    int (*bl_clear)(store *s, const char *glob);
    int (*bl_listen)(store *s, int *fd);
    int (*bl_notified)(store *s, store_bl_cb cb, void *arg);
} store__ops;

/* Each backend's handle starts with this. */
struct store {
    const store__ops *ops;
    int broken; /* store_broken */
};

/* Opens the LMDB environment in dir (store_lmdb.c). */
int store__lmdb_open(const char *dir, size_t map_size, store **out);
/* Connects to the PostgreSQL server of url (store_pg.c), loading libpq
 * first (store_pq.h); migrate: create or upgrade the schema instead of
 * refusing one of another version. */
int store__pg_open(const char *url, int migrate, store **out);

/* The blacklist in LMDB (store_bl.c). */
int store__lmdb_bl_add(store *s, const char *function, const char *code_hash, const char *abi_hash,
                       const char *reason);
int store__lmdb_bl_remove(store *s, const char *function, const char *code_hash,
                          const char *abi_hash);
int store__lmdb_bl_each(store *s, const char *abi_hash, store_bl_cb cb, void *arg);
int store__lmdb_bl_clear(store *s, const char *glob);

/** @return the wall-clock time in milliseconds since the epoch */
int64_t store__now_ms(void);

/** Stores v little-endian in p[0..8). */
void store__put_i64(unsigned char *p, int64_t v);
/** @return the little-endian value in p[0..8) */
int64_t store__get_i64(const unsigned char *p);

#endif
