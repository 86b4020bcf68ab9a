/* sx_prim_list.c: pairs and lists (SX.md 4 and 9), except assoc, which
 * sx_prim_dict.c owns because it doubles as a dict operation, and apply,
 * which lives with the other procedure helpers in sx_prim_misc.c.
 *
 * Nothing here recurses on the C stack over the length of a list: results
 * are built front to back with a tail pointer (struct builder) or back to
 * front from an array. Arrays of values that live across a call into SX
 * code (sort, fold-right, multi-list map) come from the collector so they
 * stay visible to it.
 *
 * Procedures given as arguments are called through cx->apply, in list
 * order; their errors unwind straight through these functions, which hold
 * no resources that would need releasing.
 */
#include "vm/sx_core.h"

#define LOCAL_SLOTS 17

/* ---- helpers --------------------------------------------------------------- */

typedef struct builder {
    sx_val head, tail;
} builder;

static void build_init(builder *b)
{
    b->head = b->tail = SX_NIL;
}

static void build_add(builder *b, sx_val v)
{
    sx_val p = sx_cons(v, SX_NIL);
    if (b->tail == SX_NIL)
        b->head = p;
    else
        SX_CDR(b->tail) = p;
    b->tail = p;
}

static bool is_list_start(sx_val v)
{
    return v == SX_NIL || sx_is_pair(v);
}

/* An array of n values: the caller's local array (LOCAL_SLOTS long) when
 * it is big enough, else collector memory. */
static sx_val *scratch(size_t n, sx_val *local)
{
    return n <= LOCAL_SLOTS ? local : sx_alloc(n * sizeof(sx_val));
}

static _Noreturn void index_error(sx_ctx *cx, const char *name, int64_t k, long len)
{
    sx_error(cx, "index-error", "%s: index %lld out of range for length %ld", name, (long long)k,
             len);
}

static sx_val call2(sx_ctx *cx, sx_val f, sx_val a, sx_val b)
{
    sx_val args[2] = {a, b};
    return cx->apply(cx, f, 2, args);
}

/* ---- constructors, accessors, predicates -------------------------------- */

static sx_val p_cons(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_cons(argv[0], argv[1]);
}

/* path: the letters between c and r, applied right to left. */
static sx_val cxr(sx_ctx *cx, int argc, sx_val *argv, const char *path, const char *name)
{
    sx_val v = argv[0];
    for (size_t i = strlen(path); i-- > 0;) {
        SX_CHECK(cx, sx_is_pair(v), name, "pair", argc, argv);
        v = path[i] == 'a' ? SX_CAR(v) : SX_CDR(v);
    }
    return v;
}

#define DEF_CXR(cname, path, sxname)                                                               \
    static sx_val cname(sx_ctx *cx, int argc, sx_val *argv)                                        \
    {                                                                                              \
        return cxr(cx, argc, argv, path, sxname);                                                  \
    }

DEF_CXR(p_car, "a", "car")
DEF_CXR(p_cdr, "d", "cdr")
DEF_CXR(p_caar, "aa", "caar")
DEF_CXR(p_cadr, "ad", "cadr")
DEF_CXR(p_cdar, "da", "cdar")
DEF_CXR(p_cddr, "dd", "cddr")
DEF_CXR(p_caaar, "aaa", "caaar")
DEF_CXR(p_caadr, "aad", "caadr")
DEF_CXR(p_cadar, "ada", "cadar")
DEF_CXR(p_caddr, "add", "caddr")
DEF_CXR(p_cdaar, "daa", "cdaar")
DEF_CXR(p_cdadr, "dad", "cdadr")
DEF_CXR(p_cddar, "dda", "cddar")
DEF_CXR(p_cdddr, "ddd", "cdddr")
DEF_CXR(p_first, "a", "first")
DEF_CXR(p_rest, "d", "rest")
DEF_CXR(p_second, "ad", "second")
DEF_CXR(p_third, "add", "third")

static sx_val p_list(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val l = SX_NIL;
    for (int i = argc; i-- > 0;)
        l = sx_cons(argv[i], l);
    return l;
}

/* Proper and finite (a cycle is not a list). */
static sx_val p_listp(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val slow = argv[0], fast = argv[0];
    for (;;) {
        if (!sx_is_pair(fast)) return sx_bool(fast == SX_NIL);
        fast = SX_CDR(fast);
        if (!sx_is_pair(fast)) return sx_bool(fast == SX_NIL);
        fast = SX_CDR(fast);
        slow = SX_CDR(slow);
        if (fast == slow) return SX_FALSE;
    }
}

static sx_val p_pairp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is_pair(argv[0]));
}

static sx_val p_nullp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(argv[0] == SX_NIL);
}

static sx_val p_length(sx_ctx *cx, int argc, sx_val *argv)
{
    long n = sx_list_length(argv[0]);
    SX_CHECK(cx, n >= 0, "length", "list", argc, argv);
    return sx_mkfix(n);
}

static sx_val p_set_car(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_pair(argv[0]), "set-car!", "pair any", argc, argv);
    SX_CAR(argv[0]) = argv[1];
    return SX_NIL;
}

static sx_val p_set_cdr(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_pair(argv[0]), "set-cdr!", "pair any", argc, argv);
    SX_CDR(argv[0]) = argv[1];
    return SX_NIL;
}

/* ---- building and walking ------------------------------------------------- */

static sx_val p_append(sx_ctx *cx, int argc, sx_val *argv)
{
    builder b;
    if (argc == 0) return SX_NIL;
    build_init(&b);
    for (int i = 0; i < argc - 1; i++) {
        SX_CHECK(cx, sx_list_length(argv[i]) >= 0, "append", "list … any", argc, argv);
        for (sx_val l = argv[i]; sx_is_pair(l); l = SX_CDR(l))
            build_add(&b, SX_CAR(l));
    }
    if (b.head == SX_NIL) return argv[argc - 1];
    SX_CDR(b.tail) = argv[argc - 1];
    return b.head;
}

static sx_val p_reverse(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_list_length(argv[0]) >= 0, "reverse", "list", argc, argv);
    return sx_reverse(argv[0]);
}

static long count_pairs(sx_val l)
{
    long n = 0;
    if (sx_list_cyclic(l)) return -1;
    for (; sx_is_pair(l); l = SX_CDR(l))
        n++;
    return n;
}

/* Walks k cdrs down argv[0]; *walked counts the pairs passed. */
static sx_val nth_tail(sx_ctx *cx, int argc, sx_val *argv, const char *name, long *walked)
{
    SX_CHECK(cx, is_list_start(argv[0]) && sx_is_fix(argv[1]), name, "list integer", argc, argv);
    int64_t k = sx_fix(argv[1]);
    sx_val l = argv[0];
    long i = 0;
    if (k < 0) index_error(cx, name, k, count_pairs(argv[0]));
    for (; i < k && sx_is_pair(l); i++)
        l = SX_CDR(l);
    if (i < k) index_error(cx, name, k, i);
    *walked = i;
    return l;
}

static sx_val p_list_tail(sx_ctx *cx, int argc, sx_val *argv)
{
    long walked;
    return nth_tail(cx, argc, argv, "list-tail", &walked);
}

static sx_val p_list_ref(sx_ctx *cx, int argc, sx_val *argv)
{
    long walked;
    sx_val l = nth_tail(cx, argc, argv, "list-ref", &walked);
    if (!sx_is_pair(l)) index_error(cx, "list-ref", sx_fix(argv[1]), walked);
    return SX_CAR(l);
}

/* Copies the pairs of the spine; an improper tail is kept as it is. */
static sx_val p_list_copy(sx_ctx *cx, int argc, sx_val *argv)
{
    builder b;
    sx_val l = argv[0];
    SX_CHECK(cx, !sx_list_cyclic(l), "list-copy", "list", argc, argv);
    build_init(&b);
    for (; sx_is_pair(l); l = SX_CDR(l))
        build_add(&b, SX_CAR(l));
    if (b.head == SX_NIL) return l;
    SX_CDR(b.tail) = l;
    return b.head;
}

static sx_val p_last_pair(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val l = argv[0];
    SX_CHECK(cx, sx_is_pair(l) && !sx_list_cyclic(l), "last-pair", "pair", argc, argv);
    while (sx_is_pair(SX_CDR(l)))
        l = SX_CDR(l);
    return l;
}

/* ---- searching ------------------------------------------------------------ */

enum match { M_EQ, M_EQV, M_EQUAL, M_PROC };

static bool matches(sx_ctx *cx, enum match how, sx_val f, sx_val x, sx_val y)
{
    switch (how) {
    case M_EQ: return x == y;
    case M_EQV: return sx_eqv(x, y);
    case M_EQUAL: return sx_equal(x, y);
    default: return sx_truthy(call2(cx, f, x, y));
    }
}

/* (member x list [compare]): the first tail whose car matches x, or #f. */
static sx_val mem_generic(sx_ctx *cx, int argc, sx_val *argv, enum match how, const char *name)
{
    sx_val f = SX_NIL;
    if (argc == 3) {
        SX_CHECK(cx, sx_is_procedure(argv[2]), name, "any list fn", argc, argv);
        f = argv[2];
        how = M_PROC;
    }
    SX_CHECK(cx, is_list_start(argv[1]) && !sx_list_cyclic(argv[1]), name,
             argc == 3 ? "any list fn" : "any list", argc, argv);
    sx_val l = argv[1];
    for (; sx_is_pair(l); l = SX_CDR(l))
        if (matches(cx, how, f, argv[0], SX_CAR(l))) return l;
    SX_CHECK(cx, l == SX_NIL, name, "any list", argc, argv);
    return SX_FALSE;
}

static sx_val p_memq(sx_ctx *cx, int argc, sx_val *argv)
{
    return mem_generic(cx, argc, argv, M_EQ, "memq");
}

static sx_val p_memv(sx_ctx *cx, int argc, sx_val *argv)
{
    return mem_generic(cx, argc, argv, M_EQV, "memv");
}

static sx_val p_member(sx_ctx *cx, int argc, sx_val *argv)
{
    return mem_generic(cx, argc, argv, M_EQUAL, "member");
}

static sx_val ass_generic(sx_ctx *cx, int argc, sx_val *argv, enum match how, const char *name)
{
    SX_CHECK(cx, is_list_start(argv[1]) && !sx_list_cyclic(argv[1]), name, "any list", argc, argv);
    sx_val l = argv[1];
    for (; sx_is_pair(l); l = SX_CDR(l)) {
        sx_val entry = SX_CAR(l);
        SX_CHECK(cx, sx_is_pair(entry), name, "any alist", argc, argv);
        if (matches(cx, how, SX_NIL, argv[0], SX_CAR(entry))) return entry;
    }
    SX_CHECK(cx, l == SX_NIL, name, "any list", argc, argv);
    return SX_FALSE;
}

static sx_val p_assq(sx_ctx *cx, int argc, sx_val *argv)
{
    return ass_generic(cx, argc, argv, M_EQ, "assq");
}

static sx_val p_assv(sx_ctx *cx, int argc, sx_val *argv)
{
    return ass_generic(cx, argc, argv, M_EQV, "assv");
}

/* ---- higher-order --------------------------------------------------------- */

/* Walking several lists in step. cur[] holds the current tails. */
typedef struct lists {
    int n;
    sx_val *cur;
    sx_val *args; /* room for n + 1 arguments */
} lists;

static void lists_init(lists *ls, int n, sx_val *first, sx_val *local)
{
    ls->n = n;
    ls->cur = scratch((size_t)(2 * n + 1), local);
    ls->args = ls->cur + n;
    for (int i = 0; i < n; i++)
        ls->cur[i] = first[i];
}

/* Fills ls->args[off..off+n) with the next elements; false at the end of
 * the shortest list. A tail that is neither a pair nor nil is a type-error. */
static bool lists_next(sx_ctx *cx, lists *ls, int off, const char *name, const char *expected,
                       int argc, sx_val *argv)
{
    for (int i = 0; i < ls->n; i++)
        if (ls->cur[i] == SX_NIL) return false;
    for (int i = 0; i < ls->n; i++) {
        SX_CHECK(cx, sx_is_pair(ls->cur[i]), name, expected, argc, argv);
        ls->args[off + i] = SX_CAR(ls->cur[i]);
        ls->cur[i] = SX_CDR(ls->cur[i]);
    }
    return true;
}

/* Checks (f list …) starting at argv[first_list]. */
static void check_fn_lists(sx_ctx *cx, int argc, sx_val *argv, int first_list, const char *name,
                           const char *expected)
{
    bool finite = false; /* one finite list bounds the walk (R7RS map) */
    SX_CHECK(cx, sx_is_procedure(argv[0]), name, expected, argc, argv);
    for (int i = first_list; i < argc; i++) {
        SX_CHECK(cx, is_list_start(argv[i]), name, expected, argc, argv);
        if (!finite) finite = !sx_list_cyclic(argv[i]);
    }
    SX_CHECK(cx, finite || first_list >= argc, name, expected, argc, argv);
}

/* map_generic over one list (the common case), without the cursor arrays:
 * the same checks, calls and errors in the same order. */
static sx_val map_one(sx_ctx *cx, int argc, sx_val *argv, bool collect, const char *name)
{
    builder b;
    check_fn_lists(cx, argc, argv, 1, name, "fn list …");
    build_init(&b);
    sx_val f = argv[0], l = argv[1];
    while (l != SX_NIL) {
        SX_CHECK(cx, sx_is_pair(l), name, "fn list …", argc, argv);
        sx_val x = SX_CAR(l);
        l = SX_CDR(l);
        sx_val v = cx->apply(cx, f, 1, &x);
        if (collect) build_add(&b, v);
    }
    return b.head;
}

static sx_val map_generic(sx_ctx *cx, int argc, sx_val *argv, bool collect, const char *name)
{
    if (argc == 2) return map_one(cx, argc, argv, collect, name);
    sx_val local[LOCAL_SLOTS];
    lists ls;
    builder b;
    check_fn_lists(cx, argc, argv, 1, name, "fn list …");
    lists_init(&ls, argc - 1, argv + 1, local);
    build_init(&b);
    while (lists_next(cx, &ls, 0, name, "fn list …", argc, argv)) {
        sx_val v = cx->apply(cx, argv[0], ls.n, ls.args);
        if (collect) build_add(&b, v);
    }
    return b.head;
}

static sx_val p_map(sx_ctx *cx, int argc, sx_val *argv)
{
    return map_generic(cx, argc, argv, true, "map");
}

static sx_val p_for_each(sx_ctx *cx, int argc, sx_val *argv)
{
    return map_generic(cx, argc, argv, false, "for-each");
}

static sx_val p_filter(sx_ctx *cx, int argc, sx_val *argv)
{
    builder b;
    check_fn_lists(cx, argc, argv, 1, "filter", "fn list");
    build_init(&b);
    sx_val l = argv[1];
    for (; sx_is_pair(l); l = SX_CDR(l)) {
        sx_val x = SX_CAR(l);
        if (sx_truthy(cx->apply(cx, argv[0], 1, &x))) build_add(&b, x);
    }
    SX_CHECK(cx, l == SX_NIL, "filter", "fn list", argc, argv);
    return b.head;
}

/* SRFI-1: (reduce f ridentity list), calling (f elem acc). */
static sx_val p_reduce(sx_ctx *cx, int argc, sx_val *argv)
{
    check_fn_lists(cx, argc, argv, 2, "reduce", "fn any list");
    sx_val l = argv[2];
    if (l == SX_NIL) return argv[1];
    sx_val acc = SX_CAR(l);
    for (l = SX_CDR(l); sx_is_pair(l); l = SX_CDR(l))
        acc = call2(cx, argv[0], SX_CAR(l), acc);
    SX_CHECK(cx, l == SX_NIL, "reduce", "fn any list", argc, argv);
    return acc;
}

/* (fold-left f init list …), calling (f acc elem …). */
static sx_val p_fold_left(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val local[LOCAL_SLOTS];
    lists ls;
    check_fn_lists(cx, argc, argv, 2, "fold-left", "fn any list …");
    lists_init(&ls, argc - 2, argv + 2, local);
    sx_val acc = argv[1];
    while (lists_next(cx, &ls, 1, "fold-left", "fn any list …", argc, argv)) {
        ls.args[0] = acc;
        acc = cx->apply(cx, argv[0], ls.n + 1, ls.args);
    }
    return acc;
}

/* (fold-right f init list …), calling (f elem … acc) from the last
 * elements back to the first. */
static sx_val p_fold_right(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val local[LOCAL_SLOTS];
    lists ls;
    check_fn_lists(cx, argc, argv, 2, "fold-right", "fn any list …");
    int n = argc - 2;
    lists_init(&ls, n, argv + 2, local);
    size_t m = 0;
    while (lists_next(cx, &ls, 0, "fold-right", "fn any list …", argc, argv))
        m++;
    sx_val *elems = sx_alloc((m * (size_t)n + 1) * sizeof(sx_val));
    lists_init(&ls, n, argv + 2, local);
    for (size_t j = 0; j < m; j++) {
        lists_next(cx, &ls, 0, "fold-right", "fn any list …", argc, argv);
        memcpy(elems + j * (size_t)n, ls.args, (size_t)n * sizeof(sx_val));
    }
    sx_val acc = argv[1];
    for (size_t j = m; j-- > 0;) {
        memcpy(ls.args, elems + j * (size_t)n, (size_t)n * sizeof(sx_val));
        ls.args[n] = acc;
        acc = cx->apply(cx, argv[0], n + 1, ls.args);
    }
    return acc;
}

/* ---- sort ------------------------------------------------------------------- */

/* Merges a[lo..mid) and a[mid..hi) into out; ties keep the left element
 * first, which makes the sort stable. */
static void merge(sx_ctx *cx, sx_val less, sx_val *a, sx_val *out, size_t lo, size_t mid, size_t hi)
{
    size_t i = lo, j = mid, k = lo;
    while (i < mid && j < hi) {
        if (sx_truthy(call2(cx, less, a[j], a[i])))
            out[k++] = a[j++];
        else
            out[k++] = a[i++];
    }
    while (i < mid)
        out[k++] = a[i++];
    while (j < hi)
        out[k++] = a[j++];
}

static sx_val p_sort(sx_ctx *cx, int argc, sx_val *argv)
{
    long n = sx_list_length(argv[0]);
    SX_CHECK(cx, n >= 0 && sx_is_procedure(argv[1]), "sort", "list fn", argc, argv);
    if (n < 2) return n == 0 ? SX_NIL : sx_cons(SX_CAR(argv[0]), SX_NIL);
    size_t len = (size_t)n;
    sx_val *a = sx_alloc(len * sizeof(sx_val)), *b = sx_alloc(len * sizeof(sx_val));
    size_t i = 0;
    for (sx_val l = argv[0]; sx_is_pair(l); l = SX_CDR(l))
        a[i++] = SX_CAR(l);
    for (size_t width = 1; width < len; width *= 2) {
        for (size_t lo = 0; lo < len; lo += 2 * width) {
            size_t mid = lo + width < len ? lo + width : len;
            size_t hi = lo + 2 * width < len ? lo + 2 * width : len;
            merge(cx, argv[1], a, b, lo, mid, hi);
        }
        sx_val *t = a;
        a = b;
        b = t;
    }
    sx_val l = SX_NIL;
    for (i = len; i-- > 0;)
        l = sx_cons(a[i], l);
    return l;
}

/* ---- iota range --------------------------------------------------------- */

static sx_val iota_nth(sx_ctx *cx, sx_val start, sx_val step, int64_t i)
{
    if (sx_is_fix(start) && sx_is_fix(step)) {
        int64_t p;
        if (__builtin_mul_overflow(i, sx_fix(step), &p) || !sx_fix_fits(p)) sx_overflow(cx, "iota");
        return sx_mkint(cx, sx_fix(start) + p, "iota");
    }
    double s = sx_is_fix(start) ? (double)sx_fix(start) : sx_float(start);
    double d = sx_is_fix(step) ? (double)sx_fix(step) : sx_float(step);
    return sx_mkfloat(s + (double)i * d);
}

/* SRFI-1: (iota count [start [step]]). */
static sx_val p_iota(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val start = argc > 1 ? argv[1] : sx_mkfix(0);
    sx_val step = argc > 2 ? argv[2] : sx_mkfix(1);
    const char *expected = argc == 1   ? "integer"
                           : argc == 2 ? "integer number"
                                       : "integer number number";
    SX_CHECK(cx, sx_is_fix(argv[0]), "iota", expected, argc, argv);
    SX_CHECK(cx, sx_is_number(start) && sx_is_number(step), "iota", expected, argc, argv);
    if (sx_fix(argv[0]) < 0)
        sx_error(cx, "type-error", "iota: count must not be negative, got %lld",
                 (long long)sx_fix(argv[0]));
    sx_val l = SX_NIL;
    for (int64_t i = sx_fix(argv[0]); i-- > 0;)
        l = sx_cons(iota_nth(cx, start, step, i), l);
    return l;
}

/* Python's range: (range end), (range start end), (range start end step). */
static sx_val p_range(sx_ctx *cx, int argc, sx_val *argv)
{
    for (int i = 0; i < argc; i++)
        SX_CHECK(cx, sx_is_fix(argv[i]), "range", argc == 1 ? "integer" : "integer …", argc, argv);
    int64_t start = argc > 1 ? sx_fix(argv[0]) : 0;
    int64_t end = argc > 1 ? sx_fix(argv[1]) : sx_fix(argv[0]);
    int64_t step = argc > 2 ? sx_fix(argv[2]) : 1;
    if (step == 0) sx_error(cx, "type-error", "range: step must not be zero");
    int64_t count = 0;
    if (step > 0 && start < end) count = (end - start + step - 1) / step;
    if (step < 0 && start > end) count = (start - end - step - 1) / -step;
    sx_val l = SX_NIL;
    for (int64_t i = count; i-- > 0;)
        l = sx_cons(sx_mkfix(start + i * step), l);
    return l;
}

void sx__init_prims_list(void)
{
    sx_defprim("cons", p_cons, 2, 2);
    sx_defprim("car", p_car, 1, 1);
    sx_defprim("cdr", p_cdr, 1, 1);
    sx_defprim("caar", p_caar, 1, 1);
    sx_defprim("cadr", p_cadr, 1, 1);
    sx_defprim("cdar", p_cdar, 1, 1);
    sx_defprim("cddr", p_cddr, 1, 1);
    sx_defprim("caaar", p_caaar, 1, 1);
    sx_defprim("caadr", p_caadr, 1, 1);
    sx_defprim("cadar", p_cadar, 1, 1);
    sx_defprim("caddr", p_caddr, 1, 1);
    sx_defprim("cdaar", p_cdaar, 1, 1);
    sx_defprim("cdadr", p_cdadr, 1, 1);
    sx_defprim("cddar", p_cddar, 1, 1);
    sx_defprim("cdddr", p_cdddr, 1, 1);
    sx_defprim("first", p_first, 1, 1);
    sx_defprim("rest", p_rest, 1, 1);
    sx_defprim("second", p_second, 1, 1);
    sx_defprim("third", p_third, 1, 1);
    sx_defprim("list", p_list, 0, -1);
    sx_defprim("list?", p_listp, 1, 1);
    sx_defprim("pair?", p_pairp, 1, 1);
    sx_defprim("null?", p_nullp, 1, 1);
    sx_defprim("length", p_length, 1, 1);
    sx_defprim("set-car!", p_set_car, 2, 2);
    sx_defprim("set-cdr!", p_set_cdr, 2, 2);
    sx_defprim("append", p_append, 0, -1);
    sx_defprim("reverse", p_reverse, 1, 1);
    sx_defprim("list-tail", p_list_tail, 2, 2);
    sx_defprim("list-ref", p_list_ref, 2, 2);
    sx_defprim("list-copy", p_list_copy, 1, 1);
    sx_defprim("last-pair", p_last_pair, 1, 1);
    sx_defprim("memq", p_memq, 2, 2);
    sx_defprim("memv", p_memv, 2, 2);
    sx_defprim("member", p_member, 2, 3);
    sx_defprim("assq", p_assq, 2, 2);
    sx_defprim("assv", p_assv, 2, 2);
    sx_defprim("map", p_map, 2, -1);
    sx_defprim("for-each", p_for_each, 2, -1);
    sx_defprim("filter", p_filter, 2, 2);
    sx_defprim("reduce", p_reduce, 3, 3);
    sx_defprim("fold-left", p_fold_left, 3, -1);
    sx_defprim("fold-right", p_fold_right, 3, -1);
    sx_defprim("sort", p_sort, 2, 2);
    sx_defprim("iota", p_iota, 1, 3);
    sx_defprim("range", p_range, 1, 3);
}
