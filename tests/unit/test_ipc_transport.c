/* test_ipc_transport.c: a transport of ipc/ (argv[1]: unix, the default;
 * unix-loop, the unix listener driven by a libuv loop as the supervisor
 * runs it; or nng), in one process.
 *
 * A listener (supervisor side) and dialers (worker side) talk over the
 * transport in a fresh mkdtemp directory: frames both ways, a 4 MiB frame, receive
 * timeouts, the bounded send queue (an error, never a silent drop, and the
 * accepted frames arrive in order), no frame reaching the next worker of a
 * slot (the first one a child process killed with SIGKILL), a worker seeing
 * its supervisor go away, a listener restarted after peers that hung up
 * mid-handshake, a worker that sends a length above the limit, a waiting
 * worker not woken by the supervisor reading its reply (unix), and
 * ipc_close returning even when nng_close hangs. Both transports keep the
 * same contract, so every step runs on both.
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "tests/unit/check.h"

/* Under LeakSanitizer: nng 1.5.2 itself loses a few objects (a pipe, its
 * dialer, a message it had accepted) when pipes are torn down while sends
 * or handshakes are in flight, as several steps below do on purpose. Those
 * allocations are made inside libnng; everything ipc/ allocates itself is
 * still checked. The sanitizer runtime calls this hook if it is defined. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libnng.so\n";
}

static int transport;
static int on_loop; /* unix-loop: listeners live on a loop thread */

/* ---- what the supervisor side received -------------------------------- */

typedef struct inbox_msg {
    struct inbox_msg *next;
    size_t len;
    char *buf;
} inbox_msg;

static struct {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    inbox_msg *head, *tail;
} inbox = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL};

static void on_recv(void *arg, const char *buf, size_t len)
{
    inbox_msg *m = malloc(sizeof(*m));

    CHECK(arg == &inbox);
    CHECK(m != NULL);
    m->buf = malloc(len);
    CHECK(m->buf != NULL);
    memcpy(m->buf, buf, len);
    m->len = len;
    m->next = NULL;
    pthread_mutex_lock(&inbox.mtx);
    if (inbox.tail)
        inbox.tail->next = m;
    else
        inbox.head = m;
    inbox.tail = m;
    pthread_cond_signal(&inbox.cond);
    pthread_mutex_unlock(&inbox.mtx);
}

/* Waits up to 5 s for the next frame the listener received. */
#define inbox_take() inbox_take_at(__LINE__)
static inbox_msg *inbox_take_at(int line)
{
    struct timespec until;
    inbox_msg *m;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&inbox.mtx);
    while (inbox.head == NULL) {
        if (pthread_cond_timedwait(&inbox.cond, &inbox.mtx, &until) != 0) {
            fprintf(stderr, "%s:%d: no frame reached the listener in 5 s\n", __FILE__, line);
            exit(1);
        }
    }
    m = inbox.head;
    inbox.head = m->next;
    if (inbox.head == NULL) inbox.tail = NULL;
    pthread_mutex_unlock(&inbox.mtx);
    return m;
}

static void inbox_free(inbox_msg *m)
{
    free(m->buf);
    free(m);
}

/* ---- the listener side, on a loop thread for unix-loop ------------------ *
 *
 * ipc_listen_on_loop's listener is used only from its loop's thread, so in
 * unix-loop every listener-side call below is run there (loop_call) and the
 * test's thread waits for its result; a dialer is used directly. */

static struct {
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    int op, done, result;
    const char *url, *buf;
    size_t len;
    ipc_conn *c, **out;
    ipc_conn *listeners[64];
    int nlisteners;
} lp = {.mtx = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

enum { OP_LISTEN = 1, OP_SEND, OP_RESTART, OP_CLOSE, OP_QUIT };

static void loop_run_op(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&lp.mtx);
    switch (lp.op) {
    case OP_LISTEN:
        lp.result = ipc_listen_on_loop(&lp.loop, lp.url, on_recv, &inbox, lp.out);
        break;
    case OP_SEND: lp.result = ipc_send(lp.c, lp.buf, lp.len); break;
    case OP_RESTART: lp.result = ipc_listen_restart(lp.c); break;
    case OP_CLOSE: ipc_close(lp.c); break;
    case OP_QUIT: uv_close((uv_handle_t *)&lp.async, NULL); break;
    default: break;
    }
    if (lp.op != 0) {
        lp.op = 0;
        lp.done = 1;
        pthread_cond_signal(&lp.cond);
    }
    pthread_mutex_unlock(&lp.mtx);
}

static void *loop_thread(void *arg)
{
    (void)arg;
    uv_run(&lp.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void loop_start(void)
{
    CHECK_EQ(uv_loop_init(&lp.loop), 0);
    CHECK_EQ(uv_async_init(&lp.loop, &lp.async, loop_run_op), 0);
    CHECK_EQ(pthread_create(&lp.thread, NULL, loop_thread, NULL), 0);
}

static int loop_call(int op, ipc_conn *c, const char *url, const char *buf, size_t len,
                     ipc_conn **out)
{
    int result;

    pthread_mutex_lock(&lp.mtx);
    lp.op = op;
    lp.c = c;
    lp.url = url;
    lp.buf = buf;
    lp.len = len;
    lp.out = out;
    lp.done = 0;
    CHECK_EQ(uv_async_send(&lp.async), 0);
    while (!lp.done)
        pthread_cond_wait(&lp.cond, &lp.mtx);
    result = lp.result;
    pthread_mutex_unlock(&lp.mtx);
    return result;
}

static void loop_stop(void)
{
    loop_call(OP_QUIT, NULL, NULL, NULL, 0, NULL);
    CHECK_EQ(pthread_join(lp.thread, NULL), 0);
    CHECK_EQ(uv_loop_close(&lp.loop), 0); /* every listener's handles closed */
}

static int is_loop_listener(ipc_conn *c)
{
    for (int i = 0; i < lp.nlisteners; i++)
        if (lp.listeners[i] == c) return 1;
    return 0;
}

static int xlisten(const char *url, ipc_recv_cb cb, void *arg, ipc_conn **out)
{
    int rc;

    if (!on_loop) return ipc_listen(url, cb, arg, out);
    rc = loop_call(OP_LISTEN, NULL, url, NULL, 0, out);
    if (rc == 0) {
        CHECK(lp.nlisteners < 64);
        lp.listeners[lp.nlisteners++] = *out;
    }
    return rc;
}

static int xsend(ipc_conn *c, const char *buf, size_t len)
{
    return is_loop_listener(c) ? loop_call(OP_SEND, c, NULL, buf, len, NULL)
                               : ipc_send(c, buf, len);
}

static int xrestart(ipc_conn *c)
{
    return is_loop_listener(c) ? loop_call(OP_RESTART, c, NULL, NULL, 0, NULL)
                               : ipc_listen_restart(c);
}

static void xclose(ipc_conn *c)
{
    if (!is_loop_listener(c)) {
        ipc_close(c);
        return;
    }
    loop_call(OP_CLOSE, c, NULL, NULL, 0, NULL);
    for (int i = 0; i < lp.nlisteners; i++)
        if (lp.listeners[i] == c) lp.listeners[i] = lp.listeners[--lp.nlisteners];
}

/* ---- helpers ------------------------------------------------------------ */

static ipc_frame frame;
static char self_exe[PATH_MAX]; /* this program, for the children it runs */

static ipc_field fld(const char *s)
{
    ipc_field f = {s, (uint32_t)strlen(s)};
    return f;
}

static void send_frame(ipc_conn *c, int type, uint64_t id, const char *a, const char *b)
{
    ipc_field f[2] = {fld(a), fld(b)};
    size_t len;
    char *buf;

    CHECK_EQ(ipc_encode(type, id, f, 2, &buf, &len), 0);
    CHECK_EQ(xsend(c, buf, len), 0);
    free(buf);
}

/* The worker's next frame must be (type, id). */
static void expect_worker_frame(ipc_conn *w, int type, uint64_t id)
{
    size_t len;
    char *buf;

    CHECK_EQ(ipc_recv(w, 5000, &buf, &len), 0);
    CHECK_EQ(ipc_decode(buf, len, &frame), 0);
    CHECK_EQ(frame.type, type);
    CHECK_EQ(frame.id, id);
    free(buf);
}

/* Worker announces itself; the listener must see it, which also tells the
 * listener which pipe is its peer. */
static void ready(ipc_conn *w, const char *slot)
{
    inbox_msg *m;

    send_frame(w, IPC_READY, 0, slot, "jit");
    m = inbox_take();
    CHECK_EQ(ipc_decode(m->buf, m->len, &frame), 0);
    CHECK_EQ(frame.type, IPC_READY);
    CHECK_EQ(frame.fields[0].len, strlen(slot));
    CHECK(memcmp(frame.fields[0].p, slot, strlen(slot)) == 0);
    inbox_free(m);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Sends probes until the listener says it has no peer (max 5 s). */
static void wait_peer_gone(ipc_conn *l)
{
    for (int i = 0; i < 500; i++) {
        size_t len;
        char *buf;
        int rc;

        CHECK_EQ(ipc_encode(IPC_SHUTDOWN, 999, NULL, 0, &buf, &len), 0);
        rc = xsend(l, buf, len);
        free(buf);
        if (rc == IPC_ECLOSED) return;
        CHECK(rc == 0 || rc == -EAGAIN);
        sleep_ms(10);
    }
    CHECK(!"the listener never noticed its peer leaving");
}

/* ---- tests ---------------------------------------------------------------- */

static void test_both_ways(const char *url, ipc_conn *l, ipc_conn *w)
{
    char slot[32];
    inbox_msg *m;

    ipc_slot_url("/run/x", 7, transport, slot, sizeof(slot));
    CHECK(strcmp(slot, transport == IPC_TRANSPORT_NNG ? "ipc:///run/x/slot-7.sock"
                                                      : "unix:///run/x/slot-7.sock") == 0);
    (void)url;

    ready(w, "0");
    for (uint64_t id = 1; id <= 100; id++)
        send_frame(l, IPC_REQUEST, id, "GET", "/");
    for (uint64_t id = 1; id <= 100; id++)
        expect_worker_frame(w, IPC_REQUEST, id);
    for (uint64_t id = 1; id <= 100; id++)
        send_frame(w, IPC_RESPONSE, id, "200", "ok");
    for (uint64_t id = 1; id <= 100; id++) {
        m = inbox_take();
        CHECK_EQ(ipc_decode(m->buf, m->len, &frame), 0);
        CHECK_EQ(frame.type, IPC_RESPONSE);
        CHECK_EQ(frame.id, id);
        inbox_free(m);
    }
}

static void test_large(ipc_conn *l, ipc_conn *w)
{
    size_t big = 4u << 20, len;
    char *body = malloc(big + 1), *buf, *got;
    ipc_field f[2];
    inbox_msg *m;

    CHECK(body != NULL);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)('a' + i % 26);
    body[big] = '\0';
    f[0] = fld("200");
    f[1].p = body;
    f[1].len = (uint32_t)big;
    CHECK_EQ(ipc_encode(IPC_RESPONSE, 5, f, 2, &buf, &len), 0);

    CHECK_EQ(xsend(w, buf, len), 0);
    m = inbox_take();
    CHECK_EQ(m->len, len);
    CHECK(memcmp(m->buf, buf, len) == 0);
    inbox_free(m);

    CHECK_EQ(xsend(l, buf, len), 0);
    CHECK_EQ(ipc_recv(w, 5000, &got, &len), 0);
    CHECK_EQ(ipc_decode(got, len, &frame), 0);
    CHECK_EQ(frame.fields[1].len, big);
    CHECK(memcmp(frame.fields[1].p, body, big) == 0);
    free(got);
    free(buf);
    free(body);

    CHECK_EQ(xsend(l, "x", (size_t)IPC_MAX_FRAME + 1), IPC_ETOOBIG);
}

static void test_timeout(ipc_conn *w)
{
    struct timespec a, b;
    size_t len;
    char *buf;
    long ms;

    clock_gettime(CLOCK_MONOTONIC, &a);
    CHECK_EQ(ipc_recv(w, 100, &buf, &len), IPC_ETIMEDOUT);
    clock_gettime(CLOCK_MONOTONIC, &b);
    ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    CHECK(ms >= 90 && ms < 3000);
}

/* The worker does not read: the listener's queue fills, ipc_send says so,
 * and every frame it accepted arrives, in order. */
static void test_queue_full(ipc_conn *l, ipc_conn *w)
{
    static char pad[8192];
    ipc_field f[1] = {{pad, sizeof(pad)}};
    uint64_t accepted = 0;
    int full = 0;
    size_t len;
    char *buf;

    for (uint64_t id = 1; id <= 5000 && !full; id++) {
        int rc;

        CHECK_EQ(ipc_encode(IPC_REQUEST, id, f, 1, &buf, &len), 0);
        rc = xsend(l, buf, len);
        free(buf);
        if (rc == -EAGAIN) {
            full = 1;
        } else {
            CHECK_EQ(rc, 0);
            accepted = id;
        }
    }
    CHECK(full);
    CHECK(accepted >= 256);
    for (uint64_t id = 1; id <= accepted; id++)
        expect_worker_frame(w, IPC_REQUEST, id);
    CHECK_EQ(ipc_recv(w, 200, &buf, &len), IPC_ETIMEDOUT);
}

/* A slot takes one worker: a second one is not accepted while the first
 * is connected, and ipc_dial says so by timing out. The listener cannot be
 * restarted under a connected worker. */
static void test_slot_taken(const char *url, ipc_conn *l)
{
    ipc_conn *w3 = NULL;

    CHECK_EQ(ipc_dial(url, 300, &w3), IPC_ETIMEDOUT);
    CHECK(w3 == NULL);
    CHECK_EQ(xrestart(l), -EBUSY);
}

/* Connects to the slot's socket file; returns the descriptor. */
static int raw_connect(const char *url)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *path = strstr(url, "://");
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    CHECK(fd >= 0 && path != NULL);
    path += 3;
    CHECK(strlen(path) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, path);
    CHECK_EQ(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Connects and hangs up at once, before nng's handshake: in nng 1.5.2 this
 * can stop the listener from accepting. */
static void hang_up_early(const char *url)
{
    close(raw_connect(url));
}

/* After peers that vanished mid-handshake, a restarted listener accepts. */
static void test_restart(const char *dir)
{
    char url[256];
    ipc_conn *l, *w;

    ipc_slot_url(dir, 2, transport, url, sizeof(url));
    CHECK_EQ(xlisten(url, on_recv, &inbox, &l), 0);
    for (int i = 0; i < 50; i++)
        hang_up_early(url);
    sleep_ms(50);
    CHECK_EQ(xrestart(l), 0);
    CHECK_EQ(xrestart(l), 0);
    CHECK_EQ(ipc_dial(url, 2000, &w), 0);
    ready(w, "2");
    xclose(w);
    xclose(l);
}

/* Starts this program again as a worker process of url (see main). nng is
 * not fork-safe, so the child execs before it touches nng. */
static pid_t spawn_worker(const char *url)
{
    pid_t pid = fork();

    CHECK(pid >= 0);
    if (pid == 0) {
        execl(self_exe, "test_ipc_transport", "child-worker", url, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The child: announces itself, then reads nothing until it is killed. */
static int child_worker(const char *url)
{
    ipc_conn *w;

    int rc;

    rc = ipc_dial(url, 5000, &w);

    if (rc != 0) {
        fprintf(stderr, "child worker: unable to dial: %s\n", ipc_strerror(rc));
        return 2;
    }
    send_frame(w, IPC_READY, 0, "child", "jit");
    for (;;)
        pause();
}

/* Frames queued for a worker that died never reach the slot's next worker. */
static void test_next_worker(const char *url, ipc_conn *l)
{
    static char pad[8192];
    ipc_field f[1] = {{pad, sizeof(pad)}};
    pid_t pid = spawn_worker(url);
    ipc_conn *w2;
    inbox_msg *m;
    size_t len;
    char *buf;
    int status;

    m = inbox_take();
    CHECK_EQ(ipc_decode(m->buf, m->len, &frame), 0);
    CHECK_EQ(frame.type, IPC_READY);
    inbox_free(m);
    for (uint64_t id = 1; id <= 200; id++) {
        CHECK_EQ(ipc_encode(IPC_REQUEST, id, f, 1, &buf, &len), 0);
        CHECK_EQ(xsend(l, buf, len), 0);
        free(buf);
    }
    CHECK_EQ(kill(pid, SIGKILL), 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFSIGNALED(status));
    wait_peer_gone(l);

    CHECK_EQ(ipc_dial(url, 2000, &w2), 0);
    ready(w2, "0b");
    send_frame(l, IPC_BLACKLIST, 4242, "fib", "c0ffee");
    expect_worker_frame(w2, IPC_BLACKLIST, 4242);
    CHECK_EQ(ipc_recv(w2, 300, &buf, &len), IPC_ETIMEDOUT);
    xclose(w2);
}

/* A worker closing while frames stream in can meet an nng 1.5.2 race that
 * makes nng_close hang; ipc_close must return all the same. Run in a child
 * process, since a hang leaves nng's reaper stuck for that process. */
static int child_close_race(const char *dir)
{
    static char pad[64 * 1024];
    ipc_field f[1] = {{pad, sizeof(pad)}};
    char url[256];

    for (int round = 0; round < 20; round++) {
        struct timespec a, b;
        ipc_conn *l, *w;
        size_t len;
        char *buf;

        ipc_slot_url(dir, 100 + round, transport, url, sizeof(url));
        if (xlisten(url, on_recv, &inbox, &l) != 0 || ipc_dial(url, 2000, &w) != 0) return 2;
        send_frame(w, IPC_READY, 0, "r", "jit");
        inbox_free(inbox_take());
        CHECK_EQ(ipc_encode(IPC_REQUEST, 1, f, 1, &buf, &len), 0);
        for (int i = 0; i < 8; i++)
            if (xsend(l, buf, len) != 0) return 3;
        free(buf);
        clock_gettime(CLOCK_MONOTONIC, &a);
        xclose(w);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (b.tv_sec - a.tv_sec > 5) return 4;
        xclose(l);
    }
    return 0;
}

static void test_close_race(const char *dir)
{
    pid_t pid = fork();
    int status;

    CHECK(pid >= 0);
    if (pid == 0) {
        execl(self_exe, "test_ipc_transport", "child-close-race", dir,
              ipc_transport_name(transport), (char *)NULL);
        _exit(127);
    }
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

static void test_no_peer(const char *dir)
{
    char url[256];
    ipc_conn *l, *w;
    size_t len;
    char *buf;

    ipc_slot_url(dir, 1, transport, url, sizeof(url));
    CHECK_EQ(xlisten(url, on_recv, &inbox, &l), 0);
    CHECK_EQ(ipc_encode(IPC_SHUTDOWN, 1, NULL, 0, &buf, &len), 0);
    CHECK_EQ(xsend(l, buf, len), IPC_ECLOSED);
    free(buf);

    /* the supervisor goes away: a waiting worker hears of it */
    CHECK_EQ(ipc_dial(url, 2000, &w), 0);
    ready(w, "1");
    xclose(l);
    CHECK_EQ(ipc_recv(w, 5000, &buf, &len), IPC_ECLOSED);
    xclose(w);
}

static void test_dial_timeout(const char *dir)
{
    char url[256];
    ipc_conn *w = NULL;

    ipc_slot_url(dir, 9, transport, url, sizeof(url));
    CHECK_EQ(ipc_dial(url, 150, &w), IPC_ETIMEDOUT);
    CHECK(w == NULL);
    CHECK_EQ(ipc_dial("nonsense://x", 150, &w), IPC_ENNG);
}

/* A peer that announces a message above IPC_MAX_FRAME is dropped, and the
 * slot takes a proper worker afterwards (unix only: nng checks sizes itself,
 * NNG_OPT_RECVMAXSZ). */
static void test_bad_length(const char *dir)
{
    static const unsigned char huge[4] = {0xff, 0xff, 0xff, 0x7f};
    char url[256], hello[4];
    ipc_conn *l, *w;

    if (transport != IPC_TRANSPORT_UNIX) return;
    ipc_slot_url(dir, 3, transport, url, sizeof(url));
    CHECK_EQ(xlisten(url, on_recv, &inbox, &l), 0);
    int fd = raw_connect(url);
    CHECK_EQ(read(fd, hello, 4), 4); /* accepted */
    CHECK_EQ(write(fd, huge, 4), 4);
    CHECK_EQ(read(fd, hello, 1), 0); /* and dropped */
    close(fd);
    CHECK_EQ(ipc_dial(url, 2000, &w), 0);
    ready(w, "3");
    xclose(w);
    xclose(l);
}

/* ---- a waiting worker is woken by frames only ----------------------------- *
 * A worker waiting for its next frame must not be woken when the supervisor
 * reads what the worker sent before (a Unix stream socket wakes every task
 * asleep in recv() on it when its peer frees room to write). The supervisor
 * side here is a bare socket, so the test decides when that read happens:
 * after the worker thread has gone to sleep in ipc_recv. It runs without
 * ipc_set_due, with a due callback that says no frame is on its way (the
 * worker must wait in poll(), not woken either), and with one that says a
 * frame is (the worker sleeps in recv() and must still get every frame). */

enum { SPURIOUS_ROUNDS = 20 };
enum { DUE_UNSET, DUE_NONE, DUE_COMING };

static struct {
    const char *url;
    pid_t tid;
    int due;       /* DUE_* */
    int due_calls; /* how often ipc_recv asked */
} sw;

static int spurious_due(void *arg)
{
    CHECK(arg == &sw);
    __atomic_fetch_add(&sw.due_calls, 1, __ATOMIC_RELAXED);
    return sw.due == DUE_COMING;
}

static void *spurious_worker(void *arg)
{
    ipc_conn *w;

    (void)arg;
    __atomic_store_n(&sw.tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    CHECK_EQ(ipc_dial(sw.url, 5000, &w), 0);
    if (sw.due != DUE_UNSET) ipc_set_due(w, spurious_due, &sw);
    for (uint64_t id = 1; id <= SPURIOUS_ROUNDS; id++) {
        size_t len;
        char *buf;
        send_frame(w, IPC_RESPONSE, id, "200", "reply");
        CHECK_EQ(ipc_recv(w, -1, &buf, &len), 0); /* as a worker waits: no timeout */
        CHECK_EQ(ipc_decode(buf, len, &frame), 0);
        CHECK_EQ(frame.type, IPC_REQUEST);
        CHECK_EQ(frame.id, id);
        free(buf);
    }
    ipc_close(w);
    return NULL;
}

/* Field `key` of /proc/self/task/TID/status, or the state letter of
 * /proc/self/task/TID/stat when key is NULL. */
static long task_value(pid_t tid, const char *key)
{
    char path[64], line[256];
    long v = -1;

    snprintf(path, sizeof(path), "/proc/self/task/%d/%s", (int)tid, key ? "status" : "stat");
    FILE *f = fopen(path, "r");
    CHECK(f != NULL);
    while (fgets(line, sizeof(line), f)) {
        if (!key) {
            const char *e = strrchr(line, ')'); /* "pid (comm) S ..." */
            CHECK(e != NULL && e[1] == ' ');
            v = e[2];
            break;
        }
        if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
            v = strtol(line + strlen(key) + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    CHECK(v >= 0);
    return v;
}

static void read_full(int fd, char *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t r = read(fd, buf + got, len - got);
        CHECK(r > 0);
        got += (size_t)r;
    }
}

static void test_no_spurious_wakeup(const char *dir, int due)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char url[256], *buf;
    size_t len;
    pthread_t t;
    int woken = 0;

    if (transport != IPC_TRANSPORT_UNIX) return;
    sw.due = due;
    sw.due_calls = 0;
    sw.tid = 0;
    ipc_slot_url(dir, 11, transport, url, sizeof(url));
    CHECK(strlen(url + 7) < sizeof(sa.sun_path));
    strcpy(sa.sun_path, url + 7); /* after "unix://" */
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(lfd >= 0);
    CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    CHECK_EQ(listen(lfd, 1), 0);
    sw.url = url;
    CHECK_EQ(pthread_create(&t, NULL, spurious_worker, NULL), 0);
    int fd = accept(lfd, NULL, NULL);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "\0\0\0\0", 4), 4); /* the hello */
    pid_t tid = __atomic_load_n(&sw.tid, __ATOMIC_ACQUIRE);
    CHECK(tid > 0);
    for (uint64_t id = 1; id <= SPURIOUS_ROUNDS; id++) {
        struct pollfd p = {fd, POLLIN, 0};
        CHECK_EQ(poll(&p, 1, 5000), 1); /* the worker's reply is there */
        int i = 0;
        while (task_value(tid, NULL) != 'S' && i++ < 500) /* asleep, waiting for a frame */
            sleep_ms(10);
        CHECK_EQ(task_value(tid, NULL), 'S');
        long before = task_value(tid, "voluntary_ctxt_switches");
        char hdr[4];
        read_full(fd, hdr, 4);
        uint32_t n = (uint32_t)(unsigned char)hdr[0] | (uint32_t)(unsigned char)hdr[1] << 8 |
                     (uint32_t)(unsigned char)hdr[2] << 16 | (uint32_t)(unsigned char)hdr[3] << 24;
        CHECK(n > 0 && n < 4096);
        char body[4096];
        read_full(fd, body, n);
        sleep_ms(50);
        woken += task_value(tid, "voluntary_ctxt_switches") != before;
        ipc_field f[2] = {fld("GET"), fld("/")};
        CHECK_EQ(ipc_encode(IPC_REQUEST, id, f, 2, &buf, &len), 0);
        char lenb[4] = {(char)(len & 0xff), (char)(len >> 8 & 0xff), (char)(len >> 16 & 0xff),
                        (char)(len >> 24)};
        CHECK_EQ(write(fd, lenb, 4), 4);
        CHECK_EQ(write(fd, buf, len), (ssize_t)len);
        free(buf);
    }
    CHECK_EQ(pthread_join(t, NULL), 0);
    if (due != DUE_UNSET) CHECK(sw.due_calls >= SPURIOUS_ROUNDS);
    if (woken > 0 && due != DUE_COMING)
        fprintf(stderr,
                "a worker waiting in ipc_recv (due %d) was woken %d time(s) out of %d when its "
                "reply was read\n",
                due, woken, SPURIOUS_ROUNDS);
    if (due != DUE_COMING) CHECK_EQ(woken, 0);
    close(fd);
    close(lfd);
    unlink(url + 7);
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/sxpool-ipc-XXXXXX", url[256], cmd[300];
    ipc_conn *l, *w;

    if (argc == 3 && strcmp(argv[1], "child-worker") == 0) return child_worker(argv[2]);
    /* resolved now: under valgrind, exec of /proc/self/exe would run valgrind's tool */
    CHECK(realpath("/proc/self/exe", self_exe) != NULL);
    if (argc == 4 && strcmp(argv[1], "child-close-race") == 0) {
        transport = ipc_transport_parse(argv[3]);
        _exit(child_close_race(argv[2])); /* an abandoned close is left behind */
    }
    on_loop = argc > 1 && strcmp(argv[1], "unix-loop") == 0;
    transport = on_loop ? IPC_TRANSPORT_UNIX : ipc_transport_parse(argc > 1 ? argv[1] : NULL);
    if (transport < 0) {
        fprintf(stderr, "usage: test_ipc_transport [unix|unix-loop|nng]\n");
        return 2;
    }
    if (on_loop) {
        signal(SIGPIPE, SIG_IGN); /* libuv writes with write(2), as the supervisor does */
        loop_start();
    }
    CHECK(mkdtemp(dir) != NULL);
    ipc_slot_url(dir, 0, transport, url, sizeof(url));
    CHECK_EQ(xlisten(url, on_recv, &inbox, &l), 0);
    CHECK_EQ(ipc_dial(url, 2000, &w), 0);

    test_both_ways(url, l, w);
    test_large(l, w);
    test_timeout(w);
    test_queue_full(l, w);
    test_slot_taken(url, l);
    xclose(w);
    wait_peer_gone(l);
    CHECK_EQ(xrestart(l), 0); /* the refused dialer may have hung up early */
    test_next_worker(url, l);
    xclose(l);

    test_no_peer(dir);
    test_dial_timeout(dir);
    test_restart(dir);
    test_close_race(dir);
    test_bad_length(dir);
    test_no_spurious_wakeup(dir, DUE_UNSET);
    test_no_spurious_wakeup(dir, DUE_NONE);
    test_no_spurious_wakeup(dir, DUE_COMING);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
    if (on_loop) loop_stop();
    printf("test_ipc_transport %s: ok\n", on_loop ? "unix-loop" : ipc_transport_name(transport));
    return 0;
}
