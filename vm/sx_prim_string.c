/* sx_prim_string.c: strings, characters, symbols and keywords (SX.md 4, 9).
 *
 * Strings are immutable UTF-8; every index and length seen from SX counts
 * code points (sx_str_offset maps one to a byte offset, in O(1) for ASCII
 * strings). Byte-wise comparison of UTF-8 orders strings by code point, and
 * byte-wise search cannot match inside a character, so string=?, string<?,
 * string-contains? and string-split work on bytes directly.
 *
 * Case mapping and the character classes use small tables of our own
 * (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic for case; a few more
 * scripts for char-alphabetic?) so that results never depend on the C
 * locale. Case mapping is one character to one character.
 */
#include "vm/sx_core.h"

/* ---- small helpers ------------------------------------------------------ */

/* Reverses a freshly built list in place. */
static sx_val nreverse(sx_val l)
{
    sx_val r = SX_NIL;
    while (sx_is_pair(l)) {
        sx_val next = SX_CDR(l);
        SX_CDR(l) = r;
        r = l;
        l = next;
    }
    return r;
}

static sx_val buf_to_string(sx_buf *b)
{
    sx_val s = sx_mkstring(b->p ? b->p : "", b->len);
    sx_buf_free(b);
    return s;
}

static void add_char(sx_buf *b, uint32_t cp)
{
    char out[4];
    sx_buf_add(b, out, (size_t)sx_utf8_encode(cp, out));
}

static _Noreturn void index_error(sx_ctx *cx, const char *name, int64_t k, uint32_t len)
{
    sx_error(cx, "index-error", "%s: index %lld out of range for length %u", name, (long long)k,
             len);
}

/* argv[i] as a character index in 0..limit (inclusive). */
static size_t index_arg(sx_ctx *cx, int argc, sx_val *argv, int i, uint32_t limit, const char *name,
                        const char *expected)
{
    SX_CHECK(cx, sx_is_fix(argv[i]), name, expected, argc, argv);
    int64_t k = sx_fix(argv[i]);
    if (k < 0 || k > (int64_t)limit) index_error(cx, name, k, sx_str_nchars(sx_str(argv[0])));
    return (size_t)k;
}

static void check_strings(sx_ctx *cx, const char *name, const char *expected, int argc,
                          sx_val *argv)
{
    for (int i = 0; i < argc; i++)
        SX_CHECK(cx, sx_is_string(argv[i]), name, expected, argc, argv);
}

/* ---- character tables --------------------------------------------------- */

typedef struct range {
    uint32_t lo, hi;
} range;

static bool in_ranges(uint32_t c, const range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi) return true;
    return false;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Upper case lo..hi maps to lower case lo+delta..hi+delta. */
typedef struct case_shift {
    uint32_t lo, hi;
    int32_t delta;
} case_shift;

static const case_shift shifts[] = {
    {0x41, 0x5a, 32},   {0xc0, 0xd6, 32},   {0xd8, 0xde, 32},   {0x178, 0x178, -121},
    {0x386, 0x386, 38}, {0x388, 0x38a, 37}, {0x38c, 0x38c, 64}, {0x38e, 0x38f, 63},
    {0x391, 0x3a1, 32}, {0x3a3, 0x3ab, 32}, {0x400, 0x40f, 80}, {0x410, 0x42f, 32},
};

/* Adjacent pairs: upper case first, lower case right after it. */
static const range case_pairs[] = {
    {0x100, 0x12f}, {0x132, 0x137}, {0x139, 0x148}, {0x14a, 0x177}, {0x179, 0x17e},
    {0x460, 0x481}, {0x48a, 0x4bf}, {0x4c1, 0x4ce}, {0x4d0, 0x52f},
};

/* Mappings that do not reverse (ı -> I but I -> i). */
typedef struct case_single {
    uint32_t from, to;
} case_single;

static const case_single only_up[] = {
    {0xb5, 0x39c},
    {0x131, 0x49},
    {0x17f, 0x53},
    {0x3c2, 0x3a3},
};
static const case_single only_down[] = {{0x130, 0x69}};

static uint32_t pair_case(uint32_t c, bool up)
{
    for (size_t i = 0; i < COUNT(case_pairs); i++) {
        if (c < case_pairs[i].lo || c > case_pairs[i].hi) continue;
        bool is_upper = ((c - case_pairs[i].lo) & 1) == 0;
        if (up && !is_upper) return c - 1;
        if (!up && is_upper) return c + 1;
        return c;
    }
    return c;
}

static uint32_t char_upcase(uint32_t c)
{
    if (c < 0x80) return c >= 'a' && c <= 'z' ? c - 32 : c;
    for (size_t i = 0; i < COUNT(shifts); i++)
        if (c >= shifts[i].lo + shifts[i].delta && c <= shifts[i].hi + shifts[i].delta)
            return c - shifts[i].delta;
    for (size_t i = 0; i < COUNT(only_up); i++)
        if (c == only_up[i].from) return only_up[i].to;
    return pair_case(c, true);
}

static uint32_t char_downcase(uint32_t c)
{
    if (c < 0x80) return c >= 'A' && c <= 'Z' ? c + 32 : c;
    for (size_t i = 0; i < COUNT(shifts); i++)
        if (c >= shifts[i].lo && c <= shifts[i].hi) return c + shifts[i].delta;
    for (size_t i = 0; i < COUNT(only_down); i++)
        if (c == only_down[i].from) return only_down[i].to;
    return pair_case(c, false);
}

static const range alpha_ranges[] = {
    {0xaa, 0xaa},     {0xb5, 0xb5},     {0xba, 0xba},     {0xc0, 0xd6},     {0xd8, 0xf6},
    {0xf8, 0x2c1},    {0x370, 0x373},   {0x376, 0x377},   {0x37b, 0x37d},   {0x386, 0x386},
    {0x388, 0x3ff},   {0x400, 0x481},   {0x48a, 0x52f},   {0x531, 0x556},   {0x561, 0x587},
    {0x5d0, 0x5ea},   {0x620, 0x64a},   {0x904, 0x939},   {0xe01, 0xe30},   {0x10a0, 0x10ff},
    {0x1e00, 0x1fbc}, {0x3041, 0x3096}, {0x30a1, 0x30fa}, {0x3400, 0x4dbf}, {0x4e00, 0x9fff},
    {0xac00, 0xd7a3}, {0xf900, 0xfaff}, {0xff21, 0xff3a}, {0xff41, 0xff5a},
};

static const range digit_ranges[] = {
    {0x30, 0x39}, {0x660, 0x669}, {0x6f0, 0x6f9}, {0x966, 0x96f}, {0xff10, 0xff19},
};

static const range space_ranges[] = {
    {0x09, 0x0d},     {0x20, 0x20},     {0x85, 0x85},     {0xa0, 0xa0},     {0x1680, 0x1680},
    {0x2000, 0x200a}, {0x2028, 0x2029}, {0x202f, 0x202f}, {0x205f, 0x205f}, {0x3000, 0x3000},
};

static bool char_alphabetic(uint32_t c)
{
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return in_ranges(c, alpha_ranges, COUNT(alpha_ranges));
}

static bool char_whitespace(uint32_t c)
{
    return in_ranges(c, space_ranges, COUNT(space_ranges));
}

/* ---- basic string procedures ------------------------------------------- */

static sx_val p_stringp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is_string(argv[0]));
}

static sx_val p_string_length(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string-length", "string", argc, argv);
    return sx_mkfix(sx_str_nchars(sx_str(argv[0])));
}

static sx_val p_string_ref(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_string(argv[0]), "string-ref", "string integer", argc, argv);
    sx_string *s = sx_str(argv[0]);
    SX_CHECK(cx, sx_is_fix(argv[1]), "string-ref", "string integer", argc, argv);
    int64_t k = sx_fix(argv[1]);
    uint32_t nchars = sx_str_nchars(s);
    if (k < 0 || k >= (int64_t)nchars) index_error(cx, "string-ref", k, nchars);
    uint32_t cp;
    sx_utf8_decode(s->data + sx_str_offset(s, (size_t)k), &cp);
    return sx_mkchar(cp);
}

static sx_val p_substring(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 3 ? "string integer integer" : "string integer";
    SX_CHECK(cx, sx_is_string(argv[0]), "substring", expected, argc, argv);
    sx_string *s = sx_str(argv[0]);
    uint32_t nchars = sx_str_nchars(s);
    size_t start = index_arg(cx, argc, argv, 1, nchars, "substring", expected);
    size_t end = argc == 3 ? index_arg(cx, argc, argv, 2, nchars, "substring", expected) : nchars;
    if (start > end)
        sx_error(cx, "index-error", "substring: start %zu is after end %zu", start, end);
    size_t from = sx_str_offset(s, start), to = sx_str_offset(s, end);
    return sx_mkstring(s->data + from, to - from);
}

/* The strings of argv (nil skipped) in one new string, allocated once. */
static sx_val concat_strings(int argc, sx_val *argv)
{
    size_t len = 0;
    for (int i = 0; i < argc; i++)
        if (argv[i] != SX_NIL) len += sx_str(argv[i])->len;
    sx_string *out = sx_string_alloc(len);
    char *at = out->data;
    for (int i = 0; i < argc; i++) {
        if (argv[i] == SX_NIL) continue;
        memcpy(at, sx_str(argv[i])->data, sx_str(argv[i])->len);
        at += sx_str(argv[i])->len;
    }
    return sx_string_done(out);
}

static sx_val p_string_append(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string-append", "string …", argc, argv);
    return concat_strings(argc, argv);
}

/* Display forms concatenated; nil contributes nothing. A string displays
 * as its bytes, so strings alone need no printing. */
static sx_val p_str(sx_ctx *cx, int argc, sx_val *argv)
{
    int i = 0;
    while (i < argc && (argv[i] == SX_NIL || sx_is_string(argv[i])))
        i++;
    if (i == argc) return concat_strings(argc, argv);
    sx_buf b;
    sx_buf_init(&b);
    for (i = 0; i < argc; i++)
        if (argv[i] != SX_NIL) sx_print(&b, argv[i], false);
    return buf_to_string(&b);
}

static int string_cmp(sx_val a, sx_val b)
{
    sx_string *x = sx_str(a), *y = sx_str(b);
    int c = memcmp(x->data, y->data, x->len < y->len ? x->len : y->len);
    if (c != 0) return c < 0 ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

static sx_val string_chain(sx_ctx *cx, int argc, sx_val *argv, int want, const char *name)
{
    check_strings(cx, name, "string …", argc, argv);
    for (int i = 0; i + 1 < argc; i++)
        if (string_cmp(argv[i], argv[i + 1]) != want) return SX_FALSE;
    return SX_TRUE;
}

static sx_val p_string_eq(sx_ctx *cx, int argc, sx_val *argv)
{
    return string_chain(cx, argc, argv, 0, "string=?");
}

static sx_val p_string_lt(sx_ctx *cx, int argc, sx_val *argv)
{
    return string_chain(cx, argc, argv, -1, "string<?");
}

static sx_val p_string_gt(sx_ctx *cx, int argc, sx_val *argv)
{
    return string_chain(cx, argc, argv, 1, "string>?");
}

static sx_val map_case(sx_ctx *cx, int argc, sx_val *argv, uint32_t (*f)(uint32_t),
                       const char *name)
{
    sx_buf b;
    check_strings(cx, name, "string", argc, argv);
    sx_string *s = sx_str(argv[0]);
    sx_buf_init(&b);
    for (size_t off = 0; off < s->len;) {
        uint32_t cp;
        off += (size_t)sx_utf8_decode(s->data + off, &cp);
        add_char(&b, f(cp));
    }
    return buf_to_string(&b);
}

static sx_val p_string_upcase(sx_ctx *cx, int argc, sx_val *argv)
{
    return map_case(cx, argc, argv, char_upcase, "string-upcase");
}

static sx_val p_string_downcase(sx_ctx *cx, int argc, sx_val *argv)
{
    return map_case(cx, argc, argv, char_downcase, "string-downcase");
}

static sx_val p_string_to_list(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string->list", "string", argc, argv);
    sx_string *s = sx_str(argv[0]);
    sx_val l = SX_NIL;
    for (size_t off = 0; off < s->len;) {
        uint32_t cp;
        off += (size_t)sx_utf8_decode(s->data + off, &cp);
        l = sx_cons(sx_mkchar(cp), l);
    }
    return nreverse(l);
}

static sx_val p_list_to_string(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_buf b;
    sx_val l = argv[0];
    SX_CHECK(cx, sx_list_length(l) >= 0, "list->string", "list of char", argc, argv);
    for (; sx_is_pair(l); l = SX_CDR(l))
        SX_CHECK(cx, sx_is_char(SX_CAR(l)), "list->string", "list of char", argc, argv);
    SX_CHECK(cx, l == SX_NIL, "list->string", "list of char", argc, argv);
    sx_buf_init(&b);
    for (l = argv[0]; sx_is_pair(l); l = SX_CDR(l))
        add_char(&b, sx_char(SX_CAR(l)));
    return buf_to_string(&b);
}

/* ---- split join search -------------------------------------------------- */

static sx_val split_on(sx_string *s, const char *sep, size_t seplen)
{
    sx_val l = SX_NIL;
    size_t pos = 0;
    for (;;) {
        const char *hit = memmem(s->data + pos, s->len - pos, sep, seplen);
        size_t end = hit ? (size_t)(hit - s->data) : s->len;
        l = sx_cons(sx_mkstring(s->data + pos, end - pos), l);
        if (!hit) return nreverse(l);
        pos = end + seplen;
    }
}

static sx_val split_chars(sx_string *s)
{
    sx_val l = SX_NIL;
    for (size_t off = 0; off < s->len;) {
        uint32_t cp;
        int n = sx_utf8_decode(s->data + off, &cp);
        l = sx_cons(sx_mkstring(s->data + off, (size_t)n), l);
        off += (size_t)n;
    }
    return nreverse(l);
}

/* Fields separated by runs of whitespace; none at either end. */
static sx_val split_words(sx_string *s)
{
    sx_val l = SX_NIL;
    size_t off = 0, start = 0;
    bool in_word = false;
    while (off < s->len) {
        uint32_t cp;
        int n = sx_utf8_decode(s->data + off, &cp);
        bool space = char_whitespace(cp);
        if (space && in_word) l = sx_cons(sx_mkstring(s->data + start, off - start), l);
        if (!space && !in_word) start = off;
        in_word = !space;
        off += (size_t)n;
    }
    if (in_word) l = sx_cons(sx_mkstring(s->data + start, off - start), l);
    return nreverse(l);
}

static sx_val p_string_split(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 2 ? "string string-or-char" : "string";
    SX_CHECK(cx, sx_is_string(argv[0]), "string-split", expected, argc, argv);
    sx_string *s = sx_str(argv[0]);
    if (argc == 1) return split_words(s);
    if (sx_is_char(argv[1])) {
        char sep[4];
        return split_on(s, sep, (size_t)sx_utf8_encode(sx_char(argv[1]), sep));
    }
    SX_CHECK(cx, sx_is_string(argv[1]), "string-split", expected, argc, argv);
    if (sx_str(argv[1])->len == 0) return split_chars(s);
    return split_on(s, sx_str(argv[1])->data, sx_str(argv[1])->len);
}

static sx_val p_string_join(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 2 ? "list string" : "list";
    sx_val l = argv[0];
    SX_CHECK(cx, sx_list_length(l) >= 0, "string-join", expected, argc, argv);
    for (; sx_is_pair(l); l = SX_CDR(l))
        SX_CHECK(cx, sx_is_string(SX_CAR(l)), "string-join", expected, argc, argv);
    SX_CHECK(cx, l == SX_NIL, "string-join", expected, argc, argv);
    SX_CHECK(cx, argc == 1 || sx_is_string(argv[1]), "string-join", expected, argc, argv);
    const char *sep = argc == 2 ? sx_str(argv[1])->data : " ";
    size_t seplen = argc == 2 ? sx_str(argv[1])->len : 1;
    sx_buf b;
    sx_buf_init(&b);
    for (l = argv[0]; sx_is_pair(l); l = SX_CDR(l)) {
        if (l != argv[0]) sx_buf_add(&b, sep, seplen);
        sx_buf_add(&b, sx_str(SX_CAR(l))->data, sx_str(SX_CAR(l))->len);
    }
    return buf_to_string(&b);
}

/* (string-index s char-or-pred): the first matching index, or #f. */
static sx_val p_string_index(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val want = argv[1];
    SX_CHECK(cx, sx_is_string(argv[0]) && (sx_is_char(want) || sx_is_procedure(want)),
             "string-index", "string char-or-fn", argc, argv);
    sx_string *s = sx_str(argv[0]);
    int64_t i = 0;
    for (size_t off = 0; off < s->len; i++) {
        uint32_t cp;
        off += (size_t)sx_utf8_decode(s->data + off, &cp);
        sx_val c = sx_mkchar(cp);
        if (sx_is_char(want) ? c == want : sx_truthy(cx->apply(cx, want, 1, &c)))
            return sx_mkfix(i);
    }
    return SX_FALSE;
}

static sx_val p_string_contains(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string-contains?", "string string", argc, argv);
    sx_string *s = sx_str(argv[0]), *sub = sx_str(argv[1]);
    return sx_bool(sub->len == 0 || memmem(s->data, s->len, sub->data, sub->len) != NULL);
}

static sx_val p_string_prefix(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string-prefix?", "string string", argc, argv);
    sx_string *s = sx_str(argv[0]), *p = sx_str(argv[1]);
    return sx_bool(p->len <= s->len && memcmp(s->data, p->data, p->len) == 0);
}

static sx_val p_string_suffix(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string-suffix?", "string string", argc, argv);
    sx_string *s = sx_str(argv[0]), *p = sx_str(argv[1]);
    return sx_bool(p->len <= s->len && memcmp(s->data + s->len - p->len, p->data, p->len) == 0);
}

/* ---- characters ----------------------------------------------------------- */

static sx_val p_charp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is_char(argv[0]));
}

static sx_val p_char_to_integer(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_char(argv[0]), "char->integer", "char", argc, argv);
    return sx_mkfix(sx_char(argv[0]));
}

static sx_val p_integer_to_char(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_fix(argv[0]), "integer->char", "integer", argc, argv);
    int64_t k = sx_fix(argv[0]);
    if (k < 0 || k > 0x10ffff || (k >= 0xd800 && k <= 0xdfff))
        sx_error(cx, "type-error", "integer->char: %lld is not a Unicode scalar value",
                 (long long)k);
    return sx_mkchar((uint32_t)k);
}

static sx_val char_chain(sx_ctx *cx, int argc, sx_val *argv, bool strict_less, const char *name)
{
    for (int i = 0; i < argc; i++)
        SX_CHECK(cx, sx_is_char(argv[i]), name, "char …", argc, argv);
    for (int i = 0; i + 1 < argc; i++) {
        uint32_t a = sx_char(argv[i]), b = sx_char(argv[i + 1]);
        if (strict_less ? !(a < b) : a != b) return SX_FALSE;
    }
    return SX_TRUE;
}

static sx_val p_char_eq(sx_ctx *cx, int argc, sx_val *argv)
{
    return char_chain(cx, argc, argv, false, "char=?");
}

static sx_val p_char_lt(sx_ctx *cx, int argc, sx_val *argv)
{
    return char_chain(cx, argc, argv, true, "char<?");
}

static sx_val p_char_alphabetic(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_char(argv[0]), "char-alphabetic?", "char", argc, argv);
    return sx_bool(char_alphabetic(sx_char(argv[0])));
}

static sx_val p_char_numeric(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_char(argv[0]), "char-numeric?", "char", argc, argv);
    return sx_bool(in_ranges(sx_char(argv[0]), digit_ranges, COUNT(digit_ranges)));
}

static sx_val p_char_whitespace(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is_char(argv[0]), "char-whitespace?", "char", argc, argv);
    return sx_bool(char_whitespace(sx_char(argv[0])));
}

/* ---- symbols and keywords ------------------------------------------------ */

static sx_val p_symbolp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is(argv[0], SX_T_SYMBOL));
}

static sx_val p_keywordp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is(argv[0], SX_T_KEYWORD));
}

static sx_val p_string_to_symbol(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string->symbol", "string", argc, argv);
    return sx_intern(sx_str(argv[0])->data, sx_str(argv[0])->len);
}

/* Names are immutable strings, so they are returned as they are. */
static sx_val p_symbol_to_string(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is(argv[0], SX_T_SYMBOL), "symbol->string", "symbol", argc, argv);
    return sx_sym(argv[0])->name;
}

static sx_val p_string_to_keyword(sx_ctx *cx, int argc, sx_val *argv)
{
    check_strings(cx, "string->keyword", "string", argc, argv);
    return sx_keyword(sx_str(argv[0])->data, sx_str(argv[0])->len);
}

static sx_val p_keyword_to_string(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, sx_is(argv[0], SX_T_KEYWORD), "keyword->string", "keyword", argc, argv);
    return sx_sym(argv[0])->name;
}

static sx_val p_gensym(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_gensym();
}

void sx__init_prims_string(void)
{
    sx_defprim("string?", p_stringp, 1, 1);
    sx_defprim("string-length", p_string_length, 1, 1);
    sx_defprim("string-ref", p_string_ref, 2, 2);
    sx_defprim("substring", p_substring, 2, 3);
    sx_defprim("string-append", p_string_append, 0, -1);
    sx_defprim("str", p_str, 0, -1);
    sx_defprim("string=?", p_string_eq, 1, -1);
    sx_defprim("string<?", p_string_lt, 1, -1);
    sx_defprim("string>?", p_string_gt, 1, -1);
    sx_defprim("string-upcase", p_string_upcase, 1, 1);
    sx_defprim("string-downcase", p_string_downcase, 1, 1);
    sx_defprim("string->list", p_string_to_list, 1, 1);
    sx_defprim("list->string", p_list_to_string, 1, 1);
    sx_defprim("string-split", p_string_split, 1, 2);
    sx_defprim("string-join", p_string_join, 1, 2);
    sx_defprim("string-index", p_string_index, 2, 2);
    sx_defprim("string-contains?", p_string_contains, 2, 2);
    sx_defprim("string-prefix?", p_string_prefix, 2, 2);
    sx_defprim("string-suffix?", p_string_suffix, 2, 2);
    sx_defprim("char?", p_charp, 1, 1);
    sx_defprim("char->integer", p_char_to_integer, 1, 1);
    sx_defprim("integer->char", p_integer_to_char, 1, 1);
    sx_defprim("char=?", p_char_eq, 1, -1);
    sx_defprim("char<?", p_char_lt, 1, -1);
    sx_defprim("char-alphabetic?", p_char_alphabetic, 1, 1);
    sx_defprim("char-numeric?", p_char_numeric, 1, 1);
    sx_defprim("char-whitespace?", p_char_whitespace, 1, 1);
    sx_defprim("symbol?", p_symbolp, 1, 1);
    sx_defprim("keyword?", p_keywordp, 1, 1);
    sx_defprim("string->symbol", p_string_to_symbol, 1, 1);
    sx_defprim("symbol->string", p_symbol_to_string, 1, 1);
    sx_defprim("string->keyword", p_string_to_keyword, 1, 1);
    sx_defprim("keyword->string", p_keyword_to_string, 1, 1);
    sx_defprim("gensym", p_gensym, 0, 0);
}
