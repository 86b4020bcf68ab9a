/* fuzz_ipc_frame.c: libFuzzer target for the frame codec (ipc/ipc.c), which
 * both the supervisor (every worker reply) and a worker (every REQUEST,
 * BLACKLIST, SHUTDOWN) run on bytes from the other process.
 *
 * Each input is decoded from an exact-size heap copy, so ASan reports any
 * read past it. Properties checked (a broken one prints what was seen and
 * calls abort(), which libFuzzer records as a crash):
 *
 *   - ipc_decode never crashes or reads outside the input; on failure it
 *     returns one of its documented errors and leaves no fields;
 *   - on success every field lies inside the input, and encoding the decoded
 *     type, id and fields gives back the input byte for byte (the decoder
 *     accepts exactly one encoding per frame), which decodes to the same
 *     type, id and fields;
 *   - ipc_field_int agrees with a plain reference parser, and ipc_field_str
 *     truncates and NUL-terminates within its cap;
 *   - ipc_escape_line's output holds no CR, LF or other control byte, is
 *     NUL-terminated within its cap, is a prefix (cut between escapes) of
 *     the untruncated output, and the untruncated output unescapes to the
 *     input.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static _Noreturn void fail(const char *what)
{
    fprintf(stderr, "fuzz_ipc_frame: %s\n", what);
    abort();
}

static ipc_frame f1, f2; /* large: kept off the stack */

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) fail("out of memory");
    return p;
}

static int known_error(int rc)
{
    return rc == IPC_ESHORT || rc == IPC_EMAGIC || rc == IPC_EVERSION || rc == IPC_ETYPE ||
           rc == IPC_ETOOBIG || rc == IPC_EFIELDS || rc == IPC_ETRAILING;
}

/* The reference for ipc_field_int: optional '-', then 1+ digits, in range. */
static int ref_int(const char *p, uint32_t len, long long *out)
{
    char buf[32];
    uint32_t k = len > 0 && p[0] == '-';
    if (k == len || len >= sizeof buf) {
        /* too long for a long long unless it has leading zeros: not worth a
         * reference; say "unknown" */
        return k == len ? -1 : -2;
    }
    for (uint32_t i = k; i < len; i++)
        if (p[i] < '0' || p[i] > '9') return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return -1;
    *out = v;
    return 0;
}

static void check_fields(const ipc_frame *f, const char *buf, size_t len)
{
    for (int i = 0; i < f->nfields; i++) {
        const ipc_field *fl = &f->fields[i];
        if (fl->p < buf || fl->len > len || (size_t)(fl->p - buf) > len - fl->len)
            fail("a decoded field points outside the frame");
        long long got = 7, want = 9;
        int rc = ipc_field_int(f, i, &got), ref = ref_int(fl->p, fl->len, &want);
        if (ref != -2 && (rc == 0) != (ref == 0)) {
            fprintf(stderr, "field %d (%u bytes): ipc_field_int %d, reference %d\n", i, fl->len, rc,
                    ref);
            fail("ipc_field_int disagrees with the reference");
        }
        if (rc == 0 && ref == 0 && got != want) fail("ipc_field_int gives another value");
        char small[8];
        size_t cap = 1 + (size_t)(i % (int)sizeof small);
        memset(small, 'x', sizeof small);
        ipc_field_str(f, i, small, cap);
        size_t n = fl->len < cap - 1 ? fl->len : cap - 1;
        if (memchr(small, '\0', cap) == NULL) fail("ipc_field_str did not NUL-terminate");
        if (memcmp(small, fl->p, n) != 0 || small[n] != '\0')
            fail("ipc_field_str copied something else");
    }
}

static void check_round_trip(const char *buf, size_t len)
{
    char *out = NULL;
    size_t outlen = 0;
    int rc = ipc_encode(f1.type, f1.id, f1.fields, f1.nfields, &out, &outlen);
    if (rc != 0) {
        fprintf(stderr, "ipc_encode: %s\n", ipc_strerror(rc));
        fail("a decoded frame does not encode");
    }
    if (outlen != len || memcmp(out, buf, len) != 0)
        fail("encoding a decoded frame gives other bytes");
    rc = ipc_decode(out, outlen, &f2);
    if (rc != 0) fail("a re-encoded frame does not decode");
    if (f2.type != f1.type || f2.id != f1.id || f2.nfields != f1.nfields)
        fail("decoding again gives another type, id or field count");
    for (int i = 0; i < f1.nfields; i++)
        if (f2.fields[i].len != f1.fields[i].len ||
            memcmp(f2.fields[i].p, f1.fields[i].p, f1.fields[i].len) != 0)
            fail("decoding again gives other fields");
    free(out);
}

/* Undoes ipc_escape_line; returns the length, or (size_t)-1 if malformed. */
static size_t unescape(const char *s, size_t n, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            dst[o++] = s[i];
            continue;
        }
        if (++i >= n) return (size_t)-1;
        switch (s[i]) {
        case 'n': dst[o++] = '\n'; break;
        case 'r': dst[o++] = '\r'; break;
        case 't': dst[o++] = '\t'; break;
        case '\\': dst[o++] = '\\'; break;
        case 'x': {
            if (i + 2 >= n) return (size_t)-1;
            char hx[3] = {s[i + 1], s[i + 2], 0};
            char *end;
            long v = strtol(hx, &end, 16);
            if (*end != '\0') return (size_t)-1;
            dst[o++] = (char)v;
            i += 2;
            break;
        }
        default: return (size_t)-1;
        }
    }
    return o;
}

static void check_escape(const char *buf, size_t len)
{
    size_t big = 4 * len + 1;
    char *full = xmalloc(big);
    size_t n = ipc_escape_line(full, big, buf, len);
    if (n >= big || full[n] != '\0' || strlen(full) != n) fail("escaped text not terminated");
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)full[i];
        if (ch < 0x20 || ch == 0x7f) fail("escaped text holds a control byte");
    }
    char *back = xmalloc(len);
    if (unescape(full, n, back) != len || memcmp(back, buf, len) != 0)
        fail("escaped text does not unescape to the input");
    free(back);
    /* Truncated: a cap from the input's first byte. */
    size_t cap = 1 + (len ? (unsigned char)buf[0] % 64 : 0);
    char *cut = xmalloc(cap);
    size_t m = ipc_escape_line(cut, cap, buf, len);
    if (m >= cap || cut[m] != '\0') fail("truncated escaped text not terminated within cap");
    if (m > n || memcmp(cut, full, m) != 0) fail("truncated escaped text is not a prefix");
    char *part = xmalloc(m);
    if (unescape(cut, m, part) == (size_t)-1) fail("truncation cut an escape sequence in half");
    free(part);
    free(cut);
    free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = xmalloc(size);
    memcpy(buf, data, size);
    int rc = ipc_decode(buf, size, &f1);
    if (rc != 0) {
        if (!known_error(rc)) {
            fprintf(stderr, "ipc_decode: %d\n", rc);
            fail("ipc_decode returned an undocumented error");
        }
        if (f1.nfields != 0) fail("a failed decode left fields");
    } else {
        if (f1.type < IPC_READY || f1.type > IPC_TYPE_LAST) fail("decoded an unknown type");
        if (f1.nfields < 0 || f1.nfields > IPC_MAX_FIELDS) fail("decoded too many fields");
        check_fields(&f1, buf, size);
        check_round_trip(buf, size);
    }
    check_escape(buf, size);
    free(buf);
    return 0;
}
