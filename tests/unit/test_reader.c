/* test_reader.c: the reader's unit tests: what each kind of text reads as
 * (checked through the printer's write form) and the read-errors, with
 * their LINE:COL positions, for malformed input.
 *
 * Every input is read from a copy that ends right before an inaccessible
 * page, so a read past the end of the buffer is a crash, not a pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/sx_core.h"
#include "vm/sx_read.h"
#include "vm/vm.h"

static int failures;

/* Appends p[0..n) to out, a NUL byte as "<NUL>"; truncates at cap. */
static void render(char *out, size_t cap, size_t *at, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *s = p[i] ? &p[i] : "<NUL>";
        size_t k = p[i] ? 1 : 5;
        if (*at + k >= cap) break;
        memcpy(out + *at, s, k);
        *at += k;
    }
    out[*at] = 0;
}

/* Reads src[0..len); on success returns the write forms of all forms joined
 * by spaces, on error "ERROR: kind: message" (NUL bytes shown as <NUL>). */
static const char *read_str(const char *src, size_t len)
{
    static char out[4096];
    size_t at = 0;
    out[0] = 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t span = len == 0 ? page : (len + page - 1) / page * page;
    char *map = mmap(NULL, span + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map + span, page, PROT_NONE) != 0) {
        perror("test_reader: guard page");
        exit(2);
    }
    char *buf = map + span - len; /* the input's last byte is the page's last */
    memcpy(buf, src, len);
    sx_jmp j;
    sx_ctx *cx = sx_cur;
    if (sx_try(cx, &j) == 0) {
        sx_val forms = sx_read_all(cx, buf, len);
        sx_try_end(cx, &j);
        sx_buf b;
        sx_buf_init(&b);
        for (sx_val l = forms; sx_is_pair(l); l = SX_CDR(l)) {
            if (l != forms) sx_buf_addc(&b, ' ');
            sx_print(&b, SX_CAR(l), true);
        }
        render(out, sizeof out, &at, b.p ? b.p : "", b.len);
        sx_buf_free(&b);
    } else {
        sx_try_end(cx, &j);
        sx_val e = cx->raised;
        const char *kind = sx_sym_name(SX_OBJ(sx_errobj, e)->kind);
        sx_string *msg = sx_str(SX_OBJ(sx_errobj, e)->message);
        render(out, sizeof out, &at, "ERROR: ", 7);
        render(out, sizeof out, &at, kind, strlen(kind));
        render(out, sizeof out, &at, ": ", 2);
        render(out, sizeof out, &at, msg->data, msg->len);
    }
    munmap(map, span + page);
    return out;
}

/* got is want exactly; or, when want starts "ERROR", got starts with want
 * (error messages are checked up to what they say is wrong). */
static bool matches(const char *got, const char *want)
{
    if (strncmp(want, "ERROR", 5) == 0) return strncmp(got, want, strlen(want)) == 0;
    return strcmp(got, want) == 0;
}

#define EXPECT_READ(src, want)                                                                     \
    do {                                                                                           \
        const char *got_ = read_str((src), strlen(src));                                           \
        if (strcmp(got_, (want)) != 0) {                                                           \
            fprintf(stderr, "%s:%d: read %s\n  want: %s\n  got:  %s\n", __FILE__, __LINE__, #src,  \
                    (want), got_);                                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

#define EXPECT_ERROR(src, prefix)                                                                  \
    do {                                                                                           \
        const char *got_ = read_str((src), strlen(src));                                           \
        if (strncmp(got_, "ERROR: read-error: " prefix, strlen("ERROR: read-error: " prefix))) {   \
            fprintf(stderr, "%s:%d: read %s\n  want: read-error %s...\n  got:  %s\n", __FILE__,    \
                    __LINE__, #src, prefix, got_);                                                 \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void test_atoms(void)
{
    EXPECT_READ("42 -7 0 -0", "42 -7 0 0");
    EXPECT_READ("1.5 -0.25 1e3 2.0 .5 5.", "1.5 -0.25 1000.0 2.0 0.5 5.0");
    EXPECT_READ("#x1F #b101 #o17 #d10 #e1.0 #i3", "31 5 15 10 1 3.0");
    EXPECT_READ("+inf.0 -inf.0 +nan.0", "+inf.0 -inf.0 +nan.0");
    EXPECT_READ("2305843009213693951 -2305843009213693952",
                "2305843009213693951 -2305843009213693952");
    EXPECT_READ("foo host/blog--edges-block set-car! <=? ->x + - ...",
                "foo host/blog--edges-block set-car! <=? ->x + - ...");
    EXPECT_READ(":class :kv/get", ":class :kv/get");
    EXPECT_READ("#t #f true false #true #false nil ()", "#t #f #t #f #t #f () ()");
    EXPECT_READ("#\\a #\\space #\\newline #\\x41 #\\λ", "#\\a #\\space #\\newline #\\A #\\λ");
}

static void test_strings(void)
{
    EXPECT_READ("\"a\\n\\t\\\\\\\"\\u00e9\"", "\"a\\n\\t\\\\\\\"é\"");
    EXPECT_READ("\"\\x41;b\"", "\"Ab\"");
    EXPECT_READ("\"multi\nline\"", "\"multi\\nline\"");
    EXPECT_ERROR("\"abc", "1:1:");
    EXPECT_ERROR("\"bad \\q escape\"", "1:6:");
    EXPECT_ERROR("\"\\xZZ;\"", "1:2:");
}

static void test_compound(void)
{
    EXPECT_READ("(a b . c) (1 (2 3) #(4 5))", "(a b . c) (1 (2 3) #(4 5))");
    EXPECT_READ("'x `(a ,b ,@c)", "(quote x) (quasiquote (a (unquote b) (unquote-splicing c)))");
    EXPECT_READ("; comment\n1 #;(ignored form) 2 #| block #| nested |# |# 3", "1 2 3");
    EXPECT_READ("(1(+ 1 1)3)", "(1 (+ 1 1) 3)");
}

static void test_errors(void)
{
    EXPECT_ERROR("(1 2", "1:1:");
    EXPECT_ERROR("(1 2))", "1:6:");
    EXPECT_ERROR("\n\n  )", "3:3:");
    EXPECT_ERROR("[1 2]", "1:1:");
    EXPECT_ERROR("(a . )", "1:4:");
    EXPECT_ERROR("(. a)", "1:2:");
    EXPECT_ERROR("(a . b c)", "1:4:");
    EXPECT_ERROR("2305843009213693952", "1:1:");
    EXPECT_ERROR("-2305843009213693953", "1:1:");
    EXPECT_ERROR("1+ ", "1:1:");
    EXPECT_ERROR("1/2", "1:1:");
    EXPECT_ERROR("12abc", "1:1:");
    EXPECT_ERROR("#q", "1:1:");
    EXPECT_ERROR("{:a}", "1:1:");
    EXPECT_ERROR("#| never closed", "1:1:");
    EXPECT_ERROR("λλ (", "1:4:"); /* columns count code points */
    EXPECT_ERROR("\xff", "1:1:");
    EXPECT_ERROR("(a \xc3)", "1:4:");
    EXPECT_ERROR("#\\nosuchname", "1:1:");
    EXPECT_ERROR("'", "1:1:");
}

/* What one byte alone reads as (see vm/LANGUAGE.md, 2.1 and 2.2). */
static const char *single_byte(int c, char *tmp)
{
    if (c >= 0x80) return "ERROR: read-error: 1:1: invalid UTF-8";
    switch (c) {
    case ' ':
    case '\t':
    case '\n':
    case '\r':
    case '\f':
    case '\v':
    case ';': return "";
    case '(': return "ERROR: read-error: 1:1: unbalanced '(': missing ')'";
    case '{': return "ERROR: read-error: 1:1: unbalanced '{': missing '}'";
    case ')': return "ERROR: read-error: 1:1: unexpected ')'";
    case '}': return "ERROR: read-error: 1:1: unexpected '}'";
    case '[': return "ERROR: read-error: 1:1: '[' is not SX syntax";
    case ']': return "ERROR: read-error: 1:1: ']' is not SX syntax";
    case '"': return "ERROR: read-error: 1:1: unterminated string";
    case '\'': return "ERROR: read-error: 1:1: quote without a datum";
    case '`': return "ERROR: read-error: 1:1: quasiquote without a datum";
    case ',': return "ERROR: read-error: 1:1: unquote without a datum";
    case '#': return "ERROR: read-error: 1:1: unknown # syntax";
    case '.': return "ERROR: read-error: 1:1: unexpected '.'";
    case 0: return "<NUL>";
    }
    /* a digit reads as that integer, anything else as a one-byte symbol;
     * both write as the byte itself (symbols are written raw) */
    tmp[0] = (char)c;
    tmp[1] = 0;
    return tmp;
}

/* A NUL byte is neither whitespace nor a delimiter: it is an ordinary
 * constituent of a token (a symbol, or a number that is then malformed), an
 * ordinary character in a string or comment, and never the end of the
 * input. want[i] is what src reads as with a NUL inserted before its byte i
 * (i = strlen(src): at the end). */
static const struct {
    const char *src;
    const char *want[20];
} nul_cases[] = {
    {"(a \"s\" 1) ; c",
     {
         "<NUL> (a \"s\" 1)",
         "(<NUL>a \"s\" 1)",
         "(a<NUL> \"s\" 1)",
         "(a <NUL> \"s\" 1)",
         "(a \"\\x00;s\" 1)",
         "(a \"s\\x00;\" 1)",
         "(a \"s\" <NUL> 1)",
         "(a \"s\" <NUL>1)",
         "ERROR: read-error: 1:8: bad number",
         "(a \"s\" 1) <NUL>",
         "(a \"s\" 1) <NUL>",
         "(a \"s\" 1)",
         "(a \"s\" 1)",
         "(a \"s\" 1)",
     }},
    {"#\\a #t 12 :k nil",
     {
         "<NUL>#\\a #t 12 :k ()",
         "ERROR: read-error: 1:1: unknown # syntax",
         "ERROR: read-error: 1:1: unknown character name",
         "ERROR: read-error: 1:1: unknown character name",
         "#\\a <NUL>#t 12 :k ()",
         "ERROR: read-error: 1:5: unknown # syntax",
         "ERROR: read-error: 1:5: unknown # syntax",
         "#\\a #t <NUL>12 :k ()",
         "ERROR: read-error: 1:8: bad number",
         "ERROR: read-error: 1:8: bad number",
         "#\\a #t 12 <NUL>:k ()",
         "#\\a #t 12 :<NUL>k ()",
         "#\\a #t 12 :k<NUL> ()",
         "#\\a #t 12 :k <NUL>nil",
         "#\\a #t 12 :k n<NUL>il",
         "#\\a #t 12 :k ni<NUL>l",
         "#\\a #t 12 :k nil<NUL>",
     }},
    {"#(1)#|x|#'q",
     {
         "<NUL># (1) (quote q)",
         "ERROR: read-error: 1:1: unknown # syntax",
         "#(<NUL>1) (quote q)",
         "ERROR: read-error: 1:3: bad number",
         "#(1) <NUL>#|x|# (quote q)",
         "ERROR: read-error: 1:5: unknown # syntax",
         "#(1) (quote q)",
         "#(1) (quote q)",
         "ERROR: read-error: 1:5: unterminated block comment",
         "#(1) <NUL> (quote q)",
         "#(1) (quote <NUL>q)",
         "#(1) (quote q<NUL>)",
     }},
    {"\xce\xbb\n#e1", /* λ, a newline, #e1 */
     {
         "<NUL>\xce\xbb 1",
         "ERROR: read-error: 1:1: invalid UTF-8", /* inside λ's two bytes */
         "\xce\xbb<NUL> 1",
         "\xce\xbb <NUL>#e1",
         "ERROR: read-error: 2:1: unknown # syntax",
         "ERROR: read-error: 2:1: bad number",
         "ERROR: read-error: 2:1: bad number",
     }},
};

static void test_depth_and_bytes(void)
{
    /* deep nesting is an error, not a crash */
    size_t n = 100000;
    char *deep = malloc(n + 1);
    memset(deep, '(', n);
    deep[n] = 0;
    const char *got = read_str(deep, n);
    if (!matches(got, "ERROR: read-error: 1:1001: nesting too deep")) {
        fprintf(stderr, "deep nesting: got %.80s\n", got);
        failures++;
    }
    free(deep);
    /* every byte value alone: exactly what the language reference says */
    for (int c = 0; c < 256; c++) {
        char b[1] = {(char)c}, tmp[2];
        const char *want = single_byte(c, tmp);
        got = read_str(b, 1);
        if (!matches(got, want)) {
            fprintf(stderr, "byte 0x%02x alone\n  want: %s\n  got:  %s\n", c, want, got);
            failures++;
        }
    }
    /* a NUL byte at every position of each source */
    EXPECT_READ("", "");
    for (size_t k = 0; k < sizeof nul_cases / sizeof nul_cases[0]; k++) {
        const char *src = nul_cases[k].src;
        size_t len = strlen(src);
        for (size_t i = 0; i <= len; i++) {
            char in[64];
            memcpy(in, src, i);
            in[i] = 0;
            memcpy(in + i + 1, src + i, len - i);
            const char *want = nul_cases[k].want[i];
            got = read_str(in, len + 1);
            if (!want || !matches(got, want)) {
                char shown[128];
                size_t at = 0;
                render(shown, sizeof shown, &at, in, len + 1);
                fprintf(stderr, "NUL byte at %zu: read %s\n  want: %s\n  got:  %s\n", i, shown,
                        want ? want : "(missing from the table)", got);
                failures++;
            }
        }
    }
    /* a NUL character written with #\ is the character NUL */
    got = read_str("#\\\0 #\\nul \"\\0\"", 14);
    if (strcmp(got, "#\\nul #\\nul \"\\x00;\"") != 0) {
        fprintf(stderr, "#\\<NUL>: got %s\n", got);
        failures++;
    }
}

int main(void)
{
    sx_vm_init(NULL);
    test_atoms();
    test_strings();
    test_compound();
    test_errors();
    test_depth_and_bytes();
    if (failures) {
        fprintf(stderr, "%d reader test(s) failed\n", failures);
        return 1;
    }
    puts("reader: all tests passed");
    return 0;
}
