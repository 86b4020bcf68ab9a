/* fuzz_http.c: libFuzzer target for the supervisor's HTTP request path:
 * client bytes in, responses or a close out, through the real code of
 * supervisor/sup_http.c (the strict byte checker, llhttp, the parser
 * callbacks, the limits, pipelining, the error answers, lingering and the
 * read deadline), in the fake world of fuzz_sup_env.h.
 *
 * Input: two bytes of settings, then what the client sends.
 *   byte 0: bits 0-1 cfg.max_body (0, 16, 4096, 1 MiB); bits 2-3 the
 *           status the "app" answers with (200, 204, 304, 404); bit 4 a
 *           server that is stopping (STOP_ANNOUNCE or, for an odd byte 1,
 *           STOP_DRAIN); bits 5-6 how the client
 *           bytes are cut into reads (1..4, 1..64, 1..4096 bytes, or whole);
 *           bit 7 how it ends (EOF, or the client goes quiet and the
 *           deadlines run out).
 *   byte 1: the seed of the generator that picks each read's size and
 *           whether the loop turns and the pending request is answered
 *           between two reads.
 * So state kept across reads (the checker's, llhttp's, c->pending) is cut
 * at every byte boundary.
 *
 * Properties, besides no crash, leak or undefined behaviour:
 *   - every response is well formed (fz_check_response), and the server's
 *     own error answers close the connection: nothing is written after
 *     them and the connection is finishing or closing once one is queued;
 *   - at most one request is outstanding, and a submitted one has a
 *     method and a path inside its target;
 *   - memory is bounded: what a connection keeps (pending input, the
 *     request target, header bytes and count, the body) stays within the
 *     limits, whatever the client sends;
 *   - the connection closes once the input ends (at EOF, or after the
 *     deadlines) and every request is answered or dropped by then.
 */
#include "fuzz_sup_env.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint32_t rng_state;

static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 16;
}

static sup_conn *the_conn(void)
{
    return fz_srv.conns;
}

static void check_bounds(const sup_conn *c, size_t max_body)
{
    if (c->pending_len > MAX_PENDING + READ_BUF_SIZE) fz_fail("pending input above its limit");
    const sup_request *r = c->cur;
    if (!r) return;
    if (r->url.len > MAX_TARGET_BYTES) fz_fail("request target above its limit");
    if (r->hdata.len > SUP_MAX_HEADER_BYTES) fz_fail("header bytes above their limit");
    if (r->nheaders > SUP_MAX_HEADERS) fz_fail("header count above its limit");
    if (r->body.len > max_body) fz_fail("body above max_body");
}

static void check_closing(const sup_conn *c)
{
    if (fz_close_sent && c && !c->finishing && !c->closing && !c->lingering)
        fz_fail("a closing response was written but the connection goes on");
}

static int app_status;

/* One turn of the loop: callbacks, and maybe the pool's answer. @return
 * nonzero if anything happened */
static int turn(bool answer)
{
    int did = fz_run_loop();
    if (answer && fz_answer_pool(app_status, (rng() & 1) != 0)) did += 1 + fz_run_loop();
    check_closing(the_conn());
    return did;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t bodies[4] = {0, 16, 4096, 1u << 20};
    static const int statuses[4] = {200, 204, 304, 404};
    static const size_t cuts[4] = {4, 64, 4096, 0};
    if (size < 2) return 0;
    uint8_t flags = data[0];
    rng_state = data[1] * 2654435761u + 1;
    size_t max_body = bodies[flags & 3];
    app_status = statuses[(flags >> 2) & 3];
    size_t cut = cuts[(flags >> 5) & 3];
    bool eof = (flags & 0x80) == 0;
    const uint8_t *in = data + 2;
    size_t len = size - 2, off = 0;

    sup_conn *c = fz_open(max_body);
    if (flags & 0x10) fz_srv.stop = data[1] & 1 ? STOP_DRAIN : STOP_ANNOUNCE;
    while (off < len && (c = the_conn()) != NULL) {
        if (!c->reading) { /* waiting for a response to be written */
            if (!turn(true)) break;
            continue;
        }
        size_t n = len - off;
        size_t want = cut ? 1 + rng() % cut : n;
        if (n > want) n = want;
        if (n > READ_BUF_SIZE) n = READ_BUF_SIZE;
        char *piece = malloc(n); /* exact size: ASan sees overreads */
        if (!piece) fz_fail("out of memory");
        memcpy(piece, in + off, n);
        off += n;
        uv_buf_t b = uv_buf_init(piece, (unsigned)n);
        on_read((uv_stream_t *)&c->tcp, (ssize_t)n, &b);
        free(piece);
        if (!c->closing) check_bounds(c, max_body);
        check_closing(c);
        uint32_t r = rng();
        if (r & 1) turn((r & 2) != 0);
    }
    /* The input is over: the client leaves (EOF) or goes quiet. */
    if (the_conn() != NULL && (rng() & 1)) turn(true); /* the answer may come first */
    if ((c = the_conn()) != NULL && eof && !c->closing && c->reading) { /* as libuv would */
        uv_buf_t b = uv_buf_init(NULL, 0);
        on_read((uv_stream_t *)&c->tcp, UV_EOF, &b);
    }
    for (int round = 0; round < 8 && the_conn() != NULL; round++) {
        turn(true);
        if (!the_conn()) break;
        fz_now += SUP_BODY_TIMEOUT_MS + SUP_SEND_TIMEOUT_MS + SUP_LINGER_MS + 1; /* any deadline */
        sup__http_housekeeping(&fz_srv, fz_now);
        turn(true);
    }
    if (getenv("FUZZ_VERBOSE")) {
        fprintf(stderr, "fuzz_http: %d submitted, %d responses written:\n", fz_submitted,
                fz_responses);
        fwrite(fz_out.p, 1, fz_out.len, stderr);
        fputc('\n', stderr);
    }
    if (the_conn() != NULL) fz_fail("the connection is still open after its deadlines");
    if (fz_pool) fz_fail("a request is still outstanding after its connection closed");
    if (fz_srv.nconns != 0) fz_fail("the connection count is not back to zero");
    return 0;
}
