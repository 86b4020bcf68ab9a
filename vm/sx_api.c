/* sx_api.c: the vm module's public entry points (vm.h) and the effects
 * behind perform.
 *
 * Each entry point is one protected call: an SX error inside it is turned
 * into an sx_failure and a status, never a longjmp out of the module. The
 * in-memory effect store used by `sxpool eval` lives here too: a sorted
 * array of malloc'd key/value pairs, since eval runs are small.
 */
#include <gc.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vm/sx_bc.h"
#include "vm/sx_read.h"
#include "vm/vm.h"

void sx__compile_init(void);
void sx__init_prims_debug(void);
bool sx__is_toplevel_begin(sx_val form);
sx_val sx__expand_toplevel(sx_ctx *cx, sx_val form);

static sx_ctx ctx;
static sx_effects *effects;

/* ---- in-memory store for eval ----------------------------------------- */

typedef struct mem_kv {
    char *k, *v;
    size_t kl, vl;
} mem_kv;

static struct {
    mem_kv *items;
    size_t n, cap;
} mem;

static int kv_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Index of the first key >= k. */
static size_t mem_find(const char *k, size_t kl)
{
    size_t lo = 0, hi = mem.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (kv_cmp(mem.items[mid].k, mem.items[mid].kl, k, kl) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool mem_hit(size_t i, const char *k, size_t kl)
{
    return i < mem.n && kv_cmp(mem.items[i].k, mem.items[i].kl, k, kl) == 0;
}

static char *dup_bytes(const char *p, size_t n)
{
    char *d = malloc(n + 1);
    if (!d) abort();
    memcpy(d, p, n);
    d[n] = 0;
    return d;
}

static int mem_get(void *arg, const char *k, size_t kl, const char **v, size_t *vl)
{
    size_t i = mem_find(k, kl);
    if (!mem_hit(i, k, kl)) return 1;
    *v = mem.items[i].v;
    *vl = mem.items[i].vl;
    return 0;
}

static int mem_put(void *arg, const char *k, size_t kl, const char *v, size_t vl)
{
    size_t i = mem_find(k, kl);
    if (mem_hit(i, k, kl)) {
        free(mem.items[i].v);
        mem.items[i].v = dup_bytes(v, vl);
        mem.items[i].vl = vl;
        return 0;
    }
    if (mem.n == mem.cap) {
        mem.cap = mem.cap ? mem.cap * 2 : 64;
        mem.items = realloc(mem.items, mem.cap * sizeof *mem.items);
        if (!mem.items) abort();
    }
    memmove(mem.items + i + 1, mem.items + i, (mem.n - i) * sizeof *mem.items);
    mem.items[i] = (mem_kv){dup_bytes(k, kl), dup_bytes(v, vl), kl, vl};
    mem.n++;
    return 0;
}

static int mem_del(void *arg, const char *k, size_t kl)
{
    size_t i = mem_find(k, kl);
    if (!mem_hit(i, k, kl)) return 1;
    free(mem.items[i].k);
    free(mem.items[i].v);
    memmove(mem.items + i, mem.items + i + 1, (mem.n - i - 1) * sizeof *mem.items);
    mem.n--;
    return 0;
}

static int mem_scan(void *arg, const char *p, size_t pl, size_t limit, sx_scan_item_fn fn, void *c)
{
    for (size_t i = mem_find(p, pl); i < mem.n && limit > 0; i++, limit--) {
        if (mem.items[i].kl < pl || memcmp(mem.items[i].k, p, pl) != 0) break;
        if (fn(c, mem.items[i].k, mem.items[i].kl, mem.items[i].v, mem.items[i].vl)) break;
    }
    return 0;
}

static void stderr_log(void *arg, const char *line, size_t len)
{
    fwrite(line, 1, len, stderr);
    fputc('\n', stderr);
}

static sx_effects mem_effects = {NULL, mem_get, mem_put, mem_del, mem_scan, stderr_log, ""};

/* ---- perform --------------------------------------------------------------- */

static _Noreturn void effect_error(sx_ctx *cx, sx_val op, const char *why)
{
    sx_error(cx, "effect-error", "perform :%s: %s", sx_sym_name(op), why);
}

static void need_strings(sx_ctx *cx, sx_val op, int argc, sx_val *argv, int n, const char *shape)
{
    if (argc != n) effect_error(cx, op, shape);
    for (int i = 0; i < n; i++)
        if (!sx_is_string(argv[i])) effect_error(cx, op, shape);
}

static int scan_collect(void *c, const char *k, size_t kl, const char *v, size_t vl)
{
    sx_val *tail = c;
    sx_val cell = sx_cons(sx_cons(sx_mkstring(k, kl), sx_mkstring(v, vl)), SX_NIL);
    SX_CDR(*tail) = cell;
    *tail = cell;
    return 0;
}

static int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void check_fx(sx_ctx *cx, sx_val op, int rc)
{
    if (rc < 0) effect_error(cx, op, effects->errmsg[0] ? effects->errmsg : "store failure");
}

static sx_val host_perform(sx_ctx *cx, sx_val op, int argc, sx_val *argv)
{
    if (!sx_is(op, SX_T_KEYWORD))
        sx_error(cx, "effect-error", "perform: expected a keyword naming the effect, got %s",
                 sx_type_name(op));
    const char *name = sx_sym_name(op);
    effects->errmsg[0] = 0;
    if (!strcmp(name, "kv/get")) {
        need_strings(cx, op, argc, argv, 1, "expected (key)");
        const char *v;
        size_t vl;
        int rc =
            effects->kv_get(effects->arg, sx_str(argv[0])->data, sx_str(argv[0])->len, &v, &vl);
        check_fx(cx, op, rc);
        return rc == 1 ? SX_NIL : sx_mkstring(v, vl);
    }
    if (!strcmp(name, "kv/put")) {
        need_strings(cx, op, argc, argv, 2, "expected (key value), both strings");
        check_fx(cx, op,
                 effects->kv_put(effects->arg, sx_str(argv[0])->data, sx_str(argv[0])->len,
                                 sx_str(argv[1])->data, sx_str(argv[1])->len));
        return SX_NIL;
    }
    if (!strcmp(name, "kv/del")) {
        need_strings(cx, op, argc, argv, 1, "expected (key)");
        int rc = effects->kv_del(effects->arg, sx_str(argv[0])->data, sx_str(argv[0])->len);
        check_fx(cx, op, rc);
        return sx_bool(rc == 0);
    }
    if (!strcmp(name, "kv/scan")) {
        if (argc != 2 || !sx_is_string(argv[0]) || !sx_is_fix(argv[1]) || sx_fix(argv[1]) < 0)
            effect_error(cx, op, "expected (prefix limit), a string and an integer >= 0");
        sx_val head = sx_cons(SX_NIL, SX_NIL), tail = head;
        check_fx(cx, op,
                 effects->kv_scan(effects->arg, sx_str(argv[0])->data, sx_str(argv[0])->len,
                                  (size_t)sx_fix(argv[1]), scan_collect, &tail));
        return SX_CDR(head);
    }
    if (!strcmp(name, "log")) {
        sx_buf b;
        sx_buf_init(&b);
        for (int i = 0; i < argc; i++) {
            if (i) sx_buf_addc(&b, ' ');
            sx_print(&b, argv[i], false);
        }
        effects->log(effects->arg, b.p ? b.p : "", b.len);
        sx_buf_free(&b);
        return SX_NIL;
    }
    if (!strcmp(name, "now")) {
        if (argc != 0) effect_error(cx, op, "expected no arguments");
        return sx_mkfix(now_ms());
    }
    effect_error(cx, op, "unknown effect");
}

/* ---- failures ------------------------------------------------------------- */

static void escape_newlines(char *dst, size_t cap, const char *src, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < cap; i++) {
        if (src[i] == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = 0;
}

static void fill_failure(sx_val obj, sx_failure *fail)
{
    sx_buf b;
    sx_buf_init(&b);
    if (sx_is(obj, SX_T_ERROR)) {
        sx_errobj *e = SX_OBJ(sx_errobj, obj);
        snprintf(fail->kind, sizeof fail->kind, "%s", sx_sym_name(e->kind));
        sx_print(&b, e->message, false);
        if (!strcmp(fail->kind, "user-error"))
            for (sx_val l = e->payload; sx_is_pair(l); l = SX_CDR(l)) {
                sx_buf_addc(&b, ' ');
                sx_print(&b, SX_CAR(l), true);
            }
    } else {
        snprintf(fail->kind, sizeof fail->kind, "raised");
        sx_print(&b, obj, true);
    }
    size_t n = b.len < sizeof fail->message - 1 ? b.len : sizeof fail->message - 1;
    memcpy(fail->message, b.p ? b.p : "", n);
    fail->message[n] = 0;
    char esc[1100];
    escape_newlines(esc, sizeof esc, fail->message, n);
    snprintf(fail->line, sizeof fail->line, "error: %s: %s", fail->kind, esc);
    sx_buf_free(&b);
}

/* Zeroes the stack area the next evaluation's frames will occupy: the
 * collector scans the C stack conservatively, and stale words left there by
 * an earlier evaluation (for example one that ran out of memory) would
 * otherwise keep its garbage alive. */
static __attribute__((noinline)) void clear_stack_below(void)
{
    volatile char pad[32 * 1024];
    memset((char *)pad, 0, sizeof pad);
}

/* The main thread's stack mapping, from /proc/self/maps: [*lo, *hi).
 * Read once, at sx_vm_init (after the C stack has been grown to its
 * size): a worker may not open files later (its seccomp filter,
 * worker/wrk_sandbox.c). */
static bool main_stack_bounds(uintptr_t *lo, uintptr_t *hi)
{
    static int known; /* 0 not read yet, 1 read, -1 not found */
    static uintptr_t cached_lo, cached_hi;
    if (known != 0) {
        *lo = cached_lo;
        *hi = cached_hi;
        return known > 0;
    }
    known = -1;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (strstr(line, "[stack]") && sscanf(line, "%lx-%lx", &a, &b) == 2) {
            *lo = cached_lo = a;
            *hi = cached_hi = b;
            found = true;
            known = 1;
        }
    }
    fclose(f);
    return found;
}

/* Drops the pages of the C stack below the caller's frame (less a margin
 * for the calls still to come), which only dead frames of the evaluation
 * that just ended can have touched. Only inside the main thread's stack
 * mapping: below it lie other mappings. */
static __attribute__((noinline)) void release_cstack(void)
{
    char here;
    uintptr_t lo, hi, pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t top = ((uintptr_t)&here - ((uintptr_t)16 << 10)) & ~(pg - 1);
    if (!main_stack_bounds(&lo, &hi) || (uintptr_t)&here < lo || (uintptr_t)&here >= hi) return;
    if ((uintptr_t)ctx.cstack_limit > lo) lo = ((uintptr_t)ctx.cstack_limit + pg - 1) & ~(pg - 1);
    if (top > lo) madvise((void *)lo, top - lo, MADV_DONTNEED);
}

/* After an evaluation that ended on a limit: gives back to the system what
 * it left behind, the collector's free blocks, the stacks' dead pages and
 * malloc's free memory, so a worker's size stays near its limit. */
static void release_memory(void)
{
    sx__vm_release_stacks();
    sx__cek_release_stack();
    release_cstack();
    clear_stack_below(); /* stale pointers there would keep garbage alive */
    sx_gc_give_back();
    malloc_trim(0);
}

static bool hit_a_limit(sx_val obj)
{
    return obj == SX_UNDEF || !sx_catchable(obj);
}

/* Runs fn(arg) as one protected call. */
static int protect(void (*fn)(void *), void *arg, sx_failure *fail)
{
    clear_stack_below();
    sx_jmp j;
    char top;
    sx_cur = &ctx;
    ctx.cstack_base = &top; /* the evaluation's C stack is what lies below */
    sx__budget_reset(&ctx);
    if (sx_try(&ctx, &j) == 0) {
        fn(arg);
        sx_try_end(&ctx, &j);
        sx__budget_reset(&ctx);
        return 0;
    }
    sx_try_end(&ctx, &j);
    sx__budget_reset(&ctx); /* the whole budget for what follows */
    sx_val obj = ctx.raised;
    if (hit_a_limit(obj)) {
        ctx.raised = SX_NIL; /* the failed evaluation must not stay reachable */
        release_memory();
        if (obj == SX_UNDEF)
            obj = sx_mkerror_c("memory-limit", "evaluation exceeded its memory limit");
    }
    if (fail) {
        fill_failure(obj, fail);
        fail->native_fn[0] = fail->code_hash[0] = 0;
        sx_proto *np = ctx.raised_native;
        if (np && obj != SX_UNDEF) {
            snprintf(fail->native_fn, sizeof fail->native_fn, "%s",
                     np->name == SX_NIL ? "#<fn>" : sx_sym_name(np->name));
            snprintf(fail->code_hash, sizeof fail->code_hash, "%s", sx_proto_hash(np));
        }
    }
    ctx.raised_native = ctx.native_proto = NULL;
    return 1;
}

/* ---- entry points ------------------------------------------------------------ */

uint64_t sx_vm_nondet_calls(void)
{
    return ctx.nondet_calls;
}

static int tier;

static sx_val apply_hook(sx_ctx *cx, sx_val fn, int argc, sx_val *argv)
{
    if (sx_is(fn, SX_T_VMCLOSURE)) return sx_vm_apply(cx, fn, argc, argv);
    return sx_cek_apply(cx, fn, argc, argv);
}

/* Runs a loaded top-level form on the process's tier. */
static sx_val run_code(sx_code *code)
{
    if (tier == SX_TIER_VM) return sx_vm_run_proto(&ctx, sx_bc_compile(&ctx, code));
    return sx_cek_run_code(&ctx, code);
}

/* The C stack the evaluator may use by default. AddressSanitizer cannot
 * follow a longjmp across more than 64 MiB of stack (it then reports false
 * errors), so sanitizer builds stay below that and recurse less deeply. */
#if defined(__SANITIZE_ADDRESS__)
#define SX_DEFAULT_CSTACK ((size_t)56 << 20)
#else
#define SX_DEFAULT_CSTACK ((size_t)768 << 20)
#endif

/* The collector's heap at start, at most an eighth of the memory limit. */
#define SX_INITIAL_HEAP ((size_t)16 << 20)

/* The main thread's stack grows on demand up to RLIMIT_STACK, and the
 * kernel leaves at least 128 MiB below it for that: raise the soft limit so
 * recursion through primitives such as map (C recursion) can go deep.
 * Returns the bytes the evaluator may use. */
static size_t grow_cstack(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0) return (size_t)6 << 20;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want + ((size_t)2 << 20)) {
        rlim_t target = want + ((size_t)2 << 20);
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < target) target = rl.rlim_max;
        rl.rlim_cur = target;
        if (setrlimit(RLIMIT_STACK, &rl) != 0) getrlimit(RLIMIT_STACK, &rl);
    }
    size_t have = rl.rlim_cur == RLIM_INFINITY ? want : (size_t)rl.rlim_cur;
    size_t margin = (size_t)2 << 20;
    return have > margin ? (have - margin < want ? have - margin : want) : have / 2;
}

int sx_vm_init(const sx_options *opt)
{
    sx_options o = opt ? *opt : (sx_options){0};
    char here;
    sx_gc_init();
    ctx.apply = apply_hook;
    ctx.perform = host_perform;
    ctx.kstack_max = o.kstack_max;
    ctx.heap_limit = o.heap_limit ? o.heap_limit : (size_t)1 << 30;
    /* the stacks count against the memory limit too (sx_check_cstack):
     * none may be bigger than it, the CEK and VM value stacks at most an
     * eighth of it each */
    if (!ctx.kstack_max) {
        size_t words = ctx.heap_limit / 8 / sizeof(sx_val);
        ctx.kstack_max = words < ((size_t)4 << 20) ? words : (size_t)4 << 20;
        if (ctx.kstack_max < 65536) ctx.kstack_max = 65536;
    }
    size_t cstack = o.cstack_bytes ? o.cstack_bytes : SX_DEFAULT_CSTACK;
    if (cstack > ctx.heap_limit) cstack = ctx.heap_limit;
    ctx.cstack_limit = &here - grow_cstack(cstack);
    sx__jit_limit_sync(&ctx);
    uintptr_t lo, hi;
    (void)main_stack_bounds(&lo, &hi); /* cached for release_cstack */
    ctx.out = stdout;
    GC_set_max_heap_size(ctx.heap_limit);
    /* The collector starts with a small heap and collects whenever a third
     * of it has been allocated; a handler that builds a page allocates
     * tens of kilobytes, so a small heap is collected every few requests,
     * each time marking the whole program. Starting larger makes that
     * rarer, within an eighth of the limit. */
    size_t initial = SX_INITIAL_HEAP < ctx.heap_limit / 8 ? SX_INITIAL_HEAP : ctx.heap_limit / 8;
    if (GC_get_heap_size() < initial) (void)GC_expand_hp(initial - GC_get_heap_size());
    sx_cur = &ctx;
    ctx.jit_link = &sx_jit_link_table;
    effects = &mem_effects;
    sx__init_prims_num();
    sx__init_prims_list();
    sx__init_prims_string();
    sx__init_prims_vector();
    sx__init_prims_dict();
    sx__init_prims_misc();
    sx__init_prims_json();
    sx__compile_init();
    sx__init_prims_debug();
    sx_cek_init(&ctx);
    tier = o.tier;
    if (tier == SX_TIER_VM) sx_vm_tier_init(&ctx);
    return 0;
}

void sx_vm_set_output(FILE *out)
{
    ctx.out = out;
}

void sx_vm_set_effects(sx_effects *fx)
{
    effects = fx ? fx : &mem_effects;
}

void (*sx_jit_blacklist_hook)(const char *fn, const char *code_hash);

void sx_vm_blacklist(const char *fn, const char *code_hash)
{
    if (sx_jit_blacklist_hook) sx_jit_blacklist_hook(fn, code_hash);
}

void sx_jit_calls(uint64_t *native, uint64_t *direct)
{
    *native = __atomic_load_n(&ctx.jit_native_calls, __ATOMIC_RELAXED);
    *direct = __atomic_load_n(&ctx.jit_direct_calls, __ATOMIC_RELAXED);
}

void sx_vm_interrupt(void)
{
    /* the flag, then the limit native code tests (sx_core.h) */
    __atomic_store_n(&ctx.interrupt, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&ctx.jit_limit, SX_JIT_LIMIT_PENDING, __ATOMIC_SEQ_CST);
}

/* Loads one top-level form (a begin's forms each as top-level forms) and
 * returns its value (a begin's: its last form's). */
static sx_val load_form_value(sx_val form)
{
    form = sx__expand_toplevel(&ctx, form);
    if (sx__is_toplevel_begin(form)) {
        sx_val v = SX_NIL;
        for (sx_val l = SX_CDR(form); sx_is_pair(l); l = SX_CDR(l))
            v = load_form_value(SX_CAR(l));
        return v;
    }
    return run_code(sx_compile_toplevel(&ctx, form));
}

typedef struct load_args {
    const char *buf;
    size_t len;
    FILE *print_to;
} load_args;

static void load_body(void *arg)
{
    load_args *a = arg;
    sx_val forms = sx_read_all(&ctx, a->buf, a->len);
    for (; sx_is_pair(forms); forms = SX_CDR(forms)) {
        if (!a->print_to) {
            load_form_value(SX_CAR(forms));
            continue;
        }
        sx_val v = load_form_value(SX_CAR(forms));
        sx_buf b;
        sx_buf_init(&b);
        sx_print(&b, v, true);
        fwrite(b.p ? b.p : "", 1, b.len, a->print_to);
        fputc('\n', a->print_to);
        sx_buf_free(&b);
    }
}

int sx_vm_load(const char *name, const char *buf, size_t len, sx_failure *fail)
{
    (void)name;
    load_args a = {buf, len, NULL};
    int rc = protect(load_body, &a, fail);
    fflush(ctx.out);
    return rc;
}

int sx_vm_eval_print(const char *buf, size_t len, FILE *out, sx_failure *fail)
{
    load_args a = {buf, len, out};
    int rc = protect(load_body, &a, fail);
    fflush(ctx.out);
    return rc;
}

int sx_vm_load_file(const char *path, sx_failure *fail)
{
    sx_sources src;
    if (sx_vm_sources_read(path, &src, fail) != 0) return 1;
    int rc = sx_vm_sources_load(&src, fail);
    sx_vm_sources_free(&src);
    return rc;
}

/* ---- handle ------------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) ('+' is a space); invalid UTF-8 is kept as bytes
 * replaced by '?', so SX strings stay valid. */
static sx_val url_decode(const char *s, size_t n)
{
    char *out = sx_alloc_atomic(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+')
            out[o++] = ' ';
        else if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
                 hexval((unsigned char)s[i + 2]) >= 0) {
            out[o++] =
                (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
            i += 2;
        } else
            out[o++] = s[i];
    }
    if (sx_utf8_count(out, o) < 0)
        for (size_t i = 0; i < o; i++)
            if ((unsigned char)out[i] >= 0x80) out[i] = '?';
    return sx_mkstring(out, o);
}

static sx_val safe_string(const char *s, size_t n)
{
    if (sx_utf8_count(s, n) >= 0) return sx_mkstring(s, n);
    char *c = sx_alloc_atomic(n + 1);
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    return sx_mkstring(c, n);
}

static sx_val query_dict(const char *q, size_t n)
{
    sx_val d = sx_mkdict(4);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&')
            j++;
        if (j > i) {
            size_t eq = i;
            while (eq < j && q[eq] != '=')
                eq++;
            sx_val k = url_decode(q + i, eq - i);
            sx_val v = eq < j ? url_decode(q + eq + 1, j - eq - 1) : sx_mkstring("", 0);
            sx_dict_put(d, k, v);
        }
        i = j + 1;
    }
    return d;
}

static sx_val kw(const char *s)
{
    return sx_keyword(s, strlen(s));
}

/* The names every request uses, interned once (interned names live
 * forever, and these statics are roots the collector scans). */
enum { K_ID, K_METHOD, K_PATH, K_QUERY, K_HEADERS, K_BODY, K_STATUS, K_COUNT };
static sx_val req_kw[K_COUNT];
static sx_val handle_sym;

static void intern_request_names(void)
{
    static const char *const names[K_COUNT] = {"id",      "method", "path",  "query",
                                               "headers", "body",   "status"};
    if (handle_sym) return;
    for (int i = 0; i < K_COUNT; i++)
        req_kw[i] = kw(names[i]);
    handle_sym = sx_intern_c("handle");
}

typedef struct handle_args {
    const sx_request *req;
    sx_response *resp;
} handle_args;

/* The copy is resident next to the heap's text until the request ends,
 * and the worker encodes it once more into the frame that carries the
 * response: it counts twice against the budget. */
static char *malloc_copy(const char *s, size_t n)
{
    if (n > SIZE_MAX / 2 - 1 || !sx_heap_fits(&ctx, 2 * (n + 1))) sx__out_of_memory();
    char *p = malloc(n + 1);
    if (!p) sx__out_of_memory();
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* v's display form in malloc'd memory, which outlives the evaluation. */
static char *display_copy(sx_val v, size_t *len)
{
    if (sx_is_string(v)) { /* no second copy in the heap */
        *len = sx_str(v)->len;
        return malloc_copy(sx_str(v)->data, *len);
    }
    sx_buf b;
    sx_buf_init(&b);
    if (v != SX_NIL) sx_print(&b, v, false);
    char *p = malloc_copy(b.p ? b.p : "", b.len);
    *len = b.len;
    sx_buf_free(&b);
    return p;
}

static void handle_body(void *arg)
{
    handle_args *a = arg;
    const sx_request *r = a->req;
    intern_request_names();
    sx_val handle = sx_sym(handle_sym)->global;
    if (!sx_is_procedure(handle))
        sx_error(&ctx, "unbound-variable", "the app does not define (handle req)");
    sx_val req = sx_mkdict(8);
    sx_dict_put(req, req_kw[K_ID], safe_string(r->id, r->id_len));
    sx_dict_put(req, req_kw[K_METHOD], safe_string(r->method, r->method_len));
    sx_dict_put(req, req_kw[K_PATH], safe_string(r->path, r->path_len));
    sx_dict_put(req, req_kw[K_QUERY], query_dict(r->query ? r->query : "", r->query_len));
    sx_val h = sx_mkdict((size_t)r->nheaders);
    for (int i = 0; i < r->nheaders; i++)
        sx_dict_put(h, safe_string(r->headers[i].name, r->headers[i].name_len),
                    safe_string(r->headers[i].value, r->headers[i].value_len));
    sx_dict_put(req, req_kw[K_HEADERS], h);
    sx_dict_put(req, req_kw[K_BODY], safe_string(r->body ? r->body : "", r->body_len));
    sx_response *resp = a->resp;
#ifdef SXPOOL_STAGES
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    resp->built_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
#endif
    sx_val out = apply_hook(&ctx, handle, 1, &req);
    if (sx_is_string(out)) {
        resp->status = 200;
        resp->body = display_copy(out, &resp->body_len);
        resp->headers = calloc(1, sizeof(sx_header));
        resp->headers[0] =
            (sx_header){strdup("content-type"), strdup("text/html; charset=utf-8"), 12, 24};
        resp->nheaders = 1;
        return;
    }
    if (!sx_is(out, SX_T_DICT))
        sx_error(&ctx, "type-error", "handle: expected a string or a response dict, got %s",
                 sx_type_name(out));
    sx_val status = SX_NIL, headers = SX_NIL, body = SX_NIL;
    sx_dict_lookup(out, req_kw[K_STATUS], &status);
    sx_dict_lookup(out, req_kw[K_HEADERS], &headers);
    sx_dict_lookup(out, req_kw[K_BODY], &body);
    if (status == SX_NIL) status = sx_mkfix(200);
    if (!sx_is_fix(status) || sx_fix(status) < 100 || sx_fix(status) > 999)
        sx_error(&ctx, "type-error", "handle: :status must be an integer from 100 to 999");
    if (headers != SX_NIL && !sx_is(headers, SX_T_DICT))
        sx_error(&ctx, "type-error", "handle: :headers must be a dict");
    resp->status = (int)sx_fix(status);
    resp->body = display_copy(body, &resp->body_len);
    int nh = headers == SX_NIL ? 0 : (int)sx_dictp(headers)->count;
    resp->headers = calloc((size_t)nh + 1, sizeof(sx_header));
    resp->nheaders = 0;
    if (nh == 0) return;
    sx_dict *d = sx_dictp(headers);
    for (uint32_t i = 0; i < d->used; i++) {
        if (d->entries[i].key == SX_UNDEF) continue;
        sx_header *hd = &resp->headers[resp->nheaders++];
        sx_val k = d->entries[i].key;
        if (sx_is(k, SX_T_KEYWORD)) k = sx_sym(k)->name;
        hd->name = display_copy(k, &hd->name_len);
        hd->value = display_copy(d->entries[i].val, &hd->value_len);
    }
}

void sx_response_free(sx_response *resp)
{
    free(resp->body);
    for (int i = 0; i < resp->nheaders; i++) {
        free((char *)resp->headers[i].name);
        free((char *)resp->headers[i].value);
    }
    free(resp->headers);
    memset(resp, 0, sizeof *resp);
}

int sx_vm_handle(const sx_request *req, sx_response *resp, sx_failure *fail)
{
    memset(resp, 0, sizeof *resp);
    handle_args a = {req, resp};
    int rc = protect(handle_body, &a, fail);
    fflush(ctx.out);
    if (rc) sx_response_free(resp);
    return rc;
}
