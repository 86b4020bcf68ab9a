/* main.c: the sxpool binary's entry point. It only picks a subcommand and
 * hands the arguments to the module that owns it; the server itself is
 * sup_main. Runs in every sxpool process (supervisor and workers alike)
 * before anything else, so it must create nothing. */
#include <stdio.h>
#include <string.h>

#include "supervisor/supervisor.h"
#include "worker/worker.h"

int main(int argc, char **argv)
{
    if (argc >= 2) {
        const char *cmd = argv[1];
        if (strcmp(cmd, "worker") == 0) return wrk_main(argc - 1, argv + 1);
        if (strcmp(cmd, "eval") == 0) return wrk_eval_main(argc - 1, argv + 1);
        if (strcmp(cmd, "repl") == 0) return wrk_repl_main(argc - 1, argv + 1);
        if (strcmp(cmd, "blacklist") == 0) return sup_blacklist_main(argc - 1, argv + 1);
        if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
            sup_usage(stdout);
            return 0;
        }
        if (strcmp(cmd, "--version") == 0) {
            printf("sxpool %s\n", SXPOOL_VERSION);
            return 0;
        }
    }
    return sup_main(argc, argv);
}
