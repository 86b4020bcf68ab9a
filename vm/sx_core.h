/* sx_core.h: the vm module's internal interface, shared by its .c files:
 * the evaluation context, allocation, constructors, errors, equality,
 * printing and primitive registration. Not included outside vm/.
 *
 * Errors: sx_raise() and the sx_*_error() helpers longjmp to the innermost
 * protected boundary (sx_try). Nothing non-local leaves the vm module: its
 * public entry points (vm.h) return a status.
 */
#ifndef SX_CORE_H
#define SX_CORE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>

#include "vm/sx_value.h"

/* ---- evaluation context ---------------------------------------------- */

typedef struct sx_jmp {
    jmp_buf buf;
    struct sx_jmp *prev;
    /* set by the VM on its own boundaries (an interpreter run, a guard in
     * native code), which put the VM's stacks back as they were when a
     * raise lands there; false for every other */
    bool vm;
} sx_jmp;

typedef struct sx_ctx sx_ctx;

/* Host effects: (perform op arg...). Returns the result or raises. */
typedef sx_val (*sx_perform_fn)(sx_ctx *cx, sx_val op, int argc, sx_val *argv);

struct sx_ctx {
    sx_jmp *jmp;   /* innermost protected boundary */
    sx_val raised; /* the value in flight while unwinding */

    /* Apply a procedure from C (used by map, sort, apply, ...). Provided
     * by the evaluator that runs (CEK now, the VM later). */
    sx_val (*apply)(sx_ctx *cx, sx_val fn, int argc, sx_val *argv);

    sx_perform_fn perform;
    void *host; /* the host's own state for perform */

    char *cstack_limit;     /* raise stack-overflow below this C address */
    char *jit_limit;        /* what native code compares its frame with: see below */
    char *cstack_base;      /* the C stack's top in the running protected call */
    size_t kstack_max;      /* CEK continuation stack limit, in slots */
    size_t heap_limit;      /* bytes; 0 = none: the one budget of sx_object.c */
    size_t stack_charged;   /* stack bytes charged against heap_limit */
    void *eval;             /* the evaluator's own state */
    FILE *out;              /* where display/print/write go */
    volatile int interrupt; /* set asynchronously: raise timeout at the next call */
    void *native_proto;     /* sx_proto of the innermost native function running */
    void *raised_native;    /* native_proto when the value in flight was raised */
    int64_t jit_tail_n;     /* argument count of a tail call native code returned */
    uint32_t jit_epoch;     /* stamped into sx_proto.jit_entered by native code */
    /* the native tier's link table (sx_bc.h), for native code entered
     * without it (a direct entry), and its counters, which native code
     * keeps at a fixed offset of the cx it holds (sx_jit_calls) */
    const void *jit_link;
    uint64_t jit_native_calls; /* (jit-stats) :native-calls */
    uint64_t jit_direct_calls; /* of those, calls of another function's direct entry */
    uint64_t nondet_calls;     /* calls of built-ins whose value is not a function of
                                * their arguments (current-time-ms) */
};

/* Native code makes one test on entry to a function and before a call:
 * its frame's address against cx->jit_limit, which is cstack_limit, or
 * SX_JIT_LIMIT_PENDING (above every address, compared signed or not) from
 * when an interrupt is posted until it is taken; the slow path that test
 * leads to (the link table's call) checks both. The interrupt's setter
 * (sx_vm_interrupt, any thread or a signal handler) writes the flag, then
 * the limit; whoever clears the flag puts the limit back with
 * sx__jit_limit_sync, which leaves it poisoned if a new interrupt came
 * meanwhile; and sx_check_cstack, on that slow path, repairs a limit a
 * late setter poisoned after the flag was taken, so native code cannot
 * keep taking the slow path for nothing. */
#define SX_JIT_LIMIT_PENDING ((char *)INTPTR_MAX)

/* The context of this thread's running evaluation (one per process in
 * practice). Allocation failures raise memory-limit through it. */
extern sx_ctx *sx_cur;

#define sx_try(cx, j)                                                                              \
    (((j)->prev = (cx)->jmp), ((j)->vm = false), ((cx)->jmp = (j)), setjmp((j)->buf))
#define sx_try_end(cx, j) ((cx)->jmp = (j)->prev)

_Noreturn void sx_raise(sx_ctx *cx, sx_val v);
/* Passes the value in flight (cx->raised) on to the next boundary, keeping
 * what was recorded when it was raised (cx->raised_native). */
_Noreturn void sx_rethrow(sx_ctx *cx);
_Noreturn void sx_error(sx_ctx *cx, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "NAME: expected (EXPECTED), got (type of each argv)" */
_Noreturn void sx_type_error(sx_ctx *cx, const char *name, const char *expected, int argc,
                             const sx_val *argv);
/* "NAME: expected 1 argument, got 2" and the other shapes of SX.md 9. */
_Noreturn void sx_arity_error(sx_ctx *cx, const char *name, int min, int max, int got);
_Noreturn void sx_overflow(sx_ctx *cx, const char *name);
/* "not a procedure: VALUE" (a type-error) and "unbound variable: NAME". */
_Noreturn void sx_not_a_procedure(sx_ctx *cx, sx_val v);
_Noreturn void sx_unbound(sx_ctx *cx, sx_val sym);
/* Whether guard may catch obj (all but stack-overflow, memory-limit, timeout). */
bool sx_catchable(sx_val obj);
/* Check the C stack; raises stack-overflow when it runs low, or when the
 * stacks (C, VM, CEK) and the heap together exceed heap_limit. */
void sx_check_cstack(sx_ctx *cx);
/* cx->jit_limit = cstack_limit, or SX_JIT_LIMIT_PENDING while cx->interrupt
 * is set. */
void sx__jit_limit_sync(sx_ctx *cx);
/* Takes the pending interrupt (clears the flag, restores jit_limit) and
 * raises timeout. */
_Noreturn void sx_timeout(sx_ctx *cx);
/* Whether n bytes outside the heap fit in the budget next to it (collects
 * and unmaps the heap's free blocks if that is what it takes). */
bool sx_heap_fits(sx_ctx *cx, size_t n);
/* Collects, and returns the heap's free blocks to the system. */
void sx_gc_give_back(void);
/* Gives the whole budget back to the heap (between evaluations). */
void sx__budget_reset(sx_ctx *cx);
/* Bytes the VM's and the CEK machine's stacks hold now. */
size_t sx__vm_stack_bytes(void);
size_t sx__cek_stack_bytes(void);
/* Returns the VM's and the CEK machine's unused stack pages to the system. */
void sx__vm_release_stacks(void);
void sx__cek_release_stack(void);

/* Type name used in error messages: integer float string symbol keyword
 * char boolean nil list vector dict fn error. */
const char *sx_type_name(sx_val v);

/* ---- allocation ------------------------------------------------------- */

void sx_gc_init(void);
/* All raise memory-limit when the budget (heap_limit) cannot hold n bytes. */
void *sx_alloc_atomic(size_t n);            /* not scanned, not zeroed */
void *sx_realloc_atomic(void *p, size_t n); /* p from sx_alloc_atomic or NULL */
void sx_free(void *p);                      /* frees at once what nothing else holds */
/* Raises memory-limit (an error that cannot allocate an error object). */
_Noreturn void sx__out_of_memory(void);

/* Small objects (up to SX_FL_GRANULES granules of 16 bytes, the
 * collector's unit) come from free lists of collector objects kept here,
 * one per size, each refilled a block at a time (GC_generic_malloc_many):
 * an allocation is then a pop, without the collector's thread-local
 * look-up or a call. The lists are static, so the collector marks what is
 * on them, and belong to the evaluating thread, the only one that
 * allocates SX objects. A collector object of g granules holds g * 16 - 1
 * bytes: the last byte is the one the collector adds so that a pointer
 * just past an object keeps it alive (all interior pointers are valid). */
#define SX_FL_GRANULES 16
extern void *sx__fl[SX_FL_GRANULES + 1];
void *sx__alloc_slow(size_t n); /* refills a list, or allocates a big object */

static inline size_t sx__granules(size_t n)
{
    return (n + 16) >> 4; /* n bytes and the collector's extra byte */
}

/* n bytes, zeroed, may hold pointers. */
static inline void *sx_alloc(size_t n)
{
    size_t g = sx__granules(n);
    if (__builtin_expect(g <= SX_FL_GRANULES, 1)) {
        void **p = (void **)sx__fl[g];
        if (__builtin_expect(p != NULL, 1)) {
            sx__fl[g] = *p; /* the list is linked through first words */
            *p = NULL;      /* the rest of a listed object is zero */
            return p;
        }
    }
    return sx__alloc_slow(n);
}

/* Pairs are collector objects of exactly 16 bytes, of an object kind of
 * their own whose mark descriptor scans both words: an object allocated
 * the usual way carries the extra byte, which makes a 16-byte object 32
 * bytes (and the collector would not scan the last word of a 16-byte
 * one). A pair needs no extra byte: nothing holds a pointer just past
 * one, only pointers into it (tagged, at +3, or to its car or cdr). Their
 * free list is kept here like the others. */
extern void *sx__fl_pair;
void *sx__pair_slow(void);

static inline sx_val sx_cons(sx_val a, sx_val d)
{
    void **q = (void **)sx__fl_pair;
    if (__builtin_expect(q != NULL, 1))
        sx__fl_pair = *q;
    else
        q = (void **)sx__pair_slow();
    sx_pair *p = (sx_pair *)q;
    p->car = a;
    p->cdr = d;
    return (sx_val)p | SX_TAG_PAIR;
}

/* ---- constructors and accessors --------------------------------------- */

sx_val sx_mkfloat(double d);
static inline double sx_float(sx_val v)
{
    return SX_OBJ(sx_flonum, v)->d;
}
static inline bool sx_is_float(sx_val v)
{
    return sx_is(v, SX_T_FLOAT);
}
static inline bool sx_is_number(sx_val v)
{
    return sx_is_fix(v) || sx_is_float(v);
}
/* Integer result or overflow error naming the operation. */
sx_val sx_mkint(sx_ctx *cx, int64_t i, const char *name);

/* Strings: bytes must be valid UTF-8 (callers validate input). */
sx_val sx_mkstring(const char *s, size_t len);
sx_val sx_mkcstring(const char *s);
static inline sx_string *sx_str(sx_val v)
{
    return SX_OBJ(sx_string, v);
}
static inline bool sx_is_string(sx_val v)
{
    return sx_is(v, SX_T_STRING);
}
/* Counts code points; returns -1 if the bytes are not valid UTF-8. */
long sx_utf8_count(const char *s, size_t len);
/* A string built in place: sx_string_alloc(len) gives len bytes (and the
 * terminating NUL) to fill, sx_string_done() returns it as a value, as
 * sx_mkstring() would have made it. */
sx_string *sx_string_alloc(size_t len);
sx_val sx_string_done(sx_string *str);
/* The string's length in code points (its bytes when they are not valid
 * UTF-8), counted the first time it is asked for. */
uint32_t sx_str_nchars(sx_string *s);
/* Decodes one code point at s (valid UTF-8), returns its byte length. */
int sx_utf8_decode(const char *s, uint32_t *cp);
/* Encodes cp into out (4 bytes room), returns the byte length. */
int sx_utf8_encode(uint32_t cp, char *out);
/* Byte offset of character index i in a string (i <= nchars). */
size_t sx_str_offset(sx_string *s, size_t i);

sx_val sx_intern(const char *name, size_t len);
sx_val sx_intern_c(const char *name);
sx_val sx_keyword(const char *name, size_t len); /* name without ':' */
static inline sx_symbol *sx_sym(sx_val v)
{
    return SX_OBJ(sx_symbol, v);
}
static inline const char *sx_sym_name(sx_val v)
{
    return sx_str(sx_sym(v)->name)->data;
}
sx_val sx_gensym(void);

sx_val sx_mkvector(size_t n, sx_val fill);
/* h.aux of a vector the reader made from a dict literal {k v ...}: its
 * items are unevaluated key and value forms. */
#define SX_VEC_DICT_FORM 1u
static inline sx_vector *sx_vec(sx_val v)
{
    return SX_OBJ(sx_vector, v);
}

sx_val sx_mkdict(size_t hint);
static inline sx_dict *sx_dictp(sx_val v)
{
    return SX_OBJ(sx_dict, v);
}
/* Returns true and sets *out when key is present. */
bool sx_dict_lookup(sx_val d, sx_val key, sx_val *out);
void sx_dict_put(sx_val d, sx_val key, sx_val val); /* existing key keeps its place */
bool sx_dict_remove(sx_val d, sx_val key);
sx_val sx_dict_copy(sx_val d);

sx_val sx_mkerror(sx_val kind, sx_val message, sx_val payload);
sx_val sx_mkerror_c(const char *kind, const char *message);

/* list helpers */
sx_val sx_list(int n, ...);
long sx_list_length(sx_val l); /* -1 if not a proper list (a cycle is not) */
/* True if following the cdrs from l comes back to a pair already passed:
 * every C loop that walks a list the program gave it checks first, since
 * it would not see the request's deadline. */
bool sx_list_cyclic(sx_val l);
sx_val sx_reverse(sx_val l);

/* ---- equality and hashing --------------------------------------------- */

bool sx_eqv(sx_val a, sx_val b);
bool sx_equal(sx_val a, sx_val b);
/* The finalizer of splitmix64: every hash goes through it. */
static inline uint64_t sx__hash_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}
uint64_t sx__hash_heap(sx_val v); /* a pair's or an object's */
/* Consistent with sx_equal. An immediate (fixnum, character, boolean, nil)
 * is hashed here, without a call: dict keys are often small integers. */
static inline uint64_t sx_hash(sx_val v)
{
    if (!sx_is_pair(v) && !sx_is_obj(v)) return sx__hash_mix((uint64_t)v);
    return sx__hash_heap(v);
}

/* ---- printing ---------------------------------------------------------- */

/* A growable text buffer in the collected heap: it counts against
 * heap_limit, and one an error unwinds past is reclaimed by the collector.
 * Keep sx_buf structs where the collector looks (the C stack, the heap). */
typedef struct sx_buf {
    char *p;
    size_t len, cap;
} sx_buf;

void sx_buf_init(sx_buf *b);
void sx_buf_free(sx_buf *b);
void sx_buf_add(sx_buf *b, const char *s, size_t n);
void sx_buf_adds(sx_buf *b, const char *s);
void sx_buf_addc(sx_buf *b, char c);
void sx_buf_printf(sx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends v's write form (write=true) or display form. */
void sx_print(sx_buf *b, sx_val v, bool write);
/* Python-repr style float text, as SX.md 9 fixes. */
void sx_print_float(sx_buf *b, double d);
/* v's printed form as a new SX string. */
sx_val sx_to_string(sx_val v, bool write);

/* ---- procedures ------------------------------------------------------- */

/* Name of a procedure for messages and #<fn NAME>; NULL if anonymous. */
const char *sx_proc_name(sx_val f);
bool sx_is_procedure(sx_val v);

/* Defines a built-in as a global. max < 0: variadic. */
void sx_defprim(const char *name, sx_prim_fn fn, int min, int max);

/* Set by the native tier: called after a write to a global whose symbol
 * is watched (native code assumes its value). */
extern void (*sx_jit_global_hook)(sx_symbol *s);

/* Every write of a global binding goes through here. */
static inline void sx_set_global(sx_symbol *s, sx_val v)
{
    s->global = v;
    if (__builtin_expect(s->watched != 0, 0)) sx_jit_global_hook(s);
}

/* Argument checks used by primitives. */
#define SX_CHECK(cx, cond, name, expected, argc, argv)                                             \
    do {                                                                                           \
        if (!(cond)) sx_type_error((cx), (name), (expected), (argc), (argv));                      \
    } while (0)

/* Primitive families, each in its own file. */
void sx__init_prims_num(void);
void sx__init_prims_list(void);
void sx__init_prims_string(void);
void sx__init_prims_vector(void);
void sx__init_prims_dict(void);
void sx__init_prims_misc(void);
void sx__init_prims_json(void);

#endif
