/* sx_prim_num.c: the numeric primitives of SX.md 4 and 9.
 *
 * Numbers are 62-bit fixnums (exact) and boxed doubles (inexact). Every
 * exact result, including each step of a variadic + - *, is range-checked
 * and raises overflow when it leaves the fixnum range; once a float takes
 * part the rest of a variadic operation is done in floating point.
 *
 * Two places need more than plain C arithmetic:
 *   - comparing an integer with a float is exact: the float is split into
 *     an integral part (exact in int64 whenever it is in range) and a
 *     fraction, so no rounding of the integer can change the answer;
 *   - integer / that does not divide evenly is correctly rounded: the
 *     quotient is computed in 128-bit integers to 57+ significant bits with
 *     a sticky bit for the remainder, then rounded once to double.
 */
#include <math.h>

#include "vm/sx_core.h"
#include "vm/sx_read.h"

#define TWO62 4611686018427387904.0 /* 2^62 */
#define TWO61 2305843009213693952.0 /* 2^61: first double past SX_FIX_MAX */

static double num_d(sx_val v)
{
    return sx_is_fix(v) ? (double)sx_fix(v) : sx_float(v);
}

static void check_numbers(sx_ctx *cx, const char *name, const char *expected, int argc,
                          sx_val *argv)
{
    for (int i = 0; i < argc; i++)
        SX_CHECK(cx, sx_is_number(argv[i]), name, expected, argc, argv);
}

static _Noreturn void div_by_zero(sx_ctx *cx, const char *name)
{
    sx_error(cx, "division-by-zero", "%s: division by zero", name);
}

/* An integral value (exact, or a float with no fraction) as a fixnum or a
 * double; is_float tells which. */
static bool integral_arg(sx_val v, bool *is_float)
{
    *is_float = sx_is_float(v);
    if (sx_is_fix(v)) return true;
    if (!*is_float) return false;
    double d = sx_float(v);
    return isfinite(d) && d == trunc(d);
}

/* ---- + - * --------------------------------------------------------------- */

static int64_t add_i(sx_ctx *cx, int64_t a, int64_t b, const char *name)
{
    int64_t r = a + b; /* both fit in 62 bits: no int64 overflow */
    if (!sx_fix_fits(r)) sx_overflow(cx, name);
    return r;
}

static int64_t mul_i(sx_ctx *cx, int64_t a, int64_t b, const char *name)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || !sx_fix_fits(r)) sx_overflow(cx, name);
    return r;
}

static sx_val p_add(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "+", "number …", argc, argv);
    int64_t acc = 0;
    int i = 0;
    for (; i < argc && sx_is_fix(argv[i]); i++)
        acc = add_i(cx, acc, sx_fix(argv[i]), "+");
    if (i == argc) return sx_mkfix(acc);
    double d = (double)acc;
    for (; i < argc; i++)
        d += num_d(argv[i]);
    return sx_mkfloat(d);
}

static sx_val p_sub(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "-", "number …", argc, argv);
    if (argc == 1) {
        if (sx_is_fix(argv[0])) return sx_mkint(cx, -sx_fix(argv[0]), "-");
        return sx_mkfloat(-sx_float(argv[0]));
    }
    int i = 1;
    if (sx_is_fix(argv[0])) {
        int64_t acc = sx_fix(argv[0]);
        for (; i < argc && sx_is_fix(argv[i]); i++)
            acc = add_i(cx, acc, -sx_fix(argv[i]), "-");
        if (i == argc) return sx_mkfix(acc);
        double d = (double)acc;
        for (; i < argc; i++)
            d -= num_d(argv[i]);
        return sx_mkfloat(d);
    }
    double d = sx_float(argv[0]);
    for (; i < argc; i++)
        d -= num_d(argv[i]);
    return sx_mkfloat(d);
}

static sx_val p_mul(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "*", "number …", argc, argv);
    int64_t acc = 1;
    int i = 0;
    for (; i < argc && sx_is_fix(argv[i]); i++)
        acc = mul_i(cx, acc, sx_fix(argv[i]), "*");
    if (i == argc) return sx_mkfix(acc);
    double d = (double)acc;
    for (; i < argc; i++)
        d *= num_d(argv[i]);
    return sx_mkfloat(d);
}

/* ---- / -------------------------------------------------------------------- */

static int bit_length(uint64_t x)
{
    return 64 - __builtin_clzll(x);
}

/* a / b rounded once to the nearest double; b != 0. */
static double ratio_to_double(int64_t a, int64_t b)
{
    const int64_t exact = (int64_t)1 << 53;
    if (a > -exact && a < exact && b > -exact && b < exact) return (double)a / (double)b;
    bool neg = (a < 0) != (b < 0);
    uint64_t ua = a < 0 ? -(uint64_t)a : (uint64_t)a;
    uint64_t ub = b < 0 ? -(uint64_t)b : (uint64_t)b;
    if (ua == 0) return neg ? -0.0 : 0.0;
    /* Scale so the integer quotient has 57 or 58 bits: 53 kept, the rest
     * and the sticky bit (remainder != 0) decide the one rounding. */
    int shift = 57 + bit_length(ub) - bit_length(ua);
    if (shift < 0) shift = 0;
    unsigned __int128 n = (unsigned __int128)ua << shift;
    unsigned __int128 q = n / ub;
    uint64_t q64 = (uint64_t)q | (n % ub != 0);
    double d = ldexp((double)q64, -shift);
    return neg ? -d : d;
}

static sx_val div2(sx_ctx *cx, sx_val a, sx_val b)
{
    if (b == sx_mkfix(0)) div_by_zero(cx, "/");
    if (sx_is_fix(a) && sx_is_fix(b)) {
        int64_t x = sx_fix(a), y = sx_fix(b);
        if (x % y == 0) return sx_mkint(cx, x / y, "/");
        return sx_mkfloat(ratio_to_double(x, y));
    }
    return sx_mkfloat(num_d(a) / num_d(b));
}

static sx_val p_div(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "/", "number …", argc, argv);
    if (argc == 1) return div2(cx, sx_mkfix(1), argv[0]);
    sx_val acc = argv[0];
    for (int i = 1; i < argc; i++)
        acc = div2(cx, acc, argv[i]);
    return acc;
}

/* ---- quotient remainder modulo ------------------------------------------- */

enum divop { QUOTIENT, REMAINDER, MODULO };

static sx_val int_divop(sx_ctx *cx, enum divop op, int64_t a, int64_t b, const char *name)
{
    if (op == QUOTIENT) return sx_mkint(cx, a / b, name); /* MIN / -1 overflows */
    int64_t r = a % b;
    if (op == MODULO && r != 0 && (r < 0) != (b < 0)) r += b;
    return sx_mkfix(r);
}

static sx_val float_divop(enum divop op, double a, double b)
{
    double r = fmod(a, b); /* exact; takes the dividend's sign */
    if (op == QUOTIENT) return sx_mkfloat((a - r) / b);
    if (op == MODULO) {
        if (r == 0)
            r = copysign(0.0, b);
        else if ((r < 0) != (b < 0))
            r += b;
    }
    return sx_mkfloat(r);
}

static sx_val divop(sx_ctx *cx, int argc, sx_val *argv, enum divop op, const char *name)
{
    bool fa, fb;
    if (!integral_arg(argv[0], &fa) || !integral_arg(argv[1], &fb))
        sx_type_error(cx, name, "integer integer", argc, argv);
    if (num_d(argv[1]) == 0) div_by_zero(cx, name);
    if (!fa && !fb) return int_divop(cx, op, sx_fix(argv[0]), sx_fix(argv[1]), name);
    return float_divop(op, num_d(argv[0]), num_d(argv[1]));
}

/* Whether a and b are fixnums that fit in 32 bits, b neither 0 nor -1:
 * then the 32-bit division, several times faster than the 64-bit one on
 * many processors, gives the result (and cannot trap). */
static inline bool small_divide(sx_val a, sx_val b)
{
    if (!sx_is_fix(a) || !sx_is_fix(b)) return false;
    int64_t x = sx_fix(a), y = sx_fix(b);
    return x == (int32_t)x && y == (int32_t)y && y != 0 && y != -1;
}

static sx_val p_quotient(sx_ctx *cx, int argc, sx_val *argv)
{
    if (small_divide(argv[0], argv[1]))
        return sx_mkfix((int32_t)sx_fix(argv[0]) / (int32_t)sx_fix(argv[1]));
    return divop(cx, argc, argv, QUOTIENT, "quotient");
}

static sx_val p_remainder(sx_ctx *cx, int argc, sx_val *argv)
{
    if (small_divide(argv[0], argv[1]))
        return sx_mkfix((int32_t)sx_fix(argv[0]) % (int32_t)sx_fix(argv[1]));
    return divop(cx, argc, argv, REMAINDER, "remainder");
}

static sx_val p_modulo(sx_ctx *cx, int argc, sx_val *argv)
{
    if (small_divide(argv[0], argv[1])) {
        int32_t b = (int32_t)sx_fix(argv[1]), r = (int32_t)sx_fix(argv[0]) % b;
        if (r != 0 && (r < 0) != (b < 0)) r += b;
        return sx_mkfix(r);
    }
    return divop(cx, argc, argv, MODULO, "modulo");
}

/* ---- comparison ----------------------------------------------------------- */

#define UNORDERED 2

/* Sign of (i - d), exactly; UNORDERED when d is NaN. */
static int cmp_int_float(int64_t i, double d)
{
    if (isnan(d)) return UNORDERED;
    if (d >= TWO62) return -1;
    if (d < -TWO62) return 1;
    double t = trunc(d); /* |t| <= 2^62: exact as an int64 */
    int64_t ti = (int64_t)t;
    if (i != ti) return i < ti ? -1 : 1;
    double frac = d - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int cmp_num(sx_val a, sx_val b)
{
    if (sx_is_fix(a) && sx_is_fix(b)) {
        int64_t x = sx_fix(a), y = sx_fix(b);
        return (x > y) - (x < y);
    }
    if (sx_is_fix(a)) return cmp_int_float(sx_fix(a), sx_float(b));
    if (sx_is_fix(b)) {
        int c = cmp_int_float(sx_fix(b), sx_float(a));
        return c == UNORDERED ? c : -c;
    }
    double x = sx_float(a), y = sx_float(b);
    if (isnan(x) || isnan(y)) return UNORDERED;
    return (x > y) - (x < y);
}

enum cmpop { EQ, LT, GT, LE, GE };

static bool cmp_holds(enum cmpop op, int c)
{
    if (c == UNORDERED) return false;
    switch (op) {
    case EQ: return c == 0;
    case LT: return c < 0;
    case GT: return c > 0;
    case LE: return c <= 0;
    default: return c >= 0;
    }
}

static sx_val compare_chain(sx_ctx *cx, int argc, sx_val *argv, enum cmpop op, const char *name)
{
    check_numbers(cx, name, "number …", argc, argv);
    for (int i = 0; i + 1 < argc; i++)
        if (!cmp_holds(op, cmp_num(argv[i], argv[i + 1]))) return SX_FALSE;
    return SX_TRUE;
}

static sx_val p_num_eq(sx_ctx *cx, int argc, sx_val *argv)
{
    return compare_chain(cx, argc, argv, EQ, "=");
}

static sx_val p_lt(sx_ctx *cx, int argc, sx_val *argv)
{
    return compare_chain(cx, argc, argv, LT, "<");
}

static sx_val p_gt(sx_ctx *cx, int argc, sx_val *argv)
{
    return compare_chain(cx, argc, argv, GT, ">");
}

static sx_val p_le(sx_ctx *cx, int argc, sx_val *argv)
{
    return compare_chain(cx, argc, argv, LE, "<=");
}

static sx_val p_ge(sx_ctx *cx, int argc, sx_val *argv)
{
    return compare_chain(cx, argc, argv, GE, ">=");
}

/* ---- abs min max ---------------------------------------------------------- */

static sx_val p_abs(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "abs", "number", argc, argv);
    if (sx_is_float(argv[0])) return sx_mkfloat(fabs(sx_float(argv[0])));
    int64_t i = sx_fix(argv[0]);
    return i < 0 ? sx_mkint(cx, -i, "abs") : argv[0];
}

static sx_val extremum(sx_ctx *cx, int argc, sx_val *argv, int want, const char *name)
{
    check_numbers(cx, name, "number …", argc, argv);
    sx_val best = argv[0];
    bool any_float = false, nan = false;
    for (int i = 0; i < argc; i++) {
        any_float |= sx_is_float(argv[i]);
        int c = cmp_num(argv[i], best);
        if (c == UNORDERED)
            nan = true;
        else if (c == want)
            best = argv[i];
    }
    if (nan) return sx_mkfloat(NAN);
    return any_float && sx_is_fix(best) ? sx_mkfloat((double)sx_fix(best)) : best;
}

static sx_val p_min(sx_ctx *cx, int argc, sx_val *argv)
{
    return extremum(cx, argc, argv, -1, "min");
}

static sx_val p_max(sx_ctx *cx, int argc, sx_val *argv)
{
    return extremum(cx, argc, argv, 1, "max");
}

/* ---- predicates ----------------------------------------------------------- */

static int sign_of(sx_ctx *cx, int argc, sx_val *argv, const char *name)
{
    check_numbers(cx, name, "number", argc, argv);
    if (sx_is_fix(argv[0])) return (sx_fix(argv[0]) > 0) - (sx_fix(argv[0]) < 0);
    double d = sx_float(argv[0]);
    return isnan(d) ? UNORDERED : (d > 0) - (d < 0);
}

static sx_val p_zerop(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sign_of(cx, argc, argv, "zero?") == 0);
}

static sx_val p_positivep(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sign_of(cx, argc, argv, "positive?") == 1);
}

static sx_val p_negativep(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sign_of(cx, argc, argv, "negative?") == -1);
}

static bool is_odd(sx_ctx *cx, int argc, sx_val *argv, const char *name)
{
    bool is_float;
    if (!integral_arg(argv[0], &is_float)) sx_type_error(cx, name, "integer", argc, argv);
    if (is_float) return fmod(sx_float(argv[0]), 2.0) != 0;
    return (sx_fix(argv[0]) & 1) != 0;
}

static sx_val p_oddp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(is_odd(cx, argc, argv, "odd?"));
}

static sx_val p_evenp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(!is_odd(cx, argc, argv, "even?"));
}

static sx_val p_numberp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is_number(argv[0]));
}

static sx_val p_integerp(sx_ctx *cx, int argc, sx_val *argv)
{
    bool is_float;
    return sx_bool(integral_arg(argv[0], &is_float));
}

static sx_val p_floatp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is_float(argv[0]));
}

/* ---- exactness and rounding --------------------------------------------- */

static sx_val to_inexact(sx_ctx *cx, int argc, sx_val *argv, const char *name)
{
    check_numbers(cx, name, "number", argc, argv);
    return sx_is_fix(argv[0]) ? sx_mkfloat((double)sx_fix(argv[0])) : argv[0];
}

static sx_val to_exact(sx_ctx *cx, int argc, sx_val *argv, const char *name)
{
    check_numbers(cx, name, "number", argc, argv);
    if (sx_is_fix(argv[0])) return argv[0];
    double d = sx_float(argv[0]);
    if (!isfinite(d) || d != trunc(d)) sx_type_error(cx, name, "integral number", argc, argv);
    if (d < -TWO61 || d >= TWO61) sx_overflow(cx, name);
    return sx_mkfix((int64_t)d);
}

static sx_val p_exact_to_inexact(sx_ctx *cx, int argc, sx_val *argv)
{
    return to_inexact(cx, argc, argv, "exact->inexact");
}

static sx_val p_inexact(sx_ctx *cx, int argc, sx_val *argv)
{
    return to_inexact(cx, argc, argv, "inexact");
}

static sx_val p_inexact_to_exact(sx_ctx *cx, int argc, sx_val *argv)
{
    return to_exact(cx, argc, argv, "inexact->exact");
}

static sx_val p_exact(sx_ctx *cx, int argc, sx_val *argv)
{
    return to_exact(cx, argc, argv, "exact");
}

/* Nearest integer, ties to even, whatever the FPU rounding mode. */
static double round_even(double x)
{
    double r = round(x); /* ties away from zero */
    if (fabs(x - trunc(x)) == 0.5) r = 2.0 * round(x / 2.0);
    return r;
}

static sx_val rounding(sx_ctx *cx, int argc, sx_val *argv, double (*f)(double), const char *name)
{
    check_numbers(cx, name, "number", argc, argv);
    return sx_is_fix(argv[0]) ? argv[0] : sx_mkfloat(f(sx_float(argv[0])));
}

static sx_val p_floor(sx_ctx *cx, int argc, sx_val *argv)
{
    return rounding(cx, argc, argv, floor, "floor");
}

static sx_val p_ceiling(sx_ctx *cx, int argc, sx_val *argv)
{
    return rounding(cx, argc, argv, ceil, "ceiling");
}

static sx_val p_round(sx_ctx *cx, int argc, sx_val *argv)
{
    return rounding(cx, argc, argv, round_even, "round");
}

static sx_val p_truncate(sx_ctx *cx, int argc, sx_val *argv)
{
    return rounding(cx, argc, argv, trunc, "truncate");
}

/* ---- sqrt expt ------------------------------------------------------------ */

/* floor(sqrt(n)) for 0 <= n < 2^61. */
static int64_t isqrt(int64_t n)
{
    int64_t s = (int64_t)sqrt((double)n);
    while (s * s > n)
        s--;
    while ((s + 1) * (s + 1) <= n)
        s++;
    return s;
}

static sx_val p_sqrt(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "sqrt", "number", argc, argv);
    if (sx_is_fix(argv[0]) && sx_fix(argv[0]) >= 0) {
        int64_t n = sx_fix(argv[0]), s = isqrt(n);
        if (s * s == n) return sx_mkfix(s);
    }
    double d = num_d(argv[0]);
    return sx_mkfloat(d < 0 ? NAN : sqrt(d));
}

/* b^e for e >= 0 by repeated squaring. b is squared only while bits of e
 * remain, and then |b^2| <= |result|, so every overflow is a real one. */
static sx_val expt_exact(sx_ctx *cx, int64_t b, int64_t e)
{
    if (b == 0) return sx_mkfix(e == 0);
    if (b == 1) return sx_mkfix(1);
    if (b == -1) return sx_mkfix(e & 1 ? -1 : 1);
    int64_t r = 1;
    for (;;) {
        if (e & 1) r = mul_i(cx, r, b, "expt");
        e >>= 1;
        if (!e) return sx_mkfix(r);
        b = mul_i(cx, b, b, "expt");
    }
}

static sx_val p_expt(sx_ctx *cx, int argc, sx_val *argv)
{
    check_numbers(cx, "expt", "number number", argc, argv);
    sx_val b = argv[0], e = argv[1];
    if (sx_is_fix(b) && sx_is_fix(e)) {
        if (sx_fix(e) >= 0) return expt_exact(cx, sx_fix(b), sx_fix(e));
        if (sx_fix(b) == 0) div_by_zero(cx, "expt");
    }
    return sx_mkfloat(pow(num_d(b), num_d(e)));
}

/* ---- number <-> string ---------------------------------------------------- */

static int radix_arg(sx_ctx *cx, int argc, sx_val *argv, const char *name, const char *expected)
{
    if (argc < 2) return 10;
    SX_CHECK(cx, sx_is_fix(argv[1]), name, expected, argc, argv);
    int64_t r = sx_fix(argv[1]);
    if (r != 2 && r != 8 && r != 10 && r != 16)
        sx_error(cx, "type-error", "%s: radix must be 2, 8, 10 or 16, got %lld", name,
                 (long long)r);
    return (int)r;
}

static void format_int(sx_buf *b, int64_t i, int radix)
{
    char digits[72];
    int n = 0;
    uint64_t u = i < 0 ? -(uint64_t)i : (uint64_t)i;
    do {
        digits[n++] = "0123456789abcdef"[u % (uint64_t)radix];
        u /= (uint64_t)radix;
    } while (u);
    if (i < 0) sx_buf_addc(b, '-');
    while (n > 0)
        sx_buf_addc(b, digits[--n]);
}

static sx_val p_number_to_string(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 2 ? "number integer" : "number";
    SX_CHECK(cx, sx_is_number(argv[0]), "number->string", expected, argc, argv);
    int radix = radix_arg(cx, argc, argv, "number->string", expected);
    sx_buf b;
    sx_buf_init(&b);
    if (sx_is_fix(argv[0])) {
        format_int(&b, sx_fix(argv[0]), radix);
    } else {
        if (radix != 10) {
            sx_buf_free(&b);
            sx_error(cx, "type-error", "number->string: a float needs radix 10, got %d", radix);
        }
        sx_print_float(&b, sx_float(argv[0]));
    }
    sx_val s = sx_mkstring(b.p, b.len);
    sx_buf_free(&b);
    return s;
}

static sx_val p_string_to_number(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 2 ? "string integer" : "string";
    SX_CHECK(cx, sx_is_string(argv[0]), "string->number", expected, argc, argv);
    int radix = radix_arg(cx, argc, argv, "string->number", expected);
    bool overflow;
    sx_string *s = sx_str(argv[0]);
    sx_val n = sx_parse_number(cx, s->data, s->len, radix, &overflow);
    if (overflow) sx_overflow(cx, "string->number");
    return n;
}

void sx__init_prims_num(void)
{
    sx_defprim("+", p_add, 0, -1);
    sx_defprim("-", p_sub, 1, -1);
    sx_defprim("*", p_mul, 0, -1);
    sx_defprim("/", p_div, 1, -1);
    sx_defprim("quotient", p_quotient, 2, 2);
    sx_defprim("remainder", p_remainder, 2, 2);
    sx_defprim("modulo", p_modulo, 2, 2);
    sx_defprim("=", p_num_eq, 1, -1);
    sx_defprim("<", p_lt, 1, -1);
    sx_defprim(">", p_gt, 1, -1);
    sx_defprim("<=", p_le, 1, -1);
    sx_defprim(">=", p_ge, 1, -1);
    sx_defprim("abs", p_abs, 1, 1);
    sx_defprim("min", p_min, 1, -1);
    sx_defprim("max", p_max, 1, -1);
    sx_defprim("zero?", p_zerop, 1, 1);
    sx_defprim("positive?", p_positivep, 1, 1);
    sx_defprim("negative?", p_negativep, 1, 1);
    sx_defprim("odd?", p_oddp, 1, 1);
    sx_defprim("even?", p_evenp, 1, 1);
    sx_defprim("number?", p_numberp, 1, 1);
    sx_defprim("integer?", p_integerp, 1, 1);
    sx_defprim("float?", p_floatp, 1, 1);
    sx_defprim("exact->inexact", p_exact_to_inexact, 1, 1);
    sx_defprim("inexact->exact", p_inexact_to_exact, 1, 1);
    sx_defprim("exact", p_exact, 1, 1);
    sx_defprim("inexact", p_inexact, 1, 1);
    sx_defprim("floor", p_floor, 1, 1);
    sx_defprim("ceiling", p_ceiling, 1, 1);
    sx_defprim("round", p_round, 1, 1);
    sx_defprim("truncate", p_truncate, 1, 1);
    sx_defprim("sqrt", p_sqrt, 1, 1);
    sx_defprim("expt", p_expt, 2, 2);
    sx_defprim("number->string", p_number_to_string, 1, 2);
    sx_defprim("string->number", p_string_to_number, 1, 2);
}
