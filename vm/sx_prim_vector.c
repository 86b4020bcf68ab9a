/* sx_prim_vector.c: the vector primitives of SX.md 4.
 *
 * Vectors are fixed-length, mutable arrays of values. Indexes are checked
 * against the length at the moment of use: a non-integer index is a
 * type-error, one out of range an index-error. vector-map and
 * vector-for-each take one or more vectors, stop at the shortest and call
 * the procedure on the elements in index order; vector-map writes into a
 * fresh vector, which is what it returns.
 */
#include "vm/sx_core.h"

#define LOCAL_ARGS 8
#define MAX_VECTOR 0xffffffffu

static bool is_vector(sx_val v)
{
    return sx_is(v, SX_T_VECTOR);
}

static _Noreturn void index_error(sx_ctx *cx, const char *name, int64_t k, uint32_t len)
{
    sx_error(cx, "index-error", "%s: index %lld out of range for length %u", name, (long long)k,
             len);
}

/* argv[i], an index into argv[0] in 0..limit (inclusive); argv[i] may be
 * missing (i >= argc), then dflt. */
static uint32_t index_arg(sx_ctx *cx, int argc, sx_val *argv, int i, uint32_t limit, uint32_t dflt,
                          const char *name, const char *expected)
{
    if (i >= argc) return dflt;
    SX_CHECK(cx, sx_is_fix(argv[i]), name, expected, argc, argv);
    int64_t k = sx_fix(argv[i]);
    if (k < 0 || k > (int64_t)limit) index_error(cx, name, k, sx_vec(argv[0])->len);
    return (uint32_t)k;
}

/* [start, end) from optional arguments at argv[i] and argv[i + 1]. */
static void range_args(sx_ctx *cx, int argc, sx_val *argv, int i, const char *name,
                       const char *expected, uint32_t *start, uint32_t *end)
{
    uint32_t len = sx_vec(argv[0])->len;
    *start = index_arg(cx, argc, argv, i, len, 0, name, expected);
    *end = index_arg(cx, argc, argv, i + 1, len, len, name, expected);
    if (*start > *end)
        sx_error(cx, "index-error", "%s: start %u is after end %u", name, *start, *end);
}

static sx_val p_vector(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val v = sx_mkvector((size_t)argc, SX_NIL);
    for (int i = 0; i < argc; i++)
        sx_vec(v)->items[i] = argv[i];
    return v;
}

static sx_val p_make_vector(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 2 ? "integer any" : "integer";
    SX_CHECK(cx, sx_is_fix(argv[0]), "make-vector", expected, argc, argv);
    if (sx_fix(argv[0]) < 0)
        sx_error(cx, "type-error", "make-vector: length must not be negative, got %lld",
                 (long long)sx_fix(argv[0]));
    if (sx_fix(argv[0]) > (int64_t)MAX_VECTOR)
        sx_error(cx, "memory-limit", "make-vector: %lld elements is too many",
                 (long long)sx_fix(argv[0]));
    return sx_mkvector((size_t)sx_fix(argv[0]), argc == 2 ? argv[1] : SX_NIL);
}

static sx_val p_vectorp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(is_vector(argv[0]));
}

static sx_val p_vector_length(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, is_vector(argv[0]), "vector-length", "vector", argc, argv);
    return sx_mkfix(sx_vec(argv[0])->len);
}

static uint32_t element_index(sx_ctx *cx, int argc, sx_val *argv, const char *name,
                              const char *expected)
{
    SX_CHECK(cx, is_vector(argv[0]) && sx_is_fix(argv[1]), name, expected, argc, argv);
    int64_t k = sx_fix(argv[1]);
    uint32_t len = sx_vec(argv[0])->len;
    if (k < 0 || k >= (int64_t)len) index_error(cx, name, k, len);
    return (uint32_t)k;
}

static sx_val p_vector_ref(sx_ctx *cx, int argc, sx_val *argv)
{
    uint32_t k = element_index(cx, argc, argv, "vector-ref", "vector integer");
    return sx_vec(argv[0])->items[k];
}

static sx_val p_vector_set(sx_ctx *cx, int argc, sx_val *argv)
{
    uint32_t k = element_index(cx, argc, argv, "vector-set!", "vector integer any");
    sx_vec(argv[0])->items[k] = argv[2];
    return SX_NIL;
}

/* (vector->list v [start [end]]) */
static sx_val p_vector_to_list(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 1   ? "vector"
                           : argc == 2 ? "vector integer"
                                       : "vector integer integer";
    uint32_t start, end;
    SX_CHECK(cx, is_vector(argv[0]), "vector->list", expected, argc, argv);
    range_args(cx, argc, argv, 1, "vector->list", expected, &start, &end);
    sx_val l = SX_NIL;
    for (uint32_t i = end; i-- > start;)
        l = sx_cons(sx_vec(argv[0])->items[i], l);
    return l;
}

static sx_val p_list_to_vector(sx_ctx *cx, int argc, sx_val *argv)
{
    long n = sx_list_length(argv[0]);
    SX_CHECK(cx, n >= 0, "list->vector", "list", argc, argv);
    sx_val v = sx_mkvector((size_t)n, SX_NIL);
    uint32_t i = 0;
    for (sx_val l = argv[0]; sx_is_pair(l); l = SX_CDR(l))
        sx_vec(v)->items[i++] = SX_CAR(l);
    return v;
}

/* (vector-fill! v fill [start [end]]) */
static sx_val p_vector_fill(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 2 ? "vector any" : "vector any integer …";
    uint32_t start, end;
    SX_CHECK(cx, is_vector(argv[0]), "vector-fill!", expected, argc, argv);
    range_args(cx, argc, argv, 2, "vector-fill!", expected, &start, &end);
    for (uint32_t i = start; i < end; i++)
        sx_vec(argv[0])->items[i] = argv[1];
    return SX_NIL;
}

/* Shortest length of the vectors argv[1..argc), checking (fn vector …). */
static uint32_t check_fn_vectors(sx_ctx *cx, int argc, sx_val *argv, const char *name)
{
    SX_CHECK(cx, sx_is_procedure(argv[0]), name, "fn vector …", argc, argv);
    uint32_t n = UINT32_MAX;
    for (int i = 1; i < argc; i++) {
        SX_CHECK(cx, is_vector(argv[i]), name, "fn vector …", argc, argv);
        if (sx_vec(argv[i])->len < n) n = sx_vec(argv[i])->len;
    }
    return n;
}

/* Calls f on the elements at index k of every vector (k is below every
 * length, and vectors never change length). */
static sx_val call_at(sx_ctx *cx, int argc, sx_val *argv, uint32_t k, sx_val *args)
{
    for (int i = 1; i < argc; i++)
        args[i - 1] = sx_vec(argv[i])->items[k];
    return cx->apply(cx, argv[0], argc - 1, args);
}

static sx_val *arg_space(int n, sx_val *local)
{
    return n <= LOCAL_ARGS ? local : sx_alloc((size_t)n * sizeof(sx_val));
}

static sx_val p_vector_map(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val local[LOCAL_ARGS];
    uint32_t n = check_fn_vectors(cx, argc, argv, "vector-map");
    sx_val *args = arg_space(argc - 1, local);
    sx_val out = sx_mkvector(n, SX_NIL);
    for (uint32_t k = 0; k < n; k++)
        sx_vec(out)->items[k] = call_at(cx, argc, argv, k, args);
    return out;
}

static sx_val p_vector_for_each(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val local[LOCAL_ARGS];
    uint32_t n = check_fn_vectors(cx, argc, argv, "vector-for-each");
    sx_val *args = arg_space(argc - 1, local);
    for (uint32_t k = 0; k < n; k++)
        call_at(cx, argc, argv, k, args);
    return SX_NIL;
}

void sx__init_prims_vector(void)
{
    sx_defprim("vector", p_vector, 0, -1);
    sx_defprim("make-vector", p_make_vector, 1, 2);
    sx_defprim("vector?", p_vectorp, 1, 1);
    sx_defprim("vector-length", p_vector_length, 1, 1);
    sx_defprim("vector-ref", p_vector_ref, 2, 2);
    sx_defprim("vector-set!", p_vector_set, 3, 3);
    sx_defprim("vector->list", p_vector_to_list, 1, 3);
    sx_defprim("list->vector", p_list_to_vector, 1, 1);
    sx_defprim("vector-fill!", p_vector_fill, 2, 4);
    sx_defprim("vector-map", p_vector_map, 2, -1);
    sx_defprim("vector-for-each", p_vector_for_each, 2, -1);
}
