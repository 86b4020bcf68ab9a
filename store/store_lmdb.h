/* store_lmdb.h: what the LMDB backend's files share (store_lmdb.c,
 * store_bl.c). Not for other modules, nor for the rest of store/. */
#ifndef SXPOOL_STORE_LMDB_H
#define SXPOOL_STORE_LMDB_H

#include <lmdb.h>

#include "store/store_int.h"

typedef struct store_lmdb {
    store base; /* first: a store * is a store_lmdb * */
    MDB_env *env;
    MDB_dbi kv;        /* "kv" */
    MDB_dbi responses; /* "responses" */
    MDB_dbi blacklist; /* "blacklist" */
} store_lmdb;

static inline store_lmdb *store__lmdb(store *s)
{
    return (store_lmdb *)s;
}

/**
 * Logs "store: unable to WHAT: <mdb_strerror(rc)>" on stderr.
 * @param[in] what what could not be done, e.g. "commit"
 * @param[in] rc   an LMDB or errno code
 * @return STORE_EFULL for MDB_MAP_FULL, else STORE_ELMDB
 */
int store__fail(const char *what, int rc);

/**
 * Pages of the map in use in txn (its own changes included): the pages of
 * every tree plus the two meta pages; free pages are not counted.
 * @param[out] used pages in use
 * @param[out] total pages the map holds
 * @return 0 or an LMDB error (not logged)
 */
int store__pages(store_lmdb *s, MDB_txn *txn, size_t *used, size_t *total);

/**
 * Begins a read-only transaction on the newest durable commit: one older
 * than the newest meta page (a writer died between writing it and
 * publishing its id, or is just between the two) is begun again after
 * taking and releasing the write lock, which publishes a dead writer's
 * commit (robust-mutex recovery) or waits out a live one. The caller must
 * not hold the write lock.
 * @param[in] what what the transaction is for, for the log line of a failure
 * @return 0 or STORE_ELMDB (logged)
 */
int store__begin_read(store_lmdb *s, const char *what, MDB_txn **out);

#endif
