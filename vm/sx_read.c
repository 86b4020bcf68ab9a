/* sx_read.c: the reader. Turns a byte buffer into SX data.
 *
 * Total by construction: every byte string gives a list of forms or a
 * read-error "LINE:COL: what" (1-based; columns count code points). The
 * whole input is checked for valid UTF-8 first, so the scanner below may
 * decode without re-checking; every access is bounded by the buffer's end.
 * Nesting is bounded (SX_READ_MAX_DEPTH) so the recursive descent cannot
 * exhaust the C stack.
 *
 * A dict literal {k v ...} reads as a vector whose header aux is
 * SX_VEC_DICT_FORM: its keys and values are forms, evaluated by the
 * compiler each time the literal is evaluated.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "vm/sx_core.h"
#include "vm/sx_read.h"

#define SX_READ_MAX_DEPTH 1000

typedef struct reader {
    const char *p, *end, *start;
    int line;
    const char *line_start;
    int depth;
    sx_ctx *cx;
} reader;

static long column_of(reader *r, const char *at)
{
    long n = sx_utf8_count(r->line_start, (size_t)(at - r->line_start));
    return (n < 0 ? (long)(at - r->line_start) : n) + 1;
}

static _Noreturn void read_error_at(reader *r, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static _Noreturn void read_error_at(reader *r, const char *at, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* recompute line start for `at` (it may precede r->line_start) */
    int line = 1;
    const char *ls = r->start;
    for (const char *q = r->start; q < at; q++)
        if (*q == '\n') {
            line++;
            ls = q + 1;
        }
    r->line_start = ls;
    sx_error(r->cx, "read-error", "%d:%ld: %s", line, column_of(r, at), msg);
}

static bool is_delim(int c)
{
    return c == '(' || c == ')' || c == '[' || c == ']' || c == '{' || c == '}' || c == '"' ||
           c == ';' || c == '\'' || c == '`' || c == ',' || c == ' ' || c == '\t' || c == '\n' ||
           c == '\r' || c == '\f' || c == '\v';
}

static int peek(reader *r)
{
    return r->p < r->end ? (unsigned char)*r->p : -1;
}

static void skip_block_comment(reader *r, const char *open)
{
    int depth = 1;
    while (r->p < r->end) {
        if (r->p + 1 < r->end && r->p[0] == '|' && r->p[1] == '#') {
            r->p += 2;
            if (--depth == 0) return;
        } else if (r->p + 1 < r->end && r->p[0] == '#' && r->p[1] == '|') {
            r->p += 2;
            depth++;
        } else {
            r->p++;
        }
    }
    read_error_at(r, open, "unterminated block comment");
}

static sx_val read_form(reader *r);

/* Skips whitespace and comments (including #; datum comments). */
static void skip_space(reader *r)
{
    for (;;) {
        int c = peek(r);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            r->p++;
        } else if (c == ';') {
            while (r->p < r->end && *r->p != '\n')
                r->p++;
        } else if (c == '#' && r->p + 1 < r->end && r->p[1] == '|') {
            const char *open = r->p;
            r->p += 2;
            skip_block_comment(r, open);
        } else if (c == '#' && r->p + 1 < r->end && r->p[1] == ';') {
            /* #;#;#;... recurses here before read_form counts depth */
            const char *at = r->p;
            if (++r->depth > SX_READ_MAX_DEPTH) read_error_at(r, at, "nesting too deep");
            r->p += 2;
            skip_space(r);
            if (r->p >= r->end || *r->p == ')' || *r->p == '}')
                read_error_at(r, at, "#; without a datum to comment out");
            (void)read_form(r);
            r->depth--;
        } else {
            return;
        }
    }
}

/* ---- atoms -------------------------------------------------------------- */

static const char *token_end(reader *r)
{
    const char *q = r->p;
    while (q < r->end && !is_delim((unsigned char)*q))
        q++;
    return q;
}

static int digit_value(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
    return 99;
}

sx_val sx_parse_number(sx_ctx *cx, const char *s, size_t len, int radix, bool *overflow)
{
    char buf[128];
    int exactness = 0; /* 'e', 'i' or 0 */
    *overflow = false;
    while (len >= 2 && s[0] == '#') {
        char c = (char)(s[1] | 0x20);
        if (c == 'x')
            radix = 16;
        else if (c == 'b')
            radix = 2;
        else if (c == 'o')
            radix = 8;
        else if (c == 'd')
            radix = 10;
        else if (c == 'e' || c == 'i') {
            if (exactness) return SX_FALSE;
            exactness = c;
        } else
            return SX_FALSE;
        s += 2;
        len -= 2;
    }
    if (len == 0 || len >= sizeof buf) return SX_FALSE;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (!strcmp(buf, "+inf.0") || !strcmp(buf, "-inf.0") || !strcmp(buf, "+nan.0") ||
        !strcmp(buf, "-nan.0")) {
        if (exactness == 'e') return SX_FALSE;
        double d = buf[1] == 'i' ? INFINITY : NAN;
        return sx_mkfloat(buf[0] == '-' && buf[1] == 'i' ? -d : d);
    }
    /* integer? */
    size_t i = 0;
    bool neg = false;
    if (buf[0] == '+' || buf[0] == '-') neg = buf[i++] == '-';
    if (i < len) {
        size_t j = i;
        unsigned __int128 acc = 0;
        bool big = false;
        for (; j < len && digit_value((unsigned char)buf[j]) < radix; j++) {
            acc = acc * (unsigned)radix + (unsigned)digit_value((unsigned char)buf[j]);
            if (acc > ((unsigned __int128)1 << 70)) big = true;
        }
        if (j == len) {
            if (exactness == 'i') return sx_mkfloat(neg ? -(double)acc : (double)acc);
            if (big || (!neg && acc > (unsigned __int128)SX_FIX_MAX) ||
                (neg && acc > (unsigned __int128)SX_FIX_MAX + 1)) {
                *overflow = true;
                return SX_FALSE;
            }
            return sx_mkfix(neg ? -(int64_t)acc : (int64_t)acc);
        }
    }
    if (radix != 10) return SX_FALSE;
    /* decimal: [sign] digits [. digits] [e [sign] digits], at least one digit */
    size_t k = i;
    int ndig = 0;
    while (k < len && buf[k] >= '0' && buf[k] <= '9')
        k++, ndig++;
    if (k < len && buf[k] == '.') {
        k++;
        while (k < len && buf[k] >= '0' && buf[k] <= '9')
            k++, ndig++;
    }
    if (ndig == 0) return SX_FALSE;
    if (k < len && (buf[k] == 'e' || buf[k] == 'E')) {
        k++;
        if (k < len && (buf[k] == '+' || buf[k] == '-')) k++;
        int edig = 0;
        while (k < len && buf[k] >= '0' && buf[k] <= '9')
            k++, edig++;
        if (!edig) return SX_FALSE;
    }
    if (k != len) return SX_FALSE;
    double d = strtod(buf, NULL);
    if (exactness == 'e') {
        if (d != floor(d) || isinf(d)) return SX_FALSE;
        if (d < -2305843009213693952.0 || d >= 2305843009213693952.0) {
            *overflow = true;
            return SX_FALSE;
        }
        return sx_mkfix((int64_t)d);
    }
    return sx_mkfloat(d);
}

static bool starts_like_number(const char *s, const char *e)
{
    if (s < e && (*s == '+' || *s == '-')) s++;
    if (s < e && *s == '.') s++;
    return s < e && *s >= '0' && *s <= '9';
}

static sx_val read_atom(reader *r)
{
    const char *s = r->p, *e = token_end(r);
    size_t len = (size_t)(e - s);
    r->p = e;
    if (starts_like_number(s, e)) {
        bool ovf;
        sx_val n = sx_parse_number(r->cx, s, len, 10, &ovf);
        if (ovf) read_error_at(r, s, "integer literal out of range: %.*s", (int)len, s);
        if (n == SX_FALSE) read_error_at(r, s, "bad number: %.*s", (int)len, s);
        return n;
    }
    if ((len == 6 && (!memcmp(s, "+inf.0", 6) || !memcmp(s, "-inf.0", 6) ||
                      !memcmp(s, "+nan.0", 6) || !memcmp(s, "-nan.0", 6)))) {
        bool ovf;
        return sx_parse_number(r->cx, s, len, 10, &ovf);
    }
    if (len == 3 && !memcmp(s, "nil", 3)) return SX_NIL;
    if (len == 4 && !memcmp(s, "true", 4)) return SX_TRUE;
    if (len == 5 && !memcmp(s, "false", 5)) return SX_FALSE;
    if (s[0] == ':' && len > 1) return sx_keyword(s + 1, len - 1);
    if (len == 1 && s[0] == '.') read_error_at(r, s, "unexpected '.'");
    for (const char *q = s; q < e; q++)
        if (*q == '#' && q == s) read_error_at(r, s, "bad syntax: %.*s", (int)len, s);
    return sx_intern(s, len);
}

static const struct {
    const char *name;
    uint32_t cp;
} char_names[] = {
    {"space", ' '},   {"newline", '\n'}, {"tab", '\t'},   {"nul", 0},     {"null", 0},
    {"alarm", 7},     {"backspace", 8},  {"delete", 127}, {"escape", 27}, {"return", '\r'},
    {"linefeed", 10}, {"altmode", 27},   {"rubout", 127}, {"page", 12},
};

static sx_val read_char(reader *r, const char *at)
{
    /* r->p is after "#\" */
    if (r->p >= r->end) read_error_at(r, at, "end of input in character");
    uint32_t cp;
    int n = sx_utf8_decode(r->p, &cp);
    const char *first_end = r->p + n;
    const char *e = first_end;
    while (e < r->end && !is_delim((unsigned char)*e))
        e++;
    if (e == first_end) {
        r->p = first_end;
        return sx_mkchar(cp);
    }
    size_t len = (size_t)(e - r->p);
    for (size_t i = 0; i < sizeof char_names / sizeof char_names[0]; i++)
        if (strlen(char_names[i].name) == len && !memcmp(char_names[i].name, r->p, len)) {
            r->p = e;
            return sx_mkchar(char_names[i].cp);
        }
    if ((r->p[0] == 'x' || r->p[0] == 'U' || r->p[0] == 'u') && len > 1 && len <= 9) {
        uint32_t v = 0;
        size_t i = 1;
        for (; i < len && digit_value((unsigned char)r->p[i]) < 16; i++)
            v = v * 16 + (uint32_t)digit_value((unsigned char)r->p[i]);
        if (i == len && v <= 0x10ffff && !(v >= 0xd800 && v <= 0xdfff)) {
            r->p = e;
            return sx_mkchar(v);
        }
    }
    read_error_at(r, at, "unknown character name: #\\%.*s", (int)len, r->p);
}

static sx_val read_string(reader *r)
{
    const char *open = r->p++;
    sx_buf b;
    sx_buf_init(&b);
    while (r->p < r->end && *r->p != '"') {
        char c = *r->p;
        if (c == '\n') {
            r->line++;
            r->line_start = r->p + 1;
        }
        if (c != '\\') {
            sx_buf_addc(&b, c);
            r->p++;
            continue;
        }
        const char *esc = r->p++;
        if (r->p >= r->end) break;
        char e = *r->p++;
        uint32_t cp;
        switch (e) {
        case 'n': sx_buf_addc(&b, '\n'); break;
        case 't': sx_buf_addc(&b, '\t'); break;
        case 'r': sx_buf_addc(&b, '\r'); break;
        case 'a': sx_buf_addc(&b, 7); break;
        case 'b': sx_buf_addc(&b, 8); break;
        case '0': sx_buf_addc(&b, 0); break;
        case '\\': sx_buf_addc(&b, '\\'); break;
        case '"': sx_buf_addc(&b, '"'); break;
        case 'x':
        case 'u': {
            cp = 0;
            int nd = 0, maxd = e == 'u' ? 4 : 6;
            while (r->p < r->end && nd < maxd && digit_value((unsigned char)*r->p) < 16) {
                cp = cp * 16 + (uint32_t)digit_value((unsigned char)*r->p++);
                nd++;
            }
            if (e == 'x') {
                if (r->p >= r->end || *r->p != ';' || nd == 0) {
                    sx_buf_free(&b);
                    read_error_at(r, esc, "bad \\x escape (expected \\xHH;)");
                }
                r->p++;
            } else if (nd != 4) {
                sx_buf_free(&b);
                read_error_at(r, esc, "bad \\u escape (expected 4 hex digits)");
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
                sx_buf_free(&b);
                read_error_at(r, esc, "escape is not a Unicode scalar value");
            }
            char out[4];
            sx_buf_add(&b, out, (size_t)sx_utf8_encode(cp, out));
            break;
        }
        case '\n':
        case ' ':
        case '\t': {
            /* R7RS line continuation: \ <intraline ws>* newline <intraline ws>* */
            const char *q = r->p - 1;
            while (q < r->end && (*q == ' ' || *q == '\t'))
                q++;
            if (q < r->end && *q == '\n') {
                r->line++;
                q++;
                r->line_start = q;
                while (q < r->end && (*q == ' ' || *q == '\t'))
                    q++;
                r->p = q;
                break;
            }
            sx_buf_free(&b);
            read_error_at(r, esc, "bad escape in string");
        }
        default: sx_buf_free(&b); read_error_at(r, esc, "bad escape in string: \\%c", e);
        }
    }
    if (r->p >= r->end) {
        sx_buf_free(&b);
        read_error_at(r, open, "unterminated string");
    }
    r->p++;
    sx_val s = sx_mkstring(b.p ? b.p : "", b.len);
    sx_buf_free(&b);
    return s;
}

/* ---- compound forms ------------------------------------------------------- */

static sx_val read_seq(reader *r, char close, const char *open, bool allow_dot)
{
    sx_val head = SX_NIL, tail = SX_NIL;
    for (;;) {
        skip_space(r);
        if (r->p >= r->end) read_error_at(r, open, "unbalanced '%c': missing '%c'", *open, close);
        char c = *r->p;
        if (c == close) {
            r->p++;
            return head;
        }
        if (c == ')' || c == '}' || c == ']')
            read_error_at(r, r->p, "unexpected '%c' (expected '%c')", c, close);
        if (allow_dot && c == '.' && r->p + 1 <= r->end &&
            (r->p + 1 == r->end || is_delim((unsigned char)r->p[1]))) {
            const char *dot = r->p;
            if (head == SX_NIL) read_error_at(r, dot, "'.' at the start of a list");
            r->p++;
            skip_space(r);
            if (r->p >= r->end || *r->p == close) read_error_at(r, dot, "nothing after '.'");
            sx_val last = read_form(r);
            skip_space(r);
            if (r->p >= r->end || *r->p != close)
                read_error_at(r, dot, "more than one form after '.'");
            r->p++;
            SX_CDR(tail) = last;
            return head;
        }
        sx_val x = read_form(r);
        sx_val cell = sx_cons(x, SX_NIL);
        if (head == SX_NIL)
            head = cell;
        else
            SX_CDR(tail) = cell;
        tail = cell;
    }
}

static sx_val list_to_vector(sx_val l, uint32_t aux)
{
    long n = sx_list_length(l);
    sx_val v = sx_mkvector((size_t)n, SX_NIL);
    sx_vec(v)->h.aux = aux;
    for (long i = 0; i < n; i++, l = SX_CDR(l))
        sx_vec(v)->items[i] = SX_CAR(l);
    return v;
}

static sx_val read_form(reader *r)
{
    skip_space(r);
    const char *at = r->p;
    if (r->p >= r->end) read_error_at(r, at, "unexpected end of input");
    if (++r->depth > SX_READ_MAX_DEPTH) read_error_at(r, at, "nesting too deep");
    sx_val v;
    char c = *r->p;
    switch (c) {
    case '(':
        r->p++;
        v = read_seq(r, ')', at, true);
        break;
    case '{': {
        r->p++;
        sx_val l = read_seq(r, '}', at, false);
        if (sx_list_length(l) % 2) read_error_at(r, at, "dict literal with an odd number of forms");
        v = list_to_vector(l, SX_VEC_DICT_FORM);
        break;
    }
    case ')':
    case '}': read_error_at(r, at, "unexpected '%c'", c);
    case '[':
    case ']': read_error_at(r, at, "'%c' is not SX syntax", c);
    case '"': v = read_string(r); break;
    case '\'':
    case '`':
    case ',': {
        const char *name = "quote";
        r->p++;
        if (c == '`')
            name = "quasiquote";
        else if (c == ',') {
            name = "unquote";
            if (peek(r) == '@') {
                r->p++;
                name = "unquote-splicing";
            }
        }
        skip_space(r);
        if (r->p >= r->end || *r->p == ')' || *r->p == '}')
            read_error_at(r, at, "%s without a datum", name);
        v = sx_list(2, sx_intern_c(name), read_form(r));
        break;
    }
    case '#': {
        int n = r->p + 1 < r->end ? (unsigned char)r->p[1] : -1;
        if (n == '(') {
            r->p += 2;
            v = list_to_vector(read_seq(r, ')', at, false), 0);
        } else if (n == '\\') {
            r->p += 2;
            v = read_char(r, at);
        } else {
            const char *e = token_end(r);
            size_t len = (size_t)(e - r->p);
            if ((len == 2 && r->p[1] == 't') || (len == 5 && !memcmp(r->p, "#true", 5))) {
                v = SX_TRUE;
            } else if ((len == 2 && r->p[1] == 'f') || (len == 6 && !memcmp(r->p, "#false", 6))) {
                v = SX_FALSE;
            } else if (len >= 2 && r->p[1] != '\0' && strchr("xXbBoOdDeEiI", r->p[1])) {
                bool ovf;
                v = sx_parse_number(r->cx, r->p, len, 10, &ovf);
                if (ovf) read_error_at(r, at, "integer literal out of range: %.*s", (int)len, r->p);
                if (v == SX_FALSE) read_error_at(r, at, "bad number: %.*s", (int)len, r->p);
            } else {
                read_error_at(r, at, "unknown # syntax: %.*s", (int)(len > 10 ? 10 : len), r->p);
            }
            r->p = e;
        }
        break;
    }
    default: v = read_atom(r);
    }
    r->depth--;
    return v;
}

static void check_utf8(reader *r)
{
    const unsigned char *p = (const unsigned char *)r->start, *end = (const unsigned char *)r->end;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t n = *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;
        if ((size_t)(end - p) < n || sx_utf8_count((const char *)p, n) != 1 || *p >= 0xf8 ||
            (*p & 0xc0) == 0x80)
            read_error_at(r, (const char *)p, "invalid UTF-8");
        p += n;
    }
}

sx_val sx_read_all(sx_ctx *cx, const char *buf, size_t len)
{
    reader r = {buf, buf + len, buf, 1, buf, 0, cx};
    check_utf8(&r);
    sx_val head = SX_NIL, tail = SX_NIL;
    for (;;) {
        skip_space(&r);
        if (r.p >= r.end) return head;
        sx_val cell = sx_cons(read_form(&r), SX_NIL);
        if (head == SX_NIL)
            head = cell;
        else
            SX_CDR(tail) = cell;
        tail = cell;
    }
}
