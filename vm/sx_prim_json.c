/* sx_prim_json.c: json-encode and json-decode (RFC 8259), LANGUAGE.md 6.9.
 *
 * Mapping. Decoding gives: object -> dict with string keys (a duplicate key:
 * the last value wins, at the first key's position), array -> vector,
 * string -> string, number -> integer when it has no fraction or exponent
 * and fits in 62 bits, otherwise float, true/false -> #t/#f, null -> nil.
 * Encoding takes: dict -> object (keys: strings, keywords and symbols by
 * name), vector and proper list -> array, nil -> null, string -> string,
 * keyword and symbol -> their name as a string, char -> a one-character
 * string, integer, finite float, #t/#f. Everything else is a json-error.
 *
 * Errors are of kind json-error; a decoding error's payload is the position
 * (0-based, in characters) where the input went wrong. Both directions
 * bound nesting at SX_JSON_MAX_DEPTH, so neither recursion can exhaust the C
 * stack, and a circular structure is refused (through a vector or dict it
 * reaches the depth bound; a circular list is found by sx_list_cyclic).
 *
 * Output goes to an sx_buf in the collected heap, so memory-limit applies
 * to it as to any other allocation. Input is an SX string, hence valid
 * UTF-8: the decoder copies non-ASCII bytes through unchanged.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vm/sx_core.h"

#define SX_JSON_MAX_DEPTH 1000

/* ---- errors --------------------------------------------------------------- */

static _Noreturn void json_error(sx_ctx *cx, sx_val payload, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void json_error_va(sx_buf *b, const char *fmt, va_list ap)
{
    char tmp[256];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    sx_buf_adds(b, tmp);
}

static _Noreturn void json_error(sx_ctx *cx, sx_val payload, const char *fmt, ...)
{
    sx_buf b;
    sx_buf_init(&b);
    va_list ap;
    va_start(ap, fmt);
    json_error_va(&b, fmt, ap);
    va_end(ap);
    sx_val msg = sx_mkstring(b.p ? b.p : "", b.len);
    sx_buf_free(&b);
    sx_raise(cx, sx_mkerror(sx_intern_c("json-error"), msg, payload));
}

/* ---- encoding ------------------------------------------------------------- */

static void enc_string(sx_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    sx_buf_addc(b, '"');
    size_t run = 0; /* bytes copied as they are, flushed before each escape */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[7];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\b')
            esc = "\\b";
        else if (c == '\f')
            esc = "\\f";
        else if (c < 0x20 || c == 0x7f) {
            memcpy(u, "\\u00", 4);
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            u[6] = 0;
            esc = u;
        }
        if (!esc) continue;
        sx_buf_add(b, s + run, i - run);
        sx_buf_adds(b, esc);
        run = i + 1;
    }
    sx_buf_add(b, s + run, len - run);
    sx_buf_addc(b, '"');
}

static void enc_value(sx_ctx *cx, sx_buf *b, sx_val v, int depth);

static void enc_key(sx_ctx *cx, sx_buf *b, sx_val k)
{
    if (sx_is_string(k))
        enc_string(b, sx_str(k)->data, sx_str(k)->len);
    else if (sx_is(k, SX_T_KEYWORD) || sx_is(k, SX_T_SYMBOL)) {
        sx_string *name = sx_str(sx_sym(k)->name);
        enc_string(b, name->data, name->len);
    } else
        json_error(cx, SX_NIL,
                   "json-encode: an object key must be a string, keyword or symbol, got %s",
                   sx_type_name(k));
}

static void enc_value(sx_ctx *cx, sx_buf *b, sx_val v, int depth)
{
    if (depth > SX_JSON_MAX_DEPTH)
        json_error(cx, SX_NIL,
                   "json-encode: nesting deeper than %d levels (or a circular structure)",
                   SX_JSON_MAX_DEPTH);
    if (v == SX_NIL) {
        sx_buf_adds(b, "null");
    } else if (v == SX_TRUE) {
        sx_buf_adds(b, "true");
    } else if (v == SX_FALSE) {
        sx_buf_adds(b, "false");
    } else if (sx_is_fix(v)) {
        sx_buf_printf(b, "%lld", (long long)sx_fix(v));
    } else if (sx_is_float(v)) {
        double d = sx_float(v);
        if (d != d || d - d != 0)
            json_error(cx, SX_NIL, "json-encode: %s has no JSON form",
                       d != d  ? "+nan.0"
                       : d > 0 ? "+inf.0"
                               : "-inf.0");
        sx_print_float(b, d);
    } else if (sx_is_string(v)) {
        enc_string(b, sx_str(v)->data, sx_str(v)->len);
    } else if (sx_is(v, SX_T_KEYWORD) || sx_is(v, SX_T_SYMBOL)) {
        enc_key(cx, b, v);
    } else if (sx_is_char(v)) {
        char out[4];
        enc_string(b, out, (size_t)sx_utf8_encode(sx_char(v), out));
    } else if (sx_is(v, SX_T_VECTOR)) {
        sx_vector *vec = sx_vec(v);
        sx_buf_addc(b, '[');
        for (uint32_t i = 0; i < vec->len; i++) {
            if (i) sx_buf_addc(b, ',');
            enc_value(cx, b, vec->items[i], depth + 1);
        }
        sx_buf_addc(b, ']');
    } else if (sx_is_pair(v)) {
        if (sx_list_length(v) < 0)
            json_error(cx, SX_NIL, "json-encode: not a proper list (dotted or circular)");
        sx_buf_addc(b, '[');
        for (sx_val l = v; sx_is_pair(l); l = SX_CDR(l)) {
            if (l != v) sx_buf_addc(b, ',');
            enc_value(cx, b, SX_CAR(l), depth + 1);
        }
        sx_buf_addc(b, ']');
    } else if (sx_is(v, SX_T_DICT)) {
        sx_dict *d = sx_dictp(v);
        bool first = true;
        sx_buf_addc(b, '{');
        for (uint32_t i = 0; i < d->used; i++) {
            sx_dict_entry *e = &d->entries[i];
            if (e->key == SX_UNDEF) continue;
            if (!first) sx_buf_addc(b, ',');
            first = false;
            enc_key(cx, b, e->key);
            sx_buf_addc(b, ':');
            enc_value(cx, b, e->val, depth + 1);
        }
        sx_buf_addc(b, '}');
    } else {
        json_error(cx, SX_NIL, "json-encode: no JSON form for a value of type %s", sx_type_name(v));
    }
}

static sx_val p_json_encode(sx_ctx *cx, int argc, sx_val *argv)
{
    (void)argc;
    sx_buf b;
    sx_buf_init(&b);
    enc_value(cx, &b, argv[0], 0);
    sx_val s = sx_mkstring(b.p ? b.p : "", b.len);
    sx_buf_free(&b);
    return s;
}

/* ---- decoding ------------------------------------------------------------- */

typedef struct jdec {
    sx_ctx *cx;
    const char *s;   /* the whole input */
    size_t len, pos; /* pos: byte offset */
    int depth;
} jdec;

/* The character position of byte offset off (counts UTF-8 lead bytes). */
static size_t char_pos(const jdec *j, size_t off)
{
    size_t n = 0;
    for (size_t i = 0; i < off && i < j->len; i++)
        n += ((unsigned char)j->s[i] & 0xc0) != 0x80;
    return n;
}

static _Noreturn void dec_error_at(jdec *j, size_t off, const char *what)
{
    size_t at = char_pos(j, off);
    if (off >= j->len)
        json_error(j->cx, sx_mkfix((int64_t)at), "json-decode: %s at position %zu (end of input)",
                   what, at);
    unsigned char c = (unsigned char)j->s[off];
    if (c >= 0x20 && c < 0x7f)
        json_error(j->cx, sx_mkfix((int64_t)at), "json-decode: %s at position %zu ('%c')", what, at,
                   c);
    json_error(j->cx, sx_mkfix((int64_t)at), "json-decode: %s at position %zu", what, at);
}

static _Noreturn void dec_error(jdec *j, const char *what)
{
    dec_error_at(j, j->pos, what);
}

static void skip_ws(jdec *j)
{
    while (j->pos < j->len) {
        char c = j->s[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->pos++;
    }
}

static bool literal(jdec *j, const char *word)
{
    size_t n = strlen(word);
    if (j->len - j->pos < n || memcmp(j->s + j->pos, word, n) != 0) return false;
    j->pos += n;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Four hex digits after "\u" at j->pos; returns the code unit. */
static uint32_t hex4(jdec *j)
{
    uint32_t u = 0;
    for (int i = 0; i < 4; i++) {
        int h = j->pos < j->len ? hexval(j->s[j->pos]) : -1;
        if (h < 0) dec_error(j, "bad \\u escape: expected 4 hex digits");
        u = u * 16 + (uint32_t)h;
        j->pos++;
    }
    return u;
}

/* A \uXXXX escape (j->pos after the 'u'), with a surrogate pair joined. */
static uint32_t unicode_escape(jdec *j, size_t esc_at)
{
    uint32_t u = hex4(j);
    if (u >= 0xdc00 && u <= 0xdfff) dec_error_at(j, esc_at, "lone low surrogate");
    if (u < 0xd800 || u > 0xdbff) return u;
    if (j->len - j->pos < 2 || j->s[j->pos] != '\\' || j->s[j->pos + 1] != 'u')
        dec_error_at(j, esc_at, "high surrogate not followed by a low surrogate");
    size_t low_at = j->pos;
    j->pos += 2;
    uint32_t lo = hex4(j);
    if (lo < 0xdc00 || lo > 0xdfff)
        dec_error_at(j, low_at, "high surrogate not followed by a low surrogate");
    return 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
}

/* A string; j->pos is at the opening quote. */
static sx_val dec_string(jdec *j)
{
    sx_buf b;
    sx_buf_init(&b);
    j->pos++;
    size_t run = j->pos;
    for (;;) {
        if (j->pos >= j->len) dec_error(j, "unterminated string");
        unsigned char c = (unsigned char)j->s[j->pos];
        if (c == '"') break;
        if (c < 0x20) dec_error(j, "control character in string");
        if (c != '\\') {
            j->pos++;
            continue;
        }
        sx_buf_add(&b, j->s + run, j->pos - run);
        size_t esc_at = j->pos;
        j->pos++;
        char e = j->pos < j->len ? j->s[j->pos] : 0;
        j->pos++;
        switch (e) {
        case '"': sx_buf_addc(&b, '"'); break;
        case '\\': sx_buf_addc(&b, '\\'); break;
        case '/': sx_buf_addc(&b, '/'); break;
        case 'b': sx_buf_addc(&b, '\b'); break;
        case 'f': sx_buf_addc(&b, '\f'); break;
        case 'n': sx_buf_addc(&b, '\n'); break;
        case 'r': sx_buf_addc(&b, '\r'); break;
        case 't': sx_buf_addc(&b, '\t'); break;
        case 'u': {
            char out[4];
            sx_buf_add(&b, out, (size_t)sx_utf8_encode(unicode_escape(j, esc_at), out));
            break;
        }
        default: dec_error_at(j, esc_at, "bad escape in string");
        }
        run = j->pos;
    }
    sx_buf_add(&b, j->s + run, j->pos - run);
    j->pos++; /* the closing quote */
    sx_val s = sx_mkstring(b.p ? b.p : "", b.len);
    sx_buf_free(&b);
    return s;
}

static bool is_digit(jdec *j)
{
    return j->pos < j->len && j->s[j->pos] >= '0' && j->s[j->pos] <= '9';
}

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static sx_val dec_number(jdec *j)
{
    size_t start = j->pos;
    bool integral = true;
    if (j->s[j->pos] == '-') j->pos++;
    if (!is_digit(j)) dec_error(j, "bad number");
    if (j->s[j->pos] == '0') {
        j->pos++;
        if (is_digit(j)) dec_error(j, "bad number: leading zero");
    } else
        while (is_digit(j))
            j->pos++;
    if (j->pos < j->len && j->s[j->pos] == '.') {
        integral = false;
        j->pos++;
        if (!is_digit(j)) dec_error(j, "bad number: expected a digit after '.'");
        while (is_digit(j))
            j->pos++;
    }
    if (j->pos < j->len && (j->s[j->pos] == 'e' || j->s[j->pos] == 'E')) {
        integral = false;
        j->pos++;
        if (j->pos < j->len && (j->s[j->pos] == '+' || j->s[j->pos] == '-')) j->pos++;
        if (!is_digit(j)) dec_error(j, "bad number: expected a digit in the exponent");
        while (is_digit(j))
            j->pos++;
    }
    size_t n = j->pos - start;
    char small[64];
    char *text = n < sizeof small ? small : sx_alloc_atomic(n + 1);
    memcpy(text, j->s + start, n);
    text[n] = 0;
    if (integral) {
        errno = 0;
        long long i = strtoll(text, NULL, 10);
        if (errno == 0 && i >= SX_FIX_MIN && i <= SX_FIX_MAX) return sx_mkfix(i);
    }
    return sx_mkfloat(strtod(text, NULL));
}

static sx_val dec_value(jdec *j);

static void enter(jdec *j)
{
    if (++j->depth > SX_JSON_MAX_DEPTH) dec_error(j, "nesting too deep");
}

static sx_val dec_array(jdec *j)
{
    enter(j);
    j->pos++;
    sx_val items = SX_NIL;
    size_t n = 0;
    skip_ws(j);
    if (j->pos < j->len && j->s[j->pos] == ']') {
        j->pos++;
    } else {
        for (;;) {
            items = sx_cons(dec_value(j), items);
            n++;
            skip_ws(j);
            if (j->pos < j->len && j->s[j->pos] == ',') {
                j->pos++;
                continue;
            }
            if (j->pos < j->len && j->s[j->pos] == ']') {
                j->pos++;
                break;
            }
            dec_error(j, "expected ',' or ']' in array");
        }
    }
    j->depth--;
    sx_val v = sx_mkvector(n, SX_NIL);
    for (size_t i = n; i-- > 0; items = SX_CDR(items))
        sx_vec(v)->items[i] = SX_CAR(items);
    return v;
}

static sx_val dec_object(jdec *j)
{
    enter(j);
    j->pos++;
    sx_val d = sx_mkdict(0);
    skip_ws(j);
    if (j->pos < j->len && j->s[j->pos] == '}') {
        j->pos++;
        j->depth--;
        return d;
    }
    for (;;) {
        skip_ws(j);
        if (j->pos >= j->len || j->s[j->pos] != '"')
            dec_error(j, "expected a string key in object");
        sx_val key = dec_string(j);
        skip_ws(j);
        if (j->pos >= j->len || j->s[j->pos] != ':') dec_error(j, "expected ':' after object key");
        j->pos++;
        sx_val val = dec_value(j);
        sx_dict_put(d, key, val);
        skip_ws(j);
        if (j->pos < j->len && j->s[j->pos] == ',') {
            j->pos++;
            continue;
        }
        if (j->pos < j->len && j->s[j->pos] == '}') {
            j->pos++;
            break;
        }
        dec_error(j, "expected ',' or '}' in object");
    }
    j->depth--;
    return d;
}

static sx_val dec_value(jdec *j)
{
    skip_ws(j);
    if (j->pos >= j->len) dec_error(j, "expected a value");
    char c = j->s[j->pos];
    if (c == '{') return dec_object(j);
    if (c == '[') return dec_array(j);
    if (c == '"') return dec_string(j);
    if (c == '-' || (c >= '0' && c <= '9')) return dec_number(j);
    if (literal(j, "true")) return SX_TRUE;
    if (literal(j, "false")) return SX_FALSE;
    if (literal(j, "null")) return SX_NIL;
    dec_error(j, "expected a value");
}

static sx_val p_json_decode(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_string(argv[0]), "json-decode", "string", argc, argv);
    jdec j = {cx, sx_str(argv[0])->data, sx_str(argv[0])->len, 0, 0};
    sx_val v = dec_value(&j);
    skip_ws(&j);
    if (j.pos < j.len) dec_error(&j, "unexpected text after the value");
    return v;
}

void sx__init_prims_json(void)
{
    sx_defprim("json-encode", p_json_encode, 1, 1);
    sx_defprim("json-decode", p_json_decode, 1, 1);
}
