/* fuzz_reader.c: libFuzzer target for the SX reader (SX.md 1 and 9).
 *
 * Each input is read, never evaluated, through the vm's public test entry
 * points (sx_vm_read_only, sx_vm_read_write). Built with ASan and UBSan by
 * run_fuzz.sh; the input buffer libFuzzer hands over is exactly `size`
 * bytes, so any read past it is reported. The properties checked:
 *
 *   - reading never crashes, hangs or touches memory outside the input;
 *   - a failure is a read-error whose message starts "LINE:COL: " with
 *     LINE and COL >= 1, LINE not past the input's last line and COL at
 *     most one past that line's length;
 *   - both entry points agree on success or failure and on the message;
 *   - on success, the write form of what was read reads back without an
 *     error and prints the same text again (a printer/reader fixpoint).
 *     Floats need no exception: they print as the shortest text that reads
 *     back as the same double, and every NaN prints +nan.0.
 *
 * A broken property prints what was seen and calls abort(), which libFuzzer
 * records as a crash with the input saved.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Noreturn void fail_with(const char *what, const sx_failure *f)
{
    fprintf(stderr, "fuzz_reader: %s\n", what);
    if (f) fprintf(stderr, "  kind=%s message=%s\n", f->kind, f->message);
    abort();
}

/* Parses "N:" at *p, advancing past it. Returns N, or 0 when malformed. */
static long parse_pos(const char **p)
{
    long n = 0;
    const char *s = *p;
    while (*s >= '0' && *s <= '9' && n < 100000000)
        n = n * 10 + (*s++ - '0');
    if (s == *p || *s != ':') return 0;
    *p = s + 1;
    return n;
}

/* Bytes of line `line` (1-based) in buf, or -1 if there is no such line. */
static long line_length(const char *buf, size_t len, long line)
{
    size_t i = 0;
    for (long l = 1; l < line; l++) {
        const char *nl = memchr(buf + i, '\n', len - i);
        if (!nl) return -1;
        i = (size_t)(nl - buf) + 1;
    }
    const char *nl = memchr(buf + i, '\n', len - i);
    return (long)((nl ? (size_t)(nl - buf) : len) - i);
}

static void check_failure(const char *buf, size_t len, const sx_failure *f)
{
    if (strcmp(f->kind, "read-error") != 0) fail_with("failure is not a read-error", f);
    const char *p = f->message;
    long line = parse_pos(&p);
    long col = line ? parse_pos(&p) : 0;
    if (!line || !col || *p != ' ') fail_with("message does not start with LINE:COL: ", f);
    long ll = line_length(buf, len, line);
    if (ll < 0) fail_with("LINE is past the end of the input", f);
    /* columns count code points, so bytes + 1 bounds them */
    if (col > ll + 1) fail_with("COL is past the end of its line", f);
}

/* Reads text back (from an exact-size copy, so ASan sees overreads) and
 * checks it prints the same. */
static void check_round_trip(const char *text, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) abort();
    memcpy(copy, text, len);
    char *again;
    size_t again_len;
    sx_failure f;
    if (sx_vm_read_write(copy, len, &again, &again_len, &f)) {
        fprintf(stderr, "printed text:\n%.*s\n", (int)len, text);
        fail_with("printed forms do not read back", &f);
    }
    if (again_len != len || memcmp(again, text, len) != 0) {
        fprintf(stderr, "printed:\n%.*s\nreprinted:\n%.*s\n", (int)len, text, (int)again_len,
                again);
        fail_with("printing what was read back gives different text", NULL);
    }
    free(again);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (sx_vm_init(NULL) != 0) fail_with("sx_vm_init failed", NULL);
        ready = 1;
    }
    const char *buf = (const char *)data;
    sx_failure f1, f2;
    int rc1 = sx_vm_read_only(buf, size, &f1);
    char *text;
    size_t text_len;
    int rc2 = sx_vm_read_write(buf, size, &text, &text_len, &f2);
    if (rc1 != rc2) fail_with("sx_vm_read_only and sx_vm_read_write disagree", rc1 ? &f1 : &f2);
    if (rc1) {
        if (strcmp(f1.message, f2.message) != 0) fail_with("two reads fail differently", &f2);
        check_failure(buf, size, &f1);
        return 0;
    }
    check_round_trip(text, text_len);
    free(text);
    return 0;
}
