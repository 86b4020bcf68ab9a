/* test_reader.c: the reader's unit tests: what each kind of text reads as
 * (checked through the printer's write form) and the read-errors, with
 * their LINE:COL positions, for malformed input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/sx_core.h"
#include "vm/sx_read.h"
#include "vm/vm.h"

static int failures;

/* Reads src; on success returns the write forms of all forms joined by
 * spaces, on error "ERROR: message". */
static const char *read_str(const char *src, size_t len)
{
    static char out[4096];
    sx_jmp j;
    sx_ctx *cx = sx_cur;
    if (sx_try(cx, &j) == 0) {
        sx_val forms = sx_read_all(cx, src, len);
        sx_try_end(cx, &j);
        sx_buf b;
        sx_buf_init(&b);
        for (sx_val l = forms; sx_is_pair(l); l = SX_CDR(l)) {
            if (l != forms) sx_buf_addc(&b, ' ');
            sx_print(&b, SX_CAR(l), true);
        }
        snprintf(out, sizeof out, "%.*s", (int)b.len, b.p ? b.p : "");
        sx_buf_free(&b);
        return out;
    }
    sx_try_end(cx, &j);
    sx_val e = cx->raised;
    const char *kind = sx_sym_name(SX_OBJ(sx_errobj, e)->kind);
    snprintf(out, sizeof out, "ERROR: %s: %s", kind, sx_str(SX_OBJ(sx_errobj, e)->message)->data);
    return out;
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

static void test_depth_and_bytes(void)
{
    /* deep nesting is an error, not a crash */
    size_t n = 100000;
    char *deep = malloc(n + 1);
    memset(deep, '(', n);
    deep[n] = 0;
    const char *got = read_str(deep, n);
    if (strncmp(got, "ERROR: read-error:", 18) != 0) {
        fprintf(stderr, "deep nesting: got %.80s\n", got);
        failures++;
    }
    free(deep);
    /* every byte value alone gives a value or a read-error */
    for (int c = 0; c < 256; c++) {
        char b[1] = {(char)c};
        (void)read_str(b, 1);
    }
    /* embedded NUL bytes do not end the input early */
    EXPECT_READ("", "");
    const char with_nul[] = {'1', ' ', 0, ' ', '2'};
    got = read_str(with_nul, sizeof with_nul);
    if (strncmp(got, "ERROR", 5) == 0 && strstr(got, "1:3:") == NULL) {
        fprintf(stderr, "NUL byte: %s\n", got);
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
