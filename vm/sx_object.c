/* sx_object.c: allocation, constructors, symbols and errors.
 *
 * Owns the Boehm collector's set-up and the symbol and keyword tables.
 * Runs on the thread that evaluates SX (one per process). Allocation that
 * fails (the heap limit is reached) raises memory-limit in sx_cur; the
 * collector can then reclaim the aborted evaluation's garbage.
 *
 * One budget, sx_ctx.heap_limit, covers what an evaluation makes: every
 * object and every text buffer (sx_buf) lives in the collected heap, whose
 * maximum size is the budget less what the evaluation's stacks (C, VM and
 * CEK) hold; sx_check_cstack charges those stacks at each nested run. A
 * request bigger than the whole budget fails before the collector is asked.
 */
#include <gc.h>
#include <gc/gc_inline.h>
#include <gc/gc_mark.h>
#include <stdlib.h>

#include "vm/sx_core.h"

sx_ctx *sx_cur;

static int pair_kind = -1; /* the collector's object kind of pairs */

/* ---- allocation ------------------------------------------------------- */

void sx__out_of_memory(void)
{
    if (sx_cur && sx_cur->jmp) {
        sx_cur->raised = SX_UNDEF; /* cannot allocate the error object */
        longjmp(sx_cur->jmp->buf, 2);
    }
    fputs("sxpool: out of memory\n", stderr);
    abort();
}

static void *sx__gc_oom(size_t n)
{
    (void)n;
    return NULL;
}

/* Libraries whose writable segments the collector need not scan: they
 * cannot hold SX values (they never see them, or only for the length of a
 * call, during which the caller holds them), and they are big: every
 * collection would read libgccjit's 3.5 MB of static data as roots, which
 * took more time than marking the heap of a small program. Called with the
 * collector's lock held: no allocation, no locks. */
static int GC_CALLBACK scan_library(const char *name, void *start, size_t size)
{
    (void)start, (void)size;
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    return strncmp(base, "libgccjit.so", 12) != 0 && strncmp(base, "libcrypto.so", 12) != 0;
}

void sx_gc_init(void)
{
    static bool done;
    if (done) return;
    done = true;
    GC_set_all_interior_pointers(1); /* pairs are referenced at +3 */
    /* The only forks in an sx process are libgccjit's (as, ld), whose
     * children exec at once: no fork handlers, which would stop the
     * evaluating thread's allocation around every one of them. */
    GC_set_handle_fork(0);
    GC_register_has_static_roots_callback(scan_library);
    GC_INIT();
    /* pairs: both words scanned, whatever the object's size says; freed
     * ones cleared, so one waiting on the free list holds nothing alive */
    pair_kind = (int)GC_new_kind(GC_new_free_list(), sizeof(sx_pair) | GC_DS_LENGTH, 0, 1);
    /* A collection once the heap's free space is half, not a third, of
     * it: a program with a big live heap (dicts of thousands of entries)
     * spent a sixth of its time marking at the default; this marks it a
     * third less often, for a heap about a tenth bigger. */
    GC_set_free_space_divisor(2);
    GC_set_oom_fn(sx__gc_oom);
    GC_set_warn_proc(GC_ignore_warn_proc);
}

/* Whether n bytes can never fit in the budget: then fail at once, without
 * a collection or an attempt to grow the heap. */
static bool over_budget(size_t n)
{
    return sx_cur && sx_cur->heap_limit && n > sx_cur->heap_limit;
}

void *sx__fl[SX_FL_GRANULES + 1];

void *sx__fl_pair;
_Static_assert(sizeof(sx_pair) == 16, "a pair is one granule of the collector");

void *sx__pair_slow(void)
{
    if (pair_kind < 0) sx_gc_init();
    GC_generic_malloc_many(sizeof(sx_pair), pair_kind, &sx__fl_pair);
    void **p = (void **)sx__fl_pair;
    if (!p) sx__out_of_memory();
    sx__fl_pair = *p;
    return p;
}

void *sx__alloc_slow(size_t n)
{
    size_t g = sx__granules(n);
    if (g <= SX_FL_GRANULES) {
        /* objects of exactly g granules (the size is given whole, the
         * extra byte included), zeroed but for the link word */
        GC_generic_malloc_many(GC_RAW_BYTES_FROM_INDEX(g), GC_I_NORMAL, &sx__fl[g]);
        void **p = (void **)sx__fl[g];
        if (!p) sx__out_of_memory();
        sx__fl[g] = *p;
        *p = NULL;
        return p;
    }
    if (over_budget(n)) sx__out_of_memory();
    void *p = GC_MALLOC(n);
    if (!p) sx__out_of_memory();
    return p;
}

void *sx_alloc_atomic(size_t n)
{
    if (over_budget(n)) sx__out_of_memory();
    void *p = GC_MALLOC_ATOMIC(n);
    if (!p) sx__out_of_memory();
    return p;
}

void *sx_realloc_atomic(void *p, size_t n)
{
    if (!p) return sx_alloc_atomic(n);
    if (over_budget(n)) sx__out_of_memory();
    void *q = GC_REALLOC(p, n);
    if (!q) sx__out_of_memory();
    return q;
}

void sx_free(void *p)
{
    if (p) GC_FREE(p);
}

/* ---- stacks against the budget ------------------------------------------- */

/* Stack bytes are charged in steps of this, so the collector's limit
 * changes rarely. */
#define STACK_STEP ((size_t)1 << 20)

/* The collector unmaps only blocks that have stayed free across more than
 * one collection (GC_unmap_threshold is 1 during GC_gcollect_and_unmap):
 * hence three, the first of which frees the evaluation's garbage. */
void sx_gc_give_back(void)
{
    for (int i = 0; i < 3; i++)
        GC_gcollect_and_unmap();
}

bool sx_heap_fits(sx_ctx *cx, size_t n)
{
    if (!cx->heap_limit) return true;
    if (n > cx->heap_limit) return false;
    if (GC_get_heap_size() <= cx->heap_limit - n) return true;
    sx_gc_give_back(); /* the heap's free blocks need not stay */
    return GC_get_heap_size() <= cx->heap_limit - n;
}

void sx__budget_reset(sx_ctx *cx)
{
    cx->stack_charged = 0;
    GC_set_max_heap_size(cx->heap_limit);
}

/* Charges used bytes of stack: the heap may then grow only to the budget
 * less them, and if it is already bigger the evaluation is too deep for
 * its memory limit. */
static void charge_stacks(sx_ctx *cx, size_t used)
{
    size_t charge = (used + STACK_STEP - 1) / STACK_STEP * STACK_STEP;
    if (charge <= cx->stack_charged) return;
    cx->stack_charged = charge;
    if (charge >= cx->heap_limit)
        sx_error(cx, "stack-overflow", "evaluation nested too deeply for its memory limit");
    if (!sx_heap_fits(cx, charge))
        sx_error(cx, "stack-overflow", "evaluation nested too deeply for its memory limit");
    GC_set_max_heap_size(cx->heap_limit - charge);
}

/* ---- numbers ------------------------------------------------------------ */

sx_val sx_mkfloat(double d)
{
    sx_flonum *f = sx_alloc_atomic(sizeof *f);
    f->h.type = SX_T_FLOAT;
    f->h.aux = 0;
    f->d = d;
    return sx_from_ptr(f);
}

sx_val sx_mkint(sx_ctx *cx, int64_t i, const char *name)
{
    if (!sx_fix_fits(i)) sx_overflow(cx, name);
    return sx_mkfix(i);
}

/* ---- UTF-8 and strings ------------------------------------------------- */

long sx_utf8_count(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    long n = 0;
    while (p < end) {
        unsigned c = *p;
        size_t need;
        uint32_t cp, min;
        if ((size_t)(end - p) >= 8) { /* eight ASCII bytes at a time */
            uint64_t w;
            memcpy(&w, p, 8);
            if ((w & 0x8080808080808080u) == 0) {
                p += 8;
                n += 8;
                continue;
            }
        }
        if (c < 0x80) {
            p++;
            n++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            need = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
            need = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
            need = 3, cp = c & 0x07, min = 0x10000;
        else
            return -1;
        if ((size_t)(end - p) < need + 1) return -1;
        for (size_t k = 1; k <= need; k++) {
            if ((p[k] & 0xc0) != 0x80) return -1;
            cp = (cp << 6) | (p[k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
        p += need + 1;
        n++;
    }
    return n;
}

int sx_utf8_decode(const char *s, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        *cp = ((c & 0x1f) << 6) | (p[1] & 0x3f);
        return 2;
    }
    if ((c & 0xf0) == 0xe0) {
        *cp = ((c & 0x0f) << 12) | ((p[1] & 0x3f) << 6) | (p[2] & 0x3f);
        return 3;
    }
    *cp = ((c & 0x07) << 18) | ((p[1] & 0x3f) << 12) | ((p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    return 4;
}

int sx_utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

uint32_t sx_str_nchars(sx_string *s)
{
    uint32_t n = __atomic_load_n(&s->nchars, __ATOMIC_RELAXED);
    if (n != SX_NCHARS_UNKNOWN) return n;
    long c = sx_utf8_count(s->data, s->len);
    n = c < 0 ? s->len : (uint32_t)c;
    /* the same value from whichever thread counts it */
    __atomic_store_n(&s->nchars, n, __ATOMIC_RELAXED);
    return n;
}

size_t sx_str_offset(sx_string *s, size_t i)
{
    if (sx_str_nchars(s) == s->len) return i;
    size_t off = 0;
    while (i-- > 0 && off < s->len) {
        unsigned c = (unsigned char)s->data[off];
        off += c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    }
    return off;
}

sx_string *sx_string_alloc(size_t len)
{
    if (len >= UINT32_MAX) sx__out_of_memory(); /* the length field is 32 bits */
    sx_string *str = sx_alloc_atomic(sizeof *str + len + 1);
    str->h.type = SX_T_STRING;
    str->h.aux = 0;
    str->len = (uint32_t)len;
    str->data[len] = 0;
    return str;
}

sx_val sx_string_done(sx_string *str)
{
    str->nchars = SX_NCHARS_UNKNOWN;
    return sx_from_ptr(str);
}

sx_val sx_mkstring(const char *s, size_t len)
{
    sx_string *str = sx_string_alloc(len);
    memcpy(str->data, s, len);
    return sx_string_done(str);
}

sx_val sx_mkcstring(const char *s)
{
    return sx_mkstring(s, strlen(s));
}

/* ---- symbols and keywords -------------------------------------------- */

/* Interned names live forever: the tables are static roots. */
typedef struct intern_table {
    sx_symbol **slots;
    size_t size, count;
} intern_table;

static intern_table symbols, keywords;

static uint32_t hash_bytes(const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

static void table_grow(intern_table *t)
{
    size_t nsize = t->size ? t->size * 2 : 1024;
    sx_symbol **ns = GC_MALLOC_UNCOLLECTABLE(nsize * sizeof *ns);
    if (!ns) sx__out_of_memory();
    for (size_t i = 0; i < t->size; i++) {
        sx_symbol *s = t->slots[i];
        while (s) {
            sx_symbol *next = s->next;
            size_t j = s->hash & (nsize - 1);
            s->next = ns[j];
            ns[j] = s;
            s = next;
        }
    }
    if (t->slots) GC_FREE(t->slots);
    t->slots = ns;
    t->size = nsize;
}

static sx_val intern_in(intern_table *t, enum sx_type type, const char *name, size_t len)
{
    if (t->count * 2 >= t->size) table_grow(t);
    uint32_t h = hash_bytes(name, len);
    for (sx_symbol *s = t->slots[h & (t->size - 1)]; s; s = s->next) {
        sx_string *n = sx_str(s->name);
        if (s->hash == h && n->len == len && memcmp(n->data, name, len) == 0) return sx_from_ptr(s);
    }
    sx_symbol *s = sx_alloc(sizeof *s);
    s->h.type = type;
    s->hash = h;
    s->name = sx_mkstring(name, len);
    s->global = SX_UNDEF;
    s->macro = SX_UNDEF;
    s->special = 0;
    s->watched = 0;
    size_t j = h & (t->size - 1);
    s->next = t->slots[j];
    t->slots[j] = s;
    t->count++;
    return sx_from_ptr(s);
}

sx_val sx_intern(const char *name, size_t len)
{
    return intern_in(&symbols, SX_T_SYMBOL, name, len);
}

sx_val sx_intern_c(const char *name)
{
    return sx_intern(name, strlen(name));
}

sx_val sx_keyword(const char *name, size_t len)
{
    return intern_in(&keywords, SX_T_KEYWORD, name, len);
}

/* Uninterned: a gensym is eq? only to itself. */
sx_val sx_gensym(void)
{
    static unsigned long counter;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "g%lu", ++counter);
    sx_symbol *s = sx_alloc(sizeof *s);
    s->h.type = SX_T_SYMBOL;
    s->hash = hash_bytes(buf, (size_t)n);
    s->name = sx_mkstring(buf, (size_t)n);
    s->global = SX_UNDEF;
    s->macro = SX_UNDEF;
    s->watched = 0;
    return sx_from_ptr(s);
}

/* ---- vectors, errors, lists ------------------------------------------ */

sx_val sx_mkvector(size_t n, sx_val fill)
{
    sx_vector *v = sx_alloc(sizeof *v + n * sizeof(sx_val));
    v->h.type = SX_T_VECTOR;
    v->len = (uint32_t)n;
    for (size_t i = 0; i < n; i++)
        v->items[i] = fill;
    return sx_from_ptr(v);
}

sx_val sx_mkerror(sx_val kind, sx_val message, sx_val payload)
{
    sx_errobj *e = sx_alloc(sizeof *e);
    e->h.type = SX_T_ERROR;
    e->kind = kind;
    e->message = message;
    e->payload = payload;
    return sx_from_ptr(e);
}

sx_val sx_mkerror_c(const char *kind, const char *message)
{
    return sx_mkerror(sx_intern_c(kind), sx_mkcstring(message), SX_NIL);
}

sx_val sx_list(int n, ...)
{
    sx_val items[16], l = SX_NIL;
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n && i < 16; i++)
        items[i] = va_arg(ap, sx_val);
    va_end(ap);
    for (int i = (n < 16 ? n : 16) - 1; i >= 0; i--)
        l = sx_cons(items[i], l);
    return l;
}

bool sx_list_cyclic(sx_val l)
{
    sx_val slow = l;
    while (sx_is_pair(l)) {
        l = SX_CDR(l);
        if (!sx_is_pair(l)) return false;
        l = SX_CDR(l);
        slow = SX_CDR(slow);
        if (l == slow) return true;
    }
    return false;
}

long sx_list_length(sx_val l)
{
    long n = 0;
    if (sx_list_cyclic(l)) return -1;
    while (sx_is_pair(l)) {
        n++;
        l = SX_CDR(l);
    }
    return l == SX_NIL ? n : -1;
}

sx_val sx_reverse(sx_val l)
{
    sx_val r = SX_NIL;
    for (; sx_is_pair(l); l = SX_CDR(l))
        r = sx_cons(SX_CAR(l), r);
    return r;
}

/* ---- errors --------------------------------------------------------------- */

bool sx_catchable(sx_val obj)
{
    if (!sx_is(obj, SX_T_ERROR)) return true;
    const char *k = sx_sym_name(SX_OBJ(sx_errobj, obj)->kind);
    return strcmp(k, "stack-overflow") && strcmp(k, "memory-limit") && strcmp(k, "timeout");
}

/* Whether an error raised while native code runs counts against that code:
 * the checks a miscompile trips (wrong types, counts, indexes, effects),
 * not the program's own error/raise nor the evaluation's limits. */
static bool native_fault_kind(sx_val v)
{
    return sx_is(v, SX_T_ERROR) && sx_catchable(v) &&
           strcmp(sx_sym_name(SX_OBJ(sx_errobj, v)->kind), "user-error");
}

void sx_not_a_procedure(sx_ctx *cx, sx_val v)
{
    sx_buf b;
    sx_buf_init(&b);
    sx_buf_adds(&b, "not a procedure: ");
    sx_print(&b, v, true);
    sx_val msg = sx_mkstring(b.p, b.len);
    sx_buf_free(&b);
    sx_raise(cx, sx_mkerror(sx_intern_c("type-error"), msg, SX_NIL));
}

void sx_unbound(sx_ctx *cx, sx_val sym)
{
    sx_error(cx, "unbound-variable", "unbound variable: %s", sx_sym_name(sym));
}

void sx_raise(sx_ctx *cx, sx_val v)
{
    cx->raised = v;
    cx->raised_native = native_fault_kind(v) ? cx->native_proto : NULL;
    if (!cx->jmp) {
        fputs("sxpool: error raised outside any protected call\n", stderr);
        abort();
    }
    longjmp(cx->jmp->buf, 1);
}

void sx_rethrow(sx_ctx *cx)
{
    if (!cx->jmp) {
        fputs("sxpool: error raised outside any protected call\n", stderr);
        abort();
    }
    longjmp(cx->jmp->buf, 1);
}

void sx_error(sx_ctx *cx, const char *kind, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sx_raise(cx, sx_mkerror_c(kind, buf));
}

const char *sx_type_name(sx_val v)
{
    if (sx_is_fix(v)) return "integer";
    if (sx_is_pair(v)) return "list";
    if (v == SX_NIL) return "nil";
    if (v == SX_TRUE || v == SX_FALSE) return "boolean";
    if (sx_is_char(v)) return "char";
    if (!sx_is_obj(v)) return "unknown";
    switch (sx_type_of_obj(v)) {
    case SX_T_FLOAT: return "float";
    case SX_T_STRING: return "string";
    case SX_T_SYMBOL: return "symbol";
    case SX_T_KEYWORD: return "keyword";
    case SX_T_VECTOR: return "vector";
    case SX_T_DICT: return "dict";
    case SX_T_PRIM:
    case SX_T_VMCLOSURE:
    case SX_T_CLOSURE: return "fn";
    case SX_T_ERROR: return "error";
    default: return "internal";
    }
}

void sx_type_error(sx_ctx *cx, const char *name, const char *expected, int argc, const sx_val *argv)
{
    sx_buf b;
    sx_buf_init(&b);
    sx_buf_printf(&b, "%s: expected (%s), got (", name, expected);
    for (int i = 0; i < argc; i++) {
        if (i) sx_buf_addc(&b, ' ');
        sx_buf_adds(&b, sx_type_name(argv[i]));
    }
    sx_buf_addc(&b, ')');
    sx_val msg = sx_mkstring(b.p, b.len);
    sx_buf_free(&b);
    sx_raise(cx, sx_mkerror(sx_intern_c("type-error"), msg, SX_NIL));
}

void sx_arity_error(sx_ctx *cx, const char *name, int min, int max, int got)
{
    char want[64];
    if (min == max)
        snprintf(want, sizeof want, "%d argument%s", min, min == 1 ? "" : "s");
    else if (max < 0)
        snprintf(want, sizeof want, "at least %d argument%s", min, min == 1 ? "" : "s");
    else if (max == min + 1)
        snprintf(want, sizeof want, "%d or %d arguments", min, max);
    else
        snprintf(want, sizeof want, "%d to %d arguments", min, max);
    sx_error(cx, "arity-error", "%s: expected %s, got %d", name ? name : "#<fn>", want, got);
}

void sx_overflow(sx_ctx *cx, const char *name)
{
    sx_error(cx, "overflow", "%s: integer result out of range", name);
}

void sx__jit_limit_sync(sx_ctx *cx)
{
    /* sequentially consistent, against sx_vm_interrupt's two stores: if
     * the flag reads clear, that setter's store of the limit comes after
     * this one */
    __atomic_store_n(&cx->jit_limit, cx->cstack_limit, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cx->interrupt, __ATOMIC_SEQ_CST))
        __atomic_store_n(&cx->jit_limit, SX_JIT_LIMIT_PENDING, __ATOMIC_SEQ_CST);
}

void sx_timeout(sx_ctx *cx)
{
    __atomic_store_n(&cx->interrupt, 0, __ATOMIC_SEQ_CST);
    sx__jit_limit_sync(cx);
    sx_error(cx, "timeout", "evaluation interrupted: deadline passed");
}

void sx_check_cstack(sx_ctx *cx)
{
    char here;
    /* the slow path of native code's test lands here (sx_core.h): a limit
     * left poisoned with no interrupt pending is put back */
    if (__atomic_load_n(&cx->jit_limit, __ATOMIC_RELAXED) != cx->cstack_limit &&
        !__atomic_load_n(&cx->interrupt, __ATOMIC_RELAXED))
        sx__jit_limit_sync(cx);
    if (cx->cstack_limit && &here < cx->cstack_limit)
        sx_error(cx, "stack-overflow", "native stack exhausted");
    if (!cx->cstack_base || !cx->heap_limit) return;
    size_t c = &here < cx->cstack_base ? (size_t)(cx->cstack_base - &here) : 0;
    size_t used = c + sx__vm_stack_bytes() + sx__cek_stack_bytes();
    if (used > cx->stack_charged) charge_stacks(cx, used);
}

/* ---- procedures ----------------------------------------------------------- */

void sx_defprim(const char *name, sx_prim_fn fn, int min, int max)
{
    sx_prim *p = sx_alloc(sizeof *p);
    p->h.type = SX_T_PRIM;
    p->name = name;
    p->fn = fn;
    p->min_args = min;
    p->max_args = max;
    p->name_sym = sx_intern_c(name);
    sx_set_global(sx_sym(p->name_sym), sx_from_ptr(p));
}
