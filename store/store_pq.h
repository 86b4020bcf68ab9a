/* store_pq.h: libpq, loaded on first use (store_pq.c). For store_pg.c only.
 *
 * sxpool does not link libpq: its loading, with what it needs (GnuTLS,
 * Kerberos, LDAP, ...), took about 10 ms of every process's start, and
 * only a store in PostgreSQL uses it. store__pq_load dlopens it when such
 * a store is opened; the functions store_pg.c calls go through the table
 * store__pq, filled then. After the header, each of them names its entry
 * (PQclear is (store__pq.PQclear)), so store_pg.c reads as plain libpq
 * code; the types come from <libpq-fe.h> itself (__typeof__).
 *
 * A libpq function that store_pg.c calls must be in STORE__PQ_FUNCTIONS
 * and have its #define below: one that is not is an undefined reference
 * when sxpool is linked, since nothing links libpq.
 */
#ifndef SXPOOL_STORE_PQ_H
#define SXPOOL_STORE_PQ_H

#include <libpq-fe.h>
#include <stddef.h>

/* The library store__pq_load opens: Debian's libpq5. */
#define STORE__PQ_LIB "libpq.so.5"

#define STORE__PQ_FUNCTIONS(X)                                                                     \
    X(PQclear)                                                                                     \
    X(PQcmdTuples)                                                                                 \
    X(PQconnectdbParams)                                                                           \
    X(PQconninfoFree)                                                                              \
    X(PQconninfoParse)                                                                             \
    X(PQconsumeInput)                                                                              \
    X(PQdb)                                                                                        \
    X(PQenterPipelineMode)                                                                         \
    X(PQerrorMessage)                                                                              \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQexecPrepared)                                                                              \
    X(PQexitPipelineMode)                                                                          \
    X(PQfinish)                                                                                    \
    X(PQfreemem)                                                                                   \
    X(PQgetResult)                                                                                 \
    X(PQgetlength)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQhost)                                                                                      \
    X(PQnotifies)                                                                                  \
    X(PQntuples)                                                                                   \
    X(PQpipelineStatus)                                                                            \
    X(PQpipelineSync)                                                                              \
    X(PQport)                                                                                      \
    X(PQprepare)                                                                                   \
    X(PQreset)                                                                                     \
    X(PQresultErrorField)                                                                          \
    X(PQresultErrorMessage)                                                                        \
    X(PQresultStatus)                                                                              \
    X(PQsendQueryParams)                                                                           \
    X(PQsendQueryPrepared)                                                                         \
    X(PQsocket)                                                                                    \
    X(PQstatus)                                                                                    \
    X(PQtransactionStatus)

typedef struct store__pq_table {
#define STORE__PQ_FIELD(f) __typeof__(f) *f;
    STORE__PQ_FUNCTIONS(STORE__PQ_FIELD)
#undef STORE__PQ_FIELD
} store__pq_table;

/* Every entry set once store__pq_load returned 0; all NULL before. */
extern store__pq_table store__pq;

/* Loads STORE__PQ_LIB and fills store__pq, the first time; later calls
 * return the first one's result. Thread-safe. Before the worker's
 * sandbox, which lets a CEK worker open no file (wrk_main.c: the store is
 * opened before it).
 * @param[out] why  on failure, what could not be loaded and what to do
 *                  (dlerror's message, the package to install)
 * @return 0, or -1 with why set */
int store__pq_load(char *why, size_t cap);

#ifndef STORE__PQ_LOADER
#define PQclear (store__pq.PQclear)
#define PQcmdTuples (store__pq.PQcmdTuples)
#define PQconnectdbParams (store__pq.PQconnectdbParams)
#define PQconninfoFree (store__pq.PQconninfoFree)
#define PQconninfoParse (store__pq.PQconninfoParse)
#define PQconsumeInput (store__pq.PQconsumeInput)
#define PQdb (store__pq.PQdb)
#define PQenterPipelineMode (store__pq.PQenterPipelineMode)
#define PQerrorMessage (store__pq.PQerrorMessage)
#define PQexec (store__pq.PQexec)
#define PQexecParams (store__pq.PQexecParams)
#define PQexecPrepared (store__pq.PQexecPrepared)
#define PQexitPipelineMode (store__pq.PQexitPipelineMode)
#define PQfinish (store__pq.PQfinish)
#define PQfreemem (store__pq.PQfreemem)
#define PQgetResult (store__pq.PQgetResult)
#define PQgetlength (store__pq.PQgetlength)
#define PQgetvalue (store__pq.PQgetvalue)
#define PQhost (store__pq.PQhost)
#define PQnotifies (store__pq.PQnotifies)
#define PQntuples (store__pq.PQntuples)
#define PQpipelineStatus (store__pq.PQpipelineStatus)
#define PQpipelineSync (store__pq.PQpipelineSync)
#define PQport (store__pq.PQport)
#define PQprepare (store__pq.PQprepare)
#define PQreset (store__pq.PQreset)
#define PQresultErrorField (store__pq.PQresultErrorField)
#define PQresultErrorMessage (store__pq.PQresultErrorMessage)
#define PQresultStatus (store__pq.PQresultStatus)
#define PQsendQueryParams (store__pq.PQsendQueryParams)
#define PQsendQueryPrepared (store__pq.PQsendQueryPrepared)
#define PQsocket (store__pq.PQsocket)
#define PQstatus (store__pq.PQstatus)
#define PQtransactionStatus (store__pq.PQtransactionStatus)
#endif

#endif
