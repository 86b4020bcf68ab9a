/* jit.c: the native tier's policy: tier-up, the compile thread, batches,
 * the code cache on disk, the registry of native code, the blacklist and
 * the test-only fault injection.
 *
 * Threads: the evaluating thread counts calls (in the VM); at a
 * function's first call it installs the function's code from the code
 * cache if the cache has it, and when a function gets hot it queues it;
 * one compile thread takes the queue in batches (looking each function up
 * in the cache first; one libgccjit context per batch, ~16 ms before any
 * function) and hands over the results, which the evaluating thread installs
 * by storing proto->native, which the interpreter reads at each call. With
 * threshold 0 the evaluating thread compiles before the first call, so
 * tests see native code deterministically. J.mu guards the queue and every
 * jit_state transition; the compile thread touches only queued protos,
 * which the queue keeps alive (it is an uncollectable allocation).
 *
 * The code cache: DIR/ABI/<batch>.so holds a batch; DIR/ABI/<hash>.idx
 * names the .so holding function <hash> and the SHA-256 of its bytes
 * (JIT_CACHE_FORMAT, in the ABI hash; jit/README.md). Both are written to
 * a temporary name and renamed, so a second process either sees a whole
 * entry or none. An entry under another ABI hash is never looked at. The
 * caller vouches for DIR (worker/ checks that only this user can write
 * there); jit_init checks DIR/ABI. A cached .so is loaded only when the
 * .idx and the .so are regular files of this user that nobody else can
 * write, opened without following links, and the bytes read from the
 * .so's descriptor hash to what the .idx records; it is then loaded
 * through /proc/self/fd/N of that same descriptor, so what was checked is
 * what runs. Anything else is logged once and compiled again.
 *
 * The registry (PC -> function) is an array filled before the code is
 * installed and read without locks by the crash handler.
 *
 * The coverage report (`eval --jit-report`) lists what got native code,
 * what was refused and why, and each compiled function's share of its
 * batch's compile time; its records have a lock of their own (R.mu, taken
 * after J.mu, never held across anything else), so the report can be
 * written at exit() even when exit is called with J.mu held.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gc.h>
#include <link.h>
#include <nettle/sha2.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "jit/jit_int.h"

#define JIT_MAX_BATCH 64
/* The optimization of every compile (part of the ABI hash). -Og runs the
 * cheap half of O1's passes: on batches of small functions it compiles in
 * about two thirds of O1's time and half of O2's, and the code runs as fast
 * as O1's on bench/lang (it is mostly tag tests and calls into the runtime;
 * see jit/README.md). It is given after the level, so it is the one in force. */
#define JIT_OPT_LEVEL 1
#ifndef JIT_OPT_OPTION /* a build may set another, e.g. to compare levels */
#define JIT_OPT_OPTION "-Og"
#endif
/* The one pass of O1 -Og leaves out that inline arithmetic needs: without
 * it, the overflow test of a checked add or sub (__builtin_saddl_overflow,
 * jit_lower.c) sets a flag in a register and tests it again, 3 more
 * instructions than the add and a jump on the overflow flag. */
#define JIT_IFCVT_OPTION "-fif-conversion"
/* libgccjit writes assembly only; the compile thread runs the assembler
 * and the linker itself (assemble_and_link), two processes where the gcc
 * driver took four (itself, as, collect2 and ld). Both command lines,
 * without their file names, are part of the ABI hash. The assembler is
 * started before the compile where a CPU is free for it (as_early) and
 * reads the assembly from standard input (as_start): the object is the
 * same byte for byte as from a file operand (the name of its input is
 * not in it; the .file directive libgccjit writes is), so JIT_TOOLS
 * stayed as it was. The object calls nothing but the link table: no
 * start files and no libraries. */
#define JIT_AS_ARGS "as", "--64", "-o"
#define JIT_LD_ARGS "ld", "-shared", "-m", "elf_x86_64", "--hash-style=gnu", "--eh-frame-hdr", "-o"
#define JIT_TOOLS "as --64 -o; ld -shared -m elf_x86_64 --hash-style=gnu --eh-frame-hdr -o"
/* The functions of one compiled function (its entries and body, jit_lower.c)
 * call each other directly, not through the PLT: nothing interposes them. */
#define JIT_CALL_OPTION "-fno-semantic-interposition"
/* -Og inlines nothing GCC is not made to. With this, a local function as
 * small as its call is inlined where it is called: the head for fixnum
 * arguments (`_e`, jit_lower.c), so fib's call of n - 1 tests n - 1 < 2
 * itself and calls only the specialized body (35 % fewer instructions per
 * call). The compile time stays as it was (fib 31 ms either way). */
#define JIT_INLINE_OPTION "-finline-functions-called-once"
/* The .idx format: "SO-NAME SHA256-HEX\n" (2), or CACHE_FAILED. It is part
 * of the ABI hash: change it with the format, so no build reads another's. */
#define JIT_CACHE_FORMAT 2
#define JIT_SHA_HEX (2 * SHA256_DIGEST_SIZE + 1)
#define JIT_MAX_REGIONS 65536
/* functions of a compiled function besides its generic entry: its direct
 * entry, its body, SYMBOL_a (what its code assumes) and its specialized
 * body (jit_lower.c); the head for fixnum arguments is local to the object
 * and, where it is not inlined, entered only from these, with
 * cx->native_proto at the function (jit_lookup_pc's second way) */
#define JIT_MORE 4
#define JIT_MAX_INJECT 32

typedef struct jit_region {
    uintptr_t lo, hi;
    const sx_proto *p;
    char name[256];
    char hash[17];
} jit_region;

/* Microseconds spent in batches (jit_totals_get), written by whichever
 * thread compiles. */
static uint64_t compile_us_total;

static struct {
    bool on;
    uint32_t threshold;
    char cache[4096]; /* DIR/ABI, empty without a cache */
    jit_hooks hooks;
    char abi[17];
    char cache_root[4096]; /* DIR of --jit-cache, until the cache is set up */
    char unavailable[512]; /* why libgccjit could not be loaded, or empty */
    pthread_mutex_t mu;
    pthread_cond_t cv;   /* the compile thread waits here for work */
    pthread_cond_t idle; /* stop_compiling waits here for the batch to end */
    sx_proto **queue;    /* uncollectable: keeps queued protos alive */
    uint64_t *qtime;     /* when each queued proto got hot (now_us) */
    int qn, qcap;
    bool thread_started;
    pthread_t thread;
    bool busy;          /* the compile thread is working on a batch */
    bool stopping;      /* the process is exiting: start no new batch */
    sx_proto **natives; /* uncollectable: protos with native code */
    /* uncollectable: every proto ever queued, so one whose code the compile
     * thread has handed over (J.done is malloc'd, invisible to the
     * collector) but nothing else references any more is not freed before
     * poll_done installs it; bounded by the program's code */
    sx_proto **pinned;
    int npinned, pincap;
    int nn, ncap;
    char (*bl_name)[256];
    char (*bl_hash)[17];
    int nbl;
    struct {
        int kind;
        char name[256];
    } inject[JIT_MAX_INJECT];
    int ninject;
    jit_region *regions;
    volatile int nregions;
    struct jit_done {
        sx_proto *p;
        void *fn, *more[JIT_MORE];
        bool from_cache;
        uint64_t hot_us; /* when it got hot (now_us), 0 if unknown */
    } * done;            /* compiled, waiting for the evaluating thread to install */
    int ndone, donecap;
    volatile int pending; /* ndone, readable without the lock */
    unsigned long tmp_counter;
} J = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .cv = PTHREAD_COND_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER};

static void jlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void jlog(const char *fmt, ...)
{
    /* one write per line: workers share the supervisor's stderr */
    char line[1024];
    int n = snprintf(line, sizeof line, "sxpool jit (pid %d): ", (int)getpid());
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(2, line, (size_t)n);
    (void)w;
}

/* Monotonic microseconds, for the compile thread's timings. */
static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* CPU microseconds of this thread, and of the waited-for child processes
 * (the compile thread is the only one that starts any). */
static uint64_t cpu_us(uint64_t *children)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    *children = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
                (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

/* SXPOOL_JIT_VERBOSE: every batch and every installation is logged. */
static bool verbose(void)
{
    static int v = -1;
    if (v < 0) v = getenv("SXPOOL_JIT_VERBOSE") != NULL;
    return v;
}

static const char *proto_name(const sx_proto *p)
{
    return p->name == SX_NIL ? "#<fn>" : sx_sym_name(p->name);
}

/* ---- the coverage report ----------------------------------------------------------- */

typedef struct jit_note {
    char name[256];
    char hash[17];
    const char *reason; /* refused: a static token */
    double ms;          /* compiled: share of its batch's compile time */
} jit_note;

static struct {
    pthread_mutex_t mu;
    uint64_t native;   /* protos whose native code was installed */
    uint64_t assuming; /* of which code that assumes its globals */
    jit_note *refused, *compiled;
    int nrefused, ncompiled, caprefused, capcompiled;
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void note(jit_note **v, int *n, int *cap, const char *name, const char *hash,
                 const char *reason, double ms)
{
    pthread_mutex_lock(&R.mu);
    if (*n == *cap) {
        int ncap = *cap ? *cap * 2 : 64;
        jit_note *nv = realloc(*v, sizeof *nv * (size_t)ncap);
        if (!nv) {
            pthread_mutex_unlock(&R.mu);
            return;
        }
        *v = nv;
        *cap = ncap;
    }
    jit_note *e = &(*v)[(*n)++];
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->hash, sizeof e->hash, "%s", hash);
    e->reason = reason;
    e->ms = ms;
    pthread_mutex_unlock(&R.mu);
}

/* The function stays on the VM; reason is a short static token. */
static void note_refused(const char *name, const char *hash, const char *reason)
{
    note(&R.refused, &R.nrefused, &R.caprefused, name, hash, reason, 0);
}

static void note_compiled(const char *name, const char *hash, double ms)
{
    note(&R.compiled, &R.ncompiled, &R.capcompiled, name, hash, NULL, ms);
}

/* The report's NAME field: one word (whitespace and controls become '?'). */
static void put_name(FILE *f, const char *name)
{
    for (const char *c = name; *c; c++)
        fputc((unsigned char)*c <= ' ' ? '?' : *c, f);
}

int jit_write_report(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) return -errno;
    pthread_mutex_lock(&R.mu);
    fprintf(f, "functions-compiled %llu\n",
            (unsigned long long)__atomic_load_n(&R.native, __ATOMIC_RELAXED));
    fprintf(f, "functions-cached %llu\n",
            (unsigned long long)__atomic_load_n(&sx_jit_stats.cache_hits, __ATOMIC_RELAXED));
    fprintf(f, "functions-refused %d\n", R.nrefused);
    fprintf(f, "functions-failed %llu\n", (unsigned long long)sx_jit_stats.failed);
    fprintf(f, "functions-assuming %llu\n",
            (unsigned long long)__atomic_load_n(&R.assuming, __ATOMIC_RELAXED));
    fprintf(f, "functions-redefined %llu\n", (unsigned long long)sx_jit_stats.redefined);
    uint64_t native, direct;
    sx_jit_calls(&native, &direct);
    fprintf(f, "calls-native %llu\n", (unsigned long long)native);
    fprintf(f, "calls-direct %llu\n", (unsigned long long)direct);
    fprintf(f, "calls-vm %llu\n", (unsigned long long)sx_jit_stats.vm_calls);
    fprintf(f, "toplevel-forms %llu\n", (unsigned long long)sx_jit_stats.toplevel_forms);
    for (int i = 0; i < R.nrefused; i++) {
        fputs("refused ", f);
        put_name(f, R.refused[i].name);
        fprintf(f, " %s %s\n", R.refused[i].hash, R.refused[i].reason);
    }
    for (int i = 0; i < R.ncompiled; i++) {
        fputs("compile-ms ", f);
        put_name(f, R.compiled[i].name);
        fprintf(f, " %s %.3f\n", R.compiled[i].hash, R.compiled[i].ms);
    }
    pthread_mutex_unlock(&R.mu);
    int err = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && !err) err = -errno;
    return err;
}

/* Why p stays on the VM, or NULL. A test build with SXPOOL_JIT_OFF refuses
 * everything (the tests that assert on coverage must then fail). */
static const char *refusal(const sx_proto *p)
{
#ifdef SXPOOL_JIT_OFF
    (void)p;
    return "build-off";
#else
    return jit__supported(p);
#endif
}

/* ---- ABI hash, injection ---------------------------------------------------------- */

#define JIT_ABI_SIGS                                                                               \
    "call(cx,val*,i64)->val unbound(cx,val) closure(cx,val,env*)->val dict(cx,val*,i64)->val "     \
    "new_env(cx,env*,i64)->env* interrupted(cx) fallback_op(cx,val*,i64)->val "                    \
    "finish_tail(cx,val*)->val frame_env(cx,val,val*,env*)->env* "                                 \
    "guard(cx,body,val*,env*,val*,link*,val*,i64*)->val body(cx,val*,env*,val*,link*,val*)->val "  \
    "native(cx,val*,env*,val*,link*)->val prim(cx,i32,val*)->val "                                 \
    "direct(cx,val*,val...)->val pair_fl:void** fl:void** global_written(cx,val) "                 \
    "assumed()->i64"

/* Everything generated code depends on goes into the ABI hash, so native
 * code built by an incompatible build is never loaded from the cache:
 * versions and options, the link table (its version, size and the
 * signature of every entry, JIT_ABI_SIGS: keep it in step with sx_bc.h),
 * the value representation the inline paths test (tags, immediates,
 * fixnum encoding, object type codes), the layout of every structure
 * generated code reads or allocates directly and the allocator's size
 * classes its inline allocation assumes; and the format of the cache's .idx files
 * (JIT_CACHE_FORMAT), so a build never reads entries written another way. */
static void compute_abi(void)
{
    char buf[4096];
    const char *tags = getenv("SXPOOL_TEST_ABI_TAGS"); /* tests: see below */
#ifndef SXPOOL_TEST_HOOKS
    tags = NULL;
#endif
    char deftags[256];
    snprintf(deftags, sizeof deftags,
             "mask %lu obj %lu fix %lu imm %lu pair %lu nil %lu f %lu t %lu undef %lu noarg %lu "
             "fix1 %lu types prim %d vmclo %d proto %d",
             (unsigned long)SX_TAG_MASK, (unsigned long)SX_TAG_OBJ, (unsigned long)SX_TAG_FIX,
             (unsigned long)SX_TAG_IMM, (unsigned long)SX_TAG_PAIR, (unsigned long)SX_NIL,
             (unsigned long)SX_FALSE, (unsigned long)SX_TRUE, (unsigned long)SX_UNDEF,
             (unsigned long)SX_NOARG, (unsigned long)sx_mkfix(1), (int)SX_T_PRIM,
             (int)SX_T_VMCLOSURE, (int)SX_T_PROTO);
    snprintf(
        buf, sizeof buf,
        "sxpool %s|gccjit %d.%d.%d|O%d %s %s %s %s %s|link %d %zu %s|tags %s|margin %d|sym %zu %zu|"
        "cx %zu %zu %zu %zu %zu %zu %zu %zu %zu|clo %zu %zu|proto %zu %zu %zu %zu %zu %zu %zu %zu "
        "%zu "
        "%zu %zu|"
        "prim %zu %zu %zu %zu|env %zu %zu|alloc %d %d %zu %zu %zu|ops %d|idx %d|lower %d",
        SXPOOL_VERSION, gcc_jit_version_major(), gcc_jit_version_minor(),
        gcc_jit_version_patchlevel(), JIT_OPT_LEVEL, JIT_OPT_OPTION, JIT_IFCVT_OPTION,
        JIT_CALL_OPTION, JIT_INLINE_OPTION, JIT_TOOLS, SX_JIT_LINK_VERSION, sizeof(sx_jit_link),
        JIT_ABI_SIGS, tags ? tags : deftags, SX_JIT_FRAME_MARGIN, offsetof(sx_symbol, global),
        offsetof(sx_symbol, watched), offsetof(sx_ctx, interrupt), offsetof(sx_ctx, jit_tail_n),
        offsetof(sx_ctx, native_proto), offsetof(sx_ctx, jit_limit), offsetof(sx_ctx, jit_epoch),
        offsetof(sx_ctx, jit_link), offsetof(sx_ctx, jit_native_calls),
        offsetof(sx_ctx, jit_direct_calls), sizeof(sx_ctx), offsetof(sx_vmclosure, proto),
        offsetof(sx_vmclosure, env), offsetof(sx_proto, native), offsetof(sx_proto, native_d),
        offsetof(sx_proto, jit_entered), offsetof(sx_proto, nreq), offsetof(sx_proto, rest),
        offsetof(sx_proto, nslots), offsetof(sx_proto, maxstack), offsetof(sx_proto, env_size),
        offsetof(sx_proto, env_lazy), offsetof(sx_proto, k), offsetof(sx_obj, type),
        offsetof(sx_prim, fn), offsetof(sx_prim, min_args), offsetof(sx_prim, max_args),
        offsetof(sx_prim, name_sym), offsetof(sx_env, up), offsetof(sx_env, slots), (int)SX_T_ENV,
        SX_FL_GRANULES, sizeof(sx_pair), sizeof(sx_vmclosure), sx__granules(sizeof(sx_env)),
        BC__COUNT, JIT_CACHE_FORMAT, JIT_LOWER_VERSION);
    uint64_t h = 14695981039346656037ull;
    for (const char *c = buf; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    snprintf(J.abi, sizeof J.abi, "%016llx", (unsigned long long)h);
}

/* SXPOOL_INJECT=KIND:FUNCTION[,KIND:FUNCTION...] (tests only: compiled in
 * only with SXPOOL_TEST_HOOKS, as in sxpool-test; the release binary
 * ignores the variable). */
static void parse_inject(void)
{
#ifdef SXPOOL_TEST_HOOKS
    const char *spec = getenv("SXPOOL_INJECT");
    if (!spec || !*spec) return;
    char *copy = strdup(spec), *save = NULL;
    if (!copy) return;
    for (char *item = strtok_r(copy, ",", &save); item && J.ninject < JIT_MAX_INJECT;
         item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':');
        if (!colon) continue;
        *colon = 0;
        int kind = !strcmp(item, "wrong-prim-arg")  ? JIT_INJECT_WRONG_PRIM_ARG
                   : !strcmp(item, "null-deref")    ? JIT_INJECT_NULL_DEREF
                   : !strcmp(item, "ice")           ? JIT_INJECT_ICE
                   : !strcmp(item, "compile-error") ? JIT_INJECT_COMPILE_ERROR
                   : !strcmp(item, "wrong-sum")     ? JIT_INJECT_WRONG_SUM
                                                    : 0;
        if (!kind) {
            jlog("SXPOOL_INJECT: unknown fault kind '%s' ignored", item);
            continue;
        }
        J.inject[J.ninject].kind = kind;
        snprintf(J.inject[J.ninject].name, sizeof J.inject[0].name, "%s", colon + 1);
        J.ninject++;
        jlog("test fault injection: %s in %s", item, colon + 1);
    }
    free(copy);
#endif
}

static int inject_for(const char *name)
{
    int k = 0;
    for (int i = 0; i < J.ninject; i++)
        if (!strcmp(J.inject[i].name, name)) k |= J.inject[i].kind;
    return k;
}

/* ---- blacklist ------------------------------------------------------------------- */

static bool blacklisted(const char *name, const char *hash)
{
    for (int i = 0; i < J.nbl; i++)
        if (!strcmp(J.bl_name[i], name) && (!J.bl_hash[i][0] || !strcmp(J.bl_hash[i], hash)))
            return true;
    return false;
}

/* The globals p's code assumes are watched by one more (delta 1) or one
 * fewer (-1) function. On the evaluating thread. @return false if they
 * are not (no memory) */
static bool watch(sx_proto *p, int delta)
{
    jit_assume *a = calloc((size_t)p->ncode + 1, sizeof *a);
    int n = a ? jit__assumptions(p, a, p->ncode + 1, NULL, NULL) : -1;
    for (int i = 0; i < n; i++)
        sx_sym(p->k[a[i].k])->watched += (uint32_t)delta;
    free(a);
    return n >= 0;
}

/* Called with J.mu held. */
static void drop_native(sx_proto *p, int state)
{
    /* the direct entry first: callers find it without looking at native */
    __atomic_store_n(&p->native_d, NULL, __ATOMIC_RELEASE);
    __atomic_store_n(&p->native, NULL, __ATOMIC_RELEASE);
    p->jit_state = state;
    if (p->jit_assumes) {
        p->jit_assumes = 0;
        watch(p, -1);
    }
}

/* p's code assumes a global that no longer holds what it assumed: p is
 * to be compiled again, assuming nothing. */
static void assumption_broken(sx_proto *p)
{
    p->jit_checked = 1;
    sx_jit_stats.redefined++;
}

/* sx_set_global wrote a watched global: native code that assumed its old
 * value is dropped, and the function compiled again (from its next call
 * it runs on the VM until its new code is installed). No such code is
 * running: it calls only itself and inline built-ins, none of which
 * writes a global. */
static void global_hook(sx_symbol *s)
{
    pthread_mutex_lock(&J.mu);
    for (int i = 0; i < J.nn; i++) {
        sx_proto *p = J.natives[i];
        if (p->jit_state != SX_JIT_NATIVE || !p->jit_assumes || jit__assumptions_hold(p)) continue;
        drop_native(p, SX_JIT_NONE);
        assumption_broken(p);
        if (verbose())
            jlog("native code of %s dropped: the global %s it assumed was redefined", proto_name(p),
                 sx_sym_name(sx_from_ptr(s)));
    }
    pthread_mutex_unlock(&J.mu);
}

static void blacklist_hook(const char *fn, const char *hash)
{
    pthread_mutex_lock(&J.mu);
    if (!blacklisted(fn, hash ? hash : "")) {
        void *a = realloc(J.bl_name, sizeof *J.bl_name * (size_t)(J.nbl + 1));
        if (a) J.bl_name = a;
        void *b = realloc(J.bl_hash, sizeof *J.bl_hash * (size_t)(J.nbl + 1));
        if (b) J.bl_hash = b;
        if (a && b) {
            snprintf(J.bl_name[J.nbl], sizeof J.bl_name[0], "%s", fn);
            snprintf(J.bl_hash[J.nbl], sizeof J.bl_hash[0], "%s", hash ? hash : "");
            J.nbl++;
        }
    }
    int dropped = 0;
    for (int i = 0; i < J.nn; i++) {
        sx_proto *p = J.natives[i];
        if (p->jit_state == SX_JIT_NATIVE && !strcmp(proto_name(p), fn) &&
            (!hash || !*hash || !strcmp(sx_proto_hash(p), hash))) {
            drop_native(p, SX_JIT_BLACKLISTED);
            sx_jit_stats.blacklisted++;
            note_refused(proto_name(p), p->hash, "blacklisted");
            dropped++;
        }
    }
    pthread_mutex_unlock(&J.mu);
    if (dropped) jlog("blacklisted %s: native code dropped (%d)", fn, dropped);
}

static void exclude_hook(void)
{
    pthread_mutex_lock(&J.mu);
    for (int i = 0; i < J.nn; i++) {
        sx_proto *p = J.natives[i];
        if (p->jit_state == SX_JIT_NATIVE && sx_jit_excluded(proto_name(p))) {
            drop_native(p, SX_JIT_EXCLUDED);
            sx_jit_stats.excluded++;
            note_refused(proto_name(p), p->hash, "excluded");
        }
    }
    pthread_mutex_unlock(&J.mu);
}

/* ---- registry ---------------------------------------------------------------------- */

static void register_region(const sx_proto *p, void *fn)
{
    Dl_info info;
    const ElfW(Sym) *sym = NULL;
    size_t size = 4096;
    if (dladdr1(fn, &info, (void **)&sym, RTLD_DL_SYMENT) && sym && sym->st_size)
        size = sym->st_size;
    int i = J.nregions;
    if (i >= JIT_MAX_REGIONS) return;
    jit_region *r = &J.regions[i];
    r->lo = (uintptr_t)fn;
    r->hi = (uintptr_t)fn + size;
    r->p = p;
    snprintf(r->name, sizeof r->name, "%s", proto_name(p));
    snprintf(r->hash, sizeof r->hash, "%s", p->hash);
    __atomic_store_n(&J.nregions, i + 1, __ATOMIC_RELEASE);
}

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    if (!cap) return;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = src[i];
    dst[i] = 0;
}

int jit_lookup_pc(uintptr_t pc, char *name, size_t name_cap, char *hash, size_t hash_cap)
{
    int n = __atomic_load_n(&J.nregions, __ATOMIC_ACQUIRE);
    const jit_region *hit = NULL;
    for (int i = 0; i < n && !hit; i++)
        if (pc >= J.regions[i].lo && pc < J.regions[i].hi) hit = &J.regions[i];
    int found = hit ? 1 : 2;
    if (!hit && sx_cur && sx_cur->native_proto)
        for (int i = 0; i < n && !hit; i++)
            if (J.regions[i].p == sx_cur->native_proto) hit = &J.regions[i];
    if (!hit) return 0;
    copy_str(name, name_cap, hit->name);
    copy_str(hash, hash_cap, hit->hash);
    return found;
}

/* Called with J.mu held, on any thread: hands fn to the evaluating thread,
 * which installs it at its next poll (only that thread allocates). */
static void deliver(sx_proto *p, void *fn, void **more, bool from_cache, uint64_t hot_us)
{
    if (J.ndone == J.donecap) {
        int ncap = J.donecap ? J.donecap * 2 : 64;
        void *n = realloc(J.done, sizeof *J.done * (size_t)ncap);
        if (!n) return;
        J.done = n;
        J.donecap = ncap;
    }
    struct jit_done *d = &J.done[J.ndone++];
    *d = (struct jit_done){.p = p, .fn = fn, .from_cache = from_cache, .hot_us = hot_us};
    memcpy(d->more, more, sizeof d->more);
    __atomic_store_n(&J.pending, J.ndone, __ATOMIC_RELEASE);
}

static bool install(sx_proto *p, void *fn, void **more);

/* On the evaluating thread: installs what the compile thread delivered. */
static void poll_done(void)
{
    if (!__atomic_load_n(&J.pending, __ATOMIC_ACQUIRE)) return;
    pthread_mutex_lock(&J.mu);
    uint64_t t = verbose() ? now_us() : 0;
    for (int i = 0; i < J.ndone; i++) {
        if (t && J.done[i].hot_us)
            jlog("installed %s %s %.1f ms after it got hot, after %u calls",
                 proto_name(J.done[i].p), J.done[i].p->hash, (double)(t - J.done[i].hot_us) / 1e3,
                 J.done[i].p->calls);
        if (!install(J.done[i].p, J.done[i].fn, J.done[i].more)) continue;
        if (J.done[i].from_cache)
            sx_jit_stats.cache_hits++;
        else
            sx_jit_stats.compiled++;
    }
    J.ndone = 0;
    __atomic_store_n(&J.pending, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&J.mu);
}

/* Called with J.mu held, on the evaluating thread: makes p run its native
 * code from the next call. @return false if it does not */
static bool install(sx_proto *p, void *fn, void **more)
{
    if (p->jit_state != SX_JIT_QUEUED) return false; /* blacklisted or excluded meanwhile */
    if (more[2] && (!jit__assumptions_hold(p) || !watch(p, 1))) {
        /* its code assumes globals that changed since it was compiled (or
         * that could not be watched) */
        p->jit_state = SX_JIT_NONE;
        assumption_broken(p);
        if (verbose())
            jlog("native code of %s not installed: a global it assumes was redefined",
                 proto_name(p));
        return false;
    }
    register_region(p, fn);
    for (int i = 0; i < JIT_MORE; i++)
        if (more[i]) register_region(p, more[i]);
    if (J.nn == J.ncap) {
        int ncap = J.ncap ? J.ncap * 2 : 256;
        sx_proto **n = GC_MALLOC_UNCOLLECTABLE(sizeof *n * (size_t)ncap);
        if (!n) return false;
        if (J.nn) memcpy(n, J.natives, sizeof *n * (size_t)J.nn);
        if (J.natives) GC_FREE(J.natives);
        J.natives = n;
        J.ncap = ncap;
    }
    J.natives[J.nn++] = p;
    __atomic_add_fetch(&R.native, 1, __ATOMIC_RELAXED);
    p->jit_state = SX_JIT_NATIVE;
    if (more[2]) { /* watched above */
        p->jit_assumes = 1;
        __atomic_add_fetch(&R.assuming, 1, __ATOMIC_RELAXED);
    }
    /* more[0] is the direct entry (entries()): present exactly when the
     * lowering gave the function one */
    __atomic_store_n(&p->native_d, more[0], __ATOMIC_RELEASE);
    __atomic_store_n(&p->native, fn, __ATOMIC_RELEASE);
    return true;
}

/* ---- the code cache -------------------------------------------------------------- */

static void idx_path(char *dst, size_t cap, const char *hash, int inject)
{
    if (inject)
        snprintf(dst, cap, "%s/%s-i%d.idx", J.cache, hash, inject);
    else
        snprintf(dst, cap, "%s/%s.idx", J.cache, hash);
}

/* Writes bytes to path through a temporary name and a rename. */
static int write_atomic(const char *path, const char *bytes, size_t len)
{
    char tmp[4400];
    if (snprintf(tmp, sizeof tmp, "%s.tmp-%d-%lu", path, (int)getpid(), ++J.tmp_counter) >=
        (int)sizeof tmp)
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    ssize_t w = write(fd, bytes, len);
    int err = (w == (ssize_t)len) ? 0 : -EIO;
    if (close(fd) != 0 && !err) err = -errno;
    if (!err && rename(tmp, path) != 0) err = -errno;
    if (err) unlink(tmp);
    return err;
}

/* A cache index entry naming no file: some process of this ABI failed to
 * compile the function, so none tries again (it stays on the VM pool-wide). */
#define CACHE_FAILED "!failed"

/* Why the file open on fd may not be trusted with code, or NULL: it must be
 * a regular file owned by this process's effective user that nobody else
 * can write. */
static const char *untrusted_file(int fd, char *why, size_t cap)
{
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, cap, "fstat: %s", strerror(errno));
        return why;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, cap, "not a regular file (mode %06o)", (unsigned)st.st_mode);
        return why;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, cap, "owned by uid %u, not by this process's uid %u", (unsigned)st.st_uid,
                 (unsigned)geteuid());
        return why;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, cap, "writable by group or others (mode %04o)", (unsigned)st.st_mode & 07777);
        return why;
    }
    return NULL;
}

/* The SHA-256 of everything the file open on fd holds, in hex.
 * @return 0 or -errno */
static int hash_fd(int fd, char hex[JIT_SHA_HEX])
{
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    uint8_t buf[16384];
    for (off_t off = 0;;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -errno;
        if (n == 0) break;
        sha256_update(&ctx, (size_t)n, buf);
        off += n;
    }
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    for (int i = 0; i < SHA256_DIGEST_SIZE; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    return 0;
}

/* dlopen of the file open on fd, through /proc/self/fd/N, so the object
 * loaded is the one whose bytes were checked whatever becomes of its name.
 * glibc returns the object already loaded under the same name without
 * opening anything, and descriptor numbers are reused: the name is made
 * unique with a no-op prefix spelling a load counter in binary ("./" for
 * a one bit, "/" for a zero, lowest bit first, ending at the top one bit),
 * "/proc/self/fd/.//./7" for the fifth load. Any thread. */
static void *dlopen_fd(int fd)
{
    static unsigned long loads;
    unsigned long k = __atomic_add_fetch(&loads, 1, __ATOMIC_RELAXED);
    char path[256];
    int n = snprintf(path, sizeof path, "/proc/self/fd/");
    for (; k; k >>= 1)
        n += snprintf(path + n, sizeof path - (size_t)n, "%s", (k & 1) ? "./" : "/");
    snprintf(path + n, sizeof path - (size_t)n, "%d", fd);
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* Logs once per process per .idx that the entry was not used and why. */
static void reject(const char *idx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reject(const char *idx, const char *fmt, ...)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static char(*seen)[64];
    static int nseen, capseen;
    const char *base = strrchr(idx, '/');
    base = base ? base + 1 : idx;
    pthread_mutex_lock(&mu);
    bool first = true;
    for (int i = 0; i < nseen && first; i++)
        if (!strncmp(seen[i], base, sizeof seen[i] - 1)) first = false;
    if (first && nseen == capseen) {
        int cap = capseen ? 2 * capseen : 16;
        char(*grown)[64] = realloc(seen, sizeof *seen * (size_t)cap);
        if (grown) seen = grown, capseen = cap;
    }
    if (first && nseen < capseen) snprintf(seen[nseen++], sizeof seen[0], "%s", base);
    pthread_mutex_unlock(&mu);
    if (!first) return;
    char why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    jlog("ignoring code cache entry %s: %s; compiling instead", idx, why);
}

/* Parses an .idx entry "SO-NAME SHA256-HEX\n". @return 0, or -1 for an
 * entry of another format (an older one recorded no hash) */
static int parse_entry(const char *entry, char *so, size_t so_cap, char hex[JIT_SHA_HEX])
{
    const char *sp = strchr(entry, ' ');
    if (!sp || sp == entry || (size_t)(sp - entry) >= so_cap) return -1;
    memcpy(so, entry, (size_t)(sp - entry));
    so[sp - entry] = 0;
    if (strchr(so, '/')) return -1; /* entries name files in this directory only */
    const char *h = sp + 1;
    for (int i = 0; i < JIT_SHA_HEX - 1; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f'))) return -1;
    if (h[JIT_SHA_HEX - 1] != '\n' || h[JIT_SHA_HEX] != 0) return -1;
    memcpy(hex, h, JIT_SHA_HEX - 1);
    hex[JIT_SHA_HEX - 1] = 0;
    return 0;
}

/* The shared objects this process has checked and loaded, by file name
 * and SHA-256: a batch's .so holds many functions, and each of their .idx
 * entries names it. An entry naming an object loaded here with the same
 * hash is served from the handle already loaded (the bytes that were
 * checked, mapped once), so the object is read, hashed and dlopen'ed once
 * per process, not once per function. The .idx itself is still opened and
 * checked at every lookup. Any thread. */
#define JIT_MAX_LOADED 1024
static struct {
    pthread_mutex_t mu;
    struct jit_loaded {
        char so[64];
        char sha[JIT_SHA_HEX];
        void *h;
    } v[JIT_MAX_LOADED];
    int n;
} LD = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *loaded_find(const char *so, const char *sha)
{
    void *h = NULL;
    pthread_mutex_lock(&LD.mu);
    for (int i = 0; i < LD.n && !h; i++)
        if (!strcmp(LD.v[i].so, so) && !strcmp(LD.v[i].sha, sha)) h = LD.v[i].h;
    pthread_mutex_unlock(&LD.mu);
    return h;
}

static void loaded_add(const char *so, const char *sha, void *h)
{
    if (strlen(so) >= sizeof LD.v[0].so) return; /* not remembered: checked again next time */
    pthread_mutex_lock(&LD.mu);
    if (LD.n < JIT_MAX_LOADED) {
        struct jit_loaded *e = &LD.v[LD.n++];
        snprintf(e->so, sizeof e->so, "%s", so);
        snprintf(e->sha, sizeof e->sha, "%s", sha);
        e->h = h;
    }
    pthread_mutex_unlock(&LD.mu);
}

/* Opens path to be checked and loaded: never through a symbolic link. */
static int open_nofollow(const char *path)
{
    return open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
}

/* The generic entry `symbol` in the object h, or NULL; more[] is set to
 * the other functions of its code, the direct entry `symbol_d`, the body
 * `symbol_b`, `symbol_a` and `symbol_c` (jit_lower.c), or NULL
 * where it has none. */
static void *entries(void *h, const char *symbol, void **more)
{
    char d[80];
    for (int i = 0; i < JIT_MORE; i++) {
        snprintf(d, sizeof d, "%s_%c", symbol, "dbac"[i]);
        more[i] = h ? dlsym(h, d) : NULL;
    }
    return h ? dlsym(h, symbol) : NULL;
}

/* The native function for hash from the cache, or NULL (more[]: as
 * entries()). *failed is set when the cache records that the function does
 * not compile. */
static void *cache_lookup(const char *hash, const char *symbol, int inject, bool *failed,
                          void **more)
{
    *failed = false;
    for (int i = 0; i < JIT_MORE; i++)
        more[i] = NULL;
    if (!J.cache[0]) return NULL;
    char idx[4200], entry[512], so[256], want[JIT_SHA_HEX], got[JIT_SHA_HEX], path[4400];
    char why[256];
    idx_path(idx, sizeof idx, hash, inject);
    int fd = open_nofollow(idx);
    if (fd < 0) {
        if (errno == ELOOP) reject(idx, "it is a symbolic link");
        return NULL;
    }
    if (untrusted_file(fd, why, sizeof why)) {
        close(fd);
        reject(idx, "the .idx is %s", why);
        return NULL;
    }
    ssize_t n = read(fd, entry, sizeof entry - 1);
    close(fd);
    if (n <= 0) return NULL;
    entry[n] = 0;
    if (!strcmp(entry, CACHE_FAILED)) {
        *failed = true;
        return NULL;
    }
    if (parse_entry(entry, so, sizeof so, want) != 0) return NULL; /* a miss */
    void *h = loaded_find(so, want);
    if (h) return entries(h, symbol, more);
    snprintf(path, sizeof path, "%s/%s", J.cache, so);
    fd = open_nofollow(path);
    if (fd < 0) {
        if (errno == ELOOP)
            reject(idx, "%s is a symbolic link", so);
        else if (errno != ENOENT)
            reject(idx, "cannot open %s: %s", so, strerror(errno));
        return NULL;
    }
    int rc;
    if (untrusted_file(fd, why, sizeof why))
        reject(idx, "%s is %s", so, why);
    else if ((rc = hash_fd(fd, got)) != 0)
        reject(idx, "cannot read %s: %s", so, strerror(-rc));
    else if (strcmp(got, want) != 0)
        reject(idx, "the SHA-256 of %s is %s, not %s as recorded", so, got, want);
    else if (!(h = dlopen_fd(fd)))
        reject(idx, "cannot load %s: %s", so, dlerror());
    else
        loaded_add(so, got, h);
    close(fd);
    return entries(h, symbol, more);
}

/* ---- compiling a batch ---------------------------------------------------------------- */

static void job_init(jit_job *j, sx_proto *p)
{
    memset(j, 0, sizeof *j);
    j->p = p;
    snprintf(j->name, sizeof j->name, "%s", proto_name(p));
    snprintf(j->hash, sizeof j->hash, "%s", sx_proto_hash(p));
    j->inject = inject_for(j->name) | (p->jit_checked ? JIT_CHECKED : 0);
    snprintf(j->symbol, sizeof j->symbol, "sx_%s%s", j->hash, j->inject ? "_inj" : "");
}

static gcc_jit_context *new_context(void)
{
    gcc_jit_context *c = gcc_jit_context_acquire();
    if (!c) return NULL;
    gcc_jit_context_set_int_option(c, GCC_JIT_INT_OPTION_OPTIMIZATION_LEVEL, JIT_OPT_LEVEL);
    gcc_jit_context_add_command_line_option(c, JIT_OPT_OPTION);
    gcc_jit_context_add_command_line_option(c, JIT_IFCVT_OPTION);
    gcc_jit_context_add_command_line_option(c, JIT_CALL_OPTION);
    gcc_jit_context_add_command_line_option(c, JIT_INLINE_OPTION);
    gcc_jit_context_set_bool_allow_unreachable_blocks(c, 1);
    /* libgccjit is asked for assembly only, which runs no driver; should
     * it ever run one, it is a process of its own, never the embedded
     * driver, which putenv()s COLLECT_GCC, COMPILER_PATH and more on this
     * thread and unsetenv()s them after, reallocating and shifting environ
     * while the evaluating thread may be in getenv() (the collector reads
     * variables while it collects): a crash in getenv, seen in the
     * differential test at the default threshold. */
    gcc_jit_context_set_bool_use_external_driver(c, 1);
    return c;
}

/* Starts argv (argv[0] found through PATH), its standard input in_fd
 * (the process's own if in_fd is -1), its output and errors on this
 * process's stderr, environ only read. @return its pid, or -1 with why set */
static pid_t spawn_tool(char *const argv[], int in_fd, char *why, size_t cap)
{
    extern char **environ;
    pid_t pid;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_fd >= 0) posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
    posix_spawn_file_actions_adddup2(&fa, 2, 1); /* stdout is the program's */
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        snprintf(why, cap, "cannot run %s: %s", argv[0], strerror(rc));
        return -1;
    }
    return pid;
}

/* Waits for the tool pid (named name) to end. @return 0 if it exited with
 * status 0, or -1 with why set */
static int wait_tool(pid_t pid, const char *name, char *why, size_t cap)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            snprintf(why, cap, "waiting for %s: %s", name, strerror(errno));
            return -1;
        }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    snprintf(why, cap, "%s failed (%s %d)", name, WIFEXITED(st) ? "status" : "signal",
             WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -1;
}

/* Runs argv to completion, as spawn_tool. @return 0, or -1 with why set */
static int run_tool(char *const argv[], char *why, size_t cap)
{
    pid_t pid = spawn_tool(argv, -1, why, cap);
    return pid < 0 ? -1 : wait_tool(pid, argv[0], why, cap);
}

/* The assembler of a batch, started before libgccjit compiles where a CPU
 * is free for it (as_early) so that its start-up (an exec and the dynamic
 * link of binutils' libraries, about 4.5 ms) overlaps the compile: it reads the assembly from a
 * pipe on its standard input (GNU as reads standard input when given no file; the object is the
 * same byte for byte as from the file, whose name it never records: the assembly's .file directive
 * names it). */
typedef struct jit_as {
    pid_t pid;     /* -1 if it could not be started */
    int fd;        /* the write end of its standard input, or -1 */
    char why[256]; /* why it could not be started */
} jit_as;

/* Starts `as --64 -o obj_path` reading a pipe (JIT_AS_ARGS). A failure is
 * kept in a->why for as_finish, which reports it after the compile as
 * before (a compile error comes first). */
static void as_start(jit_as *a, const char *obj_path)
{
    char *argv[] = {JIT_AS_ARGS, (char *)obj_path, NULL};
    int p[2];
    a->pid = -1;
    a->fd = -1;
    a->why[0] = 0;
    /* close-on-exec: no other program this process starts holds the write
     * end, so closing it is the end of the assembler's input */
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(a->why, sizeof a->why, "cannot run as: pipe: %s", strerror(errno));
        return;
    }
    a->pid = spawn_tool(argv, p[0], a->why, sizeof a->why);
    close(p[0]);
    if (a->pid < 0)
        close(p[1]);
    else
        a->fd = p[1];
}

/* Whether to start the assembler before the compile rather than after:
 * only when its start-up can run on a core of its own. On the compile
 * thread the evaluating thread runs too (it made the functions hot), so
 * that takes three CPUs; compiling before the first call (threshold 0)
 * the evaluating thread waits, so two. Measured on two CPUs at the default
 * threshold, starting it early made the first batch of bench/lang/fib.sx
 * 1.5-3 ms slower (the compile lost more than the start-up took), and 2-4
 * ms faster at threshold 0. */
static bool as_early(void)
{
#ifdef SXPOOL_TEST_HOOKS
    const char *force = getenv("SXPOOL_TEST_AS_EARLY"); /* tests: either order on any machine */
    if (force && *force) return *force == '1';
#endif
    static int ncpu;
    if (!ncpu) {
        cpu_set_t set;
        int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
        __atomic_store_n(&ncpu, n > 0 ? n : 1, __ATOMIC_RELAXED);
    }
    bool compile_thread = J.thread_started && pthread_equal(pthread_self(), J.thread);
    return __atomic_load_n(&ncpu, __ATOMIC_RELAXED) >= (compile_thread ? 3 : 2);
}

/* Writes the file at path to fd, whose reader may have gone: SIGPIPE is
 * blocked on this thread for the writes and one it raised is taken back,
 * so a dying assembler cannot end the process (eval does not ignore
 * SIGPIPE; workers do). @return 0, or -1 with why set */
static int copy_to_pipe(const char *path, int fd, char *why, size_t cap)
{
    int in = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0) {
        snprintf(why, cap, "cannot read the assembly: %s", strerror(errno));
        return -1;
    }
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    char buf[16384];
    int rc = 0, werr = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(why, cap, "cannot read the assembly: %s", strerror(errno));
            rc = -1;
        }
        if (n <= 0) break;
        for (ssize_t off = 0; off < n && !werr;) {
            ssize_t w = write(fd, buf + off, (size_t)(n - off));
            if (w > 0)
                off += w;
            else if (w < 0 && errno != EINTR)
                werr = errno;
        }
        if (werr) {
            snprintf(why, cap, "writing to as: %s", strerror(werr));
            rc = -1;
            break;
        }
    }
    close(in);
    if (werr == EPIPE && !sigismember(&old, SIGPIPE)) {
        /* not blocked before, so the one pending is ours */
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

/* Gives the started assembler the assembly at asm_path and waits for it;
 * obj_path is removed unless it succeeds. @return 0, or -1 with why set
 * (why the assembler could not start, or failed) */
static int as_finish(jit_as *a, const char *asm_path, const char *obj_path, char *why, size_t cap)
{
    if (a->pid < 0) {
        snprintf(why, cap, "%s", a->why);
        return -1;
    }
    char copy_why[256];
    int copied = copy_to_pipe(asm_path, a->fd, copy_why, sizeof copy_why);
    close(a->fd);
    int rc = wait_tool(a->pid, "as", why, cap);
    a->fd = a->pid = -1;
    if (rc == 0 && copied != 0) {
        snprintf(why, cap, "%s", copy_why);
        rc = -1;
    }
    if (rc != 0) unlink(obj_path);
    return rc;
}

/* Ends the assembler started early, if any, when there is nothing to
 * assemble (the compile failed): closing the pipe ends its input, so it assembles
 * nothing and exits (a signal is no choice: a worker may signal only
 * itself); it is reaped and the empty object it wrote removed. */
static void as_abandon(jit_as *a, const char *obj_path)
{
    if (a->pid < 0) return;
    close(a->fd);
    char why[256];
    wait_tool(a->pid, "as", why, sizeof why);
    a->fd = a->pid = -1;
    unlink(obj_path);
}

/* Assembles asm_path into obj_path with the assembler a started, and
 * links that into the shared object so_path (JIT_LD_ARGS); removes
 * asm_path and obj_path. @return 0, or -1 with why set */
static int assemble_and_link(jit_as *a, const char *asm_path, const char *obj_path,
                             const char *so_path, char *why, size_t cap)
{
    char *ld[] = {JIT_LD_ARGS, (char *)so_path, (char *)obj_path, NULL};
    int rc = as_finish(a, asm_path, obj_path, why, cap);
    if (rc == 0) rc = run_tool(ld, why, cap);
    unlink(asm_path);
    unlink(obj_path);
    return rc;
}

/* Loads the shared object libgccjit just wrote at path, the way a cached
 * one is loaded: from a descriptor opened without following links, on a
 * regular file of this user (made 0700: nobody else may write it), whose
 * bytes are hashed into sha (for the .idx) and then loaded through that
 * descriptor. @return the handle, or NULL with *err set (why or dlerror) */
static void *load_output(const char *path, char sha[JIT_SHA_HEX], char *why, size_t cap,
                         const char **err)
{
    int fd = open_nofollow(path), rc;
    if (fd < 0) {
        snprintf(why, cap, "cannot open the compiled object: %s", strerror(errno));
        *err = why;
        return NULL;
    }
    struct stat st;
    void *h = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid())
        snprintf(why, cap, "the compiled object is not a regular file of this user");
    else if (fchmod(fd, 0700) != 0)
        snprintf(why, cap, "cannot make the compiled object private: %s", strerror(errno));
    else if ((rc = hash_fd(fd, sha)) != 0)
        snprintf(why, cap, "cannot read the compiled object: %s", strerror(-rc));
    else if (!(h = dlopen_fd(fd)))
        snprintf(why, cap, "%s", dlerror());
    close(fd);
    if (!h) *err = why;
    return h;
}

/* Compiles jobs[0..n) into one shared object and installs what compiled.
 * Runs on the compile thread, or the evaluating one with threshold 0. */
static bool native_ready(void);
static void fail_unavailable(jit_job *jobs, int n);

static void compile_batch(jit_job *jobs, int n)
{
    if (n == 0) return;
    if (!native_ready()) {
        fail_unavailable(jobs, n);
        return;
    }
    const char *names[JIT_MAX_BATCH] = {0}, *hashes[JIT_MAX_BATCH] = {0};
    for (int i = 0; i < n; i++) {
        names[i] = jobs[i].name;
        hashes[i] = jobs[i].hash;
    }
    if (J.hooks.batch_begin) J.hooks.batch_begin(J.hooks.arg, names, hashes, n);
    for (int i = 0; i < n; i++)
        if (jobs[i].inject & JIT_INJECT_ICE) {
            jlog("test fault injection: internal compiler error while compiling %s", jobs[i].name);
            exit(4);
        }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t u0 = now_us(), u_lower = 0, u_cc = 0, u_as = 0, u_load = 0, kids0 = 0, kids1 = 0;
    uint64_t cpu0 = verbose() ? cpu_us(&kids0) : 0;
    gcc_jit_context *c = new_context();
    int lowered = 0;
    for (int i = 0; c && i < n; i++) {
        /* protos with the same code (and injection) share one function */
        int same = -1;
        for (int k = 0; k < i && same < 0; k++)
            if (!strcmp(jobs[k].symbol, jobs[i].symbol)) same = k;
        if (same >= 0) {
            jobs[i].ok = jobs[same].ok;
            continue;
        }
        jobs[i].ok = jit__lower(c, &jobs[i]) == 0;
        lowered += jobs[i].ok;
    }
    char dir[4096], so_name[64], so_path[8200], asm_path[8220], obj_path[8220], tool_why[256];
    snprintf(dir, sizeof dir, "%s",
             J.cache[0] ? J.cache : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp"));
    snprintf(so_name, sizeof so_name, "b%s-%d-%lu.so", jobs[0].hash, (int)getpid(),
             ++J.tmp_counter);
    snprintf(so_path, sizeof so_path, "%s/%s", dir, so_name);
    snprintf(asm_path, sizeof asm_path, "%s.s", so_path);
    snprintf(obj_path, sizeof obj_path, "%s.o", so_path);
    const char *err = NULL;
    bool tool_failed = false; /* as or ld failed: not a verdict on the functions */
    u_lower = now_us();
    uint64_t u_spawn = 0; /* starting as, charged to assembling */
    if (c && lowered) {
        jit_as as = {.pid = -1, .fd = -1};
        bool early = as_early();
        if (early) as_start(&as, obj_path);
        u_spawn = now_us() - u_lower;
        gcc_jit_context_compile_to_file(c, GCC_JIT_OUTPUT_KIND_ASSEMBLER, asm_path);
        err = gcc_jit_context_get_first_error(c);
        u_cc = now_us();
        if (err) {
            as_abandon(&as, obj_path);
            unlink(asm_path);
        } else {
            if (!early) as_start(&as, obj_path);
            if (assemble_and_link(&as, asm_path, obj_path, so_path, tool_why, sizeof tool_why)) {
                err = tool_why;
                tool_failed = true;
            }
        }
    } else
        u_cc = now_us();
    u_as = now_us();
    if (err && n > 1) {
        /* isolate the function the compiler rejects */
        gcc_jit_context_release(c);
        if (J.hooks.batch_end) J.hooks.batch_end(J.hooks.arg);
        for (int i = 0; i < n; i++)
            compile_batch(&jobs[i], 1);
        return;
    }
    void *h = NULL;
    char sha[JIT_SHA_HEX] = "", why[256];
    if (!err && lowered) h = load_output(so_path, sha, why, sizeof why, &err);
    if (h && J.cache[0]) loaded_add(so_name, sha, h);
    u_load = now_us();
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    __atomic_add_fetch(&compile_us_total, (uint64_t)(ms * 1000), __ATOMIC_RELAXED);
    int got[JIT_MAX_BATCH], ngot = 0; /* jobs that got code */
    bool strict_exit = false;
    pthread_mutex_lock(&J.mu);
    for (int i = 0; i < n; i++) {
        jit_job *j = &jobs[i];
        if (!j->ok) {
            if (j->p->jit_state == SX_JIT_QUEUED) j->p->jit_state = SX_JIT_UNSUPPORTED;
            sx_jit_stats.unsupported++;
            const char *why = jit__supported(j->p);
            note_refused(j->name, j->hash, why ? why : "lowering");
            continue;
        }
        void *more[JIT_MORE];
        void *fn = entries(h, j->symbol, more);
        if (!fn) {
            if (j->p->jit_state == SX_JIT_QUEUED) j->p->jit_state = SX_JIT_FAILED;
            sx_jit_stats.failed++;
            jlog("unable to compile %s (%s): %s", j->name, j->hash, err ? err : "symbol missing");
            if (J.cache[0] && !tool_failed) {
                char idx[4200];
                idx_path(idx, sizeof idx, j->hash, j->inject);
                write_atomic(idx, CACHE_FAILED, strlen(CACHE_FAILED));
            }
            /* tests: a function the JIT should compile but cannot is a bug */
            if (getenv("SXPOOL_JIT_STRICT")) strict_exit = true;
            continue;
        }
        deliver(j->p, fn, more, false, j->hot_us);
        got[ngot++] = i;
        if (J.cache[0]) {
            char idx[4200];
            idx_path(idx, sizeof idx, j->hash, j->inject);
            char entry[sizeof so_name + JIT_SHA_HEX + 2];
            int len = snprintf(entry, sizeof entry, "%s %s\n", so_name, sha);
            write_atomic(idx, entry, (size_t)len);
        }
    }
    pthread_mutex_unlock(&J.mu);
    /* each function that got code is charged an equal share of the batch
     * (context, lowering, compiling, loading) */
    for (int i = 0; i < ngot; i++)
        note_compiled(jobs[got[i]].name, jobs[got[i]].hash, ms / ngot);
    if (c) gcc_jit_context_release(c);
    if (!J.cache[0]) unlink(so_path);
    if (verbose()) {
        uint64_t first = 0;
        for (int i = 0; i < n; i++)
            if (jobs[i].hot_us && (!first || jobs[i].hot_us < first)) first = jobs[i].hot_us;
        uint64_t cpu1 = cpu_us(&kids1);
        jlog("batch of %d (%d lowered) in %.1f ms: waited %.1f, lowering %.1f, compiling %.1f, "
             "assembling and linking %.1f, loading %.1f, cache and delivery %.1f ms; "
             "cpu %.1f ms, child processes %.1f ms",
             n, lowered, ms, first && first < u0 ? (double)(u0 - first) / 1e3 : 0.0,
             (double)(u_lower - u0) / 1e3, (double)(u_cc - u_lower - u_spawn) / 1e3,
             (double)(u_as - u_cc + u_spawn) / 1e3, (double)(u_load - u_as) / 1e3,
             (double)(now_us() - u_load) / 1e3, (double)(cpu1 - cpu0) / 1e3,
             (double)(kids1 - kids0) / 1e3);
    }
    if (J.hooks.batch_end) J.hooks.batch_end(J.hooks.arg);
    if (strict_exit) {
        jlog("SXPOOL_JIT_STRICT: exiting");
        exit(3);
    }
}

/* ---- the compile thread ------------------------------------------------------------------ */

static void *compile_thread(void *arg)
{
    (void)arg;
    native_ready(); /* load libgccjit now, while the program starts */
    jit_job *jobs = calloc(JIT_MAX_BATCH, sizeof *jobs);
    if (!jobs) return NULL;
    for (;;) {
        pthread_mutex_lock(&J.mu);
        while (J.qn == 0 || J.stopping)
            pthread_cond_wait(&J.cv, &J.mu);
        J.busy = true;
        int n = J.qn < JIT_MAX_BATCH ? J.qn : JIT_MAX_BATCH;
        uint64_t hot_us[JIT_MAX_BATCH];
        for (int i = 0; i < n; i++) {
            jobs[i].p = J.queue[i];
            hot_us[i] = J.qtime[i];
        }
        pthread_mutex_unlock(&J.mu);
        /* job_init reads only the protos; hashes were computed when queued */
        for (int i = 0; i < n; i++) {
            job_init(&jobs[i], jobs[i].p);
            jobs[i].hot_us = hot_us[i];
        }
        int m = 0;
        for (int i = 0; i < n; i++) {
            bool failed;
            void *more[JIT_MORE];
            void *fn = cache_lookup(jobs[i].hash, jobs[i].symbol, jobs[i].inject, &failed, more);
            if (failed) {
                pthread_mutex_lock(&J.mu);
                if (jobs[i].p->jit_state == SX_JIT_QUEUED) jobs[i].p->jit_state = SX_JIT_FAILED;
                sx_jit_stats.failed++;
                pthread_mutex_unlock(&J.mu);
            } else if (fn) {
                pthread_mutex_lock(&J.mu);
                deliver(jobs[i].p, fn, more, true, jobs[i].hot_us);
                pthread_mutex_unlock(&J.mu);
            } else {
                jobs[m++] = jobs[i];
            }
        }
        compile_batch(jobs, m);
        pthread_mutex_lock(&J.mu);
        memmove(J.queue, J.queue + n, sizeof *J.queue * (size_t)(J.qn - n));
        memmove(J.qtime, J.qtime + n, sizeof *J.qtime * (size_t)(J.qn - n));
        J.qn -= n;
        J.busy = false;
        pthread_cond_broadcast(&J.idle);
        pthread_mutex_unlock(&J.mu);
    }
    return NULL;
}

/* Before the process exits: lets the batch being compiled finish and
 * starts no other, so the process never ends while libgccjit is inside a
 * compile (tearing the process down under it crashes, and its temporary
 * files would be left behind). Called explicitly by the worker, eval and
 * repl rather than from atexit: libgccjit registers exit handlers of its
 * own on first use, which would run before ours. On the compile thread
 * itself (an internal compiler error, a strict-mode failure) it only stops
 * further batches. */
void jit_shutdown(void)
{
    pthread_mutex_lock(&J.mu);
    J.stopping = true;
    uint64_t t0 = J.busy && verbose() ? now_us() : 0;
    if (J.thread_started && !pthread_equal(pthread_self(), J.thread))
        while (J.busy)
            pthread_cond_wait(&J.idle, &J.mu);
    if (t0) jlog("exit waited %.1f ms for the batch being compiled", (double)(now_us() - t0) / 1e3);
    pthread_mutex_unlock(&J.mu);
}

/* Starts the compile thread unless it runs. Called with J.mu held. */
static void start_compile_thread(void)
{
    if (J.thread_started) return;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, (size_t)16 << 20);
    if (pthread_create(&t, &attr, compile_thread, NULL) == 0) {
        J.thread_started = true;
        J.thread = t;
    } else
        jlog("unable to start the compile thread: %s", strerror(errno));
    pthread_attr_destroy(&attr);
}

static void enqueue(sx_proto *p)
{
    pthread_mutex_lock(&J.mu);
    if (J.npinned == J.pincap) {
        int ncap = J.pincap ? J.pincap * 2 : 256;
        sx_proto **n = GC_MALLOC_UNCOLLECTABLE(sizeof *n * (size_t)ncap);
        if (!n) {
            p->jit_state = SX_JIT_FAILED;
            pthread_mutex_unlock(&J.mu);
            return;
        }
        if (J.npinned) memcpy(n, J.pinned, sizeof *n * (size_t)J.npinned);
        if (J.pinned) GC_FREE(J.pinned);
        J.pinned = n;
        J.pincap = ncap;
    }
    J.pinned[J.npinned++] = p;
    if (J.qn == J.qcap) {
        int ncap = J.qcap ? J.qcap * 2 : 256;
        sx_proto **q = GC_MALLOC_UNCOLLECTABLE(sizeof *q * (size_t)ncap);
        if (!q) {
            p->jit_state = SX_JIT_FAILED;
            pthread_mutex_unlock(&J.mu);
            return;
        }
        uint64_t *qt = realloc(J.qtime, sizeof *qt * (size_t)ncap);
        if (!qt) {
            GC_FREE(q);
            p->jit_state = SX_JIT_FAILED;
            pthread_mutex_unlock(&J.mu);
            return;
        }
        J.qtime = qt;
        if (J.qn) memcpy(q, J.queue, sizeof *q * (size_t)J.qn);
        if (J.queue) GC_FREE(J.queue);
        J.queue = q;
        J.qcap = ncap;
    }
    J.qtime[J.qn] = now_us();
    J.queue[J.qn++] = p;
    start_compile_thread();
    pthread_cond_signal(&J.cv);
    pthread_mutex_unlock(&J.mu);
}

/* Decides whether p gets native code; if so marks it queued.
 * @return true when p is to be compiled */
static bool admit(sx_proto *p)
{
    if (p->jit_state != SX_JIT_NONE) return false; /* queued: waiting for its code */
    const char *name = proto_name(p);
    const char *hash = sx_proto_hash(p);
    if (sx_jit_excluded(name)) {
        p->jit_state = SX_JIT_EXCLUDED;
        sx_jit_stats.excluded++;
        note_refused(name, hash, "excluded");
        return false;
    }
    pthread_mutex_lock(&J.mu);
    bool bl = blacklisted(name, hash);
    pthread_mutex_unlock(&J.mu);
    if (bl) {
        p->jit_state = SX_JIT_BLACKLISTED;
        sx_jit_stats.blacklisted++;
        note_refused(name, hash, "blacklisted");
        return false;
    }
    const char *why = refusal(p);
    if (why) {
        p->jit_state = SX_JIT_UNSUPPORTED;
        sx_jit_stats.unsupported++;
        note_refused(name, hash, why);
        return false;
    }
    p->jit_state = SX_JIT_QUEUED;
    return true;
}

/* Threshold 0: compiles p now, on this thread, before its first call,
 * together with the functions nested in it (the lambdas among its
 * constants, transitively) in one batch: one libgccjit context for a
 * function and its inner lambdas, not one each. */
static void compile_now(sx_proto *p)
{
    jit_job *jobs = calloc(JIT_MAX_BATCH, sizeof *jobs);
    sx_proto **todo = calloc(JIT_MAX_BATCH, sizeof *todo);
    if (!jobs || !todo) {
        free(jobs);
        free(todo);
        p->jit_state = SX_JIT_FAILED;
        sx_jit_stats.failed++;
        return;
    }
    uint64_t hot_us = now_us();
    int nt = 0;
    todo[nt++] = p;
    for (int i = 0; i < nt; i++)
        for (int k = 0; k < todo[i]->nk && nt < JIT_MAX_BATCH; k++) {
            sx_val v = todo[i]->k[k];
            if (sx_is(v, SX_T_PROTO) && admit(SX_OBJ(sx_proto, v)))
                todo[nt++] = SX_OBJ(sx_proto, v);
        }
    int m = 0;
    for (int i = 0; i < nt; i++) {
        jit_job *job = &jobs[m];
        job_init(job, todo[i]);
        job->hot_us = hot_us;
        bool failed;
        void *more[JIT_MORE];
        void *fn = cache_lookup(job->hash, job->symbol, job->inject, &failed, more);
        if (failed) {
            todo[i]->jit_state = SX_JIT_FAILED;
            sx_jit_stats.failed++;
        } else if (fn) {
            pthread_mutex_lock(&J.mu);
            if (install(todo[i], fn, more)) sx_jit_stats.cache_hits++;
            pthread_mutex_unlock(&J.mu);
        } else {
            m++;
        }
    }
    compile_batch(jobs, m);
    poll_done();
    free(jobs);
    free(todo);
}

/* At p's first call, below the threshold: installs p's native code at once
 * if the code cache holds it (a warm cache runs native code from the
 * start, not after the threshold and a round trip through the compile
 * thread). A function that would be refused is left alone: the threshold
 * path refuses it and says why. A miss costs one failed open(). */
static void first_call(sx_proto *p)
{
    if (!J.cache[0] || p->jit_state != SX_JIT_NONE) return;
    const char *name = proto_name(p);
    const char *hash = sx_proto_hash(p);
    if (sx_jit_excluded(name) || refusal(p)) return;
    pthread_mutex_lock(&J.mu);
    bool bl = blacklisted(name, hash);
    pthread_mutex_unlock(&J.mu);
    if (bl) return;
    jit_job job;
    job_init(&job, p);
    bool failed;
    void *more[JIT_MORE];
    void *fn = cache_lookup(job.hash, job.symbol, job.inject, &failed, more);
    if (!fn) return; /* a miss, or recorded as failed: the threshold path handles it */
    pthread_mutex_lock(&J.mu);
    if (p->jit_state == SX_JIT_NONE && !blacklisted(name, hash)) {
        p->jit_state = SX_JIT_QUEUED;
        if (install(p, fn, more)) sx_jit_stats.cache_hits++;
    }
    pthread_mutex_unlock(&J.mu);
}

/* The VM calls this at p's first call and when p gets hot. */
static void hot(sx_ctx *cx, sx_proto *p)
{
    poll_done();
    if (p->calls <= sx_jit_threshold) {
        first_call(p);
        return;
    }
    if (!admit(p)) return;
    if (J.threshold > 0)
        enqueue(p);
    else
        compile_now(p);
}

/* ---- start-up --------------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *c = tmp + 1; *c; c++) {
        if (*c != '/') continue;
        *c = 0;
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -errno;
        *c = '/';
    }
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -errno;
    return 0;
}

/* Why the cache directory path (DIR/ABI, found or just made) may not be
 * trusted, or NULL: it must be a directory (not a link to one) owned by
 * this process's effective user that nobody else can write. The caller
 * answers for DIR and what is above it (worker/: store_check_private_dir). */
static const char *untrusted_dir(const char *path, char *why, size_t cap)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return why;
    }
    unsigned mode = (unsigned)st.st_mode & 07777;
    if (!S_ISDIR(st.st_mode))
        snprintf(why, cap, "not a directory (mode %06o)", (unsigned)st.st_mode);
    else if (st.st_uid != geteuid())
        snprintf(why, cap, "owned by uid %u, not by this process's uid %u", (unsigned)st.st_uid,
                 (unsigned)geteuid());
    else if (mode & (S_IWGRP | S_IWOTH))
        snprintf(why, cap, "writable by group or others (mode %04o)", mode);
    else
        return NULL;
    return why;
}

void jit_totals_get(jit_totals *out)
{
    out->compiled = __atomic_load_n(&sx_jit_stats.compiled, __ATOMIC_RELAXED);
    out->cache_loads = __atomic_load_n(&sx_jit_stats.cache_hits, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&sx_jit_stats.failed, __ATOMIC_RELAXED);
    out->compile_us = __atomic_load_n(&compile_us_total, __ATOMIC_RELAXED);
    uint64_t direct;
    sx_jit_calls(&out->native_calls, &direct);
    out->vm_calls = __atomic_load_n(&sx_jit_stats.vm_calls, __ATOMIC_RELAXED);
}

/* ---- which native functions a request ran ------------------------------------------ */

static uint32_t epoch;

void jit_request_begin(void)
{
    if (++epoch == 0) epoch = 1; /* 0 is what a proto never entered holds */
    if (sx_cur) sx_cur->jit_epoch = epoch;
}

int jit_request_entered(jit_entered *out, int cap)
{
    int n = 0;
    if (!J.on || !epoch) return 0;
    pthread_mutex_lock(&J.mu);
    for (int i = 0; i < J.nn; i++) {
        sx_proto *p = J.natives[i];
        if (__atomic_load_n(&p->jit_entered, __ATOMIC_RELAXED) != epoch) continue;
        if (n < cap) out[n] = (jit_entered){proto_name(p), sx_proto_hash(p), p->jit_requests};
        if (p->jit_requests < UINT32_MAX) p->jit_requests++;
        n++;
    }
    pthread_mutex_unlock(&J.mu);
    return n;
}

/* Sets up DIR/ABI of --jit-cache, or leaves J.cache empty (compiling
 * without a cache) and says why. */
static void setup_cache(void)
{
    char why[256];
    int rc = 0;
    if (snprintf(J.cache, sizeof J.cache, "%s/%s", J.cache_root, J.abi) >= (int)sizeof J.cache)
        rc = -ENAMETOOLONG;
    else
        rc = mkdir_p(J.cache);
    if (rc != 0) {
        jlog("unable to create the code cache %s: %s; compiling without it", J.cache,
             strerror(-rc));
        J.cache[0] = 0;
    } else if (untrusted_dir(J.cache, why, sizeof why)) {
        jlog("not using the code cache %s: %s; compiling without it", J.cache, why);
        J.cache[0] = 0;
    }
}

/* libgccjit is loaded on first use (jit_gcc.h), and with it come the ABI
 * hash (libgccjit's version is part of it) and the code cache's directory
 * (named by the ABI hash). That happens once, on whichever thread needs it
 * first: the compile thread as soon as jit_init starts it, so the load
 * overlaps the program's start; jit_init itself when there is a code
 * cache; jit_abi_hash; a compile at threshold 0. When the library cannot
 * be loaded that is logged once, every compile fails, and the program goes
 * on in the VM. */
static pthread_once_t ready_once = PTHREAD_ONCE_INIT;

static void get_ready(void)
{
    if (jit_gcc_load(J.unavailable, sizeof J.unavailable) != 0) {
        jlog("native tier unavailable: %s; running the bytecode VM only", J.unavailable);
        return;
    }
    compute_abi();
    if (J.cache_root[0]) setup_cache();
}

/* @return whether libgccjit is loaded (loading it first if nobody has) */
static bool native_ready(void)
{
    pthread_once(&ready_once, get_ready);
    return !J.unavailable[0];
}

/* A batch when libgccjit could not be loaded: every function fails, and
 * nothing is recorded in the cache (that is no verdict on the code). */
static void fail_unavailable(jit_job *jobs, int n)
{
    pthread_mutex_lock(&J.mu);
    for (int i = 0; i < n; i++) {
        if (jobs[i].p->jit_state == SX_JIT_QUEUED) jobs[i].p->jit_state = SX_JIT_FAILED;
        sx_jit_stats.failed++;
    }
    pthread_mutex_unlock(&J.mu);
    /* tests: a function the JIT should compile but cannot is a bug */
    if (getenv("SXPOOL_JIT_STRICT")) {
        jlog("SXPOOL_JIT_STRICT: exiting");
        exit(3);
    }
}

const char *jit_abi_hash(void)
{
    return native_ready() ? J.abi : NULL;
}

int jit_init(const jit_options *opt, const jit_hooks *hooks)
{
    if (J.on) return 0;
    J.threshold = opt ? opt->threshold : 1000;
    if (hooks) J.hooks = *hooks;
    J.regions = mmap(NULL, sizeof(jit_region) * JIT_MAX_REGIONS, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (J.regions == MAP_FAILED) return -errno;
    if (opt && opt->cache_dir) snprintf(J.cache_root, sizeof J.cache_root, "%s", opt->cache_dir);
    if (opt && opt->exclude) {
        char *copy = strdup(opt->exclude), *save = NULL;
        for (char *g = copy ? strtok_r(copy, ",", &save) : NULL; g; g = strtok_r(NULL, ",", &save))
            sx_jit_exclude_add(g);
        free(copy);
    }
    parse_inject();
    sx_jit_threshold = J.threshold;
    sx_jit_blacklist_hook = blacklist_hook;
    sx_jit_exclude_hook = exclude_hook;
    sx_jit_global_hook = global_hook;
    sx_jit_hot_hook = hot;
    J.on = true;
    pthread_mutex_lock(&J.mu);
    start_compile_thread();
    pthread_mutex_unlock(&J.mu);
    /* with a code cache, the first call of a function installs its cached
     * code: the cache must be known before anything runs */
    if (J.cache_root[0]) native_ready();
    return 0;
}
