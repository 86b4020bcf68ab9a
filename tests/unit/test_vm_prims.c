/* test_vm_prims.c: the built-in procedures, the printer, equality and
 * dicts, without the evaluator.
 *
 * Expressions are read with the reader and run by a tiny interpreter that
 * knows only primitive calls: a symbol is its global value, (quote x) is
 * x, (f arg ...) calls the primitive f, anything else is itself. The
 * context's apply hook calls primitives directly (checking their arity), so
 * map, sort and friends can be tested with built-in procedures and with the
 * few test-only primitives defined below. Each check compares the write
 * form of the result, or "ERROR kind: message", with the expected text.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/sx_cek.h"
#include "vm/sx_core.h"
#include "vm/sx_read.h"

static int failures;
static sx_ctx ctx;
static char *out_text;
static size_t out_len;

/* ---- the tiny interpreter ------------------------------------------------ */

static sx_val test_apply(sx_ctx *cx, sx_val f, int argc, sx_val *argv)
{
    if (!sx_is(f, SX_T_PRIM)) sx_error(cx, "type-error", "not a procedure");
    sx_prim *p = SX_OBJ(sx_prim, f);
    if (argc < p->min_args || (p->max_args >= 0 && argc > p->max_args))
        sx_arity_error(cx, p->name, p->min_args, p->max_args, argc);
    return p->fn(cx, argc, argv);
}

static sx_val eval(sx_val x)
{
    if (sx_is(x, SX_T_SYMBOL)) {
        sx_val v = sx_sym(x)->global;
        if (v == SX_UNDEF) sx_error(&ctx, "unbound-variable", "%s", sx_sym_name(x));
        return v;
    }
    if (!sx_is_pair(x)) return x;
    if (SX_CAR(x) == sx_intern_c("quote")) return SX_CAR(SX_CDR(x));
    sx_val f = eval(SX_CAR(x));
    sx_val args[64];
    int n = 0;
    for (sx_val l = SX_CDR(x); sx_is_pair(l) && n < 64; l = SX_CDR(l))
        args[n++] = eval(SX_CAR(l));
    return test_apply(&ctx, f, n, args);
}

/* Runs every form of src; the write form of the last value, or the error. */
static const char *run(const char *src)
{
    static char result[8192];
    sx_jmp j;
    if (sx_try(&ctx, &j) == 0) {
        sx_val v = SX_NIL;
        for (sx_val l = sx_read_all(&ctx, src, strlen(src)); sx_is_pair(l); l = SX_CDR(l))
            v = eval(SX_CAR(l));
        sx_try_end(&ctx, &j);
        sx_buf b;
        sx_buf_init(&b);
        sx_print(&b, v, true);
        snprintf(result, sizeof result, "%s", b.p ? b.p : "");
        sx_buf_free(&b);
        return result;
    }
    sx_try_end(&ctx, &j);
    sx_val e = ctx.raised;
    if (sx_is(e, SX_T_ERROR))
        snprintf(result, sizeof result, "ERROR %s: %s", sx_sym_name(SX_OBJ(sx_errobj, e)->kind),
                 sx_str(SX_OBJ(sx_errobj, e)->message)->data);
    else
        snprintf(result, sizeof result, "RAISED");
    return result;
}

#define EXPECT(src, want)                                                                          \
    do {                                                                                           \
        const char *got_ = run(src);                                                               \
        if (strcmp(got_, (want)) != 0) {                                                           \
            fprintf(stderr, "%s:%d: %s\n  want: %s\n  got:  %s\n", __FILE__, __LINE__, (src),      \
                    (want), got_);                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* Only the error kind is compared: "ERROR kind". */
#define EXPECT_KIND(src, kind)                                                                     \
    do {                                                                                           \
        const char *got_ = run(src);                                                               \
        size_t n_ = strlen("ERROR " kind ":");                                                     \
        if (strncmp(got_, "ERROR " kind ":", n_) != 0) {                                           \
            fprintf(stderr, "%s:%d: %s\n  want: %s\n  got:  %s\n", __FILE__, __LINE__, (src),      \
                    kind, got_);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #c);                         \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

/* ---- test-only primitives ---------------------------------------------- */

static sx_val call_log = SX_NIL;

/* (test-log x ...) records its arguments (as a list) and returns x. */
static sx_val p_test_log(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val args = SX_NIL;
    for (int i = argc; i-- > 0;)
        args = sx_cons(argv[i], args);
    call_log = sx_cons(args, call_log);
    return argv[0];
}

static sx_val p_test_calls(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val l = sx_reverse(call_log);
    call_log = SX_NIL;
    return l;
}

/* (test-car< a b): compares the cars of two pairs of integers. */
static sx_val p_test_car_lt(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_fix(SX_CAR(argv[0])) < sx_fix(SX_CAR(argv[1])));
}

static sx_val p_test_output(sx_ctx *cx, int argc, sx_val *argv)
{
    fflush(cx->out);
    sx_val s = sx_mkstring(out_text, out_len);
    rewind(cx->out);
    out_len = 0;
    return s;
}

static void setup(void)
{
    sx_gc_init();
    ctx.apply = test_apply;
    ctx.out = open_memstream(&out_text, &out_len);
    sx_cur = &ctx;
    sx__init_prims_num();
    sx__init_prims_list();
    sx__init_prims_string();
    sx__init_prims_vector();
    sx__init_prims_dict();
    sx__init_prims_misc();
    sx_defprim("test-log", p_test_log, 1, -1);
    sx_defprim("test-calls", p_test_calls, 0, 0);
    sx_defprim("test-car<", p_test_car_lt, 2, 2);
    sx_defprim("test-output", p_test_output, 0, 0);
}

/* ---- float printing -------------------------------------------------------- */

static void expect_float(double d, const char *want, int line)
{
    sx_buf b;
    sx_buf_init(&b);
    sx_print_float(&b, d);
    if (strcmp(b.p, want) != 0) {
        fprintf(stderr, "%s:%d: float %.17g\n  want: %s\n  got:  %s\n", __FILE__, line, d, want,
                b.p);
        failures++;
    }
    sx_buf_free(&b);
}

#define EXPECT_FLOAT(d, want) expect_float((d), (want), __LINE__)

static void test_float_print(void)
{
    /* 10-print-floats */
    EXPECT_FLOAT(0.1, "0.1");
    EXPECT_FLOAT(1.0, "1.0");
    EXPECT_FLOAT(1e21, "1e+21");
    EXPECT_FLOAT(-1.5e300, "-1.5e+300");
    EXPECT_FLOAT(1.7976931348623157e308, "1.7976931348623157e+308");
    EXPECT_FLOAT(-0.0, "-0.0");
    EXPECT_FLOAT(0.0, "0.0");
    EXPECT_FLOAT(INFINITY, "+inf.0");
    EXPECT_FLOAT(-INFINITY, "-inf.0");
    EXPECT_FLOAT(NAN, "+nan.0");
    EXPECT_FLOAT(-NAN, "+nan.0");
    EXPECT_FLOAT(1.0 / 3, "0.3333333333333333");
    EXPECT_FLOAT(2.0 / 3, "0.6666666666666666");
    EXPECT_FLOAT(0.1 + 0.2, "0.30000000000000004");
    EXPECT_FLOAT(1000000.0, "1000000.0");
    EXPECT_FLOAT(123456789012.0, "123456789012.0");
    EXPECT_FLOAT(0.001, "0.001");
    EXPECT_FLOAT(3.141592653589793, "3.141592653589793");
    EXPECT_FLOAT(9007199254740993.0, "9007199254740992.0");
    /* 30-print-floats-more */
    EXPECT_FLOAT(1e15, "1000000000000000.0");
    EXPECT_FLOAT(9999999999999998.0, "9999999999999998.0");
    EXPECT_FLOAT(1e16, "1e+16");
    EXPECT_FLOAT(1.5e16, "1.5e+16");
    EXPECT_FLOAT(1e22, "1e+22");
    EXPECT_FLOAT(1e100, "1e+100");
    EXPECT_FLOAT(12345678901234567890.0, "1.2345678901234567e+19");
    EXPECT_FLOAT((double)2305843009213693951LL, "2.305843009213694e+18");
    EXPECT_FLOAT(1e15 + 0.3, "1000000000000000.2");
    EXPECT_FLOAT(0.0001, "0.0001");
    EXPECT_FLOAT(0.00012345, "0.00012345");
    EXPECT_FLOAT(0.00009999, "9.999e-05");
    EXPECT_FLOAT(1e-5, "1e-05");
    EXPECT_FLOAT(1.5e-7, "1.5e-07");
    EXPECT_FLOAT(1e-300, "1e-300");
    EXPECT_FLOAT(2.2250738585072014e-308, "2.2250738585072014e-308");
    EXPECT_FLOAT(5e-324, "5e-324");
    EXPECT_FLOAT(-5e-324, "-5e-324");
    EXPECT_FLOAT(0.1 + 0.7, "0.7999999999999999");
    EXPECT_FLOAT(4.35 * 100, "434.99999999999994");
    EXPECT_FLOAT(-1234560000000.0, "-1234560000000.0");
    EXPECT_FLOAT(-2.5e-8, "-2.5e-08");
    /* Powers of two whose shortest digits lie above the nearest ones. */
    EXPECT_FLOAT(ldexp(1, -1017), "7.120236347223045e-307");
    EXPECT_FLOAT(ldexp(1, -1007), "7.291122019556398e-304");
    EXPECT_FLOAT(ldexp(1, -957), "8.209073602596753e-289");
    EXPECT_FLOAT(ldexp(1, 60), "1.152921504606847e+18");
    EXPECT_FLOAT(ldexp(1, 53), "9007199254740992.0");
}

/* ---- write and display ------------------------------------------------------- */

static void test_write_display(void)
{
    EXPECT("\"a\\\"b\\\\c\\nd\\te\\rf\"", "\"a\\\"b\\\\c\\nd\\te\\rf\"");
    EXPECT("(list->string (map integer->char '(0 7 27 127 128 233 955)))",
           "\"\\x00;\\x07;\\x1b;\\x7f;\\x80;éλ\"");
    EXPECT("(map integer->char '(97 32 10 9 0 7 8 13 27 127 1 955 159))",
           "(#\\a #\\space #\\newline #\\tab #\\nul #\\alarm #\\backspace #\\return #\\escape "
           "#\\delete #\\x01 #\\λ #\\x9f)");
    EXPECT("'(1 (2 . 3) #(4 \"s\") () #t #f :k sym -0.0 2.5)",
           "(1 (2 . 3) #(4 \"s\") () #t #f :k sym -0.0 2.5)");
    EXPECT("''a", "(quote a)");
    EXPECT("'(quasiquote (a (unquote b) (unquote-splicing c)))",
           "(quasiquote (a (unquote b) (unquote-splicing c)))");
    EXPECT("(dict :a 1 \"b\" '(2 3))", "{:a 1 \"b\" (2 3)}");
    EXPECT("car", "#<fn car>");
    EXPECT("(list car string-append)", "(#<fn car> #<fn string-append>)");
    EXPECT("(str '(\"a\" #\\b (\"c\")) \" \" (vector \"x\" #\\y) \" \" (dict :k \"v\"))",
           "\"(a b (c)) #(x y) {:k v}\"");
    EXPECT("(str \"[\" '() \"]\" 1.0 #t)", "\"[]1.0#t\"");
    EXPECT("(str)", "\"\"");
    EXPECT("(str '(()))", "\"(())\"");
    EXPECT("(display \"a\\\"b\") (write \"a\\\"b\") (display #\\λ) (write #\\λ) (newline) "
           "(print \"x\" 1 #\\c 'd) (print) (test-output)",
           "\"a\\\"b\\\"a\\\\\\\"b\\\"λ#\\\\λ\\nx1cd\\n\\n\"");
    EXPECT("(error-message (car 5))", "ERROR type-error: car: expected (pair), got (integer)");
}

/* A printer that neither recurses along cdrs nor without bound into cars. */
static void test_print_deep(void)
{
    sx_val l = SX_NIL;
    for (int i = 0; i < 200000; i++)
        l = sx_cons(sx_mkfix(1), l);
    sx_val s = sx_to_string(l, true);
    CHECK(sx_str(s)->len == 400001);
    sx_val nest = SX_NIL;
    for (int i = 0; i < 50000; i++)
        nest = sx_cons(nest, SX_NIL);
    s = sx_to_string(nest, true);
    CHECK(strstr(sx_str(s)->data, "...") != NULL);
    sx_val e = sx_mkerror(sx_intern_c("user-error"), sx_mkcstring("boom"), SX_NIL);
    s = sx_to_string(e, true);
    CHECK(strcmp(sx_str(s)->data, "#<error user-error: boom>") == 0);
    s = sx_to_string(SX_UNDEF, true);
    CHECK(strcmp(sx_str(s)->data, "#<undefined>") == 0);
}

/* ---- numbers ---------------------------------------------------------------- */

static void test_arith(void)
{
    EXPECT("(list (+) (+ 7) (+ 1 2 3) (- 5) (- 10 1 2) (*) (* 2 3 4))", "(0 7 6 -5 7 1 24)");
    EXPECT("(list (+ 1 2.5) (- 10 2.5) (* 1.5 2) (- 2.5) (+ 0.5 0.5))", "(3.5 7.5 3.0 -2.5 1.0)");
    EXPECT("(list (/ 6 3) (/ 7 2) (/ 2) (/ -1) (/ 4.0) (/ 60 2 4) (/ 0 7) (/ 1 -0.0))",
           "(2 3.5 0.5 -1 0.25 7.5 0 -inf.0)");
    EXPECT("(list (/ 2305843009213693951 3) (/ 9007199254740993 2) (/ 1 2305843009213693951))",
           "(7.686143364045646e+17 4503599627370496.0 4.336808689942018e-19)");
    EXPECT("(list (/ 5 0.0) (/ -5.0 0.0) (/ 0.0 0.0))", "(+inf.0 -inf.0 +nan.0)");
    EXPECT_KIND("(/ 5 0)", "division-by-zero");
    EXPECT_KIND("(/ 5.0 0)", "division-by-zero");
    EXPECT_KIND("(/ 0)", "division-by-zero");
    EXPECT_KIND("(/ 12 2 0)", "division-by-zero");
    EXPECT("(+ 1 \"a\")", "ERROR type-error: +: expected (number …), got (integer string)");
    EXPECT_KIND("(- 'a)", "type-error");
    EXPECT_KIND("(* 2 #t)", "type-error");
    EXPECT_KIND("(+ 1 '())", "type-error");
}

static void test_overflow(void)
{
    EXPECT("(+ 2305843009213693950 1)", "2305843009213693951");
    EXPECT("(+ 2305843009213693951 1)", "ERROR overflow: +: integer result out of range");
    EXPECT_KIND("(+ -2305843009213693952 -1)", "overflow");
    EXPECT("(- -2305843009213693951 1)", "-2305843009213693952");
    EXPECT_KIND("(- -2305843009213693952)", "overflow");
    EXPECT_KIND("(- 0 -2305843009213693952)", "overflow");
    EXPECT_KIND("(abs -2305843009213693952)", "overflow");
    EXPECT("(* -1152921504606846976 2)", "-2305843009213693952");
    EXPECT_KIND("(* 1152921504606846976 2)", "overflow");
    EXPECT_KIND("(* -2305843009213693952 -1)", "overflow");
    EXPECT_KIND("(* 4294967296 4294967296)", "overflow");
    EXPECT_KIND("(* 65536 65536 65536 65536)", "overflow");
    EXPECT_KIND("(+ 2305843009213693951 1 -5)", "overflow");
    EXPECT("(+ 2305843009213693951 1.0)", "2.305843009213694e+18");
    EXPECT_KIND("(quotient -2305843009213693952 -1)", "overflow");
    EXPECT_KIND("(/ -2305843009213693952 -1)", "overflow");
    EXPECT("(list (remainder -2305843009213693952 -1) (modulo -2305843009213693952 -1))", "(0 0)");
    EXPECT("(expt 3 38)", "1350851717672992089");
    EXPECT("(expt -2 61)", "-2305843009213693952");
    EXPECT_KIND("(expt 2 61)", "overflow");
    EXPECT_KIND("(expt 3 39)", "overflow");
    EXPECT_KIND("(expt 2 100)", "overflow");
    EXPECT("(list (expt 0 0) (expt 1 1000000) (expt -1 1000001) (expt 0 5))", "(1 1 -1 0)");
    EXPECT_KIND("(exact 1e19)", "overflow");
    EXPECT_KIND("(exact 2305843009213693952.0)", "overflow");
    EXPECT("(exact -2305843009213693952.0)", "-2305843009213693952");
}

static void test_divisions(void)
{
    EXPECT("(list (quotient 17 5) (quotient -17 5) (quotient 17 -5) (quotient -17 -5))",
           "(3 -3 -3 3)");
    EXPECT("(list (remainder 17 5) (remainder -17 5) (remainder 17 -5) (remainder -17 -5))",
           "(2 -2 2 -2)");
    EXPECT("(list (modulo 17 5) (modulo -17 5) (modulo 17 -5) (modulo -17 -5))", "(2 3 -3 -2)");
    EXPECT("(list (quotient 7.0 2) (remainder -7.0 2) (modulo -7.0 2) (modulo 7 -2.0))",
           "(3.0 -1.0 1.0 -1.0)");
    EXPECT("(list (remainder -4.0 2) (modulo -4.0 2) (modulo 4.0 -2))", "(-0.0 0.0 -0.0)");
    EXPECT_KIND("(quotient 7.5 2)", "type-error");
    EXPECT_KIND("(remainder 7 \"2\")", "type-error");
    EXPECT_KIND("(modulo 1 +inf.0)", "type-error");
    EXPECT_KIND("(quotient 1 0)", "division-by-zero");
    EXPECT_KIND("(remainder 1 0)", "division-by-zero");
    EXPECT_KIND("(modulo 1 0.0)", "division-by-zero");
    /* the 32-bit fast path and its edges: -1 and values past 32 bits take
     * the 64-bit division */
    EXPECT("(list (quotient -2147483648 -1) (remainder -2147483648 -1) (modulo -2147483648 -1))",
           "(2147483648 0 0)");
    EXPECT("(list (quotient 2147483647 -2147483648) (remainder 2147483647 -2147483648)"
           " (modulo 2147483647 -2147483648))",
           "(0 2147483647 -1)");
    EXPECT("(list (quotient -2147483648 2147483647) (remainder -2147483648 2147483647)"
           " (modulo -2147483648 2147483647))",
           "(-1 -1 2147483646)");
    EXPECT("(list (quotient 2147483648 3) (remainder 2147483648 3) (modulo -2147483650 3))",
           "(715827882 2 2)");
    EXPECT("(list (quotient 9 4294967296) (remainder 9 4294967296) (modulo -9 4294967296))",
           "(0 9 4294967287)");
    EXPECT("(list (remainder 0 7) (modulo 0 -7) (modulo 7 7) (modulo -14 7) (quotient 7 1))",
           "(0 0 0 0 7)");
    EXPECT("(list (modulo 5 -3) (modulo -5 3) (modulo -5 -3) (remainder 5 -3) (quotient -5 3))",
           "(-1 1 -2 2 -1)");
    EXPECT("(list (quotient -2305843009213693952 -1))", "ERROR overflow: quotient: integer "
                                                        "result out of range");
}

/* The built-in's value for argv[0..2), or SX_UNDEF if it raised. */
static sx_val call_raw(sx_prim *p, sx_val *argv)
{
    sx_jmp j;
    if (sx_try(&ctx, &j) == 0) {
        sx_val v = p->fn(&ctx, 2, argv);
        sx_try_end(&ctx, &j);
        return v;
    }
    sx_try_end(&ctx, &j);
    return SX_UNDEF;
}

/* The inline division of the CEK and the VM (sx_fast_op) on a grid of
 * fixnums: where it answers, the built-in's answer; it declines exactly a
 * zero divisor, SX_FIX_MIN / -1 and non-fixnums, which the built-ins
 * raise on or compute. */
static void test_fast_divisions(void)
{
    const int64_t v[] = {0,
                         1,
                         -1,
                         2,
                         -2,
                         3,
                         -3,
                         7,
                         -7,
                         13,
                         -13,
                         536870911,
                         -536870912,
                         2147483647,
                         -2147483648LL,
                         4294967296LL,
                         SX_FIX_MAX,
                         SX_FIX_MIN,
                         SX_FIX_MAX - 1,
                         SX_FIX_MIN + 1};
    const struct {
        int op;
        const char *name;
    } ops[] = {{OP_QUOTIENT, "quotient"}, {OP_REMAINDER, "remainder"}, {OP_MODULO, "modulo"}};
    int declined = 0;
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        sx_prim *prim = SX_OBJ(sx_prim, sx_sym(sx_intern_c(ops[o].name))->global);
        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
            for (size_t j = 0; j < sizeof v / sizeof v[0]; j++) {
                sx_val a[2] = {sx_mkfix(v[i]), sx_mkfix(v[j])}, fast = 0;
                bool took = sx_fast_op(ops[o].op, a, &fast);
                bool raises =
                    v[j] == 0 || (ops[o].op == OP_QUOTIENT && v[i] == SX_FIX_MIN && v[j] == -1);
                if (!took) {
                    declined++;
                    if (!raises)
                        fprintf(stderr, "%s %lld %lld: fast path declined\n", ops[o].name,
                                (long long)v[i], (long long)v[j]);
                    CHECK(raises);
                    continue;
                }
                CHECK(!raises);
                sx_val slow = call_raw(prim, a);
                if (slow != fast)
                    fprintf(stderr, "%s %lld %lld: fast %lld, built-in %lld\n", ops[o].name,
                            (long long)v[i], (long long)v[j], (long long)sx_fix(fast),
                            (long long)sx_fix(slow));
                CHECK(slow == fast);
            }
    }
    CHECK(declined == 3 * 20 + 1); /* the zero divisors, and SX_FIX_MIN / -1 */
    sx_val f[2] = {sx_mkfloat(7.0), sx_mkfix(2)}, out;
    CHECK(!sx_fast_op(OP_REMAINDER, f, &out));
    sx_val s[2] = {sx_mkfix(7), sx_mkcstring("2")};
    CHECK(!sx_fast_op(OP_MODULO, s, &out));
}

static void test_compare(void)
{
    EXPECT("(list (< 1 2 3) (< 1 3 2) (<= 1 1 2) (> 3 2 1) (>= 3 3 4) (= 1 1.0) (= 0.0 -0.0))",
           "(#t #f #t #t #f #t #t)");
    EXPECT("(list (< 9007199254740993 9007199254740992.0) (> 9007199254740993 9007199254740992.0)"
           " (= 9007199254740993 9007199254740992.0) (= 9007199254740992 9007199254740992.0))",
           "(#f #t #f #t)");
    EXPECT("(list (< 2305843009213693951 2305843009213693952.0) (> 1 -inf.0) (< 1 +inf.0))",
           "(#t #t #t)");
    EXPECT("(list (< 1 +nan.0) (> 1 +nan.0) (= +nan.0 +nan.0) (<= +nan.0 1))", "(#f #f #f #f)");
    EXPECT("(list (< 5) (= 'a))", "ERROR type-error: =: expected (number …), got (symbol)");
    EXPECT_KIND("(< 2 1 'a)", "type-error");
    EXPECT("(list (min 3 1 2) (max 1 2 3.0) (min 1 2.0) (max 2.5 1) (min +nan.0 1))",
           "(1 3.0 1.0 2.5 +nan.0)");
    EXPECT("(list (zero? 0) (zero? -0.0) (positive? 0.5) (negative? -0.0) (zero? +nan.0))",
           "(#t #t #t #f #f)");
    EXPECT("(list (odd? 3) (even? -4) (odd? 3.0) (even? -2305843009213693952) (odd? 0))",
           "(#t #t #t #t #f)");
    EXPECT_KIND("(odd? 1.5)", "type-error");
    EXPECT("(list (number? 1) (number? 1.5) (number? \"1\") (integer? 2.0) (integer? 2.5)"
           " (integer? +inf.0) (float? 1) (float? 1.0))",
           "(#t #t #f #t #f #f #f #t)");
}

static void test_rounding(void)
{
    EXPECT("(list (floor 2.5) (floor -2.5) (ceiling 2.1) (truncate -2.7) (floor 5))",
           "(2.0 -3.0 3.0 -2.0 5)");
    EXPECT("(map round '(0.5 1.5 2.5 3.5 -2.5 -3.5 -0.5 2.6 7))",
           "(0.0 2.0 2.0 4.0 -2.0 -4.0 -0.0 3.0 7)");
    EXPECT("(list (exact 3.0) (exact 7) (inexact 1) (exact->inexact 2.5) (inexact->exact -3.0))",
           "(3 7 1.0 2.5 -3)");
    EXPECT("(exact 1.5)", "ERROR type-error: exact: expected (integral number), got (float)");
    EXPECT_KIND("(inexact->exact +nan.0)", "type-error");
    EXPECT("(list (sqrt 16) (sqrt 0) (sqrt 2) (sqrt 16.0) (sqrt -4) (sqrt -4.0) (sqrt -0.0))",
           "(4 0 1.4142135623730951 4.0 +nan.0 +nan.0 -0.0)");
    EXPECT(
        "(list (sqrt 2305843006213062001) (sqrt 2305843006213062002) (sqrt 2305843009213693951))",
        "(1518500249 1518500249.0 1518500249.988025)");
    EXPECT("(list (expt 2 -2) (expt 2.0 10) (expt 9 0.5) (expt 0.0 -1) (expt 4.0 -1))",
           "(0.25 1024.0 3.0 +inf.0 0.25)");
    EXPECT_KIND("(expt 0 -1)", "division-by-zero");
    EXPECT_KIND("(expt \"2\" 2)", "type-error");
}

static void test_number_strings(void)
{
    EXPECT("(list (number->string 42) (number->string -7) (number->string 2.5)"
           " (number->string 1e21) (number->string 255 16) (number->string -5 2)"
           " (number->string 64 8) (number->string -2305843009213693952 16))",
           "(\"42\" \"-7\" \"2.5\" \"1e+21\" \"ff\" \"-101\" \"100\" \"-2000000000000000\")");
    EXPECT_KIND("(number->string 10 3)", "type-error");
    EXPECT_KIND("(number->string 1.5 2)", "type-error");
    EXPECT_KIND("(number->string \"1\")", "type-error");
    EXPECT("(map string->number '(\"42\" \"-7\" \"+5\" \"2.5\" \".5\" \"5.\" \"1e3\" \"25e-2\""
           " \"+inf.0\" \"-inf.0\" \"#xff\" \"#b101\" \"#o17\" \"#e1.0\" \"#i3\" \"1e400\"))",
           "(42 -7 5 2.5 0.5 5.0 1000.0 0.25 +inf.0 -inf.0 255 5 15 1 3.0 +inf.0)");
    EXPECT("(map string->number '(\"abc\" \"\" \"12abc\" \" 42\" \"-\" \".\" \"1.2.3\" \"e3\""
           " \"--1\" \"1,000\" \"0x10\" \"nan\" \"inf\" \"1/2\" \"1e\"))",
           "(#f #f #f #f #f #f #f #f #f #f #f #f #f #f #f)");
    EXPECT("(list (string->number \"ff\" 16) (string->number \"1010\" 2) (string->number \"12\" 2)"
           " (string->number \"777\" 8))",
           "(255 10 #f 511)");
    EXPECT("(string->number \"2305843009213693951\")", "2305843009213693951");
    EXPECT("(string->number \"-2305843009213693952\")", "-2305843009213693952");
    EXPECT_KIND("(string->number \"2305843009213693952\")", "overflow");
    EXPECT_KIND("(string->number 5)", "type-error");
    EXPECT("(= (string->number (number->string 0.1)) 0.1)", "#t");
}

/* ---- lists ------------------------------------------------------------------- */

static void test_list_basics(void)
{
    EXPECT("(cons 1 2)", "(1 . 2)");
    EXPECT("(list (caar '((1) 2)) (cdar '((1 . 9))) (cadr '(1 2)) (cddr '(1 2 3)))", "(1 9 2 (3))");
    EXPECT("(list (caaar '(((1)))) (caadr '(0 (2))) (cadar '((0 3))) (caddr '(0 0 4)))",
           "(1 2 3 4)");
    EXPECT("(list (cdaar '(((0 . 1)))) (cdadr '(0 (0 . 2))) (cddar '((0 0 . 3))) (cdddr '(0 0 0 . "
           "4)))",
           "(1 2 3 4)");
    EXPECT("(list (first '(a b c)) (rest '(a b c)) (second '(a b c)) (third '(a b c)))",
           "(a (b c) b c)");
    EXPECT("(car '())", "ERROR type-error: car: expected (pair), got (nil)");
    EXPECT_KIND("(third '(1 2))", "type-error");
    EXPECT_KIND("(rest 5)", "type-error");
    EXPECT("(list (list? '(1 2)) (list? '()) (list? '(1 . 2)) (list? 5) (pair? '()) (null? nil))",
           "(#t #t #f #f #f #t)");
    EXPECT("(list (length '()) (length '(1 2 3)))", "(0 3)");
    EXPECT_KIND("(length '(1 . 2))", "type-error");
    EXPECT("(list (append) (append '(1)) (append '(1) 2) (append '() 5) (append '(1 2) '(3) '() "
           "'(4 . 5)))",
           "(() (1) (1 . 2) 5 (1 2 3 4 . 5))");
    EXPECT_KIND("(append 5 '(1))", "type-error");
    EXPECT_KIND("(append '(1 . 2) '(1))", "type-error");
    EXPECT("(list (reverse '(1 2 3)) (reverse '()))", "((3 2 1) ())");
    EXPECT_KIND("(reverse '(1 . 2))", "type-error");
    EXPECT("(list (list-ref '(a b c) 2) (list-tail '(a b c) 3) (list-tail '(a b . c) 2))",
           "(c () c)");
    EXPECT("(list-ref '(a b) 2)", "ERROR index-error: list-ref: index 2 out of range for length 2");
    EXPECT_KIND("(list-ref '(a b) -1)", "index-error");
    EXPECT_KIND("(list-tail '(a b) 3)", "index-error");
    EXPECT_KIND("(list-ref '(a b) 'x)", "type-error");
    EXPECT_KIND("(list-ref 5 0)", "type-error");
    EXPECT("(list (list-copy '(1 2 3)) (list-copy '()) (list-copy '(1 . 2)) (list-copy 5))",
           "((1 2 3) () (1 . 2) 5)");
    EXPECT("(list (last-pair '(1 2 3)) (last-pair '(1 2 . 3)))", "((3) (2 . 3))");
    EXPECT_KIND("(last-pair '())", "type-error");
    EXPECT_KIND("(set-car! '() 1)", "type-error");
    EXPECT_KIND("(set-cdr! 5 1)", "type-error");
}

static void test_list_search(void)
{
    EXPECT("(list (memq 'c '(a b c d)) (memq 'z '(a b)) (memv 1.5 '(1 1.5 2)) (memv 2 '(2.0)))",
           "((c d) #f (1.5 2) #f)");
    EXPECT("(list (member \"b\" '(\"a\" \"b\")) (member 2.0 '(1 2 3)) (member 2.0 '(1 2 3) =))",
           "((\"b\") #f (2 3))");
    EXPECT("(list (assq 'b '((a 1) (b 2))) (assv 1.5 '((1 . x) (1.5 . y))) (assq 'd '()))",
           "((b 2) (1.5 . y) #f)");
    EXPECT("(list (assoc \"b\" '((\"a\" . 1) (\"b\" . 2))) (assoc 2.0 '((1 1) (2 4)) =)"
           " (assoc '(a) '(((a)) ((b)))))",
           "((\"b\" . 2) (2 4) ((a)))");
    EXPECT_KIND("(memq 'a 5)", "type-error");
    EXPECT_KIND("(assq 'a '(1 2))", "type-error");
    EXPECT_KIND("(assoc :a 5)", "type-error");
    EXPECT_KIND("(member 1 '(1) 5)", "type-error");
    EXPECT_KIND("(assoc 1 '((1 . 2)) = 4)", "arity-error");
}

static void test_higher_order(void)
{
    EXPECT("(list (map + '(1 2 3) '(10 20)) (map car '()) (map list '(1 2) '(a b) '(x y)))",
           "((11 22) () ((1 a x) (2 b y)))");
    EXPECT("(map test-log '(1 2 3) '(a b c d)) (test-calls)", "((1 a) (2 b) (3 c))");
    EXPECT("(for-each test-log '(1 2)) (test-calls)", "((1) (2))");
    EXPECT("(for-each test-log '(1 2))", "()");
    EXPECT("(map (quote f) 7)",
           "ERROR type-error: map: expected (fn list …), got (symbol integer)");
    EXPECT("(map car 7)", "ERROR type-error: map: expected (fn list …), got (fn integer)");
    EXPECT_KIND("(map 1 '(1 2))", "type-error");
    EXPECT_KIND("(map car '(1 2 . 3))", "type-error");
    EXPECT_KIND("(map cons '(1 2))", "arity-error");
    EXPECT("(list (filter odd? '(1 2 3 4 5)) (filter odd? '()))", "((1 3 5) ())");
    EXPECT("(test-calls) (filter test-log '(1 #f 2)) (test-calls)", "((1) (#f) (2))");
    EXPECT_KIND("(filter odd? 5)", "type-error");
    EXPECT("(list (reduce + 0 '(1 2 3 4)) (reduce + 0 '()) (reduce list 0 '(1 2 3 4))"
           " (reduce - 0 '(1 2 3 4)))",
           "(10 0 (4 (3 (2 1))) 2)");
    EXPECT("(reduce test-log 0 '(1 2 3)) (test-calls)", "((2 1) (3 2))");
    EXPECT("(list (fold-left cons '() '(1 2 3)) (fold-left - 0 '(1 2 3))"
           " (fold-left list '() '(1 2 3) '(4 5 6)) (fold-left + 7 '()))",
           "((((() . 1) . 2) . 3) -6 (((() 1 4) 2 5) 3 6) 7)");
    EXPECT("(list (fold-right cons '() '(1 2 3)) (fold-right - 0 '(1 2 3))"
           " (fold-right list 'end '(1 2 3)) (fold-right list '() '(1 2 3) '(4 5)))",
           "((1 2 3) 2 (1 (2 (3 end))) (1 4 (2 5 ())))");
    EXPECT_KIND("(fold-left + 0 5)", "type-error");
    EXPECT_KIND("(fold-right + 0 '(1 . 2))", "type-error");
    EXPECT_KIND("(reduce + 0 5)", "type-error");
}

static void test_sort_iota_range(void)
{
    EXPECT("(list (sort '(3 1 2) <) (sort '() <) (sort '(1) <) (sort '(5 3 5 1 4) >))",
           "((1 2 3) () (1) (5 5 4 3 1))");
    EXPECT("(sort '((1 . a) (0 . b) (1 . c) (0 . d) (1 . e)) test-car<)",
           "((0 . b) (0 . d) (1 . a) (1 . c) (1 . e))");
    EXPECT("(sort '(\"pear\" \"apple\" \"fig\") string<?)", "(\"apple\" \"fig\" \"pear\")");
    EXPECT("(equal? (sort (reverse (iota 1000)) <) (iota 1000))", "#t");
    EXPECT_KIND("(sort 5 <)", "type-error");
    EXPECT_KIND("(sort '(3 1 2) 5)", "type-error");
    EXPECT_KIND("(sort '(3 1 2) car)", "arity-error");
    EXPECT("(list (iota 5) (iota 0) (iota 5 1) (iota 5 0 2) (iota 4 10 -3) (iota 3 1.5 0.5))",
           "((0 1 2 3 4) () (1 2 3 4 5) (0 2 4 6 8) (10 7 4 1) (1.5 2.0 2.5))");
    EXPECT_KIND("(iota -1)", "type-error");
    EXPECT_KIND("(iota 3 2305843009213693950)", "overflow");
    EXPECT("(list (range 5) (range 2 5) (range 0 10 3) (range 5 0 -1) (range 10 0 -3)"
           " (range 0) (range 5 2) (range 0 5 -1) (range -3 2))",
           "((0 1 2 3 4) (2 3 4) (0 3 6 9) (5 4 3 2 1) (10 7 4 1) () () () (-3 -2 -1 0 1))");
    EXPECT("(range -2305843009213693952 2305843009213693951 2305843009213693951)",
           "(-2305843009213693952 -1 2305843009213693950)");
    EXPECT("(range 1 5 0)", "ERROR type-error: range: step must not be zero");
    EXPECT_KIND("(range 1.5)", "type-error");
}

/* Long lists: nothing may recurse over the length. */
static void test_long_lists(void)
{
    EXPECT("(length (map + (iota 1000000) (iota 1000000)))", "1000000");
    EXPECT("(length (filter odd? (iota 1000000)))", "500000");
    EXPECT("(fold-right + 0 (iota 1000000))", "499999500000");
    EXPECT("(fold-left + 0 (iota 1000000))", "499999500000");
    EXPECT("(length (append (iota 1000000) (iota 10)))", "1000010");
    EXPECT("(length (sort (iota 300000) >))", "300000");
    EXPECT("(equal? (iota 1000000) (iota 1000000))", "#t");
    EXPECT("(length (list-copy (iota 1000000)))", "1000000");
    EXPECT("(vector-length (list->vector (iota 1000000)))", "1000000");
    EXPECT("(apply + (iota 100000))", "4999950000");
}

/* ---- strings and characters --------------------------------------------- */

static void test_strings(void)
{
    EXPECT("(list (string-length \"héllo\") (string-ref \"héllo\" 1) (string-ref \"日本語\" 2))",
           "(5 #\\é #\\語)");
    EXPECT(
        "(list (substring \"hello world\" 6 11) (substring \"héllo\" 1 3) (substring \"abc\" 1))",
        "(\"world\" \"él\" \"bc\")");
    EXPECT("(string-ref \"abc\" 3)", "ERROR index-error: string-ref: index 3 out of range for "
                                     "length 3");
    EXPECT_KIND("(substring \"abc\" 2 1)", "index-error");
    EXPECT_KIND("(substring \"é\" 0 2)", "index-error");
    EXPECT_KIND("(substring \"abc\" -1 2)", "index-error");
    EXPECT_KIND("(string-ref \"abc\" 'x)", "type-error");
    EXPECT_KIND("(string-ref 'abc 0)", "type-error");
    EXPECT("(list (string-append) (string-append \"caf\" \"é\" \" λ\"))", "(\"\" \"café λ\")");
    EXPECT("(string-append \"a\" #\\b)",
           "ERROR type-error: string-append: expected (string …), got (string char)");
    EXPECT("(list (string=? \"a\" \"a\" \"a\") (string=? \"a\" \"b\") (string<? \"ab\" \"abc\")"
           " (string<? \"z\" \"é\") (string>? \"b\" \"a\") (string<? \"a\" \"c\" \"b\"))",
           "(#t #f #t #t #t #f)");
    EXPECT_KIND("(string<? \"a\" 1)", "type-error");
    EXPECT("(list (string-upcase \"Hello, World 42\") (string-downcase \"ÀÉÎ ΣΩ ŸĲ ЖЁ\")"
           " (string-upcase \"straße ÿ ωσς ёж ĳ\"))",
           "(\"HELLO, WORLD 42\" \"àéî σω ÿĳ жё\" \"STRAßE Ÿ ΩΣΣ ЁЖ Ĳ\")");
    EXPECT("(list (string->list \"aé日\") (list->string (list #\\λ #\\x)) (list->string '()))",
           "((#\\a #\\é #\\日) \"λx\" \"\")");
    EXPECT_KIND("(list->string '(1 2))", "type-error");
    EXPECT("(list (eq? (string->symbol \"abc\") 'abc) (symbol->string 'a-b) (string->symbol \"x "
           "y\"))",
           "(#t \"a-b\" x y)");
    EXPECT_KIND("(symbol->string :a)", "type-error");
    EXPECT_KIND("(symbol->string \"a\")", "type-error");
}

static void test_string_ops(void)
{
    EXPECT("(list (string-split \"a,b,,c\" \",\") (string-split \",a,\" \",\") (string-split \"\" "
           "\",\"))",
           "((\"a\" \"b\" \"\" \"c\") (\"\" \"a\" \"\") (\"\"))");
    EXPECT("(list (string-split \"a---b\" \"--\") (string-split \"1é2é3\" #\\é)"
           " (string-split \"aé\" \"\") (string-split \"  a \\t b\\n\"))",
           "((\"a\" \"-b\") (\"1\" \"2\" \"3\") (\"a\" \"é\") (\"a\" \"b\"))");
    EXPECT("(list (string-split \"\") (string-split \"   \") (string-split \"\" \"\"))",
           "(() () ())");
    EXPECT_KIND("(string-split 5 \",\")", "type-error");
    EXPECT_KIND("(string-split \"a\" 5)", "type-error");
    EXPECT("(list (string-join '(\"a\" \"b\" \"c\") \", \") (string-join '() \",\")"
           " (string-join '(\"x\" \"y\")))",
           "(\"a, b, c\" \"\" \"x y\")");
    EXPECT_KIND("(string-join \"abc\" \",\")", "type-error");
    EXPECT_KIND("(string-join '(\"a\" 1))", "type-error");
    EXPECT("(list (string-index \"héllo\" #\\l) (string-index \"abc\" #\\z)"
           " (string-index \"ab1\" char-numeric?) (string-index \"\" #\\a))",
           "(2 #f 2 #f)");
    EXPECT("(list (string-contains? \"héllo\" \"él\") (string-contains? \"abc\" \"abcd\")"
           " (string-contains? \"\" \"\") (string-prefix? \"hello\" \"he\")"
           " (string-prefix? \"he\" \"hello\") (string-suffix? \"main.sx\" \".sx\")"
           " (string-suffix? \"x\" \"\"))",
           "(#t #f #t #t #f #t #t)");
}

static void test_chars(void)
{
    EXPECT(
        "(list (char->integer #\\A) (char->integer #\\日) (integer->char 955) (integer->char 0))",
        "(65 26085 #\\λ #\\nul)");
    EXPECT_KIND("(integer->char 55296)", "type-error");
    EXPECT_KIND("(integer->char 1114112)", "type-error");
    EXPECT_KIND("(integer->char #\\a)", "type-error");
    EXPECT_KIND("(char->integer \"a\")", "type-error");
    EXPECT("(list (char=? #\\a #\\a #\\a) (char=? #\\a #\\A) (char<? #\\a #\\b #\\c) (char<? #\\a "
           "#\\a))",
           "(#t #f #t #f)");
    EXPECT_KIND("(char<? 1 2)", "type-error");
    EXPECT("(map char-alphabetic? '(#\\a #\\Z #\\1 #\\space #\\é #\\λ #\\日 #\\-))",
           "(#t #t #f #f #t #t #t #f)");
    EXPECT("(map char-numeric? '(#\\0 #\\9 #\\a #\\.))", "(#t #t #f #f)");
    EXPECT("(map char-whitespace? (map integer->char '(32 10 9 13 160 12288 97 95)))",
           "(#t #t #t #t #t #t #f #f)");
}

static void test_symbols_keywords(void)
{
    EXPECT("(list (symbol? 'a) (symbol? :a) (keyword? :a) (keyword? 'a) (symbol? (gensym)))",
           "(#t #f #t #f #t)");
    EXPECT("(list (keyword->string :kv/get) (string->keyword \"abc\") (eq? (string->keyword \"k\") "
           ":k))",
           "(\"kv/get\" :abc #t)");
    EXPECT_KIND("(keyword->string 'a)", "type-error");
    EXPECT_KIND("(string->keyword 'a)", "type-error");
    EXPECT("(list (eq? (gensym) (gensym)) (equal? (gensym) (gensym)))", "(#f #f)");
}

/* ---- vectors ------------------------------------------------------------------- */

static void test_vectors(void)
{
    EXPECT("(list (vector) (vector 1 \"a\") (make-vector 2 'x) (make-vector 2))",
           "(#() #(1 \"a\") #(x x) #(() ()))");
    EXPECT("(list (vector? #(1)) (vector? '(1)) (vector-length #(1 2 3)) (vector-ref #(a b c) 2))",
           "(#t #f 3 c)");
    EXPECT("(vector-ref (vector 1 2) 2)",
           "ERROR index-error: vector-ref: index 2 out of range for length 2");
    EXPECT_KIND("(vector-ref (vector 1 2) -1)", "index-error");
    EXPECT_KIND("(vector-ref (vector 1 2) 1.0)", "type-error");
    EXPECT_KIND("(vector-ref '(1) 0)", "type-error");
    EXPECT_KIND("(vector-set! (vector 1 2) 2 'x)", "index-error");
    EXPECT_KIND("(make-vector 'a)", "type-error");
    EXPECT_KIND("(make-vector -1)", "type-error");
    EXPECT("(list (vector->list #(1 2 3 4)) (vector->list #(1 2 3 4) 1) (vector->list #(1 2 3 4) 1 "
           "3))",
           "((1 2 3 4) (2 3 4) (2 3))");
    EXPECT_KIND("(vector->list #(1 2) 2 1)", "index-error");
    EXPECT_KIND("(vector->list #(1 2) 0 3)", "index-error");
    EXPECT("(list (list->vector '(1 (2))) (list->vector '()))", "(#(1 (2)) #())");
    EXPECT_KIND("(list->vector #(1))", "type-error");
    EXPECT("(vector-map + #(1 2 3) #(10 20))", "#(11 22)");
    EXPECT("(vector-for-each test-log #(a b) #(1 2 3)) (test-calls)", "((a 1) (b 2))");
    EXPECT("(vector-for-each test-log #(a))", "()");
    EXPECT_KIND("(vector-map car '((1)))", "type-error");
    EXPECT_KIND("(vector-fill! \"abc\" 1)", "type-error");
}

static void test_vector_mutation(void)
{
    sx_val v = sx_mkvector(3, sx_mkfix(1));
    sx_sym(sx_intern_c("test-vec"))->global = v;
    EXPECT("(vector-set! test-vec 0 'first)", "()");
    EXPECT("(vector-fill! test-vec 0 1)", "()");
    EXPECT("test-vec", "#(first 0 0)");
    EXPECT("(vector-fill! test-vec 'z)", "()");
    EXPECT("test-vec", "#(z z z)");
}

/* ---- dicts ---------------------------------------------------------------------- */

static void test_dicts(void)
{
    sx_sym(sx_intern_c("test-d"))->global = sx_mkdict(0);
    EXPECT("(dict-set! test-d :z 1) (dict-set! test-d :a 2) (dict-set! test-d \"m\" 3) "
           "(dict-set! test-d 10 4) test-d",
           "{:z 1 :a 2 \"m\" 3 10 4}");
    EXPECT("(dict-set! test-d :z 100) test-d", "{:z 100 :a 2 \"m\" 3 10 4}");
    EXPECT("(dict-delete! test-d :a) (dict-set! test-d :a 5) test-d", "{:z 100 \"m\" 3 10 4 :a 5}");
    EXPECT("(list (keys test-d) (vals test-d) (dict->list test-d) (dict-count test-d))",
           "((:z \"m\" 10 :a) (100 3 4 5) ((:z . 100) (\"m\" . 3) (10 . 4) (:a . 5)) 4)");
    EXPECT("(list (get test-d :a) (get test-d :q) (get test-d :q 'd) (has-key? test-d \"m\"))",
           "(5 () d #t)");
    EXPECT("(list (get (dict :a '()) :a 'd) (get (dict :a #f) :a 'd) (has-key? (dict :n '()) :n))",
           "(() #f #t)");
    EXPECT("(dict 1 'int 1.0 'float '(1 2) 'list #(1 2) 'vec #\\a 'char \"a\" 's 'a 'sym :a 'kw)",
           "{1 int 1.0 float (1 2) list #(1 2) vec #\\a char \"a\" s a sym :a kw}");
    EXPECT("(get (dict '(1 2) 'x) (list 1 2))", "x");
    EXPECT("(get (dict -0.0 'neg 0.0 'pos) 0.0)", "pos");
    EXPECT("(get (dict +nan.0 'nan) (/ 0.0 0.0))", "nan");
    EXPECT("(dict 1)", "ERROR arity-error: dict: expected keys and values in pairs, got 1 "
                       "argument");
    EXPECT_KIND("(get '() :a)", "type-error");
    EXPECT_KIND("(dict-set! '() :a 1)", "type-error");
    EXPECT_KIND("(keys 5)", "type-error");
    EXPECT_KIND("(dissoc '() :a)", "type-error");
    EXPECT("(list (assoc (dict :a 1 :b 2) :c 3 :a 10) (dissoc (dict :a 1 :b 2 :c 3) :a :c)"
           " (dissoc (dict :a 1) :zz) (assoc (dict) :x 1))",
           "({:a 10 :b 2 :c 3} {:b 2} {:a 1} {:x 1})");
    EXPECT_KIND("(assoc (dict) :a)", "arity-error");
    EXPECT("(list (empty? '()) (empty? '(1)) (empty? \"\") (empty? \"a\") (empty? #())"
           " (empty? (dict)) (empty? (dict 1 2)))",
           "(#t #f #t #f #t #t #f)");
    EXPECT_KIND("(empty? 5)", "type-error");
    EXPECT("(list (dict? (dict)) (dict? '()) (dict? #(1)))", "(#t #f #f)");
    /* immediate keys are found by identity, other keys by equal? */
    sx_sym(sx_intern_c("test-k"))->global = sx_mkdict(0);
    EXPECT("(dict-set! test-k 1 'one) (dict-set! test-k 1.0 'float) (dict-set! test-k #\\a 'char)"
           " (dict-set! test-k #t 'yes) (dict-set! test-k '() 'empty) (dict-set! test-k \"1\" 'str)"
           " (list (get test-k 1) (get test-k 1.0) (get test-k #\\a) (get test-k #t)"
           " (get test-k '()) (get test-k \"1\") (get test-k 2 'none) (get test-k #f 'none)"
           " (has-key? test-k (+ 0 1)) (has-key? test-k #\\b))",
           "(one float char yes empty str none none #t #f)");
    EXPECT("(dict-delete! test-k 1) (list (get test-k 1 'gone) (dict-count test-k))", "(gone 5)");
}

/* Deletes and re-adds many keys: order, counts and lookups stay right
 * through compactions and growth. */
static void test_dict_churn(void)
{
    sx_val d = sx_mkdict(0);
    for (int i = 0; i < 20; i++)
        sx_dict_put(d, sx_mkfix(i), sx_mkfix(i));
    for (int i = 0; i < 10; i++)
        CHECK(sx_dict_remove(d, sx_mkfix(i)));
    CHECK(!sx_dict_remove(d, sx_mkfix(3)));
    for (int i = 0; i < 3; i++)
        sx_dict_put(d, sx_mkfix(i), sx_intern_c("again"));
    sx_val s = sx_to_string(d, true);
    CHECK(strcmp(sx_str(s)->data, "{10 10 11 11 12 12 13 13 14 14 15 15 16 16 17 17 18 18 19 19 "
                                  "0 again 1 again 2 again}") == 0);

    sx_val big = sx_mkdict(0);
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 5000; i++)
            sx_dict_put(big, sx_mkfix(i * 7), sx_mkfix(round));
        for (int i = 0; i < 5000; i += 2)
            sx_dict_remove(big, sx_mkfix(i * 7));
    }
    CHECK(sx_dictp(big)->count == 2500);
    sx_val v;
    CHECK(sx_dict_lookup(big, sx_mkfix(7), &v) && v == sx_mkfix(4));
    CHECK(sx_dict_lookup(big, sx_mkfix(21), &v) && v == sx_mkfix(4));
    CHECK(!sx_dict_lookup(big, sx_mkfix(14), &v));
    CHECK(!sx_dict_lookup(big, sx_mkfix(15), &v));
    sx_val first = SX_UNDEF;
    for (uint32_t i = 0; i < sx_dictp(big)->used && first == SX_UNDEF; i++)
        first = sx_dictp(big)->entries[i].key;
    CHECK(first == sx_mkfix(7)); /* odd keys were never deleted: they stay first */

    for (int i = 0; i < 100; i++)
        sx_dict_remove(d, sx_mkfix(i));
    CHECK(sx_dictp(d)->count == 0);
    sx_dict_put(d, sx_mkfix(1), sx_mkfix(2));
    s = sx_to_string(d, true);
    CHECK(strcmp(sx_str(s)->data, "{1 2}") == 0);

    sx_val copy = sx_dict_copy(big);
    CHECK(sx_equal(copy, big));
    sx_dict_put(copy, sx_mkfix(7), SX_NIL);
    CHECK(!sx_equal(copy, big));
}

/* ---- equality and hashing --------------------------------------------- */

static void test_equality(void)
{
    EXPECT("(list (eqv? 1.5 1.5) (eqv? 0.0 -0.0) (eqv? +nan.0 (/ 0.0 0.0)) (eqv? 2 2.0)"
           " (eqv? \"a\" \"a\") (eqv? 100000000000 100000000000))",
           "(#t #f #t #f #f #t)");
    EXPECT("(list (equal? \"abc\" (string-append \"ab\" \"c\")) (equal? '(1 (2 #(3))) (list 1 "
           "(list 2 (vector 3)))) (equal? '(1 2) '(1 2 3)) (equal? #(1) '(1)) (equal? :a 'a))",
           "(#t #t #f #f #f)");
    EXPECT("(list (equal? (dict :a 1 :b 2) (dict :b 2 :a 1)) (equal? (dict :a 1) (dict :a 2))"
           " (equal? (dict :a 1) (dict :a 1 :b 2)) (equal? (dict) '()) (equal? 0.0 -0.0))",
           "(#t #f #f #f #f)");
    EXPECT("(list (eq? '() nil) (eq? 'a 'a) (eq? car car) (not '()) (not 0) (boolean? '()))",
           "(#t #t #t #t #f #f)");
    EXPECT("(list (procedure? car) (procedure? 'car) (void) (void 1 2))", "(#t #f () ())");

    sx_val a = sx_mkdict(0), b = sx_mkdict(0);
    for (int i = 0; i < 50; i++)
        sx_dict_put(a, sx_mkfix(i), sx_mkcstring("v"));
    for (int i = 50; i-- > 0;)
        sx_dict_put(b, sx_mkfix(i), sx_mkcstring("v"));
    CHECK(sx_equal(a, b));
    CHECK(sx_hash(a) == sx_hash(b));
    CHECK(sx_hash(sx_mkfloat(NAN)) == sx_hash(sx_mkfloat(-NAN)));
    CHECK(sx_hash(sx_mkcstring("abc")) == sx_hash(sx_mkstring("abcd", 3)));
    sx_val l1 = SX_NIL, l2 = SX_NIL;
    for (int i = 0; i < 100000; i++) {
        l1 = sx_cons(sx_mkfloat(i), l1);
        l2 = sx_cons(sx_mkfloat(i), l2);
    }
    CHECK(sx_equal(l1, l2));
    CHECK(sx_hash(l1) == sx_hash(l2));
    CHECK(sx_hash(sx_mkfix(1)) != sx_hash(sx_mkfloat(1.0)));
}

/* ---- errors, raise, apply, output --------------------------------------- */

static void test_errors_apply(void)
{
    EXPECT("(error \"boom\" 1 \"two\")", "ERROR user-error: boom");
    EXPECT("(raise 42)", "RAISED");
    CHECK(ctx.raised == sx_mkfix(42));
    EXPECT("(list (error-kind 42) (error-message '(a \"b\")) (error-payload 42) (error? 42))",
           "(raised \"(a \\\"b\\\")\" 42 #f)");
    sx_val e = sx_mkerror(sx_intern_c("user-error"), sx_mkcstring("boom"),
                          sx_list(2, sx_mkfix(1), sx_mkfix(2)));
    sx_sym(sx_intern_c("test-err"))->global = e;
    EXPECT("(list (error? test-err) (error-kind test-err) (error-message test-err)"
           " (error-payload test-err) (symbol? (error-kind test-err)))",
           "(#t user-error \"boom\" (1 2) #t)");
    EXPECT("test-err", "#<error user-error: boom>");
    EXPECT("(raise test-err)", "ERROR user-error: boom");
    CHECK(ctx.raised == e);
    EXPECT("(list (apply + '(1 2 3)) (apply list 1 2 '(3 4)) (apply list 1 '()) (apply max '(4)))",
           "(6 (1 2 3 4) (1) 4)");
    EXPECT("(apply map list '((1 2 3) (4 5 6)))", "((1 4) (2 5) (3 6))");
    EXPECT_KIND("(apply + 1 2)", "type-error");
    EXPECT_KIND("(apply + '(1 . 2))", "type-error");
    EXPECT_KIND("(apply 5 '())", "type-error");
    EXPECT_KIND("(apply + (list 2305843009213693951 1))", "overflow");
    EXPECT("(integer? (current-time-ms))", "#t");
    EXPECT("(> (current-time-ms) 1600000000000)", "#t");
}

/* ---- allocation ------------------------------------------------------------ */

#include <gc.h>

/* Small objects come from free lists of the collector's objects, refilled
 * a block at a time: each object is zeroed, at least as big as asked plus
 * the collector's extra byte, distinct from every other live one, and
 * neither it nor what is still on the lists is reclaimed by a collection
 * while it is reachable. */
static void test_small_alloc(void)
{
    enum { SIZES = 300, PER = 40 };
    static void **objs[SIZES][PER]; /* static: the collector scans it */
    for (int round = 0; round < 3; round++) {
        for (size_t n = 0; n < SIZES; n++)
            for (int k = 0; k < PER; k++) {
                unsigned char *p = sx_alloc(n);
                bool zero = true;
                for (size_t b = 0; b < n; b++)
                    zero &= p[b] == 0;
                CHECK(zero);
                CHECK(GC_size(p) >= n + 1);
                CHECK(GC_base(p) == p);
                memset(p, 0xa5, n); /* dirty it: a second hand-out would show */
                if (n >= sizeof(size_t)) memcpy(p, &(size_t){n * PER + (size_t)k}, sizeof(size_t));
                objs[n][k] = (void **)p;
            }
        GC_gcollect(); /* the lists' objects stay listed, the ones above live */
        for (size_t n = sizeof(size_t); n < SIZES; n++)
            for (int k = 0; k < PER; k++) {
                size_t tag;
                memcpy(&tag, objs[n][k], sizeof tag);
                CHECK(tag == n * PER + (size_t)k);
            }
        /* lists: long enough to need several refills, then a collection */
        sx_val l = SX_NIL;
        for (int i = 0; i < 100000; i++)
            l = sx_cons(sx_mkfix(i), l);
        CHECK(GC_size((void *)(l - SX_TAG_PAIR)) == sizeof(sx_pair)); /* no extra byte */
        GC_gcollect();
        for (int i = 0; i < 100000; i++) /* reuses what the collection freed */
            memset(sx_alloc(16), 0x5a, 16);
        long sum = 0, len = 0;
        for (; sx_is_pair(l); l = SX_CDR(l), len++)
            sum += sx_fix(SX_CAR(l));
        CHECK(len == 100000 && sum == 100000L * 99999 / 2);
        memset(objs, 0, sizeof objs);
        GC_gcollect();
    }
}

int main(void)
{
    setup();
    test_float_print();
    test_write_display();
    test_print_deep();
    test_arith();
    test_overflow();
    test_divisions();
    test_fast_divisions();
    test_compare();
    test_rounding();
    test_number_strings();
    test_list_basics();
    test_list_search();
    test_higher_order();
    test_sort_iota_range();
    test_long_lists();
    test_strings();
    test_string_ops();
    test_chars();
    test_symbols_keywords();
    test_vectors();
    test_vector_mutation();
    test_dicts();
    test_dict_churn();
    test_equality();
    test_errors_apply();
    test_small_alloc();
    if (failures) {
        fprintf(stderr, "%d primitive test(s) failed\n", failures);
        return 1;
    }
    puts("vm prims: all tests passed");
    return 0;
}
