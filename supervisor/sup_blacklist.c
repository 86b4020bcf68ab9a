/* sup_blacklist.c: `sxpool blacklist list|clear`, the operator's view of
 * the JIT blacklist kept in the store.
 *
 * Runs in its own short-lived process (no loop, no workers). It opens the
 * data directory's store, reads or edits the "blacklist" database through
 * store_bl_each / store_bl_clear, and exits. It never creates a data
 * directory: a missing one is reported, since it usually means a wrong
 * --data.
 *
 * `list` prints one entry per line, space-separated: function, code hash,
 * ABI hash, count, time of the last fault (UTC, ISO 8601), reason (last, as
 * it may contain spaces). With --store=URL it works on the blacklist of
 * that PostgreSQL database instead, which every host sharing it uses.
 * An empty hash is printed as "-" so the columns
 * stay put. GLOB (fnmatch) keeps the functions it matches; --abi=HASH the
 * entries of that ABI hash only, the ones workers of that build load.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store/store.h"
#include "supervisor/supervisor.h"

#define DEFAULT_DATA "./sxpool-data"

static void blacklist_usage(FILE *out)
{
    fprintf(out, "usage: sxpool blacklist list [GLOB] [--abi=HASH] [--data=DIR|--store=URL]\n"
                 "       sxpool blacklist clear [GLOB] [--data=DIR|--store=URL]\n");
}

typedef struct list_ctx {
    const char *glob;
    unsigned n;
    bool failed;
} list_ctx;

static const char *or_dash(const char *s)
{
    return *s ? s : "-";
}

static int print_entry(void *arg, const store_bl_entry *e)
{
    list_ctx *c = arg;
    if (c->glob && fnmatch(c->glob, e->function, 0) != 0) return 0;
    char when[32] = "-";
    time_t t = (time_t)(e->time_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) && strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(when, sizeof when, "-");
    if (printf("%s %s %s %u %s %s\n", e->function, or_dash(e->code_hash), or_dash(e->abi_hash),
               (unsigned)e->count, when, e->reason) < 0) {
        c->failed = true;
        return 1;
    }
    c->n++;
    return 0;
}

static int open_store(const char *data, store **out)
{
    struct stat st;
    if (store_is_url(data)) {
        int err = store_open(data, 0, out);
        if (err != 0)
            fprintf(stderr, "sxpool: blacklist: unable to open the store in PostgreSQL: %s\n",
                    store_strerror(err));
        return err != 0 ? -1 : 0;
    }
    if (stat(data, &st) != 0) {
        fprintf(stderr, "sxpool: blacklist: cannot use data directory '%s': %s\n", data,
                strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(stderr, "sxpool: blacklist: '%s' is not a directory\n", data);
        return -1;
    }
    int err = store_open(data, 0, out);
    if (err != 0) {
        fprintf(stderr, "sxpool: blacklist: unable to open the store in '%s': %s\n", data,
                store_strerror(err));
        return -1;
    }
    return 0;
}

int sup_blacklist_main(int argc, char **argv)
{
    const char *data = DEFAULT_DATA, *cmd = NULL, *glob = NULL, *abi = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            blacklist_usage(stdout);
            return 0;
        } else if (strncmp(a, "--data=", 7) == 0) {
            data = a + 7;
        } else if (strcmp(a, "--data") == 0 && i + 1 < argc) {
            data = argv[++i];
        } else if (strncmp(a, "--store=", 8) == 0 && store_is_url(a + 8)) {
            data = a + 8;
        } else if (strncmp(a, "--abi=", 6) == 0) {
            abi = a + 6;
        } else if (strcmp(a, "--abi") == 0 && i + 1 < argc) {
            abi = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "sxpool: blacklist: unknown option '%s'\n", a);
            return 2;
        } else if (!cmd) {
            cmd = a;
        } else if (!glob) {
            glob = a;
        } else {
            fprintf(stderr, "sxpool: blacklist: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!cmd || (strcmp(cmd, "list") != 0 && strcmp(cmd, "clear") != 0)) {
        if (cmd)
            fprintf(stderr, "sxpool: blacklist: unknown command '%s' (list or clear)\n", cmd);
        else
            blacklist_usage(stderr);
        return 2;
    }
    if (abi && strcmp(cmd, "list") != 0) {
        fprintf(stderr, "sxpool: blacklist: --abi applies to list only\n");
        return 2;
    }
    if (!*data) {
        fprintf(stderr, "sxpool: blacklist: --data: expected a directory, got ''\n");
        return 2;
    }

    store *st;
    if (open_store(data, &st) != 0) return 1;
    int rc = 0;
    if (strcmp(cmd, "list") == 0) {
        list_ctx c = {glob, 0, false};
        int err = store_bl_each(st, abi, print_entry, &c);
        if (c.failed) rc = 1;
        if (err < 0) {
            fprintf(stderr, "sxpool: blacklist: unable to read the blacklist: %s\n",
                    store_strerror(err));
            rc = 1;
        }
        if (fflush(stdout) != 0) rc = 1;
    } else {
        int n = store_bl_clear(st, glob ? glob : "*");
        if (n < 0) {
            fprintf(stderr, "sxpool: blacklist: unable to clear entries matching '%s': %s\n",
                    glob ? glob : "*", store_strerror(n));
            rc = 1;
        } else {
            printf("removed %d blacklist entr%s\n", n, n == 1 ? "y" : "ies");
        }
    }
    store_close(st);
    return rc;
}
