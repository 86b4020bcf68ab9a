/* store.h: sxpool's durable state. Bytes only: no SX values here.
 *
 * Two backends behind this one API: LMDB, embedded, the default (a data
 * directory), and PostgreSQL (a postgresql:// URL), which several hosts
 * can share. Everything below holds for both unless it says otherwise;
 * store_pg.c says how PostgreSQL is made to behave the same.
 *
 * LMDB: one environment per data directory, opened by each process after
 * exec (never across fork). Named databases:
 *   "kv"        the application's key/value data
 *   "responses" request id -> committed response (idempotency records)
 *   "blacklist" function name + code hash + ABI hash -> reason, time, count
 *
 * A request transaction (store_txn) is optimistic: reads go to a read-only
 * snapshot, writes are buffered in memory and seen by the same transaction's
 * later reads. store_txn_commit() takes LMDB's single write lock briefly,
 * checks that every key (and every scanned range) the transaction read still
 * has the value it saw, applies the writes and stores the response under
 * the request id, all in one LMDB commit. If another request changed
 * something it read, commit returns STORE_ECONFLICT and applies nothing: the
 * caller runs the request again. Committed requests are serializable.
 *
 * A request that keeps conflicting runs in a locked transaction instead
 * (store_txn_begin_locked): it holds the write lock from its first read to
 * its commit, so nothing it read can change and its commit cannot conflict.
 * LMDB has one writer across all processes anyway; the lock is only held
 * longer.
 *
 * Snapshots are never older than the newest durable commit. LMDB publishes
 * a commit to new readers (the transaction id in its lock file) only after
 * writing the commit's meta page; a writer killed between the two (SIGKILL
 * during the synced meta write takes effect as the write returns) leaves a
 * commit that is durable and that the next writer sees, but that every new
 * reader misses until some process takes the write lock again, whose
 * robust-mutex recovery publishes it. A read transaction that finds a newer
 * meta page than its own is therefore begun again after taking and
 * releasing the write lock (which also waits out a live writer caught
 * between the two steps). Without this, a request whose first worker died
 * so would not find its own response record and would run again.
 */
#ifndef SXPOOL_STORE_H
#define SXPOOL_STORE_H

#include <stddef.h>
#include <stdint.h>

enum {
    STORE_ECONFLICT = -20001, /* a value read by the txn changed; nothing applied */
    STORE_ENOTFOUND = -20002,
    STORE_ETOOBIG = -20003, /* key or value above the limits */
    STORE_ELMDB = -20004,   /* LMDB failure; logged with mdb_strerror */
    STORE_EBADTXN = -20005, /* txn already failed, committed or aborted */
    STORE_EDONE = -20006,   /* a response is already committed under the request id */
    STORE_EUNSAFE = -20007, /* a directory others could write to (store_check_private_dir) */
    STORE_EFULL = -20008,   /* no room in the map (see "Room" below); nothing applied */
    STORE_EPG = -20009,     /* PostgreSQL failure; logged with the server's message */
    STORE_ECONN = -20010,   /* the connection to PostgreSQL broke; outcome of a commit unknown */
    STORE_ESCHEMA = -20011, /* the database has no schema, or one of another version */
};

#define STORE_MAX_KEY 480 /* LMDB's default max key size is 511 */
#define STORE_MAX_VALUE (16u << 20)

/* Room. The map (store_open's map_size, the server's --store-size) is a
 * hard limit: LMDB answers MDB_MAP_FULL once it has no free page left, and
 * every write needs free pages, a delete included (copy-on-write). So that
 * deleting always has room, a request transaction is refused (STORE_EFULL,
 * nothing applied) when its commit would leave more of the map's pages in
 * use than the high-water mark: STORE_HIGH_WATER percent when it puts
 * anything, STORE_DELETE_WATER percent when it only deletes (and stores
 * its response record). Pruning and the blacklist are not refused: they
 * use what is above. "In use" counts the pages of every tree (data,
 * response records, blacklist, LMDB's catalog and free list), not free
 * pages waiting for reuse. MDB_MAP_FULL itself is STORE_EFULL too (a value
 * that needs more contiguous pages than the map has left). Nothing needs a
 * restart: once records are pruned or data deleted, writes succeed again. */
#define STORE_HIGH_WATER 90
#define STORE_DELETE_WATER 95
#define STORE_SHED_WATER 85 /* store_response_shed starts above, */
#define STORE_LOW_WATER 75  /* and frees down to */
#define STORE_DEFAULT_MAP_SIZE ((size_t)1 << 30)

/* Largest response record store_txn_commit() keeps. A request whose
 * response is larger stores a stand-in instead (the worker's choice). */
#define STORE_MAX_RECORD (64u << 10)

const char *store_strerror(int err);

typedef struct store store;
typedef struct store_txn store_txn;

/**
 * Opens the store at location: a postgresql:// (or postgres://) URL, in
 * libpq's syntax, connects to that database, whose schema must be the one
 * this version writes (store_migrate); anything else is a directory, in
 * which it opens (creating if needed, mode 0700) the LMDB environment.
 * PostgreSQL ignores map_size.
 * @param[in] map_size bytes to reserve for the map (0: STORE_DEFAULT_MAP_SIZE).
 *            Every process that opens one data directory must give the
 *            same size: each judges room (STORE_HIGH_WATER) against its
 *            own. LMDB may make it larger (never smaller than the pages
 *            the data file already uses); a larger map is kept in the
 *            data file, a smaller one takes effect as long as the data
 *            fits.
 * The first URL a process opens loads libpq (store/store_pq.h): before a
 * worker's sandbox, which would refuse it.
 * @return 0, -errno or STORE_ELMDB; for a URL 0, STORE_EPG (unreachable,
 *         refused; logged with libpq's message; or libpq cannot be loaded,
 *         logged with what to install), STORE_ESCHEMA or -ENOMEM
 */
int store_open(const char *location, size_t map_size, store **out);
void store_close(store *s);

/**
 * Creates or upgrades the schema of the store at location (a directory:
 * creates the environment), and records its version.
 * @return 0 or an error as store_open
 */
int store_migrate(const char *location);

/* @return 1 when location names a PostgreSQL database (a URL), else 0 */
int store_is_url(const char *location);

/**
 * Checks, without blocking and without reconnecting, that s's idle
 * connection to PostgreSQL is still open (the server may have restarted,
 * or ended the session, since it was last used). For a process that
 * cannot open a new connection once it is running (a sandboxed worker).
 * @return 0 (and always for LMDB) or STORE_ECONN
 */
int store_check(store *s);

/* @return the backend's name, "lmdb" or "postgresql" */
const char *store_backend(const store *s);

/* @return 1 when the last operation on s found its connection to
 * PostgreSQL broken (STORE_ECONN), until one reconnects; 0 for LMDB */
int store_broken(const store *s);

/* Clears reader slots of dead processes (call after every worker death).
 * Returns the number cleared or a negative error (PostgreSQL: always 0). */
int store_reader_check(store *s);

/**
 * Unmaps from this process the data file's pages it has read (madvise
 * MADV_DONTNEED on LMDB's shared, read-only map). The page cache keeps
 * them, and the next read maps them again; nothing is lost. For a process
 * that reads the store now and then (the supervisor): the pages its reads
 * touch, each read fault mapping its neighbours too, would otherwise stay
 * in its RSS, and with copy-on-write pages every read finds new ones.
 * Safe while other threads read: they map the pages again. Only a
 * shared mapping of the data file itself (device and inode) is touched.
 * PostgreSQL: nothing to do, 0.
 * @return the number of mappings released (0 if none was found), or -errno
 */
int store_release_pages(store *s);

/**
 * How much of the map is in use, in the newest commit.
 * @param[out] used bytes of the pages in use (see "Room" above)
 * @param[out] size the map's size in bytes; 0 when there is no such limit
 *             (PostgreSQL, whose used is the database's size)
 * @return 0 or STORE_ELMDB
 */
int store_usage(store *s, size_t *used, size_t *size);

/* ---- request transactions ------------------------------------------- */

/**
 * Begins an optimistic request transaction. Its snapshot is the newest
 * commit when it first reads (or scans, or commits writes without having
 * read): a transaction that never touches the store costs the store
 * nothing (on PostgreSQL, no round trip), and its reads are validated at
 * commit wherever its snapshot was taken.
 * @return 0, -EINVAL, -ENOMEM, STORE_ELMDB, or on PostgreSQL STORE_EPG or
 *         STORE_ECONN (every call below may return those two as well)
 */
int store_txn_begin(store *s, store_txn **out);

/**
 * Begins a request transaction that holds the store's write lock (LMDB's
 * own; on PostgreSQL an advisory lock every commit takes too) until it is
 * committed or aborted: its reads come from the write transaction, so its
 * commit never returns STORE_ECONFLICT. Every other writer, in every
 * process, waits meanwhile: for a request that conflicted several times,
 * not for every request. The process must not begin another locked
 * transaction, nor commit one with writes, before this one ends (the
 * write lock is not recursive).
 * @return 0, -EINVAL, -ENOMEM, STORE_ELMDB, or on PostgreSQL STORE_EPG or
 *         STORE_ECONN
 */
int store_txn_begin_locked(store *s, store_txn **out);

/**
 * Reads key. On success *val points to bytes valid until the next call on
 * this txn. @return 0, STORE_ENOTFOUND or an error
 */
int store_get(store_txn *t, const char *key, size_t klen, const char **val, size_t *vlen);
int store_put(store_txn *t, const char *key, size_t klen, const char *val, size_t vlen);
/* @return 0 if the key existed (and is now deleted), STORE_ENOTFOUND if not */
int store_del(store_txn *t, const char *key, size_t klen);

/* Calls cb for up to limit keys starting with prefix, in byte order, with
 * the txn's own writes applied. cb returns nonzero to stop early. */
typedef int (*store_scan_cb)(void *arg, const char *key, size_t klen, const char *val, size_t vlen);
int store_scan(store_txn *t, const char *prefix, size_t plen, size_t limit, store_scan_cb cb,
               void *arg);

/**
 * Commits writes and, when req_id is not NULL, the response record, together.
 * The txn is freed whatever the result. A txn that wrote nothing and has
 * no req_id commits without taking the write lock. A response already
 * committed under req_id means the request ran before (its first worker
 * died after committing): STORE_EDONE, checked before the reads are, and
 * the caller answers from store_response_get instead of running the
 * request again.
 * A commit that would pass the high-water mark ("Room" above) or that LMDB
 * finds no room for is STORE_EFULL; resp_len above STORE_MAX_RECORD is
 * STORE_ETOOBIG.
 * @return 0, STORE_EDONE (nothing applied), STORE_ECONFLICT (nothing
 *         applied; never for a locked txn), STORE_EFULL (nothing applied)
 *         or an error (nothing applied)
 */
int store_txn_commit(store_txn *t, const char *req_id, const char *resp, size_t resp_len);
/* Number of buffered writes (puts and deletes) in the txn. A request
 * with none needs no response record: running it again changes nothing. */
size_t store_txn_nwrites(const store_txn *t);

/* Drops the txn and its writes. */
void store_txn_abort(store_txn *t);

/* ---- shadow runs: one request run twice on the same inputs ----------- *
 * (the encoding and the rules are in store_txn.c) */

#define STORE_DIGEST_HEX 33 /* 32 hex digits and a NUL */

/**
 * Encodes what t read from its snapshot so far: every key read (found or
 * not, with the value seen) and every scan with the entries it consumed.
 * Not for a locked txn, which records no reads.
 * @param[out] out malloc'd, owned by the caller on success
 * @return 0, STORE_EBADTXN (failed, or locked) or -ENOMEM
 */
int store_txn_snapshot(const store_txn *t, char **out, size_t *len);

/* A digest of t's write set (keys, values, deletes), as hex: two runs that
 * would write the same have the same digest. */
void store_txn_write_digest(const store_txn *t, char out[STORE_DIGEST_HEX]);

/**
 * Pins t, just begun and optimistic, to a snapshot from store_txn_snapshot
 * (copied): a read of a key it lists gets the listed value (and the commit
 * validates that value against the store then), a read of another key goes
 * to the store and is noted (store_txn_pin_check).
 * @return 0, -EINVAL (malformed snapshot, locked or already pinned txn) or
 *         -ENOMEM
 */
int store_txn_pin(store_txn *t, const char *snap, size_t len);

/**
 * After a pinned run: did it see the same inputs as the run the snapshot
 * came from?
 * @return 0 yes (or t is not pinned), 1 it read a key the snapshot lacks
 *         (the runs took different paths), 2 its scans saw other entries
 *         (detail says which)
 */
int store_txn_pin_check(const store_txn *t, char *detail, size_t cap);

/**
 * Looks up the response committed under req_id, in the newest commit (one
 * that a writer killed mid-commit left unpublished included). Must not be
 * called while this process holds a locked transaction.
 * @param[out] resp malloc'd copy, owned by the caller
 * @return 0 or STORE_ENOTFOUND
 */
int store_response_get(store *s, const char *req_id, char **resp, size_t *len);

/**
 * Deletes up to max response records committed before before_ms (epoch
 * milliseconds), oldest first. Request ids grow with time, so it stops at
 * the first newer record. A record is needed only while its request may be
 * re-dispatched, so anything older than a few deadlines can go. Deletes in
 * small transactions (each needs a few free pages, which the high-water
 * mark keeps), so it makes progress in a nearly full map.
 * @return the number deleted, or an error (STORE_EFULL: not even one
 *         record could be deleted; what was deleted before stays deleted)
 */
int store_response_prune(store *s, int64_t before_ms, size_t max);

/**
 * Room for writes when the map is nearly full: if more of it is in use
 * than STORE_SHED_WATER percent (some below the high-water mark, where
 * writes are refused), deletes response records committed before
 * floor_ms, oldest first, however young their normal keep time says they
 * are, until at most STORE_LOW_WATER percent is in use, max records are
 * gone or no record older than floor_ms is left. A request retried after
 * its record went would run again, so floor_ms must be older than any
 * request that can still be retried (the server's four deadlines).
 * @return the number deleted (0 when at or below STORE_SHED_WATER), or
 *         an error as store_response_prune
 */
int store_response_shed(store *s, int64_t floor_ms, size_t max);

/* ---- trusted directories --------------------------------------------- */

/**
 * Creates dir and its missing parents (mode 0700 for the ones created).
 * @return 0, -ENOTDIR (dir exists and is something else) or -errno
 */
int store_mkdirs(const char *dir);

/**
 * Checks that dir may hold what sxpool trusts (the store, the JIT's code
 * cache, whose shared objects workers load): dir, resolved with realpath()
 * and walked from / without following symbolic links, is a directory owned
 * by this process's effective user and writable by nobody else, and every
 * directory above it is owned by root or that user and is not writable by
 * group or others unless it has the sticky bit (like /tmp).
 * @param[out] why on failure, one line naming the offending path and why
 *             (its owner's uid, its mode), or the error and the path
 * @return 0, STORE_EUNSAFE (the rule is broken) or -errno (dir, or a
 *         directory above it, cannot be resolved or opened)
 */
int store_check_private_dir(const char *dir, char *why, size_t cap);

/* ---- blacklist -------------------------------------------------------- */

typedef struct store_bl_entry {
    char function[256];
    char code_hash[40];
    char abi_hash[40];
    char reason[128];
    int64_t time_ms; /* last fault */
    uint32_t count;  /* faults seen */
} store_bl_entry;

/* Adds the entry or bumps its count and time. */
int store_bl_add(store *s, const char *function, const char *code_hash, const char *abi_hash,
                 const char *reason);
int store_bl_remove(store *s, const char *function, const char *code_hash, const char *abi_hash);
/* Calls cb for every entry (any ABI hash when abi_hash is NULL). */
typedef int (*store_bl_cb)(void *arg, const store_bl_entry *e);
int store_bl_each(store *s, const char *abi_hash, store_bl_cb cb, void *arg);
/* Removes entries whose function matches glob (fnmatch); returns how many. */
int store_bl_clear(store *s, const char *glob);

/**
 * Entries added by other processes, as they are added: PostgreSQL sends
 * each store_bl_add to every listener (NOTIFY on a connection of its own,
 * opened here), so that the hosts sharing a database hear of an entry
 * within a round trip. Not for LMDB, whose one host learns of its own
 * entries directly (-ENOTSUP).
 * @param[out] fd the connection's socket: readable when something arrived
 * @return 0, -ENOTSUP or an error as store_open (a listener opened before
 *         is closed first)
 */
int store_bl_listen(store *s, int *fd);

/**
 * Reads, without blocking, what arrived on the listening connection and
 * calls cb for each entry another process added (function, code_hash and
 * abi_hash set; reason, time and count not). Call from one thread only.
 * @return the number of entries, or STORE_ECONN: the connection is gone,
 *         entries may have been missed (listen again, then read them all)
 */
int store_bl_notified(store *s, store_bl_cb cb, void *arg);

#endif
