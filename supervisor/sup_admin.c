/* sup_admin.c: the admin listener (--admin=HOST:PORT, off by default) and
 * what it serves: /metrics in the Prometheus text format (0.0.4), /status
 * as JSON and /status.html for a person.
 *
 * Runs on the supervisor's loop thread only. The counters themselves live
 * in sup_server.metrics and are bumped where things happen (sup_http.c:
 * responses; sup_pool.c: spawns, dropped requests; sup_fault.c: deaths,
 * re-dispatches, blacklist entries); this file only reads them.
 *
 * Three requests change state, and need the bearer token of
 * --admin-token-file (Authorization: Bearer TOKEN, compared in constant
 * time; 401 without it or with another, 403 when no token file was
 * given, so they are off by default):
 *   POST /blacklist/clear        lifts every blacklist entry
 *   DELETE /blacklist/FUNCTION   lifts FUNCTION's entries (percent-encoded)
 *   POST /workers/recycle        replaces every worker, each once its
 *                                replacement is ready (as --max-requests)
 * Lifting an entry takes effect in workers started afterwards (they read
 * the blacklist at start): recycle the workers to apply it now. The store
 * writes run off the loop (sup_store.c); the connection waits for them.
 *
 * The port is meant for a local scraper, not for clients, and is kept
 * simple: one request per connection (405 for a method a path does not
 * take, 404 for another path; a request body is not read), its head read
 * whole before it is answered, at most
 * ADMIN_MAX_REQUEST bytes (431 above), within ADMIN_TIMEOUT_MS (else the
 * connection is closed), at most ADMIN_MAX_CONNS connections at once
 * (others are closed at once); every answer says "connection: close" and
 * the connection is closed once it is written. Reading needs no token:
 * bind the port to a loopback address.
 *
 * Memory: an admin_conn is freed only in its close callback; it owns its
 * response buffer until the write completes.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor/sup_internal.h"
#include "supervisor/sup_store.h"

#define ADMIN_MAX_REQUEST 8192 /* request line + headers */
#define ADMIN_MAX_CONNS 16
#define ADMIN_TIMEOUT_MS 5000

struct admin_job;

typedef struct sup_admin_conn {
    uv_tcp_t tcp;
    struct admin_job *job; /* a store job answering it, or NULL */
    uv_write_t wreq;
    sup_server *srv;
    struct sup_admin_conn *prev, *next;
    uint64_t deadline_ms;
    bool closing, answered;
    size_t len;
    sup_buf out;
    char in[ADMIN_MAX_REQUEST];
} admin_conn;

/* Upper bounds of the duration histogram, seconds (le labels). */
static const char *const latency_le[SUP_LATENCY_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60"};
static const double latency_bound[SUP_LATENCY_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                          1,     2.5,  5,     10,   30,  60};

static const char *const death_label[DEATH_NCAUSES] = {
    [DEATH_NATIVE_CRASH] = "native_crash",
    [DEATH_COMPILER] = "compiler_crash",
    [DEATH_KILLED_BY_SXPOOL] = "killed_by_sxpool",
    [DEATH_SIGKILL] = "sigkill",
    [DEATH_SIGNAL] = "signal",
    [DEATH_EXIT_CLEAN] = "exit_clean",
    [DEATH_EXIT_ERROR] = "exit_error",
};

static const char *const redispatch_label[REDISPATCH_NREASONS] = {
    [REDISPATCH_JIT_FAULT] = "jit_fault",
    [REDISPATCH_NATIVE_CRASH] = "native_crash",
    [REDISPATCH_COMPILER_CRASH] = "compiler_crash",
    [REDISPATCH_WORKER_DEATH] = "worker_death",
};

static const char *const state_label[] = {
    [SLOT_DOWN] = "down", [SLOT_STARTING] = "starting", [SLOT_IDLE] = "idle",
    [SLOT_BUSY] = "busy", [SLOT_DYING] = "dying",
};
#define NSTATES ((int)(sizeof state_label / sizeof state_label[0]))

/* ---- counting -------------------------------------------------------------- */

void sup__metrics_response(sup_server *s, const sup_request *r, int status)
{
    if (!s || status < 100 || status > 599) return;
    sup_metrics *m = &s->metrics;
    m->by_status[status]++;
    if (!r || r->arrived_ns == 0) return;
    double secs = (double)(uv_hrtime() - r->arrived_ns) / 1e9;
    int i = 0;
    while (i < SUP_LATENCY_BUCKETS && secs > latency_bound[i])
        i++;
    m->latency[i]++;
    m->latency_sum += secs;
    m->latency_count++;
}

/* ---- rendering ----------------------------------------------------------- */

/* Appends printf output to b; on failure sets *err (-ENOMEM) and stops. */
static void out(sup_buf *b, int *err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void out(sup_buf *b, int *err, const char *fmt, ...)
{
    if (*err) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1; /* our lines are short */
    *err = sup__buf_append(b, line, (size_t)n);
}

static void family(sup_buf *b, int *err, const char *name, const char *type, const char *help)
{
    out(b, err, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A worker's resident set size in bytes from /proc/PID/statm, or -1. */
static long long worker_rss(int pid)
{
    if (pid <= 0) return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", pid);
    FILE *f = fopen(path, "re");
    if (!f) return -1;
    unsigned long long size, resident;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    if (n != 2) return -1;
    long page = sysconf(_SC_PAGESIZE);
    return (long long)resident * (page > 0 ? page : 4096);
}

static bool slot_counts(const sup_slot *w)
{
    return !w->spare; /* a spare slot holds no worker and never will unless recycling */
}

static void render_metrics(sup_server *s, sup_buf *b, int *err)
{
    sup_metrics *m = &s->metrics;
    family(b, err, "sxpool_requests_total", "counter",
           "Responses with a final status, by status (parse errors and timeouts included).");
    for (int st = 100; st < 600; st++)
        if (m->by_status[st])
            out(b, err, "sxpool_requests_total{status=\"%d\"} %llu\n", st,
                (unsigned long long)m->by_status[st]);

    family(b, err, "sxpool_request_duration_seconds", "histogram",
           "Time from a request's first byte to its answer.");
    unsigned long long cum = 0;
    for (int i = 0; i <= SUP_LATENCY_BUCKETS; i++) {
        cum += m->latency[i];
        out(b, err, "sxpool_request_duration_seconds_bucket{le=\"%s\"} %llu\n",
            i < SUP_LATENCY_BUCKETS ? latency_le[i] : "+Inf", cum);
    }
    out(b, err, "sxpool_request_duration_seconds_sum %.9f\n", m->latency_sum);
    out(b, err, "sxpool_request_duration_seconds_count %llu\n",
        (unsigned long long)m->latency_count);

    family(b, err, "sxpool_queue_depth", "gauge",
           "Requests waiting for a worker (first: first attempts; retry: second attempts).");
    out(b, err, "sxpool_queue_depth{queue=\"first\"} %d\n", s->queue.len);
    out(b, err, "sxpool_queue_depth{queue=\"retry\"} %d\n", s->retry.len);

    family(b, err, "sxpool_workers", "gauge", "Worker slots by mode and state.");
    for (int cek = 0; cek < 2; cek++)
        for (int st = 0; st < NSTATES; st++) {
            int n = 0;
            for (int i = 0; i < s->nslots; i++)
                if (slot_counts(&s->slots[i]) && s->slots[i].cek == cek &&
                    (int)s->slots[i].state == st)
                    n++;
            out(b, err, "sxpool_workers{mode=\"%s\",state=\"%s\"} %d\n", cek ? "cek" : "jit",
                state_label[st], n);
        }

    family(b, err, "sxpool_worker_starts_total", "counter", "Worker processes spawned, by mode.");
    out(b, err, "sxpool_worker_starts_total{mode=\"jit\"} %llu\n",
        (unsigned long long)m->starts[0]);
    out(b, err, "sxpool_worker_starts_total{mode=\"cek\"} %llu\n",
        (unsigned long long)m->starts[1]);

    family(b, err, "sxpool_worker_deaths_total", "counter", "Worker processes ended, by cause.");
    for (int c = 0; c < DEATH_NCAUSES; c++)
        out(b, err, "sxpool_worker_deaths_total{cause=\"%s\"} %llu\n", death_label[c],
            (unsigned long long)m->deaths[c]);

    family(b, err, "sxpool_redispatches_total", "counter",
           "Requests sent to a second worker after the first failed them, by reason.");
    for (int c = 0; c < REDISPATCH_NREASONS; c++)
        out(b, err, "sxpool_redispatches_total{reason=\"%s\"} %llu\n", redispatch_label[c],
            (unsigned long long)m->redispatches[c]);

    family(b, err, "sxpool_shadow_runs_total", "counter",
           "Requests run again on the CEK evaluator to check native code, by kind.");
    out(b, err, "sxpool_shadow_runs_total{kind=\"canary\"} %llu\n",
        (unsigned long long)m->shadow_runs[0]);
    out(b, err, "sxpool_shadow_runs_total{kind=\"sample\"} %llu\n",
        (unsigned long long)m->shadow_runs[1]);
    family(b, err, "sxpool_shadow_mismatches_total", "counter",
           "Shadow runs that disagreed with the native run (its functions blacklisted).");
    out(b, err, "sxpool_shadow_mismatches_total %llu\n", (unsigned long long)m->shadow_mismatches);
    family(b, err, "sxpool_shadow_inconclusive_total", "counter",
           "Shadow runs that could not compare (a resource limit, a scan that saw other data).");
    out(b, err, "sxpool_shadow_inconclusive_total %llu\n",
        (unsigned long long)m->shadow_inconclusive);
    family(b, err, "sxpool_shadow_skipped_total", "counter",
           "Sampled requests not re-checked: the pool was busy, or --shadow-budget was spent.");
    out(b, err, "sxpool_shadow_skipped_total{reason=\"busy\"} %llu\n",
        (unsigned long long)m->shadow_skipped[0]);
    out(b, err, "sxpool_shadow_skipped_total{reason=\"budget\"} %llu\n",
        (unsigned long long)m->shadow_skipped[1]);
    family(b, err, "sxpool_shadow_sample_seconds_total", "counter",
           "Time CEK workers spent re-checking sampled requests.");
    out(b, err, "sxpool_shadow_sample_seconds_total %.6f\n", (double)m->shadow_sample_ns / 1e9);

    family(b, err, "sxpool_blacklist_entries", "gauge",
           "Blacklist entries (approximate: stored at start, any ABI, plus faults since, less "
           "lifts).");
    out(b, err, "sxpool_blacklist_entries %lld\n",
        (long long)(m->blacklist_entries < 0 ? 0 : m->blacklist_entries));

    family(b, err, "sxpool_generation", "gauge",
           "The app generation serving requests (1 at start, one more per SIGHUP reload tried).");
    out(b, err, "sxpool_generation %u\n", (unsigned)s->gen);
    family(b, err, "sxpool_reloads_total", "counter",
           "SIGHUP reloads by result: ok (the new generation took over) or failed (the old "
           "one serves on).");
    out(b, err, "sxpool_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)m->reloads[0]);
    out(b, err, "sxpool_reloads_total{result=\"failed\"} %llu\n",
        (unsigned long long)m->reloads[1]);

    family(b, err, "sxpool_requests_dropped_total", "counter",
           "Queued requests dropped unrun because their client left.");
    out(b, err, "sxpool_requests_dropped_total %llu\n", (unsigned long long)m->dropped);
    family(b, err, "sxpool_requests_taken_back_total", "counter",
           "Requests sent ahead to a worker (--inflight) and taken back before they started: "
           "client_gone (freed unrun), rerouted (run by a worker that became free).");
    out(b, err, "sxpool_requests_taken_back_total{reason=\"client_gone\"} %llu\n",
        (unsigned long long)m->taken_back[0]);
    out(b, err, "sxpool_requests_taken_back_total{reason=\"rerouted\"} %llu\n",
        (unsigned long long)m->taken_back[1]);

    /* The workers' native-tier totals: those of exited workers plus what
     * each live worker's scoreboard says (rewritten after each request). */
    uint64_t jt[6] = {m->jit_compiled,   m->jit_cache_loads,  m->jit_failed,
                      m->jit_compile_us, m->jit_native_calls, m->jit_vm_calls};
    for (int i = 0; i < s->nslots; i++) {
        const ipc_board *bd = s->slots[i].board;
        if (!bd || !s->slots[i].running) continue;
        jt[0] += bd->jit_compiled;
        jt[1] += bd->jit_cache_loads;
        jt[2] += bd->jit_failed;
        jt[3] += bd->jit_compile_us;
        jt[4] += bd->jit_native_calls;
        jt[5] += bd->jit_vm_calls;
    }
    family(b, err, "sxpool_jit_compiled_total", "counter",
           "Functions the JIT workers compiled to native code (as of each one's last request).");
    out(b, err, "sxpool_jit_compiled_total %llu\n", (unsigned long long)jt[0]);
    family(b, err, "sxpool_jit_cache_loads_total", "counter",
           "Functions the JIT workers loaded from the code cache instead of compiling.");
    out(b, err, "sxpool_jit_cache_loads_total %llu\n", (unsigned long long)jt[1]);
    family(b, err, "sxpool_jit_compile_failures_total", "counter",
           "Functions libgccjit could not compile (they stay on the VM).");
    out(b, err, "sxpool_jit_compile_failures_total %llu\n", (unsigned long long)jt[2]);
    family(b, err, "sxpool_jit_compile_seconds_total", "counter",
           "Time the JIT workers spent compiling (context, lowering, compile, load).");
    out(b, err, "sxpool_jit_compile_seconds_total %.6f\n", (double)jt[3] / 1e6);
    family(b, err, "sxpool_calls_total", "counter",
           "Calls of SX functions in the workers, by tier: native code or the VM.");
    out(b, err, "sxpool_calls_total{tier=\"native\"} %llu\n", (unsigned long long)jt[4]);
    out(b, err, "sxpool_calls_total{tier=\"vm\"} %llu\n", (unsigned long long)jt[5]);

    family(b, err, "sxpool_uptime_seconds", "gauge", "Seconds since the server started.");
    out(b, err, "sxpool_uptime_seconds %.3f\n", (double)(uv_hrtime() - m->start_ns) / 1e9);
}

/* Appends str as a JSON string (quotes included). */
static void out_json_str(sup_buf *b, int *err, const char *str)
{
    out(b, err, "\"");
    for (const unsigned char *p = (const unsigned char *)str; *p && !*err; p++) {
        if (*p == '"' || *p == '\\')
            out(b, err, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            out(b, err, "\\u%04x", *p);
        else
            *err = sup__buf_append(b, p, 1);
    }
    out(b, err, "\"");
}

/* The blacklist, read from the store (a short read transaction). */
#define STATUS_MAX_BL 1000 /* entries listed; the count says if there are more */

typedef struct bl_render {
    sup_buf *b;
    int *err;
    int n;
    bool html;
} bl_render;

static void out_html_str(sup_buf *b, int *err, const char *str)
{
    for (const char *p = str; *p && !*err; p++) {
        switch (*p) {
        case '<': out(b, err, "&lt;"); break;
        case '>': out(b, err, "&gt;"); break;
        case '&': out(b, err, "&amp;"); break;
        case '"': out(b, err, "&quot;"); break;
        default: *err = sup__buf_append(b, p, 1); break;
        }
    }
}

static int bl_entry(void *arg, const store_bl_entry *e)
{
    bl_render *r = arg;
    if (++r->n > STATUS_MAX_BL) return 0;
    if (r->html) {
        const char *cols[4] = {e->function, e->code_hash, e->abi_hash, e->reason};
        out(r->b, r->err, "<tr>");
        for (int i = 0; i < 4; i++) {
            out(r->b, r->err, "<td>");
            out_html_str(r->b, r->err, cols[i]);
            out(r->b, r->err, "</td>");
        }
        out(r->b, r->err, "<td>%u</td></tr>\n", (unsigned)e->count);
        return 0;
    }
    out(r->b, r->err, "%s{\"function\":", r->n > 1 ? "," : "");
    out_json_str(r->b, r->err, e->function);
    out(r->b, r->err, ",\"code_hash\":");
    out_json_str(r->b, r->err, e->code_hash);
    out(r->b, r->err, ",\"abi\":");
    out_json_str(r->b, r->err, e->abi_hash);
    out(r->b, r->err, ",\"reason\":");
    out_json_str(r->b, r->err, e->reason);
    out(r->b, r->err, ",\"count\":%u,\"time_ms\":%lld}", (unsigned)e->count, (long long)e->time_ms);
    return 0;
}

/* @return the number of entries, or a negative store error */
static int render_blacklist(sup_server *s, sup_buf *b, int *err, bool html)
{
    bl_render r = {b, err, 0, html};
    int rc = store_bl_each(s->store, NULL, bl_entry, &r);
    return rc != 0 ? rc : r.n;
}

static const char *reload_state(const sup_server *s)
{
    return s->reload_gen ? "starting" : s->retiring_gen ? "retiring" : "idle";
}

static void render_status(sup_server *s, sup_buf *b, int *err)
{
    out(b, err, "{\"version\":\"%s\",\"uptime_seconds\":%.3f,", SXPOOL_VERSION,
        (double)(uv_hrtime() - s->metrics.start_ns) / 1e9);
    out(b, err, "\"queue\":{\"first\":%d,\"retry\":%d},", s->queue.len, s->retry.len);
    out(b, err,
        "\"generation\":%u,\"reload\":{\"state\":\"%s\",\"starting\":%u,\"retiring\":%u,"
        "\"pending\":%s,\"ok\":%llu,\"failed\":%llu},",
        (unsigned)s->gen, reload_state(s), (unsigned)s->reload_gen, (unsigned)s->retiring_gen,
        s->reload_pending ? "true" : "false", (unsigned long long)s->metrics.reloads[0],
        (unsigned long long)s->metrics.reloads[1]);
    out(b, err, "\"blacklist\":[");
    int nbl = render_blacklist(s, b, err, false);
    out(b, err, "],");
    if (nbl < 0)
        out(b, err, "\"blacklist_error\":\"%s\",", store_strerror(nbl));
    else if (nbl > STATUS_MAX_BL)
        out(b, err, "\"blacklist_listed\":%d,", STATUS_MAX_BL);
    out(b, err, "\"blacklist_entries\":%lld,\"workers\":[",
        nbl >= 0
            ? (long long)nbl
            : (long long)(s->metrics.blacklist_entries < 0 ? 0 : s->metrics.blacklist_entries));
    bool first = true;
    for (int i = 0; i < s->nslots; i++) {
        const sup_slot *w = &s->slots[i];
        if (!slot_counts(w)) continue;
        long long rss = w->running ? worker_rss(w->pid) : -1;
        out(b, err,
            "%s{\"slot\":%d,\"pid\":%d,\"mode\":\"%s\",\"state\":\"%s\",\"generation\":%u,"
            "\"retiring\":%s,",
            first ? "" : ",", w->index, w->running ? w->pid : 0, w->cek ? "cek" : "jit",
            state_label[w->state], (unsigned)w->gen, w->gen != s->gen ? "true" : "false");
        if (rss >= 0)
            out(b, err, "\"requests_served\":%llu,\"rss_bytes\":%lld}",
                (unsigned long long)w->served, rss);
        else
            out(b, err, "\"requests_served\":%llu,\"rss_bytes\":null}",
                (unsigned long long)w->served);
        first = false;
    }
    out(b, err, "]}\n");
}

static void render_status_html(sup_server *s, sup_buf *b, int *err)
{
    out(b, err,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>sxpool status</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 10px;text-align:left}</style>"
        "</head><body>\n<h1>sxpool %s</h1>\n<p>up %.0f s; queued: %d first attempts, %d second "
        "attempts</p>\n",
        SXPOOL_VERSION, (double)(uv_hrtime() - s->metrics.start_ns) / 1e9, s->queue.len,
        s->retry.len);
    out(b, err, "<p>app generation %u; reload: %s", (unsigned)s->gen, reload_state(s));
    if (s->reload_gen) out(b, err, " (generation %u starting)", (unsigned)s->reload_gen);
    if (s->retiring_gen) out(b, err, " (generation %u leaving)", (unsigned)s->retiring_gen);
    out(b, err, "; %llu reloads done, %llu failed</p>\n", (unsigned long long)s->metrics.reloads[0],
        (unsigned long long)s->metrics.reloads[1]);
    out(b, err,
        "<h2>Workers</h2>\n<table>\n<tr><th>slot</th><th>pid</th><th>mode</th><th>state</th>"
        "<th>generation</th><th>requests served</th><th>RSS (MiB)</th></tr>\n");
    for (int i = 0; i < s->nslots; i++) {
        const sup_slot *w = &s->slots[i];
        if (!slot_counts(w)) continue;
        long long rss = w->running ? worker_rss(w->pid) : -1;
        out(b, err, "<tr><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%u%s</td><td>%llu</td>",
            w->index, w->running ? w->pid : 0, w->cek ? "cek" : "jit", state_label[w->state],
            (unsigned)w->gen, w->gen != s->gen ? " (retiring)" : "", (unsigned long long)w->served);
        if (rss >= 0)
            out(b, err, "<td>%.1f</td></tr>\n", (double)rss / (1024.0 * 1024.0));
        else
            out(b, err, "<td>-</td></tr>\n");
    }
    out(b, err,
        "</table>\n<h2>Blacklist</h2>\n<p>Native code never run again, by function and code "
        "hash (an entry applies only to that code, for that ABI).</p>\n<table>\n<tr>"
        "<th>function</th><th>code hash</th><th>ABI</th><th>reason</th><th>faults</th></tr>\n");
    int nbl = render_blacklist(s, b, err, true);
    out(b, err, "</table>\n");
    if (nbl < 0)
        out(b, err, "<p>unable to read the blacklist: %s</p>\n", store_strerror(nbl));
    else if (nbl > STATUS_MAX_BL)
        out(b, err, "<p>%d entries; the first %d are listed</p>\n", nbl, STATUS_MAX_BL);
    out(b, err,
        "<p><a href=\"/metrics\">/metrics</a> &middot; "
        "<a href=\"/status\">/status</a></p>\n</body></html>\n");
}

/* ---- connections ------------------------------------------------------------ */

/* A blacklist change, run off the loop. */
typedef struct admin_job {
    sup_store_job base; /* first */
    admin_conn *c;      /* NULL once the connection closed */
    sup_server *s;
    char glob[2 * IPC_BOARD_NAME + 1]; /* the entries to lift */
    char what[IPC_BOARD_NAME];         /* for the answer and the log */
    int n;                             /* store_bl_clear's result */
} admin_job;

static void on_closed(uv_handle_t *h)
{
    admin_conn *c = h->data;
    sup_server *s = c->srv;
    if (c->job) c->job->c = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->admin_conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nadmin--;
    sup__buf_free(&c->out);
    free(c);
}

static void conn_close(admin_conn *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    conn_close(req->data);
}

static void answer(admin_conn *c, int status, const char *reason, const char *ctype,
                   const char *extra, const char *body, size_t len)
{
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n%s"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n",
                     status, reason, ctype, len, extra);
    sup_buf b = {0};
    if (n < 0 || (size_t)n >= sizeof head || sup__buf_append(&b, head, (size_t)n) != 0 ||
        sup__buf_append(&b, body, len) != 0) {
        sup__error("unable to answer an admin request: out of memory");
        sup__buf_free(&b);
        conn_close(c);
        return;
    }
    c->out = b;
    uv_buf_t ub = uv_buf_init(c->out.p, (unsigned)c->out.len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_written) != 0) conn_close(c);
}

static void answer_text(admin_conn *c, int status, const char *reason, const char *extra,
                        const char *text)
{
    answer(c, status, reason, "text/plain; charset=utf-8", extra, text, strlen(text));
}

/* The value of header name (lower case) in the header lines from hdrs to
 * the end of the head, or NULL. */
static const char *header_value(const admin_conn *c, const char *hdrs, const char *name,
                                size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = c->in + c->len;
    for (const char *p = hdrs; p < end;) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        if (!eol || eol == p) return NULL; /* the blank line: no more headers */
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && strncasecmp(p, name, nlen) == 0) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            const char *ve = eol;
            while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* Checks the bearer token of a state-changing request; answers 403 or 401
 * when it is not there. @return true if the request may go on */
static bool authorized(admin_conn *c, const char *hdrs)
{
    sup_server *s = c->srv;
    if (s->admin_token_len == 0) {
        answer_text(c, 403, "Forbidden", "",
                    "state-changing admin requests are off: start sxpool with "
                    "--admin-token-file=PATH\n");
        return false;
    }
    size_t vlen = 0;
    const char *v = header_value(c, hdrs, "authorization", &vlen);
    if (v && vlen > 7 && strncasecmp(v, "Bearer ", 7) == 0 &&
        sup__token_equal(v + 7, vlen - 7, s->admin_token, s->admin_token_len))
        return true;
    sup__warn("admin: refused a state-changing request: %s bearer token",
              v ? "wrong or malformed" : "no");
    answer_text(c, 401, "Unauthorized", "www-authenticate: Bearer realm=\"sxpool admin\"\r\n",
                "a valid bearer token is needed (Authorization: Bearer TOKEN)\n");
    return false;
}

static void recycle(admin_conn *c)
{
    int n = sup__pool_recycle_all(c->srv, "POST /workers/recycle");
    sup__info("admin: POST /workers/recycle: %d worker%s to be replaced", n, n == 1 ? "" : "s");
    char text[128];
    snprintf(text, sizeof text, "recycling %d worker%s\n", n, n == 1 ? "" : "s");
    answer_text(c, 200, "OK", "", text);
}

static void lift_run(sup_store_job *b, store *st)
{
    admin_job *j = (admin_job *)b;
    j->n = store_bl_clear(st, j->glob);
}

static void lift_done(sup_store_job *b)
{
    admin_job *j = (admin_job *)b;
    char text[512];
    if (j->n < 0) {
        sup__error("admin: unable to lift the blacklist entries of %s: %s", j->what,
                   store_strerror(j->n));
        snprintf(text, sizeof text, "unable to lift the blacklist entries: %s\n",
                 store_strerror(j->n));
    } else {
        j->s->metrics.blacklist_entries -= j->n;
        if (j->s->metrics.blacklist_entries < 0) j->s->metrics.blacklist_entries = 0;
        sup__info("admin: lifted %d blacklist entr%s of %s", j->n, j->n == 1 ? "y" : "ies",
                  j->what);
        snprintf(text, sizeof text,
                 "lifted %d blacklist entr%s; workers started from now on compile %s again "
                 "(POST /workers/recycle replaces the running ones)\n",
                 j->n, j->n == 1 ? "y" : "ies", j->n == 1 ? "it" : "them");
    }
    if (j->c) {
        j->c->job = NULL;
        answer_text(j->c, j->n < 0 ? 500 : 200, j->n < 0 ? "Internal Server Error" : "OK", "",
                    text);
    }
    free(j);
}

static void lift(admin_conn *c, const char *glob, const char *what)
{
    if (!c->srv->store) { /* start-up failed before the store was open */
        answer_text(c, 503, "Service Unavailable", "", "the store is not open\n");
        return;
    }
    admin_job *j = calloc(1, sizeof *j);
    if (!j) {
        answer_text(c, 500, "Internal Server Error", "", "out of memory\n");
        return;
    }
    j->c = c;
    j->s = c->srv;
    snprintf(j->glob, sizeof j->glob, "%s", glob);
    snprintf(j->what, sizeof j->what, "%s", what);
    j->base.run = lift_run;
    j->base.done = lift_done;
    c->job = j;
    c->deadline_ms = UINT64_MAX; /* the store may wait on a worker's write lock */
    uv_read_stop((uv_stream_t *)&c->tcp);
    sup__store_submit(c->srv->loop, c->srv->store, &j->base);
}

static int hexdigit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* DELETE /blacklist/FUNCTION: FUNCTION percent-decoded, matched exactly
 * (glob characters escaped). */
static void lift_function(admin_conn *c, const char *p, size_t len)
{
    char fn[IPC_BOARD_NAME], glob[2 * IPC_BOARD_NAME + 1];
    size_t n = 0, g = 0;
    for (size_t i = 0; i < len; i++) {
        int ch = (unsigned char)p[i];
        if (ch == '%') {
            int hi = i + 2 < len ? hexdigit(p[i + 1]) : -1, lo = hi >= 0 ? hexdigit(p[i + 2]) : -1;
            if (hi < 0 || lo < 0) goto bad;
            ch = hi * 16 + lo;
            i += 2;
        }
        if (ch == 0 || n + 1 >= sizeof fn) goto bad;
        fn[n++] = (char)ch;
        if (strchr("*?[]\\", ch)) glob[g++] = '\\';
        glob[g++] = (char)ch;
    }
    if (n == 0) goto bad;
    fn[n] = glob[g] = '\0';
    lift(c, glob, fn);
    return;
bad:
    answer_text(c, 400, "Bad Request", "",
                "expected DELETE /blacklist/FUNCTION, FUNCTION percent-encoded, at most 255 "
                "bytes\n");
}

/* c->in[0..len) holds a whole head: answers it. */
static void handle(admin_conn *c)
{
    /* request line: METHOD SP TARGET SP HTTP/1.x CRLF */
    char *eol = memchr(c->in, '\r', c->len); /* set: the head's end is in c->in */
    char *sp1 = eol ? memchr(c->in, ' ', (size_t)(eol - c->in)) : NULL;
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2 || eol[1] != '\n' || eol - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        answer_text(c, 400, "Bad Request", "", "bad request\n");
        return;
    }
    size_t mlen = (size_t)(sp1 - c->in), tlen = (size_t)(sp2 - sp1 - 1);
    const char *target = sp1 + 1;
    const char *q = memchr(target, '?', tlen);
    if (q) tlen = (size_t)(q - target); /* the query is ignored */
#define METHOD_IS(lit) (mlen == sizeof(lit) - 1 && memcmp(c->in, lit, mlen) == 0)
#define TARGET_IS(lit) (tlen == sizeof(lit) - 1 && memcmp(target, lit, tlen) == 0)
    if (TARGET_IS("/blacklist/clear") || TARGET_IS("/workers/recycle")) {
        if (!METHOD_IS("POST")) {
            answer_text(c, 405, "Method Not Allowed", "allow: POST\r\n", "use POST\n");
            return;
        }
        if (authorized(c, eol + 2))
            TARGET_IS("/workers/recycle") ? recycle(c) : lift(c, "*", "every function");
        return;
    }
    if (tlen > 11 && memcmp(target, "/blacklist/", 11) == 0) {
        if (!METHOD_IS("DELETE")) {
            answer_text(c, 405, "Method Not Allowed", "allow: DELETE\r\n", "use DELETE\n");
            return;
        }
        if (authorized(c, eol + 2)) lift_function(c, target + 11, tlen - 11);
        return;
    }
    if (!METHOD_IS("GET")) {
        answer_text(c, 405, "Method Not Allowed", "allow: GET\r\n", "only GET is served here\n");
        return;
    }
    sup_server *s = c->srv;
    sup_buf b = {0};
    int err = 0;
    const char *ctype;
    if (TARGET_IS("/metrics")) {
        render_metrics(s, &b, &err);
        ctype = "text/plain; version=0.0.4; charset=utf-8";
    } else if (TARGET_IS("/status")) {
        render_status(s, &b, &err);
        ctype = "application/json";
    } else if (TARGET_IS("/status.html")) {
        render_status_html(s, &b, &err);
        ctype = "text/html; charset=utf-8";
    } else {
        answer_text(c, 404, "Not Found", "", "not found: try /metrics, /status, /status.html\n");
        return;
    }
#undef METHOD_IS
#undef TARGET_IS
    if (err != 0)
        answer_text(c, 500, "Internal Server Error", "", "out of memory\n");
    else
        answer(c, 200, "OK", ctype, "", b.p ? b.p : "", b.len);
    sup__buf_free(&b);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    admin_conn *c = h->data;
    /* one byte past the limit is enough to know it is exceeded */
    *buf = uv_buf_init(c->in + c->len, (unsigned)(sizeof c->in - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    admin_conn *c = st->data;
    if (c->closing || c->answered) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    size_t from = c->len >= 3 ? c->len - 3 : 0;
    c->len += (size_t)nread;
    for (size_t i = from; i + 4 <= c->len; i++)
        if (memcmp(c->in + i, "\r\n\r\n", 4) == 0) {
            handle(c);
            return;
        }
    if (c->len >= sizeof c->in)
        answer_text(c, 431, "Request Header Fields Too Large", "", "request head too large\n");
}

static void on_connection(uv_stream_t *server, int status)
{
    sup_server *s = server->data;
    if (status < 0) {
        sup__error("unable to accept an admin connection: %s", uv_strerror(status));
        return;
    }
    admin_conn *c = calloc(1, sizeof *c);
    if (!c) {
        sup__error("unable to accept an admin connection: out of memory");
        return; /* stays in the backlog until the next one */
    }
    c->srv = s;
    if (uv_tcp_init(s->loop, &c->tcp) != 0) {
        free(c);
        return;
    }
    c->tcp.data = c;
    c->next = s->admin_conns;
    if (c->next) c->next->prev = c;
    s->admin_conns = c;
    s->nadmin++;
    c->deadline_ms = uv_now(s->loop) + ADMIN_TIMEOUT_MS;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || s->nadmin > ADMIN_MAX_CONNS ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        conn_close(c);
}

/* ---- the listener ------------------------------------------------------------ */

static int bind_admin(sup_server *s);
static int log_address(sup_server *s);

/* Listens on the socket systemd passed (named "admin"). @return 0 or an error */
static int listen_inherited(sup_server *s)
{
    int err = uv_tcp_init(s->loop, &s->admin_listener);
    if (err != 0) {
        sup__error("unable to set up the admin listener: %s", uv_strerror(err));
        return err;
    }
    s->admin_listener.data = s;
    s->admin_open = true;
    err = uv_tcp_open(&s->admin_listener, s->inherited_admin_fd);
    if (err == 0) s->inherited_admin_fd = -1; /* the handle owns it */
    if (err == 0) err = uv_listen((uv_stream_t *)&s->admin_listener, 16, on_connection);
    if (err != 0)
        sup__error("unable to listen for admin requests on the socket from systemd: %s",
                   uv_err_name(err));
    return err;
}

int sup__admin_start(sup_server *s)
{
    if (!s->cfg.admin) return 0;
    if (s->inherited_admin_fd >= 0) {
        int err = listen_inherited(s);
        if (err != 0) return err;
    } else {
        int err = bind_admin(s);
        if (err != 0) return err;
    }
    return log_address(s);
}

/* Binds cfg.admin_host:admin_port. @return 0 or an error (logged) */
static int bind_admin(sup_server *s)
{
    const char *host = s->cfg.admin_host;
    int port = s->cfg.admin_port;
    char pstr[16];
    snprintf(pstr, sizeof pstr, "%d", port);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    int gerr = getaddrinfo(host, pstr, &hints, &ai);
    if (gerr != 0 || !ai) {
        sup__error("unable to listen for admin requests on %s:%d: %s", host, port,
                   gai_strerror(gerr));
        return -EINVAL;
    }
    int err = uv_tcp_init(s->loop, &s->admin_listener);
    if (err != 0) {
        freeaddrinfo(ai);
        sup__error("unable to set up the admin listener: %s", uv_strerror(err));
        return err;
    }
    s->admin_listener.data = s;
    s->admin_open = true;
    err = uv_tcp_bind(&s->admin_listener, ai->ai_addr, 0);
    freeaddrinfo(ai);
    if (err == 0) err = uv_listen((uv_stream_t *)&s->admin_listener, 16, on_connection);
    if (err != 0)
        sup__error("unable to listen for admin requests on %s:%d: %s", host, port,
                   uv_err_name(err));
    return err;
}

/* Logs "sxpool: admin on http://HOST:PORT". @return 0 or an error (logged) */
static int log_address(sup_server *s)
{
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char name[INET6_ADDRSTRLEN] = "?";
    int err = uv_tcp_getsockname(&s->admin_listener, (struct sockaddr *)&ss, &sslen);
    if (err != 0) {
        sup__error("unable to read the admin listener's address: %s", uv_strerror(err));
        return err;
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        uv_ip6_name(a, name, sizeof name);
        sup__notice("admin on http://[%s]:%d", name, ntohs(a->sin6_port));
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uv_ip4_name(a, name, sizeof name);
        sup__notice("admin on http://%s:%d", name, ntohs(a->sin_port));
    }
    return 0;
}

void sup__admin_stop(sup_server *s)
{
    if (s->admin_open) {
        s->admin_open = false;
        uv_close((uv_handle_t *)&s->admin_listener, NULL);
    }
    for (admin_conn *c = s->admin_conns; c; c = c->next)
        conn_close(c);
}

void sup__admin_housekeeping(sup_server *s, uint64_t now)
{
    for (admin_conn *c = s->admin_conns; c; c = c->next)
        if (!c->closing && now >= c->deadline_ms) conn_close(c);
}
