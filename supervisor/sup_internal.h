/* sup_internal.h: what the supervisor's own files share. Only the supervisor's .c files
 * include it; other modules see supervisor.h.
 *
 * Everything declared here runs on the supervisor's one libuv loop thread.
 * The single exception is the nng receive callback inside sup_pool.c, which
 * only copies bytes into the inbox (under inbox_lock) and wakes the loop.
 *
 * Ownership of a request (sup_request):
 *   - while its HTTP message is being parsed, the connection owns it;
 *   - once complete it goes to sup__pool_submit (or is answered at once), and
 *     from then on the pool owns it until it is answered;
 *   - answering it (sup__http_respond*) frees it, whether or not the client
 *     is still there (r->conn is NULL once the connection has closed);
 *   - when its connection closes while it waits in a queue, the pool drops
 *     it (sup__pool_abandon): no queue ever holds a request with no client.
 */
#ifndef SXPOOL_SUP_INTERNAL_H
#define SXPOOL_SUP_INTERNAL_H

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "ipc/ipc.h"
#include "ipc/ipc_stage.h"
#include "store/store.h"

#define SUP_MAX_WORKERS 256
#define SUP_MAX_HEADER_BYTES (64 * 1024) /* request line + headers; above: 431 */
#define SUP_MAX_HEADERS 256              /* header lines; above: 431 */
#define SUP_MAX_BODY_LIMIT (32u << 20)   /* largest accepted --max-body */
#define SUP_MAX_QUEUE 4096               /* requests waiting for a worker; above: 503 */
#define SUP_HEADER_TIMEOUT_MS 30000      /* default --header-timeout: a head, from its first byte */
#define SUP_BODY_TIMEOUT_MS 60000     /* default --body-timeout: its whole body, after the head */
#define SUP_KEEPALIVE_TIMEOUT_MS 5000 /* default --keepalive-timeout: idle between requests */
#define SUP_SEND_TIMEOUT_MS 30000     /* a response must be taken by the client within */
#define SUP_LINGER_MS 2000            /* draining a closing connection's input */
#define SUP_HOUSEKEEPING_MS 100
#define SUP_READY_TIMEOUT_MS 15000 /* spawn -> READY */
#define SUP_DRAIN_MS 5000          /* shutdown: default --graceful-timeout */
#define SUP_STOP_GRACE_MS 2000     /* shutdown: SHUTDOWN -> SIGKILL */
#define SUP_DEATH_WINDOW_MS 10000  /* crash-loop throttle: crashes after READY counted within */
#define SUP_DEATHS_BEFORE_BACKOFF 5
#define SUP_BACKOFF_MAX_MS 5000
#define SUP_START_BACKOFF_MS 100       /* first respawn after a death before READY */
#define SUP_START_BACKOFF_MAX_MS 10000 /* doubling per death before READY, up to */
#define SUP_DEATH_RING 16
#define SUP_MAX_INFLIGHT IPC_BOARD_TAKEN /* largest --inflight */
#define SUP_TAKE_BACK_MS                                                                           \
    2 /* a request sent ahead may be taken back once the one before it has                         \
         run this long (sup_pool.c, take_back) */
#define SUP_RETRY_CEK_WAIT_MS                                                                      \
    1000 /* a second attempt free to run anywhere waits at most this long                          \
            for a busy CEK worker (sup_pool.c, pick_for) */
#define SUP_LOG_EVERY_MS                                                                           \
    10000 /* a repeated condition is logged at most this often, with a count                       \
           */
/* Descriptors kept free for the server's own use, so that a client load can
 * never stop a worker from being respawned: the client connection cap is
 * RLIMIT_NOFILE less SUP_FD_RESERVE_BASE (stdio, the loop, the listener,
 * the store, nng's own, margin) less SUP_FDS_PER_SLOT per worker slot (its
 * nng listener and connection, a spawn's pipe pair, a /proc read). */
#define SUP_FD_RESERVE_BASE 32
#define SUP_FDS_PER_SLOT 6

/* Test builds only (SXPOOL_TEST_HOOKS, sxpool-test): true, with *ms set, if
 * SXPOOL_TEST_HOOK holds "name:MS"; the release binary always says false
 * and never reads the variable. */
bool sup__test_hook_ms(const char *name, uint64_t *ms);

/* ---- the error log (sup_log.c) ------------------------------------------ */

/* Levels of the error log; a line is written when its level is at most
 * --log-level. SUP_LOG_NOTICE lines (where the server listens) always are. */
enum sup_log_level { SUP_LOG_NOTICE, SUP_LOG_ERROR, SUP_LOG_WARN, SUP_LOG_INFO, SUP_LOG_DEBUG };

/* "error", "warn", "info" or "debug" to its level. @return it, or -1 */
int sup__log_parse_level(const char *name);
/* Sets the level, and reads JOURNAL_STREAM: lines to the journal carry a
 * syslog priority prefix instead of the time. Call before any thread runs. */
void sup__log_setup(int level);
/* One line on stderr: "TIME LEVEL sxpool: MESSAGE", the message escaped. */
void sup__logf(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sup__notice(...) sup__logf(SUP_LOG_NOTICE, __VA_ARGS__)
#define sup__error(...) sup__logf(SUP_LOG_ERROR, __VA_ARGS__)
#define sup__warn(...) sup__logf(SUP_LOG_WARN, __VA_ARGS__)
#define sup__info(...) sup__logf(SUP_LOG_INFO, __VA_ARGS__)
#define sup__debug(...) sup__logf(SUP_LOG_DEBUG, __VA_ARGS__)

/* ---- growable byte buffer -------------------------------------------- */

typedef struct sup_buf {
    char *p;
    size_t len, cap;
} sup_buf;

/* @return 0 or -ENOMEM (b unchanged) */
int sup__buf_append(sup_buf *b, const void *src, size_t n);
void sup__buf_free(sup_buf *b);

/* ---- configuration (sup_main.c) -------------------------------------- */

#define SUP_ADMIN_TOKEN_MIN 16  /* --admin-token-file: bytes */
#define SUP_ADMIN_TOKEN_MAX 256 /* bytes, the terminating NUL included */

typedef struct sup_config {
    int workers;     /* JIT workers (slots 0 .. workers-1) */
    int cek_workers; /* CEK workers (the slots after them) */
    uint32_t jit_threshold;
    char jit_exclude[4096]; /* comma-separated globs, or empty */
    char host[256];
    int port;
    char app[PATH_MAX];  /* absolute, contains main.sx */
    char data[PATH_MAX]; /* absolute, exists */
    uint64_t timeout_ms;
    size_t max_body;
    bool hide_errors;
    char memory_limit[32];        /* per-worker SX heap limit, as given (e.g. 512M) */
    uint32_t max_requests;        /* recycle a worker after this many requests (0: off) */
    uint32_t max_requests_jitter; /* plus random(0 .. this) per worker */
    uint32_t max_rss_mb;          /* recycle a worker whose RSS is above after a request (0: off) */
    int inflight;                 /* requests a JIT worker may hold (sent, not answered) */
    uint64_t drain_delay_ms;      /* stop: serve on this long with /healthz 503 */
    uint64_t graceful_ms;         /* stop: then wait this long for requests to finish */
    size_t store_size;            /* --store-size: the LMDB map, bytes, for every process */
    const char *store_url;        /* --store: a postgresql:// URL, or NULL (LMDB in --data) */
    int transport;                /* --transport: enum ipc_transport */
    bool admin;                   /* --admin given: serve /metrics and /status */
    char admin_host[256];
    int admin_port;
    bool reuse_port;            /* --reuse-port: SO_REUSEPORT on the listener */
    uint64_t header_timeout_ms; /* a request's head must arrive within, from its first byte */
    uint64_t body_timeout_ms;   /* its whole body within, from the end of the head */
    uint64_t keepalive_ms;      /* idle kept-alive connections closed after (0: no keep-alive) */
    int log_level;              /* enum sup_log_level */
    char access_log[PATH_MAX];  /* --access-log: a path, "-" (stdout) or empty (off) */
    bool access_json;           /* --access-log-format=json */
    char user[64];              /* --user: drop to this user after binding, or empty */
    bool allow_root;            /* --allow-root: run as root without --user, quietly */
    bool core_dumps;            /* --core-dumps: workers keep RLIMIT_CORE */
    size_t worker_memory;       /* --worker-memory: workers' RLIMIT_DATA, bytes (0: none) */
    bool no_seccomp;            /* --no-seccomp: workers run without the filter */
    char admin_token_file[PATH_MAX]; /* --admin-token-file, or empty */
    uint32_t shadow_canary;    /* --shadow-canary: first requests of a native function checked */
    double shadow_rate;        /* --shadow-rate: share of later ones re-checked */
    double shadow_budget;      /* --shadow-budget: percent of the JIT workers' time for samples */
    char shadow_exclude[4096]; /* --shadow-exclude: path globs never checked */
} sup_config;

/* ---- requests --------------------------------------------------------- */

typedef struct sup_header {
    uint32_t name_off, name_len; /* into sup_request.hdata; name lower-cased */
    uint32_t value_off, value_len;
} sup_header;

struct sup_conn;
typedef struct sup_server sup_server;

typedef struct sup_request {
    uint64_t id;
    sup_server *srv;                 /* the server it came to (for its metrics) */
    uint64_t arrived_ns;             /* uv_hrtime() at its first byte */
    struct sup_conn *conn;           /* NULL once the client has gone */
    struct sup_request *prev, *next; /* pool queue links */
    struct sup_queue *queue;         /* the queue holding it, or NULL */
    int slot;                        /* worker slot running it, or -1 */
    uint64_t queued_ms;              /* when it entered the queue */
    uint64_t deadline_ms;            /* set at dispatch */
    const char *method;              /* static string from llhttp (NULL until the head is parsed) */
    int http_minor;                  /* HTTP/1.x, once the head is parsed */
    char remote[48];                 /* the client's address, for the access log */
    bool head;                       /* HEAD: answer without a body */
    bool keep_alive;                 /* the client may send another request */
    sup_buf url;                     /* request target, raw */
    size_t path_off, path_len;       /* the path within url */
    size_t query_off;                /* url[query_off..) is the query, or url.len */
    sup_buf hdata;                   /* header names and values */
    sup_header *headers;
    int nheaders, cap_headers;
    sup_buf body;
    int attempts;   /* dispatches so far; a request is tried at most twice */
    bool need_cek;  /* queued again after a native-code fault: CEK workers only */
    bool timed_out; /* past its deadline; answered once its worker's exit is seen */
    uint64_t seq;   /* its frame's number on its worker (ipc_board.started) */
    /* The JIT fault that made it run again, kept to lift the blacklist
     * entry if the CEK worker fails with the same error kind. */
    /* Shadow verification (sup_shadow.c): the native run's CHECKED reply
     * (kind, response, snapshot, digest), sent to a CEK worker in a SHADOW
     * frame instead of the request; natives: the functions that ran
     * natively ("NAME HASH\n" lines); abi: that JIT worker's. */
    struct {
        char *frame; /* the SHADOW frame's first four fields, encoded as a frame */
        size_t len;
        char *natives;
        char abi[80];
        bool verify;      /* a sample's verify-only run: nobody waits for its answer */
        uint64_t sent_ns; /* a sample's: uv_hrtime() when it went to a CEK worker */
        int jit_worker;   /* the JIT worker and pid that ran it, for the log */
        int jit_pid;
    } shadow;
    struct {
        bool set;
        char function[IPC_BOARD_NAME];
        char code_hash[IPC_BOARD_HASH];
        char abi[80];
        char kind[48];
    } fault;
} sup_request;

void sup__request_free(sup_request *r);

/* The name of r's response record (ipc_record_id): its Idempotency-Key
 * (checked when its head was read) or its id. */
void sup__record_id(const sup_request *r, char out[IPC_RECORD_ID_MAX]);

/* ---- worker slots (sup_pool.c) ---------------------------------------- */

enum sup_slot_state {
    SLOT_DOWN,     /* no process; respawn_at_ms says when to start one */
    SLOT_STARTING, /* spawned, waiting for READY */
    SLOT_IDLE,     /* ready, no request */
    SLOT_BUSY,     /* ready, running req */
    SLOT_DYING,    /* killed or told to stop; waiting for its exit */
};

typedef struct sup_slot {
    sup_server *srv;
    int index;
    ipc_conn *ipc;     /* listening socket, kept for the server's whole life */
    uv_process_t proc; /* valid while proc_open */
    bool proc_open;    /* handle initialised, close not yet finished */
    bool running;      /* spawned and its exit not yet seen: pid may be signalled */
    int pid;
    enum sup_slot_state state;
    bool killed; /* SIGKILL sent to the current process */
    /* Sent and not answered, oldest first (SLOT_BUSY when ninflight > 0). The
     * worker runs them in that order, so a reply is always for inflight[0]. */
    sup_request *inflight[SUP_MAX_INFLIGHT];
    int ninflight;
    uint64_t head_since_ms; /* when inflight[0] became the request it runs */
    uint64_t sent;          /* REQUEST and SHADOW frames sent to the current process */
    uint64_t spawned_ms;
    uint64_t respawn_at_ms;
    uint64_t deaths[SUP_DEATH_RING]; /* ring of recent crash times (after READY) */
    unsigned ndeaths;
    bool was_ready;            /* the current process sent its READY */
    unsigned start_failures;   /* deaths before READY since the last READY */
    uint64_t respawn_delay_ms; /* decided at exit, applied once the handle closed */
    char kill_reason[128];     /* why the supervisor killed the current process */
    uint64_t kill_at_ms;       /* past a deadline: SIGKILL due then (0: none due) */
    char mode[8];              /* from READY */
    char abi[80];              /* from READY */
    bool cek;                  /* a CEK slot (--cek-workers), else a JIT slot */
    ipc_board *board;          /* this slot's crash scoreboard, mapped for the server's life */
    /* Recycling (--max-requests, --max-rss; see sup_pool.c). */
    bool spare;             /* holds no worker and is not respawned: free for a replacement */
    bool retired;           /* a replacement took over: not respawned, spare once closed */
    uint64_t served;        /* requests the current process answered */
    uint64_t recycle_after; /* its --max-requests plus jitter, or 0 */
    bool recycle_due;       /* waiting for a spare slot to start its replacement */
    bool retire_now;        /* its replacement is READY: SHUTDOWN once its request is answered */
    int replaced_by;        /* the slot starting its replacement, or -1 */
    int replacing;          /* the slot whose worker this one replaces, or -1 */
    int replacing_pid;      /* that worker's pid */
    char recycle_why[96];   /* what made it due, for the log */
    /* The app generation of its process (sup_reload.c): the server's gen
     * gets requests; a newer one is starting (reload_gen), an older one is
     * retiring. Kept across respawns of the slot. */
    uint32_t gen;
} sup_slot;

/* Requests waiting for a worker, oldest first (linked through prev/next). */
typedef struct sup_queue {
    sup_request *head, *tail;
    int len;
} sup_queue;

/* A frame copied off an nng thread, waiting for the loop. */
typedef struct sup_msg {
    struct sup_msg *next;
    sup_slot *slot;
    size_t len;
    char data[];
} sup_msg;

/* ---- metrics (kept where things happen; served by sup_admin.c) ---------- */

#define SUP_LATENCY_BUCKETS 13 /* finite upper bounds of the duration histogram */

/* Why a worker process ended (sxpool_worker_deaths_total{cause}). */
enum sup_death_cause {
    DEATH_NATIVE_CRASH,     /* fault signal with a native function in its crash record */
    DEATH_COMPILER,         /* died while the JIT compiled (exit 4 or a fault signal) */
    DEATH_KILLED_BY_SXPOOL, /* deadline, bad frame, no READY, shutdown grace */
    DEATH_SIGKILL,          /* SIGKILL from outside (operator, OOM killer) */
    DEATH_SIGNAL,           /* any other signal */
    DEATH_EXIT_CLEAN,       /* exit status 0 (recycled, shutdown) */
    DEATH_EXIT_ERROR,       /* non-zero exit status */
    DEATH_NCAUSES
};

/* Why a request ran a second time (sxpool_redispatches_total{reason}). */
enum sup_redispatch_reason {
    REDISPATCH_JIT_FAULT,      /* an error escaped native code (JIT_FAULT reply) */
    REDISPATCH_NATIVE_CRASH,   /* its worker crashed in native code */
    REDISPATCH_COMPILER_CRASH, /* its worker died compiling */
    REDISPATCH_WORKER_DEATH,   /* its worker died any other way */
    REDISPATCH_NREASONS
};

typedef struct sup_metrics {
    uint64_t start_ns;       /* uv_hrtime() at start-up, for the uptime */
    uint64_t by_status[600]; /* responses with a final status, by status (100..599) */
    /* Duration from a request's first byte to its answer: per-bucket counts
     * (not cumulative; the last is +Inf), their sum and count. */
    uint64_t latency[SUP_LATENCY_BUCKETS + 1];
    double latency_sum;
    uint64_t latency_count;
    uint64_t starts[2]; /* worker processes spawned: [0] JIT, [1] CEK */
    uint64_t deaths[DEATH_NCAUSES];
    uint64_t redispatches[REDISPATCH_NREASONS];
    uint64_t dropped;          /* queued requests dropped, their client gone */
    uint64_t taken_back[2];    /* sent ahead, then taken back unrun: [0] client gone, [1] to
                                  run on a worker that became free */
    uint64_t reloads[2];       /* SIGHUP reloads: [0] completed, [1] failed */
    int64_t blacklist_entries; /* stored at start (any ABI) + added - lifted */
    /* Native-tier totals of workers that have exited (their scoreboards'
     * jit_* fields at exit); live workers' are read from their boards. */
    uint64_t jit_compiled, jit_cache_loads, jit_failed, jit_compile_us;
    uint64_t jit_native_calls, jit_vm_calls;
    uint64_t shadow_runs[2]; /* shadow runs answered: [0] canary, [1] sample */
    uint64_t shadow_mismatches;
    uint64_t shadow_skipped[2]; /* samples not re-checked: [0] the pool was busy, [1] over budget */
    uint64_t shadow_sample_ns;  /* CEK workers' time on samples (sent to result) */
    uint64_t shadow_inconclusive;
} sup_metrics;

/* ---- the server --------------------------------------------------------- */

enum sup_stop_stage {
    STOP_NONE,     /* serving */
    STOP_ANNOUNCE, /* --drain-delay: /healthz 503, still accepting and serving */
    STOP_DRAIN,    /* not accepting; letting in-flight requests finish */
    STOP_WORKERS,  /* SHUTDOWN sent; waiting for workers to exit */
    STOP_CLOSING,  /* closing every handle; the loop ends when all are closed */
};

struct sup_server {
    sup_config cfg;
    /* --shadow-budget's bucket (sup_shadow.c): time sample runs may still
     * take, in ns, refilled as time passes; when it was last refilled. */
    double shadow_tokens_ns;
    uint64_t shadow_refill_ns;
    uint64_t last_prune_ms; /* loop time of the last response-record prune */
    uv_loop_t *loop;
    char exe[PATH_MAX];
    char rundir[PATH_MAX]; /* empty until created */
    store *store;

    /* Accepting (sup_http.c): the listening socket is polled and accepted
     * by hand, so a full descriptor table or the connection cap pauses it
     * (accept_paused) instead of libuv closing clients unseen. */
    uv_poll_t listener;
    int listen_fd;
    bool listener_open;
    int accept_paused;        /* enum accept_pause in sup_http.c; 0: accepting */
    uint64_t accept_retry_ms; /* paused on an accept error: poll again then */
    int max_conns;            /* client connection cap (descriptor limit less the reserve) */
    int fd_limit, fd_reserve; /* RLIMIT_NOFILE and what is kept back from it */
    uint64_t cap_hits;        /* times the cap paused accepting since the last log line */
    uint64_t accept_errors;   /* accept failures since the last log line */
    int accept_errno;         /* the last one */
    uint64_t accept_log_ms;   /* when either was last logged */
    uv_timer_t housekeeping;
    uv_signal_t sigint, sigterm, sighup, sigusr1;
    /* systemd (sup_systemd.c): listeners passed in (-1: none), readiness sent */
    int inherited_fd, inherited_admin_fd;
    bool sd_ready_sent;
    int sd_ready_count; /* ready workers in the last STATUS= */
    uv_async_t inbox_async;
    bool async_open;

    uv_mutex_t inbox_lock;
    sup_msg *inbox_head, *inbox_tail;

    sup_slot *slots;
    int nslots;
    int next_slot; /* round-robin start for dispatch */
    /* Due when a request sent ahead may be taken back for a free worker
     * (sup_pool.c, take_back). */
    uv_timer_t take_back_timer;
    bool take_back_open;

    sup_queue queue;       /* first attempts */
    sup_queue retry;       /* second attempts, served first */
    uint64_t gone_dropped; /* queued requests dropped, their client gone, since the last log */
    uint64_t gone_log_ms;  /* when that was last logged */

    struct sup_conn *conns; /* every open connection */
    int nconns;
    /* Responses written at once (uv_try_write), finished on the loop's next
     * turn by the idle handle (sup_http.c, "writing"). */
    uv_idle_t wdone_idle;
    bool wdone_open;
    struct sup_write *wdone_head, *wdone_tail;

    uint64_t last_id; /* the last request id given out (see next_request_id) */
    char record_prefix[IPC_RECORD_PREFIX_MAX]; /* before ids in record names (ipc_record_id) */

    /* Reload (SIGHUP, sup_reload.c): generations of workers. */
    uint32_t gen;          /* the generation requests go to */
    uint32_t last_gen;     /* the newest generation started (numbers never repeat) */
    uint32_t reload_gen;   /* the generation starting, or 0 */
    uint32_t retiring_gen; /* the generation whose workers are leaving, or 0 */
    bool reload_failed;    /* retiring_gen failed to start (it never served) */
    bool reload_pending;   /* a SIGHUP came during a reload: reload again after it */
    int reload_started[2]; /* workers of reload_gen spawned: [0] JIT, [1] CEK */
    uint64_t reload_ms;    /* when reload_gen (or the last reload) began */

    enum sup_stop_stage stop;
    uint64_t stop_stage_ms; /* when the current stop stage began */
    bool workers_killed;
    int exit_code;

    ipc_frame frame; /* decode scratch; loop thread only */

    sup_metrics metrics;
    /* The admin listener (sup_admin.c), with --admin. */
    uv_tcp_t admin_listener;
    bool admin_open;
    struct sup_admin_conn *admin_conns;
    int nadmin;
    /* --admin-token-file's token: state-changing admin requests need it */
    char admin_token[SUP_ADMIN_TOKEN_MAX];
    size_t admin_token_len; /* 0: no token file, those requests get 403 */
};

/* ---- sup_http.c ---------------------------------------------------------- */

/* Binds and listens, then logs "sxpool: listening on http://HOST:PORT".
 * @return 0 or a negative libuv error (logged) */
int sup__http_start(sup_server *s);
void sup__http_stop_accepting(sup_server *s);
/* Shutdown: closes connections with nothing outstanding; the others close
 * after their current response. */
void sup__http_close_idle(sup_server *s);
void sup__http_close_all(sup_server *s);
void sup__http_housekeeping(sup_server *s, uint64_t now);

/**
 * Answers r and frees it. hdrs are name, value pairs (nhdr_fields even);
 * content-length, transfer-encoding and connection among them are replaced
 * by the server's own, and a pair with CR, LF or NUL is dropped.
 */
void sup__http_respond(sup_request *r, int status, const ipc_field *hdrs, int nhdr_fields,
                       const char *body, size_t len);
/* Answers r with a text/plain body and frees it. */
void sup__http_respond_text(sup_request *r, int status, const char *text);

/* ---- sup_pool.c ---------------------------------------------------------- */

/* Creates the slots, listens on each slot's socket, spawns every worker.
 * @return 0, or a negative error (logged) if a slot could not be set up */
int sup__pool_start(sup_server *s);
/* Takes ownership of r: queues it for a worker, or answers it (503). */
void sup__pool_submit(sup_server *s, sup_request *r);
/* r's client has gone (r->conn is already NULL). A queued r is taken off
 * its queue and freed, never sent to a worker (counted, and logged at most
 * once per SUP_LOG_EVERY_MS); one running on a worker, or held by a fault
 * job, stays: it finishes and its answer goes nowhere. */
void sup__pool_abandon(sup_server *s, sup_request *r);
/* Worker slots the pool will have with cfg (spares for recycling included). */
int sup__pool_slot_count(const sup_config *cfg);
void sup__pool_housekeeping(sup_server *s, uint64_t now);
/* True when no request is queued or running. */
bool sup__pool_quiet(const sup_server *s);
/* Answers every queued request with 503 (shutdown). */
void sup__pool_fail_queued(sup_server *s, int status, const char *text);
/* Sends SHUTDOWN to every live worker. */
void sup__pool_stop_workers(sup_server *s);
void sup__pool_kill_all(sup_server *s, const char *reason);
/* Marks every running worker due for recycling (why: for the log); each is
 * replaced as --max-requests would. @return how many were marked */
int sup__pool_recycle_all(sup_server *s, const char *why);
/* Number of process handles still open. */
int sup__pool_live(const sup_server *s);
/* Number of workers, of either kind, that are ready (idle or busy). */
int sup__pool_ready(const sup_server *s);
/* Closes the nng sockets and the inbox; call once no worker is left. */
void sup__pool_close(sup_server *s);
/* Queues r, whose first worker failed it, for its second and last attempt:
 * on a CEK worker (need_cek), or on a CEK worker if one is up, else any.
 * The caller calls sup__pool_dispatch afterwards. An r whose client has
 * gone is freed instead. */
void sup__pool_retry(sup_server *s, sup_request *r, bool need_cek);
void sup__pool_dispatch(sup_server *s);
/* Sends BLACKLIST (function, code hash) to every live JIT worker; one that
 * cannot be told is killed. @return the number of workers told */
int sup__pool_push_blacklist(sup_server *s, const char *function, const char *code_hash);
/* Answers r (and frees it) with an ERROR reply's status, kind and message
 * (the message left out with --hide-errors). */
void sup__pool_reply_error(sup_server *s, sup_request *r, int status, const char *kind,
                           size_t kind_len, const char *msg, size_t msg_len);

/* ---- sup_fault.c: the fault classifier --------------------------------------- */

/* A JIT_FAULT reply for r (already taken off w): blacklists the function,
 * pushes it to the JIT workers, and re-dispatches r to a CEK worker (502 if
 * this was its second attempt). */
void sup__fault_jit_reply(sup_slot *w, sup_request *r, const ipc_frame *f);
/* An ERROR reply for r, to be answered with status: if r runs again after
 * a JIT fault and failed with the same error kind, the program is at fault:
 * the blacklist entry is lifted off the loop thread and r answered once it
 * is gone. @return true if so (r is taken), false if the caller answers */
bool sup__fault_error_reply(sup_slot *w, sup_request *r, const ipc_frame *f, int status);
/* w's process has exited; r was in flight on it (or NULL). Classifies the
 * death with w's scoreboard, blacklists what it names, logs what was done
 * and re-dispatches r once (or answers 502). Does not respawn. */
void sup__fault_death(sup_slot *w, sup_request *r, int64_t status, int sig);
/* r ran out of time: past its deadline on w, which the caller has just
 * killed, or (w NULL) waiting in the queue after an attempt died. Answers
 * r from its response record if an attempt committed, else status with
 * text. Never runs r again. */
void sup__fault_late(sup_server *s, sup_slot *w, sup_request *r, int status, const char *text);

/* ---- sup_shadow.c: shadow verification ---------------------------------------- */

/* A CHECKED reply for r from JIT worker w (r already taken off w). */
void sup__shadow_checked(sup_slot *w, sup_request *r, const ipc_frame *f);
/* A SHADOW_RESULT reply for r from CEK worker w (r already taken off w). */
void sup__shadow_result(sup_slot *w, sup_request *r, const ipc_frame *f);
/* Encodes r's SHADOW frame (r->shadow.frame set) into *buf. @return 0 or an ipc error */
int sup__shadow_encode(const sup_request *r, const ipc_field *req, int n, char **buf, size_t *len);
/* The normal reply handling of a RESPONSE or ERROR frame for r (sup_pool.c). */
void sup__pool_answer(sup_slot *w, sup_request *r, const ipc_frame *f);
/* Sends r now to an idle CEK worker, if the pool is not busy. @return true if sent */
bool sup__pool_send_idle_cek(sup_server *s, sup_request *r);
/* Blacklists every function in natives ("NAME HASH" lines) under abi,
 * pool-wide, logs "fault: FUNCTION: shadow mismatch; DETAIL; ..." and then,
 * once the entries are stored and pushed to the JIT workers, calls
 * after(arg) (if not NULL). */
void sup__fault_shadow_mismatch(sup_server *s, const char *abi, const char *natives,
                                const char *detail, const char *where, void (*after)(void *),
                                void *arg);

/* ---- sup_priv.c: --user and the admin token ------------------------------ */

/* NAME's uid and primary gid. @return 0 or -1 (logged: unknown user) */
int sup__user_lookup(const char *name, uid_t *uid, gid_t *gid);
/* initgroups, setgid, setuid to NAME, each checked, and a check that root
 * cannot be regained. @return 0 or -1 (logged) */
int sup__drop_privileges(const char *name, uid_t uid, gid_t gid);
/* Reads the bearer token from path: a regular file (not a link) of this
 * user or root, with no group or other permission, holding SUP_ADMIN_TOKEN_MIN
 * or more printable characters (a trailing newline is dropped).
 * @return 0 with token[0..*len) set, or -1 (printed to stderr) */
int sup__admin_token_load(const char *path, char *token, size_t cap, size_t *len);
/* a == b in a time that does not depend on where they differ. */
bool sup__token_equal(const char *a, size_t alen, const char *b, size_t blen);

/* ---- sup_admin.c: the admin listener and the metrics it serves ------------ */

/* Binds cfg.admin_host:admin_port (nothing without --admin) and logs
 * "sxpool: admin on http://HOST:PORT". @return 0 or a negative error (logged) */
int sup__admin_start(sup_server *s);
/* Closes the listener and every admin connection. */
void sup__admin_stop(sup_server *s);

/* ---- other hosts' blacklist entries (sup_cluster.c) -------------------- */

/* With a PostgreSQL store: starts listening for the entries other hosts
 * add, and pushes each to this host's JIT workers. */
void sup__cluster_start(sup_server *s);
/* Listens again after the connection was lost (the housekeeping tick). */
void sup__cluster_housekeeping(sup_server *s, uint64_t now);
/* Stops listening (the shutdown sequence). */
void sup__cluster_stop(sup_server *s);
/* Closes admin connections past their deadline. */
void sup__admin_housekeeping(sup_server *s, uint64_t now);
/* Counts a response with status; r (or NULL: rejected before it was
 * parsed) also counts in the duration histogram. */
void sup__metrics_response(sup_server *s, const sup_request *r, int status);

/* ---- sup_pool.c, for sup_reload.c ------------------------------------------ */

/* Starts a process in w (w->gen, w->cek already set). */
void sup__pool_spawn(sup_slot *w);
void sup__pool_kill(sup_slot *w, const char *reason);
/* w, retired, holds no request: SHUTDOWN (it exits through its normal path). */
void sup__pool_retire_idle(sup_slot *w);
/* True if w is a spare slot free to start a process in. */
bool sup__pool_spare_free(const sup_slot *w);

/* ---- sup_reload.c: SIGHUP, generations of workers ------------------------------ */

/* SIGHUP: starts a new generation of workers with the app as it is now on
 * disk (or, during a reload, queues another one). */
void sup__reload_begin(sup_server *s);
/* The server is stopping: a reload in progress is abandoned. */
void sup__reload_cancel(sup_server *s);
/* w, of the generation starting, sent its READY: commits the reload once
 * every worker of it is ready. */
void sup__reload_ready(sup_slot *w);
/* w's process exited (how: "exited with status 1", ...). A worker of the
 * generation starting that dies before its READY fails the reload: every
 * worker of that generation is retired (w too). */
void sup__reload_exit(sup_slot *w, const char *how);
/* Starts what a reload still needs in spare slots, notices a retired
 * generation's last exit, starts a queued reload. */
void sup__reload_tick(sup_server *s);
/* ---- the access log (sup_log.c) ------------------------------------------ */

/* One answered request, as the access log sees it. */
typedef struct sup_access {
    const sup_request *r; /* NULL, or without a method if rejected before its head was parsed */
    const char *remote;   /* the client's address */
    const char *line;     /* the request line as far as it was read (used when r has no method) */
    size_t line_len;
    int status;
    size_t bytes;     /* body bytes sent */
    bool client_gone; /* the client left before the answer */
} sup_access;

/* Opens path for appending ("-": stdout). Before the loop exists.
 * @return 0 or -errno */
int sup__access_open(const char *path, bool json);
bool sup__access_enabled(void);
/* --access-log=-: workers get stderr as their stdout. */
bool sup__access_to_stdout(void);
/* From now on batches are written on the thread pool. */
void sup__access_start(uv_loop_t *loop);
/* Adds a line (dropped, and counted, if too much is waiting). */
void sup__access_log(sup_server *s, const sup_access *a);
/* Housekeeping: starts writing what waits; logs lost lines. */
void sup__access_flush(uint64_t now);
/* SIGUSR1: reopens the file by its path (after the write in flight). */
void sup__access_reopen(void);
/* After the loop: writes what is left synchronously and closes the file. */
void sup__access_close(void);

/* ---- sup_systemd.c: socket activation and readiness ------------------------ */

/* Takes the listening sockets systemd passed (LISTEN_FDS) into
 * inherited_fd and inherited_admin_fd (the one named "admin"; it turns
 * the admin listener on), and removes LISTEN_* from the environment.
 * @return 0 (none passed is fine) or a negative errno (logged) */
int sup__systemd_listen_fds(sup_server *s);
/* Housekeeping: READY=1 once a worker is ready; STATUS= when that changes. */
void sup__systemd_tick(sup_server *s);
/* A stop has begun: STOPPING=1. */
void sup__systemd_stopping(sup_server *s);

/* ---- sup_main.c ---------------------------------------------------------- */

/* Begins (or, on a second signal, hurries) the shutdown sequence. */
void sup__begin_stop(sup_server *s, const char *why);

#endif
