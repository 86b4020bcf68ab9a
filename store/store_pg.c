/* store_pg.c: the PostgreSQL backend (store__ops), with libpq, which
 * store__pg_open loads first (store_pq.h: sxpool does not link it; its
 * functions here go through a table filled then).
 *
 * Tables (schema version STORE__PG_SCHEMA, in sxpool_meta):
 *   sxpool_kv         k bytea primary key, v bytea: the application's data.
 *                     bytea compares bytewise, shorter first: LMDB's order,
 *                     so scans return the same keys in the same order.
 *   sxpool_responses  id, t (commit time, ms), r bytea: response records
 *   sxpool_blacklist  function, code_hash, abi_hash (the key, C collation,
 *                     so that its order is LMDB's), reason, time_ms, count
 * store_migrate creates them, or upgrades an older schema, under an
 * advisory lock; store_open refuses a database whose version differs.
 *
 * Request transactions (store_txn.c does the rest, the same for both
 * backends). A snapshot is a REPEATABLE READ, READ ONLY transaction,
 * begun with a statement so that its snapshot is taken at once. A commit
 * ends it and runs in a new SERIALIZABLE transaction: the response record
 * is checked, every read is validated against the newest commit, the
 * writes and the record are applied, and COMMIT; a serialization failure
 * (SQLSTATE 40001), a deadlock (40P01) or a unique violation (23505: a
 * concurrent insert of the same key or record) anywhere in it is
 * STORE_ECONFLICT, exactly as LMDB's failed validation, and the handler
 * runs again. A blind write does not conflict (it validates nothing and
 * its transaction begins after the other committed), as in LMDB.
 *
 * The write lock. A locked transaction takes an exclusive advisory lock
 * (STORE__PG_LOCK, session level) before its SERIALIZABLE transaction
 * begins; every commit's transaction takes the same lock shared first. So
 * while a locked transaction runs no other commit applies anything, in any
 * process of any host, and its reads cannot change under it, as with
 * LMDB's one write lock. A session lock held by a process that dies goes
 * with its connection. (A commit's snapshot is taken by the statement that
 * waits for the lock, so it may predate what a locked transaction then
 * committed: SERIALIZABLE turns that into a serialization failure, a
 * conflict as any other.)
 *
 * Connections. A store keeps the connections it opened; a transaction
 * takes one and gives it back when it ends, so a worker, with one request
 * at a time, holds one connection; several open transactions (tests, the
 * CLI) take one each. A connection found broken when a transaction begins
 * (the server restarted, or ended the session) is reset with backoff
 * (STORE__PG_RETRIES, ~3 s in all) before anything ran on it. A worker's
 * sandbox lets it open no socket, so it asks store_check before each
 * request instead and is replaced when its connection is gone. One that
 * breaks inside a transaction is STORE_ECONN and the transaction fails:
 * its commit's outcome may be unknown, so the caller must treat the
 * request as if its process had died (the worker exits and the supervisor
 * retries it once, answered from its record if it committed).
 *
 * Values returned by .get and the cursors point into PGresults that the
 * transaction keeps until it ends. The pool is guarded by a mutex; a
 * transaction is used by one thread at a time.
 */
#include "store/store_int.h"
#include "store/store_pq.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STORE__PG_SCHEMA 1
#define STORE__PG_LOCK "7554669127213264"    /* the write lock's advisory key */
#define STORE__PG_MIGRATE "7554669127213265" /* held while migrating */
#define STORE__PG_RETRIES 7
#define STORE__PG_MAX_IDLE 4

typedef struct store_pg {
    store base; /* first: a store * is a store_pg * */
    char *url;
    char where[160]; /* host:port/dbname, for log lines (never the password) */
    char app[64];    /* application_name: "sxpool:HOST:PID" (store_reader_check) */
    pthread_mutex_t mu;
    PGconn *idle[STORE__PG_MAX_IDLE];
    int nidle;
    PGconn *listen; /* LISTEN sxpool_blacklist (store_bl_listen), or NULL */
} store_pg;

/* A statement deferred to x's next round trip: SQL without parameters,
 * or prepared statement q with its parameters (copied into data). */
typedef struct pend {
    const char *sql;
    int q, n;
    int lens[3], fmts[3];
    size_t off[3];
    char *data;
} pend;

struct store__tx {
    store_pg *s;
    PGconn *c;
    pend *pend; /* sent before x's next statement, in the same round trip */
    int npend, cappend;
    int locked; /* this session holds the write lock exclusively */
    int failed; /* an error ended the server transaction */
    PGresult **res;
    size_t nres, cap;
};

struct store__cur {
    store__tx *x;
    PGresult *batch;
    int row, rows, want;
    char upper[STORE_MAX_KEY]; /* the prefix's successor: keys stay below */
    size_t ulen;
    int bounded;
};

static store_pg *pg_of(store *s)
{
    return (store_pg *)s;
}

/* ---- statements ------------------------------------------------------ */

static const char *const schema_sql[] = {
    "CREATE TABLE IF NOT EXISTS sxpool_meta (key text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sxpool_kv (k bytea PRIMARY KEY, v bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sxpool_responses (id text PRIMARY KEY, t bigint NOT NULL, "
    "r bytea NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sxpool_responses_t ON sxpool_responses (t)",
    "CREATE TABLE IF NOT EXISTS sxpool_blacklist (function text COLLATE \"C\" NOT NULL, "
    "code_hash text COLLATE \"C\" NOT NULL, abi_hash text COLLATE \"C\" NOT NULL, "
    "reason text NOT NULL, time_ms bigint NOT NULL, count bigint NOT NULL, "
    "PRIMARY KEY (function, code_hash, abi_hash))",
};

enum {
    Q_GET,
    Q_FIRST,
    Q_FIRST_BOUNDED,
    Q_NEXT,
    Q_NEXT_BOUNDED,
    Q_PUT,
    Q_DEL,
    Q_RESP_HAS,
    Q_RESP_PUT,
    Q_RESP_GET,
    Q_COUNT
};

static const char *const stmts[Q_COUNT] = {
    [Q_GET] = "SELECT v FROM sxpool_kv WHERE k = $1",
    [Q_FIRST] = "SELECT k, v FROM sxpool_kv WHERE k >= $1 ORDER BY k LIMIT $2",
    [Q_FIRST_BOUNDED] = "SELECT k, v FROM sxpool_kv WHERE k >= $1 AND k < $3 ORDER BY k LIMIT $2",
    [Q_NEXT] = "SELECT k, v FROM sxpool_kv WHERE k > $1 ORDER BY k LIMIT $2",
    [Q_NEXT_BOUNDED] = "SELECT k, v FROM sxpool_kv WHERE k > $1 AND k < $3 ORDER BY k LIMIT $2",
    [Q_PUT] = "INSERT INTO sxpool_kv (k, v) VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = "
              "EXCLUDED.v",
    [Q_DEL] = "DELETE FROM sxpool_kv WHERE k = $1",
    [Q_RESP_HAS] = "SELECT 1 FROM sxpool_responses WHERE id = $1",
    [Q_RESP_PUT] = "INSERT INTO sxpool_responses (id, t, r) VALUES ($1, $2::text::bigint, $3)",
    [Q_RESP_GET] = "SELECT r FROM sxpool_responses WHERE id = $1",
};

static const char *const stmt_names[Q_COUNT] = {
    "sx_get", "sx_first", "sx_first_b",  "sx_next",     "sx_next_b",
    "sx_put", "sx_del",   "sx_resp_has", "sx_resp_put", "sx_resp_get",
};

/* ---- errors ---------------------------------------------------------- */

static int sqlstate_is(const PGresult *r, const char *code)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    return st != NULL && strcmp(st, code) == 0;
}

/* The first line of libpq's message, for a one-line log. */
static void first_line(const char *msg, char *out, size_t cap)
{
    size_t n = strcspn(msg ? msg : "", "\n");

    if (n >= cap) n = cap - 1;
    memcpy(out, msg ? msg : "", n);
    out[n] = '\0';
}

/* Maps a failed statement's result (freed here) to a store error, and
 * logs what could not be done unless it is a conflict. */
static int pg_fail(store_pg *s, PGconn *c, PGresult *r, const char *what)
{
    char line[256];
    int rc;

    if (sqlstate_is(r, "40001") || sqlstate_is(r, "40P01") || sqlstate_is(r, "23505")) {
        PQclear(r);
        return STORE_ECONFLICT;
    }
    first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(c), line, sizeof line);
    if (line[0] == '\0') first_line(PQerrorMessage(c), line, sizeof line);
    rc = PQstatus(c) == CONNECTION_OK ? STORE_EPG : STORE_ECONN;
    if (rc == STORE_ECONN) s->base.broken = 1;
    fprintf(stderr, "store: unable to %s in PostgreSQL at %s: %s\n", what, s->where, line);
    PQclear(r);
    return rc;
}

/* Runs sql (no parameters, maybe several statements). @return 0 or an error */
static int run(store_pg *s, PGconn *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        PQclear(r);
        return 0;
    }
    return pg_fail(s, c, r, what);
}

/* Runs prepared statement q with n parameters (all binary), results in
 * format fmt. @return the result (the caller clears it) or NULL with *rc */
static PGresult *exec_q(store_pg *s, PGconn *c, int q, int n, const char *const *vals,
                        const int *lens, int fmt, const char *what, int *rc)
{
    int formats[4] = {1, 1, 1, 1};
    PGresult *r = PQexecPrepared(c, stmt_names[q], n, vals, lens, formats, fmt);
    ExecStatusType st = PQresultStatus(r);

    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    *rc = pg_fail(s, c, r, what);
    return NULL;
}

/* ---- connections ----------------------------------------------------- */

static void describe(store_pg *s, PGconn *c)
{
    const char *h = c ? PQhost(c) : NULL, *p = c ? PQport(c) : NULL, *d = c ? PQdb(c) : NULL;

    snprintf(s->where, sizeof s->where, "%s:%s/%s", h && *h ? h : "?", p && *p ? p : "5432",
             d && *d ? d : "?");
}

static int prepare_all(store_pg *s, PGconn *c)
{
    for (int q = 0; q < Q_COUNT; q++) {
        PGresult *r = PQprepare(c, stmt_names[q], stmts[q], 0, NULL);

        if (PQresultStatus(r) != PGRES_COMMAND_OK) return pg_fail(s, c, r, "prepare a statement");
        PQclear(r);
    }
    return 0;
}

/* Opens a new connection. @return 0, STORE_ECONN (logged) or -ENOMEM */
static int connect_new(store_pg *s, PGconn **out)
{
    /* defaults the URL may override (it comes after them), then the
     * session's name, which store_reader_check relies on */
    const char *keys[] = {"connect_timeout", "keepalives_idle", "dbname", "application_name", NULL};
    const char *vals[] = {"10", "30", s->url, s->app, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    char line[256];

    if (c == NULL) return -ENOMEM;
    if (PQstatus(c) != CONNECTION_OK) {
        first_line(PQerrorMessage(c), line, sizeof line);
        fprintf(stderr, "store: unable to connect to PostgreSQL at %s: %s\n", s->where, line);
        PQfinish(c);
        return STORE_ECONN;
    }
    *out = c;
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Makes c usable again after it broke (the server restarted), with
 * backoff. @return 0 or STORE_ECONN (logged) */
static int revive(store_pg *s, PGconn *c)
{
    long ms = 50;
    char line[256];

    for (int i = 0; i < STORE__PG_RETRIES; i++, ms *= 2) {
        PQreset(c);
        if (PQstatus(c) == CONNECTION_OK) return prepare_all(s, c) == 0 ? 0 : STORE_ECONN;
        sleep_ms(ms > 1000 ? 1000 : ms);
    }
    first_line(PQerrorMessage(c), line, sizeof line);
    fprintf(stderr, "store: unable to reconnect to PostgreSQL at %s: %s\n", s->where, line);
    return STORE_ECONN;
}

/* Whether idle connection c is still open, without blocking: reads what
 * the server sent meanwhile. A server that ended the session (restart,
 * pg_terminate_backend) sent an error and closed the socket; the first
 * read may get the message, the second then sees the end. */
static int idle_ok(PGconn *c)
{
    for (int i = 0; i < 2; i++)
        if (PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK) return 0;
    return PQtransactionStatus(c) == PQTRANS_IDLE;
}

/* Takes an idle connection or opens one. @return 0 or an error (logged) */
static int acquire(store_pg *s, PGconn **out)
{
    PGconn *c = NULL;
    int rc;

    pthread_mutex_lock(&s->mu);
    if (s->nidle > 0) c = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->mu);
    if (c == NULL) {
        if ((rc = connect_new(s, &c)) != 0) {
            s->base.broken = 1;
            return rc;
        }
        if ((rc = prepare_all(s, c)) != 0) {
            PQfinish(c);
            return rc;
        }
    } else if (!idle_ok(c)) { /* before anything of a request ran on it */
        if ((rc = revive(s, c)) != 0) {
            PQfinish(c);
            s->base.broken = 1;
            return rc;
        }
    }
    s->base.broken = 0;
    *out = c;
    return 0;
}

/* Gives c back (or closes it: broken, or enough idle ones kept). */
static void release(store_pg *s, PGconn *c)
{
    pthread_mutex_lock(&s->mu);
    if (s->nidle < STORE__PG_MAX_IDLE && PQstatus(c) == CONNECTION_OK &&
        PQtransactionStatus(c) == PQTRANS_IDLE) {
        s->idle[s->nidle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (c != NULL) PQfinish(c);
}

/* ---- transactions ---------------------------------------------------- */

static int keep(store__tx *x, PGresult *r)
{
    if (x->nres == x->cap) {
        size_t ncap = x->cap ? x->cap * 2 : 8;
        PGresult **n = realloc(x->res, ncap * sizeof *n);

        if (n == NULL) {
            PQclear(r);
            return -ENOMEM;
        }
        x->res = n;
        x->cap = ncap;
    }
    x->res[x->nres++] = r;
    return 0;
}

/* Ends x's server transaction, if open, and gives its connection back. */
static void drop_pending(store__tx *x)
{
    for (int i = 0; i < x->npend; i++)
        free(x->pend[i].data);
    x->npend = 0;
}

static void tx_free(store__tx *x)
{
    PGTransactionStatusType ts = PQtransactionStatus(x->c);

    drop_pending(x);
    free(x->pend);
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) run(x->s, x->c, "ROLLBACK", "roll back");
    if (x->locked && PQstatus(x->c) == CONNECTION_OK)
        run(x->s, x->c, "SELECT pg_advisory_unlock(" STORE__PG_LOCK ")", "release the write lock");
    release(x->s, x->c);
    for (size_t i = 0; i < x->nres; i++)
        PQclear(x->res[i]);
    free(x->res);
    free(x);
}

/* A statement of x failed with rc: the server transaction is over. */
static int tx_failed(store__tx *x, int rc)
{
    x->failed = 1;
    return rc;
}

/* ---- deferred statements: several in one round trip ------------------ *
 * The statements of a commit that need no answer before the next one
 * (ending the snapshot and beginning the commit's transaction, the
 * writes, the record) wait in x->pend and go out with x's next statement
 * or the COMMIT, in libpq's pipeline mode: one round trip for all. The
 * first that fails makes the server skip the rest up to the pipeline's
 * sync; its error is the round trip's. */

static int defer(store__tx *x, const char *sql, int q, int n, const char *const *vals,
                 const int *lens, const int *fmts)
{
    size_t total = 0;
    pend *p;

    if (x->npend == x->cappend) {
        int ncap = x->cappend ? x->cappend * 2 : 8;
        pend *np = realloc(x->pend, (size_t)ncap * sizeof *np);
        if (np == NULL) return -ENOMEM;
        x->pend = np;
        x->cappend = ncap;
    }
    p = &x->pend[x->npend];
    memset(p, 0, sizeof *p);
    p->sql = sql;
    p->q = q;
    p->n = n;
    for (int i = 0; i < n; i++)
        total += (size_t)lens[i] + 1;
    if ((p->data = malloc(total ? total : 1)) == NULL) return -ENOMEM;
    total = 0;
    for (int i = 0; i < n; i++) {
        p->off[i] = total;
        p->lens[i] = lens[i];
        p->fmts[i] = fmts[i];
        if (lens[i] > 0) memcpy(p->data + total, vals[i], (size_t)lens[i]);
        p->data[total + (size_t)lens[i]] = '\0';
        total += (size_t)lens[i] + 1;
    }
    x->npend++;
    return 0;
}

static int send_pend(PGconn *c, const pend *p)
{
    const char *vals[3];

    if (p->sql != NULL) return PQsendQueryParams(c, p->sql, 0, NULL, NULL, NULL, NULL, 0);
    for (int i = 0; i < p->n; i++)
        vals[i] = p->data + p->off[i];
    return PQsendQueryPrepared(c, stmt_names[p->q], p->n, vals, p->lens, p->fmts, 0);
}

/* Sends x's deferred statements and then prepared statement q (q < 0:
 * none) in one round trip. @return q's result (the caller owns it; NULL
 * when q < 0) or NULL with *rc set (0 when q < 0 and all went well) */
static PGresult *tx_query(store__tx *x, int q, int n, const char *const *vals, const int *lens,
                          const int *fmts, int rfmt, const char *what, int *rc)
{
    PGconn *c = x->c;
    PGresult *out = NULL, *err = NULL;
    int nst = x->npend + (q >= 0), idx = 0, nulls = 0, ok = 1;

    *rc = 0;
    if (x->npend == 0) {
        if (q < 0) return NULL;
        PGresult *r = PQexecPrepared(c, stmt_names[q], n, vals, lens, fmts, rfmt);
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
        *rc = tx_failed(x, pg_fail(x->s, c, r, what));
        return NULL;
    }
    if (PQenterPipelineMode(c) != 1) ok = 0;
    for (int i = 0; ok && i < x->npend; i++)
        ok = send_pend(c, &x->pend[i]) == 1;
    if (ok && q >= 0) ok = PQsendQueryPrepared(c, stmt_names[q], n, vals, lens, fmts, rfmt) == 1;
    if (ok) ok = PQpipelineSync(c) == 1;
    drop_pending(x);
    /* each statement's result, then NULL; then the sync's */
    while (ok) {
        PGresult *r = PQgetResult(c);
        if (r == NULL) {
            if (PQstatus(c) != CONNECTION_OK || ++nulls > nst) ok = 0;
            idx++;
            continue;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if (st == PGRES_FATAL_ERROR && err == NULL)
            err = r;
        else if (q >= 0 && idx == nst - 1 && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
            out = r;
        else
            PQclear(r);
    }
    if (PQpipelineStatus(c) != PQ_PIPELINE_OFF && PQexitPipelineMode(c) != 1) ok = 0;
    if (!ok || err != NULL) {
        PQclear(out);
        *rc = tx_failed(x, pg_fail(x->s, c, err, what));
        return NULL;
    }
    return out;
}

static int pg_begin(store *base, int locked, store__tx **out)
{
    store_pg *s = pg_of(base);
    store__tx *x = calloc(1, sizeof *x);
    int rc;

    if (x == NULL) return -ENOMEM;
    x->s = s;
    if ((rc = acquire(s, &x->c)) != 0) {
        free(x);
        return rc;
    }
    if (locked) {
        if ((rc = run(s, x->c, "SELECT pg_advisory_lock(" STORE__PG_LOCK ")",
                      "take the write lock")) != 0)
            goto fail;
        x->locked = 1;
        rc = run(s, x->c, "BEGIN ISOLATION LEVEL SERIALIZABLE; SELECT 1",
                 "begin a locked transaction");
    } else {
        rc = run(s, x->c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1",
                 "begin a read transaction");
    }
    if (rc != 0) goto fail;
    *out = x;
    return 0;
fail:
    tx_free(x);
    return rc;
}

static int pg_get(store__tx *x, const char *key, size_t klen, store__val *v)
{
    const char *vals[1] = {key};
    int lens[1] = {(int)klen}, rc;
    PGresult *r;

    int fmts[1] = {1};

    if (x->failed) return STORE_EBADTXN;
    if ((r = tx_query(x, Q_GET, 1, vals, lens, fmts, 1, "read a key", &rc)) == NULL) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_ENOTFOUND;
    }
    v->data = PQgetvalue(r, 0, 0);
    v->size = (size_t)PQgetlength(r, 0, 0);
    return keep(x, r);
}

static int pg_cur_open(store__tx *x, store__cur **out)
{
    store__cur *c = calloc(1, sizeof *c);

    if (c == NULL) return -ENOMEM;
    c->x = x;
    *out = c;
    return 0;
}

/* The smallest key above every key with prefix p: p without its trailing
 * 0xff bytes, last byte plus one. @return 0 when there is none (all 0xff) */
static int successor(const char *p, size_t n, char *out, size_t *olen)
{
    while (n > 0 && (unsigned char)p[n - 1] == 0xff)
        n--;
    if (n == 0) return 0;
    memcpy(out, p, n);
    out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
    *olen = n;
    return 1;
}

/* Fetches the next batch after (or, first, from) key. @return 0 or an error */
static int fetch(store__cur *c, int first, const char *key, size_t klen)
{
    char lim[16];
    const char *vals[3] = {key, lim, c->upper};
    int lens[3] = {(int)klen, 0, (int)c->ulen}, rc, q;
    int formats[3] = {1, 0, 1};
    PGresult *r;

    snprintf(lim, sizeof lim, "%d", c->want);
    q = first ? (c->bounded ? Q_FIRST_BOUNDED : Q_FIRST) : (c->bounded ? Q_NEXT_BOUNDED : Q_NEXT);
    r = tx_query(c->x, q, c->bounded ? 3 : 2, vals, lens, formats, 1, "scan", &rc);
    if (r == NULL) return rc;
    if ((rc = keep(c->x, r)) != 0) return rc;
    c->batch = r;
    c->row = 0;
    c->rows = PQntuples(r);
    return 0;
}

static int cur_at(store__cur *c, store__val *k, store__val *v)
{
    if (c->row >= c->rows) return 0;
    k->data = PQgetvalue(c->batch, c->row, 0);
    k->size = (size_t)PQgetlength(c->batch, c->row, 0);
    v->data = PQgetvalue(c->batch, c->row, 1);
    v->size = (size_t)PQgetlength(c->batch, c->row, 1);
    return 1;
}

static int pg_cur_first(store__cur *c, const char *key, size_t klen, store__val *k, store__val *v)
{
    int rc;

    if (c->x->failed) return STORE_EBADTXN;
    c->bounded = successor(key, klen, c->upper, &c->ulen);
    c->want = 16;
    if ((rc = fetch(c, 1, key, klen)) != 0) return rc;
    return cur_at(c, k, v);
}

static int pg_cur_next(store__cur *c, store__val *k, store__val *v)
{
    int rc;

    if (c->x->failed) return STORE_EBADTXN;
    if (c->batch == NULL) return 0;
    if (++c->row < c->rows) return cur_at(c, k, v);
    if (c->rows < c->want) return 0; /* the last batch was short: the end */
    const char *last = PQgetvalue(c->batch, c->rows - 1, 0);
    size_t llen = (size_t)PQgetlength(c->batch, c->rows - 1, 0);
    if (c->want < 1024) c->want *= 2;
    if ((rc = fetch(c, 0, last, llen)) != 0) return rc;
    return cur_at(c, k, v);
}

static void pg_cur_close(store__cur *c)
{
    free(c);
}

static void pg_end(store__tx *x)
{
    tx_free(x);
}

static int pg_wbegin(store__tx *snap, int locked, store__tx **out)
{
    int rc;

    if (snap->failed) return STORE_EBADTXN;
    if (!locked) {
        /* the snapshot's values stay in its results; its server
         * transaction ends, and the commit's begins on the same session,
         * with the commit's first statement */
        if ((rc = defer(snap, "COMMIT", -1, 0, NULL, NULL, NULL)) != 0 ||
            (rc = defer(snap, "BEGIN ISOLATION LEVEL SERIALIZABLE", -1, 0, NULL, NULL, NULL)) !=
                0 ||
            (rc = defer(snap, "SELECT pg_advisory_xact_lock_shared(" STORE__PG_LOCK ")", -1, 0,
                        NULL, NULL, NULL)) != 0)
            return tx_failed(snap, rc);
    }
    *out = snap;
    return 0;
}

static int pg_resp_absent(store__tx *w, const char *id)
{
    const char *vals[1] = {id};
    int lens[1] = {(int)strlen(id)}, fmts[1] = {1}, rc, n;
    PGresult *r = tx_query(w, Q_RESP_HAS, 1, vals, lens, fmts, 0, "commit", &rc);

    if (r == NULL) return rc;
    n = PQntuples(r);
    PQclear(r);
    return n > 0 ? STORE_EDONE : 0;
}

static int pg_put(store__tx *w, const char *key, size_t klen, const char *val, size_t vlen)
{
    const char *vals[2] = {key, val ? val : ""};
    int lens[2] = {(int)klen, (int)vlen}, fmts[2] = {1, 1};

    return defer(w, NULL, Q_PUT, 2, vals, lens, fmts) == 0 ? 0 : tx_failed(w, -ENOMEM);
}

static int pg_del(store__tx *w, const char *key, size_t klen)
{
    const char *vals[1] = {key};
    int lens[1] = {(int)klen}, fmts[1] = {1};

    return defer(w, NULL, Q_DEL, 1, vals, lens, fmts) == 0 ? 0 : tx_failed(w, -ENOMEM);
}

static int pg_resp_put(store__tx *w, const char *id, const char *resp, size_t len)
{
    char t[24];
    const char *vals[3] = {id, t, resp ? resp : ""};
    int lens[3] = {(int)strlen(id), 0, (int)len}, fmts[3] = {1, 1, 1};

    snprintf(t, sizeof t, "%" PRId64, store__now_ms());
    lens[1] = (int)strlen(t);
    return defer(w, NULL, Q_RESP_PUT, 3, vals, lens, fmts) == 0 ? 0 : tx_failed(w, -ENOMEM);
}

static int pg_room(store__tx *w, unsigned pct)
{
    (void)w, (void)pct; /* no map: the server's disk is the operator's */
    return 0;
}

static int pg_commit(store__tx *w)
{
    int rc = defer(w, "COMMIT", -1, 0, NULL, NULL, NULL);

    if (rc == 0) tx_query(w, -1, 0, NULL, NULL, NULL, 0, "commit", &rc);
    tx_free(w);
    return rc;
}

/* ---- outside request transactions ------------------------------------ */

static void pg_close(store *base)
{
    store_pg *s = pg_of(base);

    for (int i = 0; i < s->nidle; i++)
        PQfinish(s->idle[i]);
    if (s->listen != NULL) PQfinish(s->listen);
    pthread_mutex_destroy(&s->mu);
    free(s->url);
    free(s);
}

/* Runs sql with text parameters in autocommit on a pooled connection;
 * *out gets the result when not NULL. @return 0 or an error */
static int simple(store_pg *s, const char *sql, int n, const char *const *vals, const char *what,
                  PGresult **out)
{
    PGconn *c;
    PGresult *r;
    int rc;

    if ((rc = acquire(s, &c)) != 0) return rc;
    r = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = pg_fail(s, c, r, what);
        release(s, c);
        return rc;
    }
    release(s, c);
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return 0;
}

/* A process killed while its COMMIT was on its way leaves a server
 * session that may still apply it. Like LMDB's reader slots after a
 * death, those sessions are ended here, and waited for: sessions of this
 * host's sxpool processes (application_name) whose process is gone.
 * Afterwards every snapshot sees what the dead process committed. */
static int pg_reader_check(store *base)
{
    store_pg *s = pg_of(base);
    char host[64], like[80];
    const char *vals[1] = {like};
    PGresult *r;
    int n = 0, rc;

    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    snprintf(like, sizeof like, "sxpool:%s:%%", host);
    rc = simple(s,
                "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE "
                "$1 AND datname = current_database()",
                1, vals, "list sessions", &r);
    if (rc != 0) return rc;
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *app = PQgetvalue(r, i, 1), *colon = strrchr(app, ':');
        long pid = colon ? strtol(colon + 1, NULL, 10) : 0;
        const char *bvals[1] = {PQgetvalue(r, i, 0)};

        if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        rc = simple(s, "SELECT pg_terminate_backend($1::int, 5000)", 1, bvals,
                    "end a dead process's session", NULL);
        if (rc == 0) n++;
    }
    PQclear(r);
    return rc != 0 ? rc : n;
}

static int pg_check(store *base)
{
    store_pg *s = pg_of(base);
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nidle; i++)
        if (!idle_ok(s->idle[i])) rc = 1;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0) return 0;
    s->base.broken = 1;
    return STORE_ECONN;
}

static int pg_release_pages(store *s)
{
    (void)s;
    return 0;
}

static int pg_usage(store *base, size_t *used, size_t *size)
{
    PGresult *r;
    int rc = simple(pg_of(base), "SELECT pg_database_size(current_database())", 0, NULL,
                    "measure the database", &r);

    if (rc != 0) return rc;
    *used = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
    *size = 0; /* no limit of sxpool's own */
    PQclear(r);
    return 0;
}

static int pg_response_get(store *base, const char *req_id, char **resp, size_t *len)
{
    store_pg *s = pg_of(base);
    const char *vals[1] = {req_id};
    int lens[1] = {(int)strlen(req_id)}, rc;
    PGconn *c;
    PGresult *r;

    if (lens[0] == 0 || lens[0] > STORE_MAX_KEY) return STORE_ENOTFOUND;
    if ((rc = acquire(s, &c)) != 0) return rc;
    r = exec_q(s, c, Q_RESP_GET, 1, vals, lens, 1, "read a response record", &rc);
    release(s, c);
    if (r == NULL) return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return STORE_ENOTFOUND;
    }
    size_t n = (size_t)PQgetlength(r, 0, 0);
    char *copy = malloc(n + 1);
    if (copy == NULL) {
        PQclear(r);
        return -ENOMEM;
    }
    memcpy(copy, PQgetvalue(r, 0, 0), n);
    copy[n] = '\0';
    PQclear(r);
    *resp = copy;
    *len = n;
    return 0;
}

static int pg_response_prune(store *base, int64_t before_ms, size_t max, unsigned until_pct)
{
    char before[24], lim[24];
    const char *vals[2] = {before, lim};
    PGresult *r;
    int rc;

    (void)until_pct; /* store_usage reports no limit: never asked to shed */
    if (max > 1000000) max = 1000000;
    snprintf(before, sizeof before, "%" PRId64, before_ms);
    snprintf(lim, sizeof lim, "%zu", max);
    rc = simple(pg_of(base),
                "DELETE FROM sxpool_responses WHERE id IN (SELECT id FROM sxpool_responses "
                "WHERE t < $1::bigint ORDER BY t LIMIT $2::bigint)",
                2, vals, "prune response records", &r);
    if (rc != 0) return rc;
    rc = atoi(PQcmdTuples(r));
    PQclear(r);
    return rc;
}

/* ---- blacklist ------------------------------------------------------- */

static int bl_check(const char *function, const char *code_hash, const char *abi_hash)
{
    store_bl_entry *e = NULL;

    if (function == NULL || code_hash == NULL || abi_hash == NULL || function[0] == '\0')
        return -EINVAL;
    if (strlen(function) >= sizeof(e->function) || strlen(code_hash) >= sizeof(e->code_hash) ||
        strlen(abi_hash) >= sizeof(e->abi_hash))
        return STORE_ETOOBIG;
    return 0;
}

static int pg_bl_add(store *base, const char *function, const char *code_hash, const char *abi_hash,
                     const char *reason)
{
    char why[sizeof(((store_bl_entry *)0)->reason)], now[24], note[512];
    const char *vals[6] = {function, code_hash, abi_hash, why, now, note};
    int rc = bl_check(function, code_hash, abi_hash);

    if (rc != 0) return rc;
    snprintf(why, sizeof why, "%s", reason ? reason : "");
    snprintf(now, sizeof now, "%" PRId64, store__now_ms());
    /* what listeners get (store_bl_notified): sender, then the entry */
    snprintf(note, sizeof note, "%s\t%s\t%s\t%s", pg_of(base)->app, abi_hash, code_hash, function);
    return simple(pg_of(base),
                  "WITH up AS (INSERT INTO sxpool_blacklist VALUES ($1, $2, $3, $4, $5::bigint, 1) "
                  "ON CONFLICT (function, code_hash, abi_hash) DO UPDATE SET "
                  "count = LEAST(sxpool_blacklist.count + 1, 4294967295), "
                  "time_ms = EXCLUDED.time_ms, reason = EXCLUDED.reason RETURNING 1) "
                  "SELECT pg_notify('sxpool_blacklist', $6) FROM up",
                  6, vals, "add to the blacklist", NULL);
}

static int pg_bl_remove(store *base, const char *function, const char *code_hash,
                        const char *abi_hash)
{
    const char *vals[3] = {function, code_hash, abi_hash};
    PGresult *r;
    int rc = bl_check(function, code_hash, abi_hash);

    if (rc != 0) return rc;
    rc = simple(pg_of(base),
                "DELETE FROM sxpool_blacklist WHERE function = $1 AND code_hash = $2 AND "
                "abi_hash = $3",
                3, vals, "remove from the blacklist", &r);
    if (rc != 0) return rc;
    rc = atoi(PQcmdTuples(r)) > 0 ? 0 : STORE_ENOTFOUND;
    PQclear(r);
    return rc;
}

static void copy_field(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src);
}

static int pg_bl_each(store *base, const char *abi_hash, store_bl_cb cb, void *arg)
{
    const char *vals[1] = {abi_hash};
    PGresult *r;
    int rc = simple(pg_of(base),
                    abi_hash ? "SELECT function, code_hash, abi_hash, reason, time_ms, count "
                               "FROM sxpool_blacklist WHERE abi_hash = $1 ORDER BY 1, 2, 3"
                             : "SELECT function, code_hash, abi_hash, reason, time_ms, count "
                               "FROM sxpool_blacklist ORDER BY 1, 2, 3",
                    abi_hash ? 1 : 0, vals, "read the blacklist", &r);

    if (rc != 0) return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        store_bl_entry e;

        copy_field(e.function, sizeof e.function, PQgetvalue(r, i, 0));
        copy_field(e.code_hash, sizeof e.code_hash, PQgetvalue(r, i, 1));
        copy_field(e.abi_hash, sizeof e.abi_hash, PQgetvalue(r, i, 2));
        copy_field(e.reason, sizeof e.reason, PQgetvalue(r, i, 3));
        e.time_ms = strtoll(PQgetvalue(r, i, 4), NULL, 10);
        e.count = (uint32_t)strtoul(PQgetvalue(r, i, 5), NULL, 10);
        if (cb(arg, &e) != 0) break;
    }
    PQclear(r);
    return 0;
}

static int pg_bl_clear(store *base, const char *glob)
{
    store_pg *s = pg_of(base);
    PGconn *c;
    PGresult *r;
    int n = 0, rc;

    if ((rc = acquire(s, &c)) != 0) return rc;
    if ((rc = run(s, c, "BEGIN ISOLATION LEVEL SERIALIZABLE", "clear the blacklist")) != 0) {
        release(s, c);
        return rc;
    }
    r = PQexec(c, "SELECT function, code_hash, abi_hash FROM sxpool_blacklist");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        rc = pg_fail(s, c, r, "clear the blacklist");
        goto out;
    }
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *f = PQgetvalue(r, i, 0);
        const char *vals[3] = {f, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)};
        PGresult *d;

        if (glob != NULL && strcmp(glob, "*") != 0 && fnmatch(glob, f, 0) != 0) continue;
        d = PQexecParams(c,
                         "DELETE FROM sxpool_blacklist WHERE function = $1 AND code_hash = $2 "
                         "AND abi_hash = $3",
                         3, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(d) != PGRES_COMMAND_OK)
            rc = pg_fail(s, c, d, "clear the blacklist");
        else
            PQclear(d), n++;
    }
    PQclear(r);
    if (rc == 0) rc = run(s, c, "COMMIT", "clear the blacklist");
out:
    if (PQtransactionStatus(c) == PQTRANS_INTRANS || PQtransactionStatus(c) == PQTRANS_INERROR)
        run(s, c, "ROLLBACK", "roll back");
    release(s, c);
    return rc != 0 ? rc : n;
}

/* ---- blacklist notifications ---------------------------------------- */

static int pg_bl_listen(store *base, int *fd)
{
    store_pg *s = pg_of(base);
    PGconn *c;
    int rc;

    if (s->listen != NULL) {
        PQfinish(s->listen);
        s->listen = NULL;
    }
    if ((rc = connect_new(s, &c)) != 0) return rc;
    if ((rc = run(s, c, "LISTEN sxpool_blacklist", "listen for blacklist entries")) != 0) {
        PQfinish(c);
        return rc;
    }
    s->listen = c;
    *fd = PQsocket(c);
    return 0;
}

/* Splits a notification's payload (pg_bl_add) into e; @return 0 when it
 * is another process's, 1 when it is this one's, -1 when malformed */
static int parse_note(const store_pg *s, const char *p, store_bl_entry *e)
{
    const char *t1 = strchr(p, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    const char *t3 = t2 ? strchr(t2 + 1, '\t') : NULL;

    if (t3 == NULL) return -1;
    if ((size_t)(t1 - p) == strlen(s->app) && memcmp(p, s->app, (size_t)(t1 - p)) == 0) return 1;
    memset(e, 0, sizeof *e);
    if ((size_t)(t2 - t1 - 1) >= sizeof e->abi_hash ||
        (size_t)(t3 - t2 - 1) >= sizeof e->code_hash || strlen(t3 + 1) >= sizeof e->function ||
        t3[1] == '\0')
        return -1;
    memcpy(e->abi_hash, t1 + 1, (size_t)(t2 - t1 - 1));
    memcpy(e->code_hash, t2 + 1, (size_t)(t3 - t2 - 1));
    snprintf(e->function, sizeof e->function, "%s", t3 + 1);
    return 0;
}

static int pg_bl_notified(store *base, store_bl_cb cb, void *arg)
{
    store_pg *s = pg_of(base);
    PGnotify *n;
    int count = 0;
    char line[256];

    if (s->listen == NULL) return STORE_ECONN;
    if (PQconsumeInput(s->listen) == 0 || PQstatus(s->listen) != CONNECTION_OK) {
        first_line(PQerrorMessage(s->listen), line, sizeof line);
        fprintf(stderr, "store: lost the connection listening for blacklist entries at %s: %s\n",
                s->where, line);
        PQfinish(s->listen);
        s->listen = NULL;
        return STORE_ECONN;
    }
    while ((n = PQnotifies(s->listen)) != NULL) {
        store_bl_entry e;

        if (parse_note(s, n->extra, &e) == 0) {
            count++;
            cb(arg, &e);
        }
        PQfreemem(n);
    }
    return count;
}

/* ---- open and migrate ------------------------------------------------ */

static const store__ops pg_ops = {
    .name = "postgresql",
    .begin = pg_begin,
    .get = pg_get,
    .cur_open = pg_cur_open,
    .cur_first = pg_cur_first,
    .cur_next = pg_cur_next,
    .cur_close = pg_cur_close,
    .end = pg_end,
    .wbegin = pg_wbegin,
    .resp_absent = pg_resp_absent,
    .put = pg_put,
    .del = pg_del,
    .resp_put = pg_resp_put,
    .room = pg_room,
    .commit = pg_commit,
    .close = pg_close,
    .reader_check = pg_reader_check,
    .check = pg_check,
    .release_pages = pg_release_pages,
    .usage = pg_usage,
    .response_get = pg_response_get,
    .response_prune = pg_response_prune,
    .bl_add = pg_bl_add,
    .bl_remove = pg_bl_remove,
    .bl_each = pg_bl_each,
    .bl_clear = pg_bl_clear,
    .bl_listen = pg_bl_listen,
    .bl_notified = pg_bl_notified,
};

/* Reads the schema version: 0 when there is none. @return 0 or an error */
static int schema_version(store_pg *s, PGconn *c, int *version)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('sxpool_meta') IS NOT NULL");

    if (PQresultStatus(r) != PGRES_TUPLES_OK) return pg_fail(s, c, r, "read the schema version");
    int exists = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
    PQclear(r);
    *version = 0;
    if (!exists) return 0;
    r = PQexec(c, "SELECT value FROM sxpool_meta WHERE key = 'schema_version'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) return pg_fail(s, c, r, "read the schema version");
    *version = PQntuples(r) > 0 ? atoi(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return 0;
}

static int migrate(store_pg *s, PGconn *c)
{
    char sql[160];
    int version, rc;

    if ((rc = run(s, c, "BEGIN; SELECT pg_advisory_xact_lock(" STORE__PG_MIGRATE ")",
                  "migrate the schema")) != 0)
        return rc;
    if ((rc = schema_version(s, c, &version)) != 0) goto fail;
    if (version > STORE__PG_SCHEMA) {
        fprintf(stderr,
                "store: the database at %s has schema version %d, newer than this sxpool's %d; "
                "not migrating it back\n",
                s->where, version, STORE__PG_SCHEMA);
        rc = STORE_ESCHEMA;
        goto fail;
    }
    for (size_t i = 0; i < sizeof schema_sql / sizeof schema_sql[0]; i++)
        if ((rc = run(s, c, schema_sql[i], "migrate the schema")) != 0) goto fail;
    snprintf(sql, sizeof sql,
             "INSERT INTO sxpool_meta VALUES ('schema_version', '%d') ON CONFLICT (key) DO "
             "UPDATE SET value = EXCLUDED.value",
             STORE__PG_SCHEMA);
    if ((rc = run(s, c, sql, "migrate the schema")) != 0) goto fail;
    return run(s, c, "COMMIT", "migrate the schema");
fail:
    run(s, c, "ROLLBACK", "roll back");
    return rc;
}

int store__pg_open(const char *url, int do_migrate, store **out)
{
    store_pg *s;
    PGconn *c = NULL;
    int version, rc;
    char why[400];

    if (store__pq_load(why, sizeof why) != 0) {
        fprintf(stderr, "store: unable to open the store in PostgreSQL: %s\n", why);
        return STORE_EPG;
    }
    s = calloc(1, sizeof *s);
    if (s == NULL || (s->url = strdup(url)) == NULL) {
        free(s);
        return -ENOMEM;
    }
    s->base.ops = &pg_ops;
    pthread_mutex_init(&s->mu, NULL);
    char host[32];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
    host[sizeof host - 1] = '\0';
    snprintf(s->app, sizeof s->app, "sxpool:%s:%ld", host, (long)getpid());
    /* where, for the log lines, from the URL as libpq reads it */
    PQconninfoOption *opts = PQconninfoParse(url, NULL);
    if (opts == NULL) {
        fprintf(stderr, "store: unable to parse the PostgreSQL URL\n");
        pg_close(&s->base);
        return STORE_EPG;
    }
    const char *h = NULL, *p = NULL, *d = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0) h = o->val;
        if (strcmp(o->keyword, "hostaddr") == 0 && (h == NULL || *h == '\0')) h = o->val;
        if (strcmp(o->keyword, "port") == 0) p = o->val;
        if (strcmp(o->keyword, "dbname") == 0) d = o->val;
    }
    snprintf(s->where, sizeof s->where, "%s:%s/%s", h && *h ? h : "localhost", p && *p ? p : "5432",
             d && *d ? d : "(default)");
    PQconninfoFree(opts);
    if ((rc = connect_new(s, &c)) != 0) goto fail;
    describe(s, c);
    if (do_migrate && (rc = migrate(s, c)) != 0) goto fail;
    if ((rc = schema_version(s, c, &version)) != 0) goto fail;
    if (version != STORE__PG_SCHEMA) {
        if (version == 0)
            fprintf(stderr,
                    "store: the database at %s has no sxpool schema; create it with: sxpool "
                    "store migrate --store=URL\n",
                    s->where);
        else
            fprintf(stderr,
                    "store: the database at %s has schema version %d, this sxpool needs %d; "
                    "run: sxpool store migrate --store=URL\n",
                    s->where, version, STORE__PG_SCHEMA);
        rc = STORE_ESCHEMA;
        goto fail;
    }
    if ((rc = prepare_all(s, c)) != 0) goto fail;
    s->idle[s->nidle++] = c;
    *out = &s->base;
    return 0;
fail:
    if (c != NULL) PQfinish(c);
    pg_close(&s->base);
    return rc;
}
