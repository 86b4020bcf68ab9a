/* wrk_eval.c: `sxpool eval` and `sxpool repl`, SX from the command line.
 *
 * Both run in the calling process with the in-memory effect store. eval
 * loads each FILE top to bottom; an uncaught error is reported as one line
 * "error: KIND: ..." on stderr with exit status 1. The REPL reads a complete
 * form (it keeps reading lines while the input is unbalanced), prints each
 * value in write form and goes on after errors until EOF.
 *
 * eval --jit-report=PATH writes the native tier's coverage report to PATH
 * from an atexit handler, so it is written however the process exits
 * through exit(): success, an SX error, or an exit on the compile thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"
#include "worker/worker.h"
#include "jit/jit.h"
#include "worker/wrk_internal.h"

int wrk_start_tier(sx_options *opt, const jit_options *jopt)
{
    int tier = opt->tier;
    if (tier == WRK_TIER_JIT) opt->tier = SX_TIER_VM;
    if (sx_vm_init(opt) != 0) return -1;
    if (tier == WRK_TIER_JIT && jit_init(jopt, NULL) != 0) {
        fputs("sxpool: unable to start the native tier\n", stderr);
        return -1;
    }
    return 0;
}

static void eval_usage(FILE *to)
{
    fputs("usage: sxpool eval [--tier=cek|vm|jit] [--jit-threshold=N] [--jit-cache=DIR]\n"
          "                   [--jit-exclude=GLOBS] [--jit-report=PATH] [--memory-limit=SIZE] "
          "FILE...\n",
          to);
}

static const char *report_path;

static void write_report(void)
{
    int rc = jit_write_report(report_path);
    if (rc != 0)
        fprintf(stderr, "sxpool eval: unable to write the jit report %s: %s\n", report_path,
                strerror(-rc));
}

int wrk_parse_tier(const char *prog, const char *value)
{
    if (!strcmp(value, "cek")) return SX_TIER_CEK;
    if (!strcmp(value, "vm")) return SX_TIER_VM;
    if (!strcmp(value, "jit")) return WRK_TIER_JIT;
    fprintf(stderr, "%s: --tier: expected cek, vm or jit, got '%s'\n", prog, value);
    return -1;
}

bool wrk_parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *s == '-') return false;
    unsigned long long mult = 1;
    if (*end == 'K' || *end == 'k')
        mult = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm')
        mult = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g')
        mult = 1ull << 30, end++;
    if (*end != 0 || v == 0 || v > (1ull << 44) / mult) return false;
    *out = (size_t)(v * mult);
    return true;
}

static bool parse_count(const char *s, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < 0) return false;
    *out = v;
    return true;
}

static int eval_main(int argc, char **argv)
{
    int first = argc;
    sx_options opt = {0};
    jit_options jopt = {NULL, 1000, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long n;
        if (!strncmp(a, "--memory-limit=", 15)) {
            if (!wrk_parse_size(a + 15, &opt.heap_limit)) {
                fprintf(stderr,
                        "sxpool eval: --memory-limit: expected a size like 512M or 2G, got '%s'\n",
                        a + 15);
                return 2;
            }
        } else if (!strncmp(a, "--tier=", 7)) {
            if ((opt.tier = wrk_parse_tier("sxpool eval", a + 7)) < 0) return 2;
        } else if (!strncmp(a, "--jit-cache=", 12)) {
            jopt.cache_dir = a + 12;
        } else if (!strncmp(a, "--jit-exclude=", 14)) {
            jopt.exclude = a + 14;
        } else if (!strncmp(a, "--jit-report=", 13) && a[13]) {
            report_path = a + 13;
        } else if (!strncmp(a, "--jit-threshold=", 16)) {
            if (!parse_count(a + 16, &n) || n > 1000000000) {
                fprintf(stderr, "sxpool eval: --jit-threshold: expected a count >= 0, got '%s'\n",
                        a + 16);
                return 2;
            }
            jopt.threshold = (uint32_t)n;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            eval_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--")) {
            first = i + 1;
            break;
        } else if (a[0] == '-' && a[1] != 0) {
            fprintf(stderr, "sxpool eval: unknown flag '%s'\n", a);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (first >= argc) {
        eval_usage(stderr);
        return 2;
    }
    if (report_path && atexit(write_report) != 0) {
        fputs("sxpool eval: unable to register the jit report\n", stderr);
        return 1;
    }
    char why[4400];
    if (opt.tier == WRK_TIER_JIT && jopt.cache_dir &&
        wrk_native_cache_dir(jopt.cache_dir, why, sizeof why) != 0) {
        fprintf(stderr, "sxpool eval: --jit-cache: not using %s: %s; compiling without it\n",
                jopt.cache_dir, why);
        jopt.cache_dir = NULL;
    }
    if (wrk_start_tier(&opt, &jopt) != 0) return 1;
    for (int i = first; i < argc; i++) {
        sx_failure fail;
        if (sx_vm_load_file(argv[i], &fail) != 0) {
            fflush(stdout);
            fprintf(stderr, "%s\n", fail.line);
            return 1;
        }
    }
    fflush(stdout);
    return 0;
}

int wrk_eval_main(int argc, char **argv)
{
    int rc = eval_main(argc, argv);
    jit_shutdown();
    return rc;
}

static bool incomplete(const sx_failure *f)
{
    return !strcmp(f->kind, "read-error") &&
           (strstr(f->message, "unexpected end of input") || strstr(f->message, "unbalanced") ||
            strstr(f->message, "unterminated"));
}

int wrk_repl_main(int argc, char **argv)
{
    sx_options opt = {0};
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--tier=", 7)) {
            if ((opt.tier = wrk_parse_tier("sxpool repl", argv[i] + 7)) < 0) return 2;
        } else if (!strncmp(argv[i], "--memory-limit=", 15) &&
                   wrk_parse_size(argv[i] + 15, &opt.heap_limit)) {
            continue;
        } else {
            fprintf(stderr, "sxpool repl: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    jit_options jopt = {NULL, 1000, NULL};
    if (wrk_start_tier(&opt, &jopt) != 0) return 1;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char line[4096];
    for (;;) {
        if (len == 0) fputs("sx> ", stdout);
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin)) break;
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                return 1;
            }
            buf = nb;
        }
        memcpy(buf + len, line, n);
        len += n;
        sx_failure fail;
        if (sx_vm_eval_print(buf, len, stdout, &fail) != 0) {
            if (incomplete(&fail)) continue;
            fflush(stdout);
            fprintf(stderr, "%s\n", fail.line);
        }
        len = 0;
    }
    fputc('\n', stdout);
    free(buf);
    jit_shutdown();
    return 0;
}
