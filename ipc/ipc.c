/* ipc.c: the frame codec (see the wire format in ipc.h), ipc_strerror and
 * the field helpers.
 *
 * Pure functions over caller-owned bytes: no globals, no locks, callable from
 * any thread of the supervisor or a worker, including nng callbacks.
 *
 * Invariants of the decoder: it never reads a byte before checking that it
 * lies inside buf[0..len); every length taken from the wire is compared with
 * what remains before it is added to an offset, and offsets are size_t
 * computed from values already bounded by IPC_MAX_FRAME, so nothing can wrap.
 * On any error *f holds no fields (nfields == 0).
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static uint16_t get_u16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | ((uint64_t)get_u32(p + 4) << 32);
}

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static int type_known(int type)
{
    return type >= IPC_READY && type <= IPC_TYPE_LAST;
}

size_t ipc_escape_line(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        char e[4];
        size_t k = 0;
        if (c == '\n' || c == '\r' || c == '\t' || c == '\\') {
            e[k++] = '\\';
            e[k++] = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : '\\';
        } else if (c < 0x20 || c == 0x7f) {
            e[k++] = '\\';
            e[k++] = 'x';
            e[k++] = hex[c >> 4];
            e[k++] = hex[c & 15];
        } else {
            e[k++] = (char)c;
        }
        if (n + k >= cap) break;
        memcpy(dst + n, e, k);
        n += k;
    }
    dst[n] = '\0';
    return n;
}

const char *ipc_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case IPC_ESHORT: return "frame shorter than its lengths say";
    case IPC_EMAGIC: return "not an sxpool frame (bad magic)";
    case IPC_EVERSION: return "unsupported frame version";
    case IPC_ETYPE: return "unknown frame type";
    case IPC_ETOOBIG: return "frame above the size limit";
    case IPC_EFIELDS: return "too many fields";
    case IPC_ETRAILING: return "trailing bytes after the last field";
    case IPC_ENNG: return "nng failure";
    case IPC_ETIMEDOUT: return "timed out";
    case IPC_ECLOSED: return "connection closed or no peer connected";
    default: break;
    }
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
}

int ipc_encode(int type, uint64_t id, const ipc_field *fields, int nfields, char **out,
               size_t *outlen)
{
    uint64_t total = IPC_HEADER_SIZE;
    unsigned char *buf, *p;

    if (!type_known(type)) return IPC_ETYPE;
    if (nfields < 0 || nfields > IPC_MAX_FIELDS) return IPC_EFIELDS;
    if ((nfields > 0 && fields == NULL) || out == NULL || outlen == NULL) return -EINVAL;
    for (int i = 0; i < nfields; i++) {
        if (fields[i].p == NULL && fields[i].len > 0) return -EINVAL;
        total += 4 + (uint64_t)fields[i].len;
        if (total > IPC_MAX_FRAME) return IPC_ETOOBIG;
    }

    buf = malloc((size_t)total);
    if (buf == NULL) return -ENOMEM;
    memcpy(buf, IPC_MAGIC, 4);
    buf[4] = IPC_VERSION;
    buf[5] = (unsigned char)type;
    put_u16(buf + 6, (uint16_t)nfields);
    put_u64(buf + 8, id);
    put_u32(buf + 16, (uint32_t)(total - IPC_HEADER_SIZE));
    p = buf + IPC_HEADER_SIZE;
    for (int i = 0; i < nfields; i++) {
        put_u32(p, fields[i].len);
        p += 4;
        if (fields[i].len > 0) memcpy(p, fields[i].p, fields[i].len);
        p += fields[i].len;
    }
    *out = (char *)buf;
    *outlen = (size_t)total;
    return 0;
}

/* Checks the fixed header; on success *payload is the payload length, which
 * is known to fit exactly in len. */
static int decode_header(const unsigned char *b, size_t len, ipc_frame *f, size_t *payload)
{
    uint32_t p;

    if (len >= 4 && memcmp(b, IPC_MAGIC, 4) != 0) return IPC_EMAGIC;
    if (len < IPC_HEADER_SIZE) return IPC_ESHORT;
    if (b[4] != IPC_VERSION) return IPC_EVERSION;
    if (!type_known(b[5])) return IPC_ETYPE;
    if (get_u16(b + 6) > IPC_MAX_FIELDS) return IPC_EFIELDS;
    p = get_u32(b + 16);
    if ((uint64_t)p + IPC_HEADER_SIZE > IPC_MAX_FRAME || len > IPC_MAX_FRAME) return IPC_ETOOBIG;
    if (len - IPC_HEADER_SIZE < p) return IPC_ESHORT;
    if (len - IPC_HEADER_SIZE > p) return IPC_ETRAILING;
    f->type = b[5];
    f->id = get_u64(b + 8);
    *payload = p;
    return 0;
}

int ipc_decode(const char *buf, size_t len, ipc_frame *f)
{
    const unsigned char *b = (const unsigned char *)buf;
    size_t payload, off, end;
    int n, rc;

    f->nfields = 0;
    if (buf == NULL && len > 0) return -EINVAL;
    rc = decode_header(b, len, f, &payload);
    if (rc != 0) return rc;
    n = get_u16(b + 6);
    off = IPC_HEADER_SIZE;
    end = IPC_HEADER_SIZE + payload;
    for (int i = 0; i < n; i++) {
        uint32_t l;

        if (end - off < 4) goto short_frame;
        l = get_u32(b + off);
        off += 4;
        if (end - off < l) {
            rc = l > IPC_MAX_FRAME ? IPC_ETOOBIG : IPC_ESHORT;
            goto fail;
        }
        f->fields[i].p = buf + off;
        f->fields[i].len = l;
        off += l;
    }
    if (off != end) {
        rc = IPC_ETRAILING;
        goto fail;
    }
    f->nfields = n;
    return 0;

short_frame:
    rc = IPC_ESHORT;
fail:
    f->nfields = 0;
    return rc;
}

char *ipc_field_str(const ipc_frame *f, int i, char *dst, size_t cap)
{
    size_t n;

    if (cap == 0) return dst;
    if (f == NULL || i < 0 || i >= f->nfields) {
        dst[0] = '\0';
        return dst;
    }
    n = f->fields[i].len;
    if (n > cap - 1) n = cap - 1;
    if (n > 0) memcpy(dst, f->fields[i].p, n);
    dst[n] = '\0';
    return dst;
}

int ipc_field_int(const ipc_frame *f, int i, long long *out)
{
    const char *p;
    uint32_t len, k = 0;
    unsigned long long v = 0, limit = LLONG_MAX;
    int neg = 0;

    if (f == NULL || i < 0 || i >= f->nfields) return -1;
    p = f->fields[i].p;
    len = f->fields[i].len;
    if (len > 0 && p[0] == '-') {
        neg = 1;
        limit = (unsigned long long)LLONG_MAX + 1;
        k = 1;
    }
    if (k == len) return -1;
    for (; k < len; k++) {
        unsigned d;

        if (p[k] < '0' || p[k] > '9') return -1;
        d = (unsigned)(p[k] - '0');
        if (v > (limit - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    else
        *out = (long long)v;
    return 0;
}

int ipc_idempotency_key_ok(const char *p, size_t n)
{
    if (p == NULL || n == 0 || n > IPC_IDEMPOTENCY_KEY_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              strchr("-_.:~+/=", c) != NULL) ||
            c == '\0')
            return 0;
    }
    return 1;
}

void ipc_record_id(uint64_t id, const char *key, size_t klen, const char *prefix,
                   char out[IPC_RECORD_ID_MAX])
{
    if (klen > 0 && klen <= IPC_IDEMPOTENCY_KEY_MAX)
        snprintf(out, IPC_RECORD_ID_MAX, "k:%.*s", (int)klen, key);
    else { /* for every request: without printf */
        size_t n = prefix ? strnlen(prefix, IPC_RECORD_PREFIX_MAX - 1) : 0;
        if (n > 0) memcpy(out, prefix, n);
        ipc_fmt_u64(out + n, id);
    }
}

size_t ipc_fmt_u64(char *buf, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

void ipc_frame_set_id(char *buf, size_t len, uint64_t id)
{
    if (buf != NULL && len >= IPC_HEADER_SIZE) put_u64((unsigned char *)buf + 8, id);
}
