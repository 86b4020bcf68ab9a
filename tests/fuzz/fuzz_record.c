/* fuzz_record.c: libFuzzer target for the path of a stored response
 * record: the bytes LMDB holds under a request id, read back by the real
 * store_response_get (store/store.c, on a real LMDB environment in a
 * temporary directory), checked as answer_from_record in
 * supervisor/sup_fault.c checks them (ipc_decode; a RESPONSE for this
 * request id with status, body and name/value pairs; a status 200..599,
 * else 500), and answered through the real sup__http_respond of
 * sup_http.c to a fake connection (fuzz_sup_env.h).
 *
 * answer_from_record is static in sup_fault.c, whose other half needs the
 * pool and the store jobs; its checks are repeated in answer() below, in
 * the same order. Keep the two alike.
 *
 * Input: one byte of settings, then the record as LMDB holds it (an 8-byte
 * commit time, then the frame the worker committed).
 *   byte 0: bit 0 the request is a HEAD; bit 1 it may keep the connection
 *           open; bit 2 the request id is the record's own (bytes 8..16 of
 *           its frame), else 1733400000001 (the seeds' id).
 *
 * Properties, besides no crash, leak or undefined behaviour:
 *   - store_response_get returns the value less its 8-byte time, or fails
 *     for a value shorter than that;
 *   - a record that passes the checks gives one well-formed response
 *     (fz_check_response) with the record's status, its body (none for a
 *     HEAD, 1xx, 204 or 304), and exactly the record's header pairs that
 *     cannot break the framing, in order, each as "name: value";
 *   - one that does not pass is not answered from.
 */
#include <lmdb.h>

#include "fuzz_sup_env.h"
#include "store/store_lmdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static store *st;
static char dir[] = "/tmp/sx-fuzz-record.XXXXXX";
static ipc_frame frame;

/* The environment's files are removed as soon as it is open (LMDB keeps
 * them open and mapped), so a crashed run leaves nothing behind. */
static void open_store(void)
{
    char path[sizeof dir + 16];
    if (!mkdtemp(dir)) fz_fail("unable to make a temporary directory");
    setenv("SXPOOL_STORE_NOSYNC", "1", 1);
    if (store_open(dir, 64u << 20, &st) != 0) fz_fail("unable to open the store");
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    rmdir(dir);
}

/* Stores value under key in the responses database, as a commit would. */
static void put_raw(const char *key, const void *value, size_t len)
{
    MDB_txn *t;
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)value};
    store_lmdb *l = store__lmdb(st);
    if (mdb_txn_begin(l->env, NULL, 0, &t) != 0 || mdb_put(t, l->responses, &k, &v, 0) != 0 ||
        mdb_txn_commit(t) != 0)
        fz_fail("unable to write the record");
}

static void del_raw(const char *key)
{
    MDB_txn *t;
    MDB_val k = {strlen(key), (void *)key};
    store_lmdb *l = store__lmdb(st);
    if (mdb_txn_begin(l->env, NULL, 0, &t) != 0) fz_fail("unable to begin a delete");
    mdb_del(t, l->responses, &k, NULL);
    if (mdb_txn_commit(t) != 0) fz_fail("unable to delete the record");
}

/* answer_from_record's checks. @return the record's status, -1 if it is
 * outside 200..599 (answered 500 with a text), or 0 if the record cannot be
 * answered from */
static int answer_status(const char *rec, size_t len, uint64_t id)
{
    long long status = 0;
    bool ok = ipc_decode(rec, len, &frame) == 0 && frame.type == IPC_RESPONSE && frame.id == id &&
              frame.nfields >= 2 && (frame.nfields - 2) % 2 == 0 &&
              ipc_field_int(&frame, 0, &status) == 0;
    if (!ok) return 0;
    return status < 200 || status > 599 ? -1 : (int)status;
}

/* The framing rule, stated apart from sup_http.c's header_ok. */
static bool pair_kept(const ipc_field *n, const ipc_field *v)
{
    static const char *const own[] = {"content-length", "transfer-encoding", "connection"};
    if (n->len == 0) return false;
    for (uint32_t i = 0; i < n->len; i++)
        if (!fz_is_tchar((unsigned char)n->p[i])) return false;
    for (size_t i = 0; i < sizeof own / sizeof *own; i++)
        if (n->len == strlen(own[i]) && strncasecmp(n->p, own[i], n->len) == 0) return false;
    return memchr(v->p, '\r', v->len) == NULL && memchr(v->p, '\n', v->len) == NULL &&
           memchr(v->p, '\0', v->len) == NULL;
}

/* Checks that fz_out answers the record in frame with status (-1: the
 * bad-status answer). */
static void check_answer(int status, bool head)
{
    if (status < 0) {
        if (fz_last_status != 500) fz_fail("a record with a bad status not answered 500");
        return;
    }
    const char *p = fz_out.p, *end = p + fz_out.len;
    char want[16];
    snprintf(want, sizeof want, "HTTP/1.1 %d ", status);
    if (fz_out.len < strlen(want) || memcmp(p, want, strlen(want)) != 0)
        fz_fail("the response does not have the record's status");
    const char *line = memchr(p, '\n', fz_out.len) + 1;
    for (int i = 2; i + 1 < frame.nfields; i += 2) {
        const ipc_field *n = &frame.fields[i], *v = &frame.fields[i + 1];
        if (!pair_kept(n, v)) continue;
        size_t need = n->len + 2 + v->len + 2;
        if ((size_t)(end - line) < need || memcmp(line, n->p, n->len) != 0 ||
            memcmp(line + n->len, ": ", 2) != 0 || memcmp(line + n->len + 2, v->p, v->len) != 0 ||
            memcmp(line + n->len + 2 + v->len, "\r\n", 2) != 0)
            fz_fail("a header pair of the record is missing or out of order");
        line += need;
    }
    /* then only the server's own fields */
    while (line < end && !(line[0] == '\r')) {
        if ((size_t)(end - line) > 15 && strncmp(line, "content-length:", 15) != 0 &&
            strncmp(line, "connection:", 11) != 0)
            fz_fail("the response holds a header that is not in the record");
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl) fz_fail("unterminated head");
        line = nl + 1;
    }
    line += 2;
    bool bodiless = status < 200 || status == 204 || status == 304;
    size_t body = (size_t)(end - line);
    if (bodiless || head) {
        if (body != 0) fz_fail("a body where none belongs");
    } else if (body != frame.fields[1].len || memcmp(line, frame.fields[1].p, body) != 0)
        fz_fail("the body is not the record's");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st) open_store();
    if (size < 1) return 0;
    uint8_t flags = data[0];
    const uint8_t *value = data + 1;
    size_t vlen = size - 1;
    uint64_t id = 1733400000001u;
    if ((flags & 4) && vlen >= 24) {
        id = 0;
        for (int i = 7; i >= 0; i--)
            id = (id << 8) | value[16 + i];
    }
    if (id == 0) id = 1; /* the store takes no empty key; ids start at 1 */
    char key[24];
    snprintf(key, sizeof key, "%llu", (unsigned long long)id);

    put_raw(key, value, vlen);
    char *rec = NULL;
    size_t len = 0;
    int rc = store_response_get(st, key, &rec, &len);
    del_raw(key);
    if (vlen < 8) {
        if (rc == 0) fz_fail("a record shorter than its commit time was read");
        return 0;
    }
    if (rc != 0) fz_fail("store_response_get failed on a stored record");
    if (len != vlen - 8 || memcmp(rec, value + 8, len) != 0 || rec[len] != '\0')
        fz_fail("store_response_get returned other bytes");
    /* an exact-size copy, so ASan sees reads past the record */
    char *exact = malloc(len ? len : 1);
    if (!exact) fz_fail("out of memory");
    memcpy(exact, rec, len);
    free(rec);

    int status = answer_status(exact, len, id);
    if (status) {
        sup_conn *c = fz_open(1u << 20);
        sup_request *r = calloc(1, sizeof *r);
        if (!r) fz_fail("out of memory");
        r->srv = &fz_srv;
        r->slot = -1;
        r->id = id;
        r->method = flags & 1 ? "HEAD" : "GET";
        r->head = flags & 1;
        r->keep_alive = (flags & 2) != 0;
        r->conn = c;
        c->inflight = r;
        fz_pool_answering = true; /* an app's status: any, keep-alive or not */
        if (status < 0)
            sup__http_respond_text(r, 500, "bad-status: a handler status must be 200 to 599\n");
        else
            sup__http_respond(r, status, &frame.fields[2], frame.nfields - 2, frame.fields[1].p,
                              frame.fields[1].len);
        fz_pool_answering = false;
        if (fz_responses != 1) fz_fail("not exactly one response");
        if (getenv("FUZZ_VERBOSE")) fwrite(fz_out.p, 1, fz_out.len, stderr);
        check_answer(status, (flags & 1) != 0); /* r is freed */
        fz_run_loop();
        if ((c = fz_srv.conns) != NULL) conn_close(c);
        fz_run_loop();
        if (fz_srv.conns) fz_fail("the connection did not close");
    }
    free(exact);
    return 0;
}
