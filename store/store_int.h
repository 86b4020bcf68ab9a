/* store_int.h: what the files of store/ share. Not for other modules. */
#ifndef SXPOOL_STORE_INT_H
#define SXPOOL_STORE_INT_H

#include <lmdb.h>

#include "store/store.h"

struct store {
    MDB_env *env;
    MDB_dbi kv;        /* "kv" */
    MDB_dbi responses; /* "responses" */
    MDB_dbi blacklist; /* "blacklist" */
};

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
int store__pages(store *s, MDB_txn *txn, size_t *used, size_t *total);

/**
 * Checks that txn leaves at most pct percent of the map in use.
 * @return 0, STORE_EFULL or an LMDB error (not logged)
 */
int store__room(store *s, MDB_txn *txn, unsigned pct);

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
int store__begin_read(store *s, const char *what, MDB_txn **out);

/** @return the wall-clock time in milliseconds since the epoch */
int64_t store__now_ms(void);

/** Stores v little-endian in p[0..8). */
void store__put_i64(unsigned char *p, int64_t v);
/** @return the little-endian value in p[0..8) */
int64_t store__get_i64(const unsigned char *p);

#endif
