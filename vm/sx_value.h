/* sx_value.h: the representation of SX values. Only this header knows the
 * tag layout; everything else uses the accessors below.
 *
 * A value is one machine word (sx_val). The low two bits are the tag:
 *
 *   ..00  pointer to a heap object with an sx_obj header (never 0)
 *   ..01  fixnum: the integer is the word shifted right by 2 (62 bits,
 *         -2^61 .. 2^61-1, exactly the SX integer range)
 *   ..10  immediate: nil, #f, #t, characters, and internal markers
 *   ..11  pointer to a pair + 3 (pairs have no header: 16 bytes each)
 *
 * Tagged fixnum arithmetic detects 62-bit overflow with the machine's 64-bit
 * overflow flag: (a + b - 1) overflows int64 exactly when the sum leaves the
 * SX range, which is what the JIT will emit inline too.
 *
 * Memory is managed by the Boehm-Demers-Weiser collector: it scans the C
 * stack and registers conservatively, so native code compiled by the JIT may
 * keep values anywhere without telling anyone. Objects with no pointers
 * inside (strings, floats) are allocated atomic so they are never scanned.
 */
#ifndef SX_VALUE_H
#define SX_VALUE_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

typedef uintptr_t sx_val;

#define SX_TAG_MASK ((sx_val)3)
#define SX_TAG_OBJ ((sx_val)0)
#define SX_TAG_FIX ((sx_val)1)
#define SX_TAG_IMM ((sx_val)2)
#define SX_TAG_PAIR ((sx_val)3)

/* Immediates: (payload << 8) | (subtag << 2) | 2. */
#define SX_NIL ((sx_val)0x02)
#define SX_FALSE ((sx_val)0x06)
#define SX_TRUE ((sx_val)0x0a)
#define SX_CHAR_SUB ((sx_val)0x0e)
#define SX_UNDEF ((sx_val)0x12) /* unassigned variable (letrec, globals) */
#define SX_NOARG ((sx_val)0x16) /* "argument not given" marker */

#define SX_FIX_MIN (-((int64_t)1 << 61))
#define SX_FIX_MAX (((int64_t)1 << 61) - 1)

static inline bool sx_truthy(sx_val v)
{
    return (v | 4) != 6; /* only nil (0x02) and #f (0x06) are false */
}
static inline sx_val sx_bool(bool b)
{
    return b ? SX_TRUE : SX_FALSE;
}

static inline bool sx_is_fix(sx_val v)
{
    return (v & SX_TAG_MASK) == SX_TAG_FIX;
}
static inline int64_t sx_fix(sx_val v)
{
    return (int64_t)(intptr_t)v >> 2;
}
static inline bool sx_fix_fits(int64_t i)
{
    return i >= SX_FIX_MIN && i <= SX_FIX_MAX;
}
/* The caller guarantees sx_fix_fits(i). */
static inline sx_val sx_mkfix(int64_t i)
{
    return ((sx_val)i << 2) | SX_TAG_FIX;
}

static inline bool sx_is_char(sx_val v)
{
    return (v & 0xff) == SX_CHAR_SUB;
}
static inline uint32_t sx_char(sx_val v)
{
    return (uint32_t)(v >> 8);
}
static inline sx_val sx_mkchar(uint32_t cp)
{
    return ((sx_val)cp << 8) | SX_CHAR_SUB;
}

static inline bool sx_is_pair(sx_val v)
{
    return (v & SX_TAG_MASK) == SX_TAG_PAIR;
}
static inline bool sx_is_obj(sx_val v)
{
    return (v & SX_TAG_MASK) == SX_TAG_OBJ;
}

typedef struct sx_pair {
    sx_val car, cdr;
} sx_pair;

static inline sx_pair *sx_pairp(sx_val v)
{
    return (sx_pair *)(v - SX_TAG_PAIR);
}
#define SX_CAR(v) (sx_pairp(v)->car)
#define SX_CDR(v) (sx_pairp(v)->cdr)

/* Heap object types. */
enum sx_type {
    SX_T_FLOAT = 1,
    SX_T_STRING,
    SX_T_SYMBOL,
    SX_T_KEYWORD,
    SX_T_VECTOR,
    SX_T_DICT,
    SX_T_PRIM,      /* built-in procedure */
    SX_T_CLOSURE,   /* procedure made by lambda (CEK) */
    SX_T_ERROR,     /* error object */
    SX_T_ENV,       /* CEK environment frame (internal) */
    SX_T_BOX,       /* internal mutable cell */
    SX_T_CODE,      /* compiled lambda template (internal) */
    SX_T_VMCLOSURE, /* procedure made by lambda (VM) */
    SX_T_PROTO,     /* bytecode function (internal) */
};

typedef struct sx_obj {
    uint32_t type;
    uint32_t aux; /* per-type small field */
} sx_obj;

static inline uint32_t sx_type_of_obj(sx_val v)
{
    return ((sx_obj *)v)->type;
}
static inline bool sx_is(sx_val v, enum sx_type t)
{
    return sx_is_obj(v) && ((sx_obj *)v)->type == (uint32_t)t;
}

typedef struct sx_float {
    sx_obj h;
    double d;
} sx_flonum;

/* Strings are immutable UTF-8. h.aux is unused; nchars counts code points
 * so ASCII strings (nchars == len) index in O(1); it is SX_NCHARS_UNKNOWN
 * until something needs it (sx_str_nchars counts then: most strings built,
 * such as response bodies, are never indexed). data is NUL-terminated. */
typedef struct sx_string {
    sx_obj h;
    uint32_t len;
    uint32_t nchars;
    char data[];
} sx_string;

#define SX_NCHARS_UNKNOWN UINT32_MAX /* above any len (sx_string_alloc) */

/* Symbols and keywords are interned; a symbol carries its global binding. */
typedef struct sx_symbol {
    sx_obj h;
    uint32_t hash;
    sx_val name;   /* sx_string */
    sx_val global; /* SX_UNDEF when unbound */
    sx_val macro;  /* SX_UNDEF when not a macro */
    int special;   /* special-form id, 0 if none (set by the expander) */
    /* how many functions' native code assumes the global's value (jit/
     * README.md, "Assumed globals"): writes to it go through
     * sx_jit_global_hook while it is not 0 */
    uint32_t watched;
    struct sx_symbol *next; /* intern chain */
} sx_symbol;

typedef struct sx_vector {
    sx_obj h;
    uint32_t len;
    sx_val items[];
} sx_vector;

/* Insertion-ordered hash map with equal? keys. Entries are appended; a
 * deleted entry has key SX_UNDEF until the next rebuild. index[] holds
 * entry numbers + 1 (0 = empty slot), open addressing, size a power of 2. */
typedef struct sx_dict_entry {
    sx_val key, val;
    uint64_t hash;
} sx_dict_entry;

typedef struct sx_dict {
    sx_obj h;
    uint32_t count; /* live entries */
    uint32_t used;  /* entries[] slots used, live or deleted */
    uint32_t cap;   /* entries[] capacity */
    uint32_t mask;  /* index size - 1 */
    sx_dict_entry *entries;
    uint32_t *index;
} sx_dict;

struct sx_ctx;
typedef sx_val (*sx_prim_fn)(struct sx_ctx *cx, int argc, sx_val *argv);

/* A built-in. max_args < 0 means variadic. */
typedef struct sx_prim {
    sx_obj h;
    const char *name;
    sx_prim_fn fn;
    int min_args, max_args;
    sx_val name_sym;
} sx_prim;

typedef struct sx_error {
    sx_obj h;
    sx_val kind;    /* symbol */
    sx_val message; /* string */
    sx_val payload;
} sx_errobj;

typedef struct sx_box {
    sx_obj h;
    sx_val v;
} sx_box;

#define SX_OBJ(type, v) ((type *)(v))

static inline sx_val sx_from_ptr(const void *p)
{
    return (sx_val)p;
}

#endif
