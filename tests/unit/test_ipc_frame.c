/* test_ipc_frame.c: the frame codec of ipc/ipc.c.
 *
 * Round trips of every frame type, then every way a frame can be malformed:
 * each must give its specific error, never a crash or a read outside the
 * buffer. Decoded buffers are exact-size heap copies so that ASan builds
 * catch any read past the end.
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

static ipc_frame frame; /* large: keep it off the stack */

/* An exact-size heap copy of buf[0..len), so ASan sees any overread. */
static char *dup_exact(const char *buf, size_t len)
{
    char *copy = malloc(len ? len : 1);

    CHECK(copy != NULL);
    memcpy(copy, buf, len);
    return copy;
}

/* Decodes a copy of buf[0..len); the fields of f are not to be read after. */
static int decode_copy(const char *buf, size_t len, ipc_frame *f)
{
    char *copy = dup_exact(buf, len);
    int rc = ipc_decode(copy, len, f);

    free(copy);
    return rc;
}

static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (8 * i));
}

static void put_u16(char *p, uint16_t v)
{
    p[0] = (char)v;
    p[1] = (char)(v >> 8);
}

static ipc_field fld(const char *s)
{
    ipc_field f = {s, (uint32_t)strlen(s)};
    return f;
}

/* Encodes a small REQUEST used by the malformed-frame tests. */
static char *sample(size_t *len)
{
    ipc_field f[5] = {fld("GET"), fld("/x"), fld("a=1"), fld(""), fld("host")};
    char *buf;

    CHECK_EQ(ipc_encode(IPC_REQUEST, 42, f, 5, &buf, len), 0);
    return buf;
}

static void test_round_trip(void)
{
    static const struct {
        int type;
        int n;
        const char *fields[8];
    } cases[] = {
        {IPC_READY, 4, {"3", "1234", "jit", "abc123"}},
        {IPC_REQUEST, 6, {"POST", "/kv", "k=v", "body\0bytes", "content-type", "text/plain"}},
        {IPC_RESPONSE, 4, {"200", "hello", "x-a", "b"}},
        {IPC_ERROR, 3, {"500", "type-error", "car: not a pair"}},
        {IPC_JIT_FAULT, 3, {"fib", "arity-error", "expected 1"}},
        {IPC_BLACKLIST, 2, {"fib", "c0ffee"}},
        {IPC_SHUTDOWN, 0, {0}},
    };

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        ipc_field in[8];
        uint64_t id = 0x0102030405060708ull + c;
        size_t len;
        char *buf, *copy;

        for (int i = 0; i < cases[c].n; i++)
            in[i] = fld(cases[c].fields[i]);
        if (cases[c].type == IPC_REQUEST) in[3].len = 10; /* a body with a NUL inside */
        CHECK_EQ(ipc_encode(cases[c].type, id, in, cases[c].n, &buf, &len), 0);
        CHECK(len >= IPC_HEADER_SIZE);
        copy = dup_exact(buf, len);
        free(buf);
        buf = copy;
        CHECK_EQ(ipc_decode(buf, len, &frame), 0);
        CHECK_EQ(frame.type, cases[c].type);
        CHECK(frame.id == id);
        CHECK_EQ(frame.nfields, cases[c].n);
        for (int i = 0; i < cases[c].n; i++) {
            CHECK_EQ(frame.fields[i].len, in[i].len);
            CHECK(memcmp(frame.fields[i].p, in[i].p, in[i].len) == 0);
        }
        free(buf);
    }
}

static void test_max_fields(void)
{
    static ipc_field in[IPC_MAX_FIELDS + 1];
    size_t len;
    char *buf;

    for (int i = 0; i <= IPC_MAX_FIELDS; i++)
        in[i] = fld(i % 2 ? "x" : "");
    CHECK_EQ(ipc_encode(IPC_RESPONSE, 1, in, IPC_MAX_FIELDS, &buf, &len), 0);
    CHECK_EQ(ipc_decode(buf, len, &frame), 0);
    CHECK_EQ(frame.nfields, IPC_MAX_FIELDS);
    free(buf);
    CHECK_EQ(ipc_encode(IPC_RESPONSE, 1, in, IPC_MAX_FIELDS + 1, &buf, &len), IPC_EFIELDS);
    CHECK_EQ(ipc_encode(IPC_RESPONSE, 1, in, -1, &buf, &len), IPC_EFIELDS);
}

static void test_encode_errors(void)
{
    ipc_field big = {"", IPC_MAX_FRAME};
    size_t len;
    char *buf;

    CHECK_EQ(ipc_encode(0, 1, NULL, 0, &buf, &len), IPC_ETYPE);
    CHECK_EQ(ipc_encode(IPC_TYPE_LAST + 1, 1, NULL, 0, &buf, &len), IPC_ETYPE);
    /* the length is checked before the (too short) bytes are touched */
    CHECK_EQ(ipc_encode(IPC_RESPONSE, 1, &big, 1, &buf, &len), IPC_ETOOBIG);
}

static void test_truncated(void)
{
    size_t len;
    char *buf = sample(&len);

    for (size_t n = 0; n < len; n++) {
        int rc = decode_copy(buf, n, &frame);

        CHECK(rc != 0);
        CHECK_EQ(frame.nfields, 0);
        CHECK(rc == IPC_ESHORT || rc == IPC_EMAGIC);
    }
    CHECK_EQ(decode_copy(buf, len, &frame), 0);
    free(buf);
}

static void test_oversized(void)
{
    size_t len;
    char *buf = sample(&len);

    put_u32(buf + 16, IPC_MAX_FRAME - IPC_HEADER_SIZE + 1);
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ETOOBIG);
    put_u32(buf + 16, UINT32_MAX);
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ETOOBIG);
    free(buf);
}

static void test_field_past_end(void)
{
    size_t len;
    char *buf = sample(&len);

    /* the first field's length, 3 ("GET"), made to run past the end */
    put_u32(buf + IPC_HEADER_SIZE, (uint32_t)len);
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ESHORT);
    put_u32(buf + IPC_HEADER_SIZE, UINT32_MAX);
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ETOOBIG);
    /* the payload length says less than the fields need */
    put_u32(buf + IPC_HEADER_SIZE, 3);
    put_u32(buf + 16, 10);
    CHECK_EQ(decode_copy(buf, IPC_HEADER_SIZE + 10, &frame), IPC_ESHORT);
    free(buf);
}

static void test_bad_header(void)
{
    size_t len;
    char *buf = sample(&len);

    buf[0] = 'X';
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_EMAGIC);
    CHECK_EQ(decode_copy(buf, 4, &frame), IPC_EMAGIC);
    buf[0] = 'S';
    buf[4] = IPC_VERSION + 1;
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_EVERSION);
    buf[4] = IPC_VERSION;
    buf[5] = 0;
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ETYPE);
    buf[5] = 99;
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ETYPE);
    buf[5] = IPC_REQUEST;
    put_u16(buf + 6, IPC_MAX_FIELDS + 1);
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_EFIELDS);
    put_u16(buf + 6, 6); /* one more field than the payload holds */
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ESHORT);
    put_u16(buf + 6, 4); /* one field fewer: the last one is left over */
    CHECK_EQ(decode_copy(buf, len, &frame), IPC_ETRAILING);
    put_u16(buf + 6, 5);
    CHECK_EQ(decode_copy(buf, len, &frame), 0);
    free(buf);
}

static void test_trailing(void)
{
    size_t len;
    char *buf = sample(&len), *more = malloc(len + 3);

    CHECK(more != NULL);
    memcpy(more, buf, len);
    memcpy(more + len, "xyz", 3);
    CHECK_EQ(decode_copy(more, len + 3, &frame), IPC_ETRAILING);
    /* payload length covering the extra bytes, which no field claims */
    put_u32(more + 16, (uint32_t)(len + 3 - IPC_HEADER_SIZE));
    CHECK_EQ(decode_copy(more, len + 3, &frame), IPC_ETRAILING);
    free(more);
    free(buf);
}

/* xorshift64*: deterministic, so a failure can be replayed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void test_random(void)
{
    size_t slen;
    char *good = sample(&slen);

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rng() % 96);
        char *buf = malloc(len ? len : 1);
        int rc;

        CHECK(buf != NULL);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)rng();
        /* half the time start from a valid header so the field parser runs */
        if (iter % 2 && len >= IPC_HEADER_SIZE) {
            memcpy(buf, good, IPC_HEADER_SIZE);
            put_u16(buf + 6, (uint16_t)(rng() % 8));
            if (iter % 4 == 1) put_u32(buf + 16, (uint32_t)(len - IPC_HEADER_SIZE));
        }
        rc = ipc_decode(buf, len, &frame);
        if (rc == 0) {
            size_t sum = IPC_HEADER_SIZE;

            for (int i = 0; i < frame.nfields; i++) {
                CHECK(frame.fields[i].p >= buf &&
                      frame.fields[i].p + frame.fields[i].len <= buf + len);
                sum += 4 + frame.fields[i].len;
            }
            CHECK_EQ(sum, len);
        } else {
            CHECK(rc <= IPC_ESHORT && rc >= IPC_ETRAILING);
        }
        free(buf);
    }
    free(good);
}

static void test_fields(void)
{
    ipc_field in[6] = {
        fld("123"), fld("-9223372036854775808"), fld("9223372036854775808"), fld("12a"), fld(""),
        fld("-")};
    char small[4];
    long long v = 7;
    size_t len;
    char *buf;

    CHECK_EQ(ipc_encode(IPC_READY, 0, in, 6, &buf, &len), 0);
    CHECK_EQ(ipc_decode(buf, len, &frame), 0);
    CHECK_EQ(ipc_field_int(&frame, 0, &v), 0);
    CHECK_EQ(v, 123);
    CHECK_EQ(ipc_field_int(&frame, 1, &v), 0);
    CHECK(v == LLONG_MIN);
    v = 7;
    CHECK_EQ(ipc_field_int(&frame, 2, &v), -1);
    CHECK_EQ(ipc_field_int(&frame, 3, &v), -1);
    CHECK_EQ(ipc_field_int(&frame, 4, &v), -1);
    CHECK_EQ(ipc_field_int(&frame, 5, &v), -1);
    CHECK_EQ(ipc_field_int(&frame, 6, &v), -1);
    CHECK_EQ(ipc_field_int(&frame, -1, &v), -1);
    CHECK_EQ(v, 7);
    CHECK(strcmp(ipc_field_str(&frame, 0, small, sizeof(small)), "123") == 0);
    CHECK(strcmp(ipc_field_str(&frame, 1, small, sizeof(small)), "-92") == 0);
    CHECK(strcmp(ipc_field_str(&frame, 9, small, sizeof(small)), "") == 0);
    free(buf);
}

static void test_strerror(void)
{
    for (int e = IPC_ECLOSED; e <= IPC_ESHORT; e++)
        CHECK(strcmp(ipc_strerror(e), "unknown error") != 0);
    CHECK(strcmp(ipc_strerror(-ENOMEM), strerror(ENOMEM)) == 0);
    CHECK(strcmp(ipc_strerror(12345), "unknown error") == 0);
}

/* Log lines: nothing from an app or a client can end a line. */
static void test_escape_line(void)
{
    char out[64];
    static const char in[] = "a\nsxpool: forged\r\t\\\x01\x7f\xc3\xa9";
    size_t n = ipc_escape_line(out, sizeof out, in, sizeof in - 1);
    CHECK(strcmp(out, "a\\nsxpool: forged\\r\\t\\\\\\x01\\x7f\xc3\xa9") == 0);
    CHECK_EQ(n, strlen(out));
    /* truncation never splits an escape and always terminates */
    char small[5];
    n = ipc_escape_line(small, sizeof small, "ab\n\n", 4);
    CHECK(strcmp(small, "ab\\n") == 0);
    CHECK_EQ(n, 4);
    n = ipc_escape_line(small, 1, "abc", 3);
    CHECK_EQ(n, 0);
    CHECK_EQ(small[0], 0);
    for (int c = 0; c < 256; c++) {
        char one = (char)c;
        n = ipc_escape_line(out, sizeof out, &one, 1);
        CHECK(!memchr(out, '\n', n) && !memchr(out, '\r', n));
    }
}

int main(void)
{
    test_escape_line();
    test_round_trip();
    test_max_fields();
    test_encode_errors();
    test_truncated();
    test_oversized();
    test_field_past_end();
    test_bad_header();
    test_trailing();
    test_random();
    test_fields();
    test_strerror();
    printf("test_ipc_frame: ok\n");
    return 0;
}
