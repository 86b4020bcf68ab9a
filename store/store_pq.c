/* store_pq.c: loads libpq on first use and fills store__pq (store_pq.h).
 *
 * Runs in whichever process and thread first opens a store in PostgreSQL
 * (store__pg_open): the supervisor, a worker during its start-up (before
 * its sandbox, which lets a CEK worker open no file and map nothing
 * executable), or the CLI. pthread_once makes the load happen once per
 * process, whatever thread asks; its result, the table or the message of
 * why not, never changes after that. A library that loaded is never
 * closed: PGconns and PGresults point into it until the process ends.
 */
#define STORE__PQ_LOADER /* the names below are libpq's, not the table's */
#include "store/store_pq.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

store__pq_table store__pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char load_why[400];

static void load(void)
{
    static const struct {
        const char *name;
        size_t off;
    } fns[] = {
#define STORE__PQ_ENTRY(f) {#f, offsetof(store__pq_table, f)},
        STORE__PQ_FUNCTIONS(STORE__PQ_ENTRY)
#undef STORE__PQ_ENTRY
    };
    store__pq_table t;
    void *lib = dlopen(STORE__PQ_LIB, RTLD_NOW | RTLD_LOCAL);

    if (lib == NULL) {
        snprintf(load_why, sizeof load_why,
                 "unable to load PostgreSQL's client library: %s (install the package that "
                 "provides " STORE__PQ_LIB ", libpq5 on Debian)",
                 dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        void *p;

        dlerror();
        p = dlsym(lib, fns[i].name);
        if (p == NULL) {
            const char *e = dlerror();

            snprintf(load_why, sizeof load_why,
                     "PostgreSQL's client library " STORE__PQ_LIB " has no %s: %s (sxpool "
                     "needs libpq 14 or later: install libpq5 of Debian 12 or later)",
                     fns[i].name, e ? e : "the symbol is NULL");
            dlclose(lib);
            return;
        }
        /* dlsym's object pointer is the function's address (POSIX makes
         * the conversion valid); copied into the typed entry by offset */
        memcpy((char *)&t + fns[i].off, &p, sizeof p);
    }
    store__pq = t;
    load_rc = 0;
}

int store__pq_load(char *why, size_t cap)
{
    int err = pthread_once(&once, load);

    if (err != 0) {
        snprintf(why, cap, "unable to load PostgreSQL's client library: pthread_once: %s",
                 strerror(err));
        return -1;
    }
    if (load_rc != 0) snprintf(why, cap, "%s", load_why);
    return load_rc;
}
