/* test_vm_interrupt.c: sx_vm_interrupt, posted from another thread, stops
 * a running evaluation with timeout, and the runtime is whole afterwards.
 *
 * Each tier runs in a child process of its own (one runtime per process):
 * the CEK machine, the VM, and the VM with the native tier at threshold 0,
 * where the programs run natively from their first call. A thread posts
 * the interrupt while the main thread runs, in turn, a doubly recursive
 * function (native code sees the interrupt only in its entry and call
 * tests, which compare the frame's address with cx->jit_limit), a
 * self-tail-recursive loop (a loop back-edge's test) and two functions
 * calling each other in tail position. Each must fail with timeout; then
 * an evaluation runs to its value, with the native tier's limit back at
 * the C stack's, and deep non-tail recursion still fails with
 * stack-overflow. The native tier must have run (its native-calls total
 * grows while the interrupted programs run). A limit left poisoned with
 * no interrupt pending (a setter racing the consumer) must be repaired by
 * the next slow path, not send native code around it for ever.
 *
 * Every child runs under alarm(): a program the interrupt fails to stop
 * ends its child with SIGALRM, which fails the test.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jit/jit.h"
#include "tests/unit/check.h"
#include "vm/sx_core.h"
#include "vm/vm.h"

static const char defs[] = "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n"
                           "(define (spin i) (if (< i 0) i (spin (+ i 1))))\n"
                           "(define (ping i) (if (< i 0) i (pong (+ i 1))))\n"
                           "(define (pong i) (ping i))\n"
                           "(define (deep n) (if (= n 0) 0 (+ 1 (deep (- n 1)))))\n";

/* Programs that run until interrupted (fib 100 takes centuries; the loops
 * count to 2^61). */
static const char *const endless[] = {"(fib 100)", "(spin 0)", "(ping 0)"};

static bool native; /* this child runs the native tier */

typedef struct poster {
    uint64_t from;   /* native-calls total before the evaluation started */
    bool saw_native; /* native code ran before the interrupt was posted */
} poster;

static uint64_t native_calls(void)
{
    jit_totals t;
    jit_totals_get(&t);
    return t.native_calls;
}

/* Waits until the evaluation runs native code (native tier; at most 30 s),
 * then a little more, and posts the interrupt. */
static void *post(void *arg)
{
    poster *p = arg;
    for (int i = 0; native && i < 30000 && !p->saw_native; i++) {
        if (native_calls() > p->from)
            p->saw_native = true;
        else
            usleep(1000);
    }
    usleep(50000);
    sx_vm_interrupt();
    return NULL;
}

/* Evaluates src; its printed values go to out (cap bytes). @return 0 or 1 */
static int eval(const char *src, char *out, size_t cap, sx_failure *fail)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    int rc = sx_vm_eval_print(src, strlen(src), f, fail);
    fclose(f);
    snprintf(out, cap, "%s", text ? text : "");
    free(text);
    return rc;
}

static void expect_value(const char *src, const char *want)
{
    char out[256];
    sx_failure fail = {0};
    int rc = eval(src, out, sizeof out, &fail);
    if (rc != 0) fprintf(stderr, "%s failed: %s\n", src, fail.line);
    CHECK_EQ(rc, 0);
    CHECK_STR(out, want);
}

static void expect_error(const char *src, const char *kind)
{
    char out[256];
    sx_failure fail = {0};
    CHECK_EQ(eval(src, out, sizeof out, &fail), 1);
    CHECK_STR(fail.kind, kind);
}

/* The native tier's limit is the C stack's: no interrupt is pending. */
static void expect_limit_restored(void)
{
    CHECK(sx_cur->interrupt == 0);
    CHECK(sx_cur->jit_limit == sx_cur->cstack_limit);
}

static void interrupt_during(const char *src)
{
    poster p = {.from = native ? native_calls() : 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, post, &p), 0);
    char out[256];
    sx_failure fail = {0};
    int rc = eval(src, out, sizeof out, &fail);
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (rc != 1) fprintf(stderr, "%s: expected timeout, got %s\n", src, out);
    CHECK_EQ(rc, 1);
    CHECK_STR(fail.kind, "timeout");
    if (native) {
        CHECK(p.saw_native);
        CHECK(native_calls() > p.from);
    }
    expect_limit_restored();
    /* the next evaluation runs normally (natively, with the tier on) */
    uint64_t before = native ? native_calls() : 0;
    expect_value("(fib 20)", "6765\n");
    if (native) CHECK(native_calls() > before + 6765);
    expect_limit_restored();
}

static void run_tier(int tier, bool jit)
{
    alarm(100);
    native = jit;
    sx_options opt = {.cstack_bytes = 4u << 20, .tier = tier};
    CHECK_EQ(sx_vm_init(&opt), 0);
    if (jit) {
        jit_options jo = {.cache_dir = NULL, .threshold = 0, .exclude = NULL};
        CHECK_EQ(jit_init(&jo, NULL), 0);
    }
    expect_value(defs, "()\n()\n()\n()\n()\n");
    expect_limit_restored();
    expect_error("(deep 10000000)", "stack-overflow");
    for (size_t i = 0; i < sizeof endless / sizeof *endless; i++)
        interrupt_during(endless[i]);
    expect_error("(deep 10000000)", "stack-overflow");
    expect_value("(deep 1000)", "1000\n");
    if (jit) {
        /* an interrupt's setter that stored the limit after the consumer
         * restored it: the first slow path repairs it */
        sx_cur->jit_limit = SX_JIT_LIMIT_PENDING;
        expect_value("(fib 20)", "6765\n");
        expect_limit_restored();
        jit_shutdown();
    }
}

int main(void)
{
    static const struct {
        const char *name;
        int tier;
        bool jit;
    } tiers[] = {{"cek", SX_TIER_CEK, false}, {"vm", SX_TIER_VM, false}, {"jit", SX_TIER_VM, true}};
    int failures = 0;
    for (size_t i = 0; i < sizeof tiers / sizeof *tiers; i++) {
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            run_tier(tiers[i].tier, tiers[i].jit);
            exit(0);
        }
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("%s: ok\n", tiers[i].name);
        } else {
            fprintf(stderr, "FAIL: %s: %s %d\n", tiers[i].name,
                    WIFSIGNALED(status) ? "killed by signal" : "exit status",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            failures++;
        }
    }
    return failures ? 1 : 0;
}
