/* test_jit_environ.c: compiling never changes the process environment.
 *
 * libgccjit's embedded gcc driver putenv()s COLLECT_GCC, COMPILER_PATH and
 * others while it runs and unsetenv()s them after; with the compile thread
 * doing that, another thread inside getenv() (the collector reads variables
 * while it collects) can walk an environ array that is being reallocated or
 * shifted, and crash. The native tier therefore runs the driver as a
 * process of its own (jit/jit.c, new_context).
 *
 * Here a watcher thread compares environ, the array and every entry, with
 * a snapshot, as fast as it can, while the main thread compiles functions
 * (threshold 0) in several batches. Any change it sees fails the test; so
 * does a run that compiled nothing.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jit/jit.h"
#include "vm/vm.h"

extern char **environ;

#define MAX_ENV 4096

static char **snap;
static char *snap_entries[MAX_ENV];
static int snap_n;
static volatile bool stop;
static volatile long changes, samples;

static void take_snapshot(void)
{
    snap = environ;
    for (snap_n = 0; environ[snap_n] && snap_n < MAX_ENV; snap_n++)
        snap_entries[snap_n] = environ[snap_n];
}

static void *watch(void *arg)
{
    (void)arg;
    while (!stop) {
        char **e = __atomic_load_n(&environ, __ATOMIC_RELAXED);
        bool same = e == snap;
        for (int i = 0; same && i <= snap_n; i++)
            same =
                __atomic_load_n(&e[i], __ATOMIC_RELAXED) == (i < snap_n ? snap_entries[i] : NULL);
        if (!same) changes++;
        samples++;
    }
    return NULL;
}

/* Functions of different shapes, each its own batch at threshold 0. */
static const char program[] =
    "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n"
    "(define (sum l) (if (null? l) 0 (+ (car l) (sum (cdr l)))))\n"
    "(define (adder k) (lambda (x) (+ x k)))\n"
    "(define (compose f g) (lambda (x) (f (g x))))\n"
    "(define (loop i acc) (if (= i 0) acc (loop (- i 1) (cons i acc))))\n"
    "(define (main)\n"
    "  (list (fib 15) (sum (loop 100 '())) ((compose (adder 1) (adder 2)) 3)))\n"
    "(main)\n";

int main(void)
{
    sx_options opt = {.cstack_bytes = 4u << 20, .tier = SX_TIER_VM};
    if (sx_vm_init(&opt) != 0) {
        fprintf(stderr, "FAIL: sx_vm_init\n");
        return 1;
    }
    char tmp[] = "/tmp/sxpool-environ-XXXXXX";
    if (!mkdtemp(tmp) || setenv("TMPDIR", tmp, 1) != 0) {
        fprintf(stderr, "FAIL: no temporary directory\n");
        return 1;
    }
    jit_options jo = {.cache_dir = NULL, .threshold = 0, .exclude = NULL};
    if (jit_init(&jo, NULL) != 0) {
        fprintf(stderr, "FAIL: jit_init\n");
        return 1;
    }
    take_snapshot(); /* after every setenv of ours, before the watcher */
    pthread_t t;
    if (pthread_create(&t, NULL, watch, NULL) != 0) {
        fprintf(stderr, "FAIL: pthread_create\n");
        return 1;
    }
    sx_failure fail;
    FILE *devnull = fopen("/dev/null", "w");
    if (devnull) sx_vm_set_output(devnull);
    int rc = sx_vm_load("environ.sx", program, sizeof program - 1, &fail);
    stop = true;
    pthread_join(t, NULL);
    jit_shutdown();
    int failures = 0;
    char report[sizeof tmp + 16];
    snprintf(report, sizeof report, "%s/report", tmp);
    long compiled = -1;
    FILE *f = jit_write_report(report) == 0 ? fopen(report, "r") : NULL;
    char line[512];
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "functions-compiled %ld", &compiled) == 1) break;
    if (f) fclose(f);
    unlink(report);
    rmdir(tmp);
    if (compiled < 5) {
        fprintf(stderr, "FAIL: %ld functions compiled, expected at least 5\n", compiled);
        failures++;
    }
    if (rc != 0) {
        fprintf(stderr, "FAIL: the program failed: %s\n", fail.line);
        failures++;
    }
    if (changes > 0) {
        fprintf(stderr, "FAIL: environ changed in %ld of %ld samples while compiling\n", changes,
                samples);
        failures++;
    }
    printf("%ld functions compiled; %ld samples of environ, %ld changed\n", compiled, samples,
           changes);
    return failures ? 1 : 0;
}
