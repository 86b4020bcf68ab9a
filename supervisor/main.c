/* main.c: the sxpool binary's entry point. It only picks a subcommand and
 * hands the arguments to the module that owns it; the server itself is
 * sup_main. Runs in every sxpool process (supervisor and workers alike)
 * before anything else, so it must create nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "supervisor/supervisor.h"
#include "worker/worker.h"

/* SX recursion through built-ins such as map recurses in C. The kernel
 * places other mappings below the main thread's stack according to the
 * stack limit at exec time, so a bigger limit must be set before exec:
 * raise it once and exec ourselves again (children inherit it). */
#define SXPOOL_STACK_LIMIT ((rlim_t)1 << 30)

static void ensure_stack(char **argv)
{
    struct rlimit rl;
    if (getenv("SXPOOL_STACK_REEXEC")) {
        unsetenv("SXPOOL_STACK_REEXEC");
        return;
    }
    if (getrlimit(RLIMIT_STACK, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= SXPOOL_STACK_LIMIT)
        return;
    rlim_t target = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= SXPOOL_STACK_LIMIT
                        ? SXPOOL_STACK_LIMIT
                        : rl.rlim_max;
    if (target <= rl.rlim_cur) return;
    rl.rlim_cur = target;
    if (setrlimit(RLIMIT_STACK, &rl) != 0) return;
    setenv("SXPOOL_STACK_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    unsetenv("SXPOOL_STACK_REEXEC"); /* exec failed: go on with the stack we have */
}

int main(int argc, char **argv)
{
    ensure_stack(argv);
    if (argc >= 2) {
        const char *cmd = argv[1];
        if (strcmp(cmd, "worker") == 0) return wrk_main(argc - 1, argv + 1);
        if (strcmp(cmd, "eval") == 0) return wrk_eval_main(argc - 1, argv + 1);
        if (strcmp(cmd, "repl") == 0) return wrk_repl_main(argc - 1, argv + 1);
        if (strcmp(cmd, "blacklist") == 0) return sup_blacklist_main(argc - 1, argv + 1);
        if (strcmp(cmd, "store") == 0) return sup_store_cli_main(argc - 1, argv + 1);
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
