/* ipc.h: frames exchanged between the supervisor and its workers, and the
 * transports both sides use. Bytes only: no SX values here.
 *
 * Wire format (all integers little-endian), one frame per transport message:
 *
 *   offset size
 *   0      4    magic "SXPF"
 *   4      1    version (IPC_VERSION)
 *   5      1    type (enum ipc_type)
 *   6      2    field count n (<= IPC_MAX_FIELDS)
 *   8      8    request id (0 when the frame is not about a request)
 *   16     4    payload length p (= total length - 20)
 *   20     p    n fields, each: u32 length L, then L bytes
 *
 * Besides frames, the transport itself sends one empty message to a worker
 * when the supervisor accepts it (ipc_dial waits for it); frames are never
 * empty, and empty messages never reach on_recv or ipc_recv.
 *
 * The decoder checks every length against what remains before using it;
 * a frame with trailing bytes, a short field, too many fields or a total
 * above IPC_MAX_FRAME is rejected with a specific error.
 *
 * Field layouts by type (each field is bytes; numbers are decimal text):
 *   READY       slot, pid, mode ("jit" | "cek"), abi hash
 *   REQUEST     method, path, query (raw, without '?'), body,
 *               then header name, header value pairs (names lower-case)
 *   FIRST_REQUEST  as REQUEST, for a request on its first attempt without
 *               an Idempotency-Key: no response record can exist for it,
 *               so the worker does not look one up before running it (its
 *               commit still finds one, should there be one)
 *   RESPONSE    status, body, then header name, header value pairs
 *   ERROR       status, kind, message        (a genuine program error)
 *   JIT_FAULT   function, kind, message, code hash
 *                                            (an error escaped native code)
 *   BLACKLIST   function, code hash          (supervisor -> worker; an empty
 *                                            hash means any code hash)
 *   SHUTDOWN    (no fields)                  (supervisor -> worker)
 *
 * Shadow verification (README, "Shadow verification"):
 *   CHECKED     kind ("canary" | "sample"), response (a whole RESPONSE
 *               frame, encoded), snapshot (store_txn_snapshot), write-set
 *               digest, native functions ("NAME HASH\n" lines)
 *                                            (JIT worker -> supervisor: a
 *                                            canary committed nothing, a
 *                                            sample did)
 *   SHADOW      mode ("commit" | "verify"), response, snapshot, digest
 *               (as CHECKED), then the REQUEST's fields
 *                                            (supervisor -> CEK worker)
 *   SHADOW_RESULT  verdict ("same" | "differs" | "inconclusive"), what
 *               differed, the reply (a RESPONSE or ERROR frame, encoded;
 *               empty in verify mode)        (CEK worker -> supervisor)
 */
#ifndef SXPOOL_IPC_H
#define SXPOOL_IPC_H

#include <stddef.h>
#include <stdint.h>

#define IPC_MAGIC "SXPF"
#define IPC_VERSION 1
#define IPC_HEADER_SIZE 20
#define IPC_MAX_FIELDS 1024
#define IPC_MAX_FRAME (64u << 20)

/* What a handler's response may hold, so that its RESPONSE frame always
 * fits the limits above: at most IPC_MAX_RESPONSE_HEADERS header pairs
 * (two fields each, after status and body), whose names and values
 * together take at most IPC_MAX_RESPONSE_HEADER_BYTES, and a body of at
 * most IPC_MAX_RESPONSE_BODY bytes (64 MiB less 128 KiB: room for the
 * headers, the status and every field's length). The worker checks them
 * before encoding and answers 500 response-too-large naming the limit. */
#define IPC_MAX_RESPONSE_HEADERS ((IPC_MAX_FIELDS - 2) / 2)
#define IPC_MAX_RESPONSE_HEADER_BYTES (64u << 10)
#define IPC_MAX_RESPONSE_BODY (IPC_MAX_FRAME - (128u << 10))
_Static_assert((uint64_t)IPC_HEADER_SIZE + 4u * IPC_MAX_FIELDS + 16 /* status */ +
                       IPC_MAX_RESPONSE_HEADER_BYTES + IPC_MAX_RESPONSE_BODY <=
                   IPC_MAX_FRAME,
               "a response within the limits fits one frame");

enum ipc_type {
    IPC_READY = 1,
    IPC_REQUEST = 2,
    IPC_RESPONSE = 3,
    IPC_ERROR = 4,
    IPC_JIT_FAULT = 5,
    IPC_BLACKLIST = 6,
    IPC_SHUTDOWN = 7,
    IPC_CHECKED = 8,
    IPC_SHADOW = 9,
    IPC_SHADOW_RESULT = 10,
    IPC_FIRST_REQUEST = 11,
    IPC_TYPE_LAST = IPC_FIRST_REQUEST, /* the decoder accepts IPC_READY .. this */
};

/* Error codes: negative errno values, and this module's own range. */
enum {
    IPC_ESHORT = -10001,    /* fewer bytes than the header or a field says */
    IPC_EMAGIC = -10002,    /* not a frame */
    IPC_EVERSION = -10003,  /* a version this build does not speak */
    IPC_ETYPE = -10004,     /* unknown frame type */
    IPC_ETOOBIG = -10005,   /* frame or field above IPC_MAX_FRAME */
    IPC_EFIELDS = -10006,   /* more than IPC_MAX_FIELDS fields */
    IPC_ETRAILING = -10007, /* bytes after the last field */
    IPC_ENNG = -10008,      /* nng failure; see ipc_conn's last nng error */
    IPC_ETIMEDOUT = -10009,
    IPC_ECLOSED = -10010,
};

const char *ipc_strerror(int err);

/* ---- response records: what a request's record is called --------------
 * A request commits its response record (store_txn_commit's req_id) under
 * "k:" and its Idempotency-Key when the client sent that header, so a
 * retry of the same key, on any host sharing the store, is answered from
 * the record; else under its id in decimal, after the supervisor's
 * record prefix: empty with LMDB (one host), with a store several hosts
 * share a random tag of that supervisor's run (SXPOOL_RECORD_PREFIX), as
 * two hosts give out the same ids (they follow the clock). The supervisor
 * refuses a key that ipc_idempotency_key_ok rejects (400) before any
 * worker sees it. */
#define IPC_IDEMPOTENCY_KEY_MAX 200

/* The exit status of a worker that found its connection to the store
 * (PostgreSQL) broken between requests: it ran nothing of the requests it
 * was sent, which go back to their queue uncharged, and a new worker
 * connects again. (A worker's sandbox lets it make no new socket.) */
#define IPC_EXIT_STORE_LOST 75
#define IPC_RECORD_ID_MAX (IPC_IDEMPOTENCY_KEY_MAX + 3)
#define IPC_RECORD_PREFIX_MAX 24

/* @return 1 when p[0..n) is 1 to IPC_IDEMPOTENCY_KEY_MAX bytes of
 * A-Z a-z 0-9 and - _ . : ~ + / = (UUIDs, base64, ULIDs, ...), else 0 */
int ipc_idempotency_key_ok(const char *p, size_t n);

/* Writes the record id of request id with Idempotency-Key key (klen 0:
 * none) to out; prefix (at most IPC_RECORD_PREFIX_MAX - 1 bytes, maybe
 * empty) goes before an id. */
void ipc_record_id(uint64_t id, const char *key, size_t klen, const char *prefix,
                   char out[IPC_RECORD_ID_MAX]);

/* Rewrites the request id in an encoded frame's header (a record
 * committed by a request with the same Idempotency-Key carries that
 * request's id). A buffer shorter than a header is left alone. */
void ipc_frame_set_id(char *buf, size_t len, uint64_t id);

/**
 * Copies src[0..len) into dst as one log line's worth of text: control
 * bytes become \n, \r, \t or \xNN and a backslash \\, so nothing an app or
 * a client wrote can end the line or forge another one (both processes log
 * to the same stderr, one line per event). Truncates to fit, always
 * NUL-terminates (cap > 0).
 * @return the length written (without the NUL)
 */
size_t ipc_escape_line(char *dst, size_t cap, const char *src, size_t len);

/* Writes v in decimal and a NUL to buf (at least 21 bytes), without
 * printf's machinery (it runs for every response). @return the digits
 * written */
size_t ipc_fmt_u64(char *buf, uint64_t v);

typedef struct ipc_field {
    const char *p; /* points into the decoded buffer; not NUL-terminated */
    uint32_t len;
} ipc_field;

typedef struct ipc_frame {
    int type;
    uint64_t id;
    int nfields;
    ipc_field fields[IPC_MAX_FIELDS];
} ipc_frame;

/**
 * Encodes a frame.
 * @param[out] out    malloc'd buffer, owned by the caller on success
 * @param[out] outlen its length
 * @return 0, IPC_ETYPE, IPC_EFIELDS, IPC_ETOOBIG or -ENOMEM
 */
int ipc_encode(int type, uint64_t id, const ipc_field *fields, int nfields, char **out,
               size_t *outlen);

/**
 * Decodes buf[0..len) into f. Fields point into buf, which must outlive f.
 * @return 0 or one of IPC_ESHORT, IPC_EMAGIC, IPC_EVERSION, IPC_ETYPE,
 *         IPC_ETOOBIG, IPC_EFIELDS, IPC_ETRAILING
 */
int ipc_decode(const char *buf, size_t len, ipc_frame *f);

/* Field i as a NUL-terminated copy in dst (truncated to cap-1); returns dst. */
char *ipc_field_str(const ipc_frame *f, int i, char *dst, size_t cap);
/* Field i parsed as a decimal integer; returns -1 and leaves *out if it is not. */
int ipc_field_int(const ipc_frame *f, int i, long long *out);

/* ---- transport: one connection per worker slot ------------------------ *
 *
 * Two transports carry the same frames with the same contract:
 *  - unix (the default, ipc_unix.c): a Unix stream socket, each frame
 *    preceded by its length; the supervisor serves each slot from a thread
 *    of its own with poll(), the worker uses blocking system calls.
 *  - nng (--transport=nng, ipc_nng.c): an nng PAIR1 socket over ipc://.
 * A url names its transport: "unix://PATH" or "ipc://PATH". */

typedef struct ipc_conn ipc_conn;

enum ipc_transport { IPC_TRANSPORT_UNIX, IPC_TRANSPORT_NNG };

/* "unix" or NULL -> IPC_TRANSPORT_UNIX, "nng" -> IPC_TRANSPORT_NNG, else -EINVAL */
int ipc_transport_parse(const char *name);
const char *ipc_transport_name(int transport);

/* The address of slot `slot` under run directory `rundir`:
 * "unix://RUNDIR/slot-N.sock" or "ipc://RUNDIR/slot-N.sock". */
void ipc_slot_url(const char *rundir, int slot, int transport, char *dst, size_t cap);

/**
 * Supervisor side: listens on url. Received frames are delivered by calling
 * on_recv from a transport thread (it must not block); the supervisor queues
 * them to its loop. on_recv owns nothing: buf is valid only during the call.
 */
typedef void (*ipc_recv_cb)(void *arg, const char *buf, size_t len);
int ipc_listen(const char *url, ipc_recv_cb on_recv, void *arg, ipc_conn **out);

/**
 * Supervisor side, as ipc_listen(), except that a "unix://" listener runs on
 * `loop` (libuv's) instead of a thread of its own: on_recv is called on the
 * loop's thread, ipc_send() and ipc_close() must be called there too, and
 * ipc_close() completes when the loop next runs (its handles close). An
 * "ipc://" url gets ipc_listen()'s threads.
 */
struct uv_loop_s;
int ipc_listen_on_loop(struct uv_loop_s *loop, const char *url, ipc_recv_cb on_recv, void *arg,
                       ipc_conn **out);

/**
 * Supervisor side: closes the nng listener of c and listens again on the
 * same url (the unix transport needs no restart: it only checks the slot). Call it before starting
 * a worker for a slot that has none (nng 1.5.2 can stop accepting on a listener after a peer
 * vanished during the connection handshake; see ipc_nng.c). Call it from the supervisor's thread,
 * never from a callback, and only while no worker process of this slot runs.
 * @return 0, -EBUSY (a worker is connected), -EINVAL (not a listener) or
 *         IPC_ENNG
 */
int ipc_listen_restart(ipc_conn *c);

/* Worker side: dials url (retrying until timeout_ms) and uses blocking calls.
 * Returns once the supervisor has accepted this worker as the slot's peer;
 * IPC_ETIMEDOUT if that did not happen in time (no listener, or the slot
 * still has another worker). Once that peer goes away, ipc_send and
 * ipc_recv return IPC_ECLOSED. */
int ipc_dial(const char *url, int timeout_ms, ipc_conn **out);

/* Sends one encoded frame (copied; the caller keeps buf). Non-blocking on
 * the supervisor side (queued), blocking up to timeout on the worker side.
 * Returns 0, IPC_ETOOBIG, IPC_ECLOSED (closed, or no worker connected to
 * this slot: frames are never kept for the slot's next worker), -EAGAIN
 * (supervisor side: too many frames queued), IPC_ETIMEDOUT (worker side),
 * IPC_ENNG or -ENOMEM. */
int ipc_send(ipc_conn *c, const char *buf, size_t len);

/**
 * Worker side: blocks until a frame arrives (timeout_ms < 0: forever).
 * @param[out] buf malloc'd message bytes, owned by the caller
 */
int ipc_recv(ipc_conn *c, int timeout_ms, char **buf, size_t *len);

/**
 * Worker side, "unix://" only (nng ignores it): when ipc_recv() without a
 * timeout finds no whole frame buffered, due(arg) says whether one is on
 * its way (the supervisor has sent it, or is about to). If so the worker
 * waits for it in recv() itself, one system call; if not, in poll() and
 * then recv(), two (it never sleeps in recv() then: the supervisor's
 * reading of the worker's earlier replies would wake it for nothing; see
 * ipc_unix.c). Call once, after ipc_dial().
 */
typedef int (*ipc_due_cb)(void *arg);
void ipc_set_due(ipc_conn *c, ipc_due_cb due, void *arg);

/* Closes the connection. Never call from on_recv or an nng callback. */
void ipc_close(ipc_conn *c);

/* ---- the crash scoreboard: one record per worker slot ------------------ *
 *
 * A file RUNDIR/slot-N.board of sizeof(ipc_board), created and zeroed by the
 * supervisor before it spawns the slot's worker, mapped MAP_SHARED by both.
 * The worker writes it with plain stores and one release fence per update
 * (its crash handler writes it too, so everything here is async-signal-safe
 * to write: fixed-size, no pointers). The supervisor reads it after the
 * worker has died (or with seq checks while it lives), so a record
 * survives the death of the process that wrote it.
 */
#define IPC_BOARD_MAGIC 0x53584231u /* "SXB1" */
#define IPC_BOARD_NAME 256
#define IPC_BOARD_HASH 40
#define IPC_BOARD_BATCH 64
#define IPC_BOARD_TAKEN 8 /* requests taken back and not yet reached; SUP_MAX_INFLIGHT */

enum ipc_board_state {
    IPC_BOARD_IDLE = 0,
    IPC_BOARD_REQUEST = 1,   /* running request_id */
    IPC_BOARD_COMPILING = 2, /* the JIT is compiling batch[] (request_id may be set too) */
};
/* Two threads write state (the worker's main thread: IDLE <-> REQUEST, by
 * compare-and-swap so it never overwrites COMPILING; the compiler thread:
 * COMPILING and back). batch_len is written only by the compiler thread,
 * non-zero exactly while a batch compiles, so readers take "compiling" to
 * be state == COMPILING or batch_len > 0. */

typedef struct ipc_board_fn {
    char name[IPC_BOARD_NAME];
    char code_hash[IPC_BOARD_HASH];
} ipc_board_fn;

typedef struct ipc_board {
    uint32_t magic;
    uint32_t pid;
    volatile uint32_t state;      /* enum ipc_board_state */
    volatile uint32_t seq;        /* bumped on every update */
    volatile uint64_t request_id; /* 0 when none */
    /* Set by the crash handler: the signal and the native function the
     * faulting PC belongs to (name empty if the PC was not in native code). */
    volatile int32_t crash_signal;
    uint32_t pad;
    ipc_board_fn crash_fn;
    /* What the JIT is compiling right now (state COMPILING). */
    volatile uint32_t batch_len;
    uint32_t pad2;
    ipc_board_fn batch[IPC_BOARD_BATCH];
    char abi_hash[IPC_BOARD_HASH];
    /* The worker's native-tier totals (jit_totals), rewritten after each
     * request; the supervisor adds them to its /metrics at the worker's
     * exit and zeroes them. */
    volatile uint64_t jit_compiled, jit_cache_loads, jit_failed, jit_compile_us;
    volatile uint64_t jit_native_calls, jit_vm_calls;
    /* Taking back a request sent ahead (--inflight) before the worker
     * starts it. The worker numbers the REQUEST and SHADOW frames it takes
     * up, 1, 2, ...; before it starts one, it stores that number in
     * `started` and then looks for the frame's id in taken[]; finding it,
     * it clears the entry by compare-and-swap and skips the frame,
     * answering nothing. The supervisor, which numbers the frames it sends
     * the same way, puts the id into a free entry of taken[] and then
     * reads `started`: below the frame's number, the worker has not got to
     * it and will skip it; else the supervisor clears the entry by
     * compare-and-swap, and if the worker cleared it first, the worker
     * skips it. Every access is sequentially consistent, so of the store
     * and the load on each side, one side sees the other's store: the
     * supervisor always knows, without waiting, whether the request will
     * run. */
    volatile uint64_t started;
    volatile uint64_t taken[IPC_BOARD_TAKEN];
    /* How many REQUEST and SHADOW frames the supervisor has sent (numbered
     * as above), stored after each: above the worker's own count of those
     * it took up, one is on its way, and the worker waits for it in recv()
     * (ipc_set_due). */
    volatile uint64_t sent;
} ipc_board;

/* The path of slot `slot`'s board under rundir. */
void ipc_board_path(const char *rundir, int slot, char *dst, size_t cap);

/**
 * Maps the board file MAP_SHARED. With create set, creates it if needed and
 * zeroes it (magic set, everything else 0); without, the file must exist
 * with the right size and magic.
 * @return 0, or -errno from open/ftruncate/mmap, -EINVAL (wrong size) or
 *         -EPROTO (wrong magic); on success *out stays mapped until
 *         ipc_board_unmap
 */
int ipc_board_map(const char *path, int create, ipc_board **out);
void ipc_board_unmap(ipc_board *b);

/**
 * The nng error code (NNG_E*, for nng_strerror) behind the last IPC_ENNG
 * that a call on c returned.
 * @return that code, or 0 if c has returned no IPC_ENNG
 */
int ipc_nng_error(const ipc_conn *c);

#endif
