/* sx_print.c: growable byte buffers and the write/display forms of values.
 *
 * sx_buf holds text only (never values) in atomic blocks of the collected
 * heap, so it counts against the memory limit and a buffer an error
 * unwinds past is garbage like any other. The printer walks lists along
 * their tails in a loop and recurses only into cars, vector items and dict
 * entries; past MAX_DEPTH levels of nesting it prints "..." instead of
 * going deeper.
 *
 * Floats print like Python's repr (SX.md 9): the shortest digit string
 * that reads back as the same double, found by bisection over 1..17
 * significant digits with printf's correctly rounded %e (plus the next
 * digit string up, which wins when the nearest one falls just outside the
 * narrower half of the rounding interval below a power of two), then laid out
 * positionally when 1e-4 <= |x| < 1e16 and in exponent form otherwise.
 *
 * Control characters (C0, DEL and C1) are the only text the write form
 * escapes besides \\ and \": \xHH; inside strings, #\xHH as characters
 * (or the R7RS name, #\newline, where there is one).
 */
#include <math.h>
#include <stdlib.h>

#include "vm/sx_core.h"

#define MAX_DEPTH 10000

/* ---- buffers ---------------------------------------------------------- */

void sx_buf_init(sx_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void sx_buf_free(sx_buf *b)
{
    sx_free(b->p);
    sx_buf_init(b);
}

/* Grows by half (not doubling: a buffer near the budget should not ask
 * for twice what it needs); memory-limit when the budget cannot hold it. */
static void buf_reserve(sx_buf *b, size_t extra)
{
    if (extra >= SIZE_MAX / 2 - b->len) sx__out_of_memory();
    size_t need = b->len + extra + 1; /* room for a terminating NUL */
    if (need <= b->cap) return;
    size_t cap = b->cap ? b->cap + b->cap / 2 : 64;
    if (cap < need) cap = need;
    b->p = sx_realloc_atomic(b->p, cap);
    b->cap = cap;
}

void sx_buf_add(sx_buf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

void sx_buf_adds(sx_buf *b, const char *s)
{
    sx_buf_add(b, s, strlen(s));
}

void sx_buf_addc(sx_buf *b, char c)
{
    sx_buf_add(b, &c, 1);
}

void sx_buf_printf(sx_buf *b, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof small) {
        sx_buf_add(b, small, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- floats ----------------------------------------------------------- */

/* A decimal d1.d2d3...dn x 10^exp, digits without a point. */
typedef struct decimal {
    char digits[24];
    int n;
    int exp;
} decimal;

static bool reads_back(const decimal *dec, double x)
{
    char text[48];
    snprintf(text, sizeof text, "%.*se%d", dec->n, dec->digits, dec->exp - dec->n + 1);
    return strtod(text, NULL) == x;
}

/* The correctly rounded n-digit decimal of x > 0. */
static void nearest_digits(double x, int n, decimal *dec)
{
    char text[48];
    snprintf(text, sizeof text, "%.*e", n - 1, x);
    char *e = strchr(text, 'e');
    dec->n = 0;
    for (char *p = text; p < e; p++)
        if (*p != '.') dec->digits[dec->n++] = *p;
    dec->digits[dec->n] = 0;
    dec->exp = atoi(e + 1);
}

/* The next n-digit decimal above dec (9.99e5 -> 1.00e6). */
static void next_digits(const decimal *dec, decimal *out)
{
    *out = *dec;
    int i = out->n - 1;
    while (i >= 0 && out->digits[i] == '9')
        out->digits[i--] = '0';
    if (i >= 0) {
        out->digits[i]++;
    } else {
        out->digits[0] = '1';
        out->exp++;
    }
}

/* The n-digit decimal that reads back as x, if there is one: the nearest,
 * or else the next one up. Below a power of two the rounding interval is
 * narrower than above it, so when the nearest digits (below x) fail the
 * next ones up may not; in every other case no neighbour can win. */
static bool try_digits(double x, int n, decimal *dec)
{
    decimal up;
    nearest_digits(x, n, dec);
    if (reads_back(dec, x)) return true;
    next_digits(dec, &up);
    if (!reads_back(&up, x)) return false;
    *dec = up;
    return true;
}

/* Any n-digit decimal is also an (n+1)-digit one, so if some n digits read
 * back, so do some n+1: the shortest length can be found by bisection. */
static void shortest_digits(double x, decimal *dec)
{
    int lo = 1, hi = 17; /* 17 significant digits always read back */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (try_digits(x, mid, dec))
            hi = mid;
        else
            lo = mid + 1;
    }
    if (!try_digits(x, hi, dec)) nearest_digits(x, 17, dec);
}

static void strip_zeros(decimal *dec)
{
    while (dec->n > 1 && dec->digits[dec->n - 1] == '0')
        dec->n--;
    dec->digits[dec->n] = 0;
}

static void add_zeros(sx_buf *b, int n)
{
    for (; n > 0; n--)
        sx_buf_addc(b, '0');
}

static void layout_positional(sx_buf *b, const decimal *dec)
{
    if (dec->exp < 0) {
        sx_buf_adds(b, "0.");
        add_zeros(b, -dec->exp - 1);
        sx_buf_add(b, dec->digits, (size_t)dec->n);
        return;
    }
    int whole = dec->exp + 1;
    if (dec->n <= whole) {
        sx_buf_add(b, dec->digits, (size_t)dec->n);
        add_zeros(b, whole - dec->n);
        sx_buf_adds(b, ".0");
        return;
    }
    sx_buf_add(b, dec->digits, (size_t)whole);
    sx_buf_addc(b, '.');
    sx_buf_add(b, dec->digits + whole, (size_t)(dec->n - whole));
}

static void layout_exponent(sx_buf *b, const decimal *dec)
{
    sx_buf_addc(b, dec->digits[0]);
    if (dec->n > 1) {
        sx_buf_addc(b, '.');
        sx_buf_add(b, dec->digits + 1, (size_t)(dec->n - 1));
    }
    sx_buf_printf(b, "e%c%02d", dec->exp < 0 ? '-' : '+', abs(dec->exp));
}

void sx_print_float(sx_buf *b, double d)
{
    decimal dec;
    if (isnan(d)) {
        sx_buf_adds(b, "+nan.0");
        return;
    }
    if (isinf(d)) {
        sx_buf_adds(b, d > 0 ? "+inf.0" : "-inf.0");
        return;
    }
    if (signbit(d)) sx_buf_addc(b, '-');
    if (d == 0) {
        sx_buf_adds(b, "0.0");
        return;
    }
    shortest_digits(fabs(d), &dec);
    strip_zeros(&dec);
    if (dec.exp >= -4 && dec.exp < 16)
        layout_positional(b, &dec);
    else
        layout_exponent(b, &dec);
}

/* ---- strings and characters ------------------------------------------ */

/* U+0080..U+009F, the C1 control characters (UTF-8: C2 80 .. C2 9F). */
static bool is_c1(uint32_t cp)
{
    return cp >= 0x80 && cp <= 0x9f;
}

static void write_string(sx_buf *b, sx_string *s)
{
    sx_buf_addc(b, '"');
    for (uint32_t i = 0; i < s->len; i++) {
        unsigned char c = (unsigned char)s->data[i];
        switch (c) {
        case '\\': sx_buf_adds(b, "\\\\"); break;
        case '"': sx_buf_adds(b, "\\\""); break;
        case '\n': sx_buf_adds(b, "\\n"); break;
        case '\t': sx_buf_adds(b, "\\t"); break;
        case '\r': sx_buf_adds(b, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                sx_buf_printf(b, "\\x%02x;", c);
            } else if (c == 0xc2 && i + 1 < s->len && is_c1((unsigned char)s->data[i + 1])) {
                sx_buf_printf(b, "\\x%02x;", (unsigned char)s->data[++i]);
            } else {
                sx_buf_addc(b, (char)c);
            }
        }
    }
    sx_buf_addc(b, '"');
}

static const char *char_name(uint32_t cp)
{
    switch (cp) {
    case 0: return "nul";
    case 7: return "alarm";
    case 8: return "backspace";
    case 9: return "tab";
    case 10: return "newline";
    case 13: return "return";
    case 27: return "escape";
    case 32: return "space";
    case 127: return "delete";
    default: return NULL;
    }
}

static void add_utf8(sx_buf *b, uint32_t cp)
{
    char out[4];
    sx_buf_add(b, out, (size_t)sx_utf8_encode(cp, out));
}

static void print_char(sx_buf *b, uint32_t cp, bool write)
{
    const char *name = char_name(cp);
    if (!write) {
        add_utf8(b, cp);
    } else if (name) {
        sx_buf_printf(b, "#\\%s", name);
    } else if (cp < 0x20 || is_c1(cp)) {
        sx_buf_printf(b, "#\\x%02x", cp);
    } else {
        sx_buf_adds(b, "#\\");
        add_utf8(b, cp);
    }
}

/* ---- values ----------------------------------------------------------- */

static void print_val(sx_buf *b, sx_val v, bool write, int depth);

static void print_list(sx_buf *b, sx_val v, bool write, int depth)
{
    sx_buf_addc(b, '(');
    for (;;) {
        print_val(b, SX_CAR(v), write, depth + 1);
        v = SX_CDR(v);
        if (!sx_is_pair(v)) break;
        sx_buf_addc(b, ' ');
    }
    if (v != SX_NIL) {
        sx_buf_adds(b, " . ");
        print_val(b, v, write, depth + 1);
    }
    sx_buf_addc(b, ')');
}

static void print_vector(sx_buf *b, sx_vector *vec, bool write, int depth)
{
    sx_buf_adds(b, "#(");
    for (uint32_t i = 0; i < vec->len; i++) {
        if (i) sx_buf_addc(b, ' ');
        print_val(b, vec->items[i], write, depth + 1);
    }
    sx_buf_addc(b, ')');
}

static void print_dict(sx_buf *b, sx_dict *d, bool write, int depth)
{
    bool first = true;
    sx_buf_addc(b, '{');
    for (uint32_t i = 0; i < d->used; i++) {
        sx_dict_entry *e = &d->entries[i];
        if (e->key == SX_UNDEF) continue;
        if (!first) sx_buf_addc(b, ' ');
        first = false;
        print_val(b, e->key, write, depth + 1);
        sx_buf_addc(b, ' ');
        print_val(b, e->val, write, depth + 1);
    }
    sx_buf_addc(b, '}');
}

static void print_error(sx_buf *b, sx_errobj *e, int depth)
{
    sx_buf_adds(b, "#<error ");
    print_val(b, e->kind, false, depth + 1);
    sx_buf_adds(b, ": ");
    print_val(b, e->message, false, depth + 1);
    sx_buf_addc(b, '>');
}

static void print_proc(sx_buf *b, sx_val v)
{
    const char *name = sx_proc_name(v);
    if (name)
        sx_buf_printf(b, "#<fn %s>", name);
    else
        sx_buf_adds(b, "#<fn>");
}

static void print_name(sx_buf *b, sx_val sym)
{
    sx_string *name = sx_str(sx_sym(sym)->name);
    sx_buf_add(b, name->data, name->len);
}

static void print_string(sx_buf *b, sx_val v, bool write)
{
    if (write)
        write_string(b, sx_str(v));
    else
        sx_buf_add(b, sx_str(v)->data, sx_str(v)->len);
}

static const char *internal_name(uint32_t type)
{
    switch (type) {
    case SX_T_ENV: return "#<env>";
    case SX_T_BOX: return "#<box>";
    case SX_T_CODE: return "#<code>";
    default: return "#<unknown>";
    }
}

static void print_obj(sx_buf *b, sx_val v, bool write, int depth)
{
    switch (sx_type_of_obj(v)) {
    case SX_T_FLOAT: sx_print_float(b, sx_float(v)); break;
    case SX_T_STRING: print_string(b, v, write); break;
    case SX_T_SYMBOL: print_name(b, v); break;
    case SX_T_KEYWORD:
        sx_buf_addc(b, ':');
        print_name(b, v);
        break;
    case SX_T_VECTOR: print_vector(b, sx_vec(v), write, depth); break;
    case SX_T_DICT: print_dict(b, sx_dictp(v), write, depth); break;
    case SX_T_PRIM:
    case SX_T_VMCLOSURE:
    case SX_T_CLOSURE: print_proc(b, v); break;
    case SX_T_ERROR: print_error(b, SX_OBJ(sx_errobj, v), depth); break;
    default: sx_buf_adds(b, internal_name(sx_type_of_obj(v)));
    }
}

static const char *imm_text(sx_val v)
{
    switch (v) {
    case SX_NIL: return "()";
    case SX_TRUE: return "#t";
    case SX_FALSE: return "#f";
    case SX_UNDEF: return "#<undefined>";
    default: return "#<unknown>";
    }
}

static void print_val(sx_buf *b, sx_val v, bool write, int depth)
{
    if (depth > MAX_DEPTH)
        sx_buf_adds(b, "...");
    else if (sx_is_fix(v))
        sx_buf_printf(b, "%lld", (long long)sx_fix(v));
    else if (sx_is_pair(v))
        print_list(b, v, write, depth);
    else if (sx_is_obj(v))
        print_obj(b, v, write, depth);
    else if (sx_is_char(v))
        print_char(b, sx_char(v), write);
    else
        sx_buf_adds(b, imm_text(v));
}

void sx_print(sx_buf *b, sx_val v, bool write)
{
    print_val(b, v, write, 0);
}

sx_val sx_to_string(sx_val v, bool write)
{
    sx_buf b;
    sx_buf_init(&b);
    sx_print(&b, v, write);
    sx_val s = sx_mkstring(b.p ? b.p : "", b.len);
    sx_buf_free(&b);
    return s;
}
