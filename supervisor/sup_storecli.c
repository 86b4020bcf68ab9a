/* sup_storecli.c: `sxpool store migrate`, which creates or upgrades the
 * store's schema: in PostgreSQL (--store=URL) the tables and the schema
 * version row every sxpool process checks at start; in LMDB (--data=DIR)
 * the environment and its databases, which the server also creates itself.
 *
 * Runs in its own short-lived process, before any server uses the store;
 * the store serializes concurrent migrations (an advisory lock).
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "supervisor/supervisor.h"

static void store_cli_usage(FILE *out)
{
    fprintf(out, "usage: sxpool store migrate --store=postgresql://USER@HOST/DB\n"
                 "       sxpool store migrate --data=DIR\n");
}

int sup_store_cli_main(int argc, char **argv)
{
    const char *loc = NULL, *cmd = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            store_cli_usage(stdout);
            return 0;
        } else if (strncmp(a, "--store=", 8) == 0) {
            loc = a + 8;
            if (!store_is_url(loc)) {
                fprintf(stderr, "sxpool: store: --store: expected a postgresql:// URL\n");
                return 2;
            }
        } else if (strncmp(a, "--data=", 7) == 0) {
            loc = a + 7;
        } else if (a[0] == '-') {
            fprintf(stderr, "sxpool: store: unknown option '%s'\n", a);
            return 2;
        } else if (!cmd) {
            cmd = a;
        } else {
            fprintf(stderr, "sxpool: store: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!cmd || strcmp(cmd, "migrate") != 0 || !loc || !*loc) {
        if (cmd && strcmp(cmd, "migrate") != 0)
            fprintf(stderr, "sxpool: store: unknown command '%s' (migrate)\n", cmd);
        store_cli_usage(stderr);
        return 2;
    }
    int err = store_migrate(loc);
    if (err != 0) {
        fprintf(stderr, "sxpool: store: unable to migrate the store: %s\n", store_strerror(err));
        return 1;
    }
    printf("store schema is current\n");
    return 0;
}
