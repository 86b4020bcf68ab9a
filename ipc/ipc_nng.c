/* ipc_nng.c: the nng transport (ipc://), one PAIR1 socket per worker slot.
 * Selected with --transport=nng; the default is ipc_unix.c.
 *
 * Two roles share struct ipc__nng:
 *
 * Listener (supervisor). ipc_listen() keeps one receive aio armed; its
 * callback runs on an nng thread, hands the body to on_recv, frees the
 * message and re-arms. ipc_send() never blocks: it copies the frame into an
 * nng message and either hands it to the one send aio or appends it to a
 * bounded FIFO (IPC__SENDQ_MAX) that the send callback drains in order. A
 * full FIFO is an error returned to the caller, never a silent drop.
 *   Frames go only to the worker that is connected when ipc_send() is called.
 * PAIR1 would otherwise keep a frame queued while no peer is connected and
 * give it to the next process that dials the slot (a respawned worker would
 * receive its dead predecessor's REQUEST or SHUTDOWN). So the listener
 * tracks the accepted pipe (ADD_POST): with no peer ipc_send() returns
 * IPC_ECLOSED, and when that pipe is removed (REM_POST) the FIFO is emptied,
 * the in-flight send is cancelled and the number of frames lost is logged.
 *
 * Accept handshake. PAIR1 takes one peer: a worker that dials while the
 * slot's old pipe is not yet torn down is connected and then dropped, and
 * whatever it sent (its READY) is lost. So when the listener accepts a pipe
 * it sends one empty message (frames are never empty), and ipc_dial()
 * returns only once that message arrived; until then a dropped pipe just
 * makes nng's dialer connect again. Empty messages never reach on_recv or
 * ipc_recv().
 *
 * Listener restarts. In nng 1.5.2 a dialer that goes away while the
 * connection is being set up (before the SP headers are exchanged: a worker
 * killed right after connect(), or one that gave up) can end the listener's
 * accept loop for good: the handshake's EPIPE reaches the listener as
 * NNG_ECLOSED, which nng takes for "listener closed", and the slot accepts
 * no one after that. ipc_listen_restart() closes the nng listener and
 * listens again; the supervisor calls it before it starts a worker for an
 * empty slot.
 *
 * Dialer (worker). Blocking calls from one thread at a time. ipc_send() and
 * ipc_recv() each use their own aio without callback and wait on it; once
 * the accepted pipe is removed, both are aborted with NNG_ECLOSED and the
 * connection stays closed, so a worker whose supervisor went away gets
 * IPC_ECLOSED instead of hanging.
 *
 * Locking: c->mtx guards the queue and the peer state. It is taken by nng
 * callbacks and by callers; while holding it we only call nng functions that
 * complete aios asynchronously (nng_send_aio, nng_recv_aio, nng_sleep_aio,
 * nng_aio_abort, nng_aio_cancel), never nng_aio_wait/stop or nng_close, so
 * no lock cycle exists. Pipe-event callbacks touch only our state and aios,
 * never the socket: the hello is sent from an aio callback.
 *
 * Closing: ipc_close() marks the conn closing (no re-arming, no new sends),
 * stops its aios (waiting for their callbacks), closes the socket (which
 * waits for pipe callbacks), and only then frees anything. It must never run
 * from an nng callback, including on_recv. nng_close() runs on a helper
 * thread with a time limit because of an nng 1.5.2 race (close_bounded()):
 * close a socket when its peer has stopped sending, or is gone, and the race
 * cannot happen.
 */
#include "ipc/ipc_int.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Frames the listener may hold for one slot before ipc_send() says -EAGAIN. */
#define IPC__SENDQ_MAX 256
/* How long a worker's ipc_send() waits for the frame to leave. */
#define IPC__SEND_TIMEOUT_MS 10000
/* How soon a worker's dialer tries again after a refused or dropped pipe. */
#define IPC__RECONN_MIN_MS 10
#define IPC__RECONN_MAX_MS 200
/* How long ipc_close() waits for nng_close() (see close_bounded()). */
#define IPC__CLOSE_MS 2000
#define IPC__CLOSE_WEDGED_MS 100
/* nng counts PAIR1's 4-byte hop header in the size it checks on receipt. */
#define IPC__RECVMAX ((size_t)IPC_MAX_FRAME + 64)

typedef struct ipc__pending {
    struct ipc__pending *next;
    nng_msg *msg;
} ipc__pending;

typedef struct ipc__nng ipc__nng;

struct ipc__nng {
    ipc_conn base; /* first: ops */
    nng_socket sock;
    int listener;
    pthread_mutex_t mtx;
    int closing;
    atomic_int nng_err; /* last nng error behind an IPC_ENNG */
    uint32_t gone;      /* id of the last pipe removed */

    /* listener */
    char *url;
    nng_listener lst;
    ipc_recv_cb on_recv;
    void *arg;
    nng_aio *recv_aio;
    nng_aio *send_aio;
    nng_aio *hello_aio; /* defers the hello out of the pipe callback */
    ipc__pending *head, *tail;
    int npending;
    int sending;    /* send_aio holds a message */
    int hello_owed; /* the accepted peer has not been sent its hello */
    int hello_busy; /* hello_aio is scheduled */
    uint32_t peer;  /* id of the accepted pipe, 0 if none */

    /* dialer */
    nng_aio *wsend_aio;
    nng_aio *wrecv_aio;
    uint32_t accepted; /* pipe whose hello arrived, 0 until then */
    int lost;          /* the accepted pipe went away */
};

static int nng_to_ipc(ipc__nng *c, int rv)
{
    switch (rv) {
    case 0: return 0;
    case NNG_ETIMEDOUT: return IPC_ETIMEDOUT;
    case NNG_ECLOSED:
    case NNG_ECANCELED:
    case NNG_ECONNSHUT:
    case NNG_ECONNRESET: return IPC_ECLOSED;
    case NNG_ENOMEM: return -ENOMEM;
    default: break;
    }
    atomic_store(&c->nng_err, rv);
    return IPC_ENNG;
}

int ipc__nng_error(const ipc_conn *conn)
{
    return atomic_load(&((ipc__nng *)conn)->nng_err);
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- listener: send queue -------------------------------------------- */

/* Drops everything queued for the peer that went away. Called with mtx. */
static int flush_queue(ipc__nng *c)
{
    int n = 0;

    while (c->head != NULL) {
        ipc__pending *p = c->head;

        c->head = p->next;
        nng_msg_free(p->msg);
        free(p);
        n++;
    }
    c->tail = NULL;
    c->npending = 0;
    return n;
}

/* Hands msg to the send aio. Called with mtx held and !c->sending. */
static void start_send(ipc__nng *c, nng_msg *msg)
{
    c->sending = 1;
    nng_aio_set_msg(c->send_aio, msg);
    nng_send_aio(c->sock, c->send_aio);
}

/* Sends or queues msg for the current peer. Called with mtx held; on
 * success the conn owns msg, on error the caller still does. */
static int enqueue(ipc__nng *c, nng_msg *msg)
{
    ipc__pending *p;

    if (c->closing || c->peer == 0) return IPC_ECLOSED;
    if (!c->sending) {
        start_send(c, msg);
        return 0;
    }
    if (c->npending >= IPC__SENDQ_MAX) return -EAGAIN;
    p = malloc(sizeof(*p));
    if (p == NULL) return -ENOMEM;
    p->next = NULL;
    p->msg = msg;
    if (c->tail != NULL)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->npending++;
    return 0;
}

static void listener_send_cb(void *arg)
{
    ipc__nng *c = arg;
    int rv = nng_aio_result(c->send_aio);

    pthread_mutex_lock(&c->mtx);
    if (rv != 0) {
        /* On failure the message is still ours. */
        nng_msg_free(nng_aio_get_msg(c->send_aio));
        nng_aio_set_msg(c->send_aio, NULL);
        if (rv != NNG_ECANCELED && rv != NNG_ECLOSED)
            fprintf(stderr, "ipc: unable to send a frame: %s\n", nng_strerror(rv));
    }
    c->sending = 0;
    if (!c->closing && c->head != NULL) {
        ipc__pending *p = c->head;

        c->head = p->next;
        if (c->head == NULL) c->tail = NULL;
        c->npending--;
        start_send(c, p->msg);
        free(p);
    }
    pthread_mutex_unlock(&c->mtx);
}

static int listener_send(ipc__nng *c, nng_msg *msg)
{
    int rc;

    pthread_mutex_lock(&c->mtx);
    rc = enqueue(c, msg);
    pthread_mutex_unlock(&c->mtx);
    if (rc != 0) nng_msg_free(msg);
    return rc;
}

/* ---- listener: peer tracking and hello -------------------------------- */

static void hello_cb(void *arg)
{
    ipc__nng *c = arg;
    nng_msg *msg = NULL;
    int rv = 0;

    pthread_mutex_lock(&c->mtx);
    c->hello_busy = 0;
    if (!c->closing && c->hello_owed && c->peer != 0) {
        c->hello_owed = 0;
        if ((rv = nng_msg_alloc(&msg, 0)) == 0 && (rv = enqueue(c, msg)) != 0) nng_msg_free(msg);
    }
    pthread_mutex_unlock(&c->mtx);
    if (rv != 0)
        fprintf(stderr, "ipc: unable to greet a worker: %s\n",
                rv > 0 ? nng_strerror(rv) : ipc_strerror(rv));
}

static void listener_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    ipc__nng *c = arg;
    uint32_t id = (uint32_t)nng_pipe_id(pipe);
    int dropped = 0, closing;

    pthread_mutex_lock(&c->mtx);
    closing = c->closing;
    if (ev == NNG_PIPE_EV_ADD_POST && id != c->gone && c->peer == 0 && !closing) {
        c->peer = id;
        c->hello_owed = 1;
        if (!c->hello_busy) {
            c->hello_busy = 1;
            nng_sleep_aio(0, c->hello_aio);
        }
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        c->gone = id;
        if (c->peer == id) {
            c->peer = 0;
            c->hello_owed = 0;
            dropped = flush_queue(c) + c->sending;
            if (c->sending) nng_aio_cancel(c->send_aio);
        }
    }
    pthread_mutex_unlock(&c->mtx);
    if (dropped > 0 && !closing)
        fprintf(stderr, "ipc: dropped %d frame(s) queued for a peer that went away\n", dropped);
}

/* ---- listener: receive loop ------------------------------------------ */

static void listener_recv_cb(void *arg)
{
    ipc__nng *c = arg;
    int rv = nng_aio_result(c->recv_aio);
    nng_msg *msg;

    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) return;
    if (rv != 0) {
        fprintf(stderr, "ipc: unable to receive: %s\n", nng_strerror(rv));
        goto rearm;
    }
    msg = nng_aio_get_msg(c->recv_aio);
    nng_aio_set_msg(c->recv_aio, NULL);
    if (nng_msg_len(msg) > 0) c->on_recv(c->arg, nng_msg_body(msg), nng_msg_len(msg));
    nng_msg_free(msg);

rearm:
    pthread_mutex_lock(&c->mtx);
    if (!c->closing) nng_recv_aio(c->sock, c->recv_aio);
    pthread_mutex_unlock(&c->mtx);
}

/* ---- dialer ----------------------------------------------------------- */

static void dialer_pipe_cb(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
    ipc__nng *c = arg;
    uint32_t id = (uint32_t)nng_pipe_id(pipe);

    if (ev != NNG_PIPE_EV_REM_POST) return;
    pthread_mutex_lock(&c->mtx);
    c->gone = id;
    if (c->accepted != 0) {
        c->lost = 1;
        nng_aio_abort(c->wsend_aio, NNG_ECLOSED);
        nng_aio_abort(c->wrecv_aio, NNG_ECLOSED);
    }
    pthread_mutex_unlock(&c->mtx);
}

/* Starts an operation on aio unless the peer is gone, then waits for it. */
static int dialer_wait(ipc__nng *c, nng_aio *aio, int sending)
{
    pthread_mutex_lock(&c->mtx);
    if (c->lost || c->closing) {
        pthread_mutex_unlock(&c->mtx);
        return NNG_ECLOSED;
    }
    if (sending)
        nng_send_aio(c->sock, aio);
    else
        nng_recv_aio(c->sock, aio);
    pthread_mutex_unlock(&c->mtx);
    nng_aio_wait(aio);
    return nng_aio_result(aio);
}

static int dialer_send(ipc__nng *c, nng_msg *msg)
{
    int rv;

    nng_aio_set_msg(c->wsend_aio, msg);
    nng_aio_set_timeout(c->wsend_aio, IPC__SEND_TIMEOUT_MS);
    rv = dialer_wait(c, c->wsend_aio, 1);
    if (rv != 0) {
        nng_msg_free(msg);
        nng_aio_set_msg(c->wsend_aio, NULL);
    }
    return nng_to_ipc(c, rv);
}

/* Receives the next message before deadline (< 0: none). */
static int dialer_recv_msg(ipc__nng *c, long long deadline, nng_msg **out)
{
    nng_duration wait = NNG_DURATION_INFINITE;
    int rv;

    if (deadline >= 0) {
        long long left = deadline - now_ms();

        wait = left > 0 ? (nng_duration)left : NNG_DURATION_ZERO;
    }
    nng_aio_set_timeout(c->wrecv_aio, wait);
    rv = dialer_wait(c, c->wrecv_aio, 0);
    if (rv == 0) {
        *out = nng_aio_get_msg(c->wrecv_aio);
        nng_aio_set_msg(c->wrecv_aio, NULL);
    }
    return rv;
}

static int nng_conn_recv(ipc_conn *conn, int timeout_ms, char **buf, size_t *len)
{
    ipc__nng *c = (ipc__nng *)conn;
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    nng_msg *msg;
    size_t n;
    char *out;
    int rv;

    if (c == NULL || c->listener || buf == NULL || len == NULL) return -EINVAL;
    do { /* an empty message is a late hello: not a frame */
        if ((rv = dialer_recv_msg(c, deadline, &msg)) != 0) return nng_to_ipc(c, rv);
        n = nng_msg_len(msg);
        if (n == 0) nng_msg_free(msg);
    } while (n == 0);
    out = malloc(n + 1);
    if (out == NULL) {
        nng_msg_free(msg);
        return -ENOMEM;
    }
    memcpy(out, nng_msg_body(msg), n);
    out[n] = '\0';
    nng_msg_free(msg);
    *buf = out;
    *len = n;
    return 0;
}

/* Waits for the listener's hello. @return 0 or an nng error */
static int await_hello(ipc__nng *c, long long deadline)
{
    for (;;) {
        nng_msg *msg;
        uint32_t from;
        size_t n;
        int rv = dialer_recv_msg(c, deadline, &msg);

        if (rv != 0) return rv;
        from = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
        n = nng_msg_len(msg);
        nng_msg_free(msg);
        if (n != 0) continue; /* not ours to read yet; cannot happen with our listener */
        pthread_mutex_lock(&c->mtx);
        if (from != c->gone) c->accepted = from;
        pthread_mutex_unlock(&c->mtx);
        if (from != 0 && c->accepted == from) return 0;
        /* that pipe is already gone: wait for the dialer's next one */
    }
}

/* ---- closing ------------------------------------------------------------ */

/* Frees everything of c once its socket is closed and its aios stopped. */
static void conn_release(ipc__nng *c)
{
    flush_queue(c);
    nng_aio_free(c->recv_aio);
    nng_aio_free(c->send_aio);
    nng_aio_free(c->hello_aio);
    nng_aio_free(c->wrecv_aio);
    nng_aio_free(c->wsend_aio);
    pthread_mutex_destroy(&c->mtx);
    free(c->url);
    free(c);
}

/* nng 1.5.2 can hang in nng_close() forever: when a pipe is closed while its
 * transport is between two reads of one incoming message, the second read is
 * dropped without completing, and the pipe (and nng's one reaper thread)
 * waits for it for good. So the socket is closed on a helper thread and
 * waited for a bounded time; a close that does not finish is abandoned: the
 * helper keeps the conn and frees it if nng ever returns. After one such
 * hang, pipes of other sockets cannot be reaped either, so later closes
 * wait only briefly. */
typedef struct ipc__closer {
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    int done, abandoned;
    ipc__nng *c;
} ipc__closer;

static atomic_int ipc__wedged;

static void closer_free(ipc__closer *k)
{
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->mtx);
    free(k);
}

static void *close_thread(void *arg)
{
    ipc__closer *k = arg;
    int abandoned;

    nng_close(k->c->sock);
    pthread_mutex_lock(&k->mtx);
    k->done = 1;
    abandoned = k->abandoned;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mtx);
    if (abandoned) {
        conn_release(k->c);
        closer_free(k);
    }
    return NULL;
}

static ipc__closer *closer_new(ipc__nng *c)
{
    ipc__closer *k = calloc(1, sizeof(*k));
    pthread_condattr_t attr;

    if (k == NULL) return NULL;
    k->c = c;
    if (pthread_mutex_init(&k->mtx, NULL) != 0) {
        free(k);
        return NULL;
    }
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&k->cond, &attr) != 0) {
        pthread_condattr_destroy(&attr);
        pthread_mutex_destroy(&k->mtx);
        free(k);
        return NULL;
    }
    pthread_condattr_destroy(&attr);
    return k;
}

/* Closes c's socket, waiting at most timeout_ms. @return 1 if it closed */
static int close_bounded(ipc__nng *c, int timeout_ms)
{
    ipc__closer *k = closer_new(c);
    struct timespec until;
    pthread_t thr;
    int done;

    if (k == NULL || pthread_create(&thr, NULL, close_thread, k) != 0) {
        if (k != NULL) closer_free(k);
        nng_close(c->sock);
        return 1;
    }
    pthread_detach(thr);
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&k->mtx);
    while (!k->done && pthread_cond_timedwait(&k->cond, &k->mtx, &until) == 0)
        ;
    done = k->done;
    if (!done) k->abandoned = 1;
    pthread_mutex_unlock(&k->mtx);
    if (done) closer_free(k);
    return done;
}

static void conn_free(ipc__nng *c)
{
    nng_aio *aios[5] = {c->recv_aio, c->send_aio, c->hello_aio, c->wrecv_aio, c->wsend_aio};

    pthread_mutex_lock(&c->mtx);
    c->closing = 1;
    pthread_mutex_unlock(&c->mtx);
    for (int i = 0; i < 5; i++)
        if (aios[i] != NULL) nng_aio_stop(aios[i]);
    if (nng_socket_id(c->sock) > 0 &&
        !close_bounded(c, atomic_load(&ipc__wedged) ? IPC__CLOSE_WEDGED_MS : IPC__CLOSE_MS)) {
        atomic_store(&ipc__wedged, 1);
        fprintf(stderr, "ipc: unable to close a socket: nng_close did not return "
                        "(nng 1.5.2 close race); leaving it behind\n");
        return; /* the close thread now owns c */
    }
    conn_release(c);
}

/* ---- opening ------------------------------------------------------------ */

static int alloc_aios(ipc__nng *c)
{
    int rv;

    if (c->listener) {
        if ((rv = nng_aio_alloc(&c->recv_aio, listener_recv_cb, c)) != 0 ||
            (rv = nng_aio_alloc(&c->send_aio, listener_send_cb, c)) != 0 ||
            (rv = nng_aio_alloc(&c->hello_aio, hello_cb, c)) != 0)
            return rv;
        return 0;
    }
    if ((rv = nng_aio_alloc(&c->wrecv_aio, NULL, NULL)) != 0 ||
        (rv = nng_aio_alloc(&c->wsend_aio, NULL, NULL)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, IPC__RECONN_MIN_MS)) != 0 ||
        (rv = nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, IPC__RECONN_MAX_MS)) != 0)
        return rv;
    return 0;
}

/* Opens the socket with the options both sides use. */
static int conn_open(ipc__nng **out, int listener)
{
    ipc__nng *c = calloc(1, sizeof(*c));
    nng_pipe_cb pipe_cb = listener ? listener_pipe_cb : dialer_pipe_cb;
    int rv;

    if (c == NULL) return -ENOMEM;
    c->base.ops = &ipc__nng_ops;
    c->listener = listener;
    c->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
    if (pthread_mutex_init(&c->mtx, NULL) != 0) {
        free(c);
        return -ENOMEM;
    }
    if ((rv = nng_pair1_open(&c->sock)) != 0 ||
        (rv = nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, IPC__RECVMAX)) != 0 ||
        (rv = alloc_aios(c)) != 0 ||
        (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, c)) != 0 ||
        (rv = nng_pipe_notify(c->sock, NNG_PIPE_EV_REM_POST, pipe_cb, c)) != 0) {
        fprintf(stderr, "ipc: unable to open a pair1 socket: %s\n", nng_strerror(rv));
        conn_free(c);
        return rv == NNG_ENOMEM ? -ENOMEM : IPC_ENNG;
    }
    *out = c;
    return 0;
}

int ipc__nng_listen(const char *url, ipc_recv_cb on_recv, void *arg, ipc_conn **out)
{
    ipc__nng *c;
    int rc, rv;

    if (url == NULL || on_recv == NULL || out == NULL) return -EINVAL;
    if ((rc = conn_open(&c, 1)) != 0) return rc;
    c->on_recv = on_recv;
    c->arg = arg;
    if ((c->url = strdup(url)) == NULL) {
        conn_free(c);
        return -ENOMEM;
    }
    if ((rv = nng_listen(c->sock, url, &c->lst, 0)) != 0) {
        fprintf(stderr, "ipc: unable to listen on %s: %s\n", url, nng_strerror(rv));
        conn_free(c);
        return rv == NNG_ENOMEM ? -ENOMEM : IPC_ENNG;
    }
    nng_recv_aio(c->sock, c->recv_aio);
    *out = &c->base;
    return 0;
}

static int nng_conn_listen_restart(ipc_conn *conn)
{
    ipc__nng *c = (ipc__nng *)conn;
    int busy, rv;

    if (c == NULL || !c->listener) return -EINVAL;
    pthread_mutex_lock(&c->mtx);
    busy = c->peer != 0 || c->closing;
    pthread_mutex_unlock(&c->mtx);
    if (busy) return -EBUSY;
    nng_listener_close(c->lst); /* NNG_ENOENT if it was already gone */
    c->lst = (nng_listener)NNG_LISTENER_INITIALIZER;
    if ((rv = nng_listen(c->sock, c->url, &c->lst, 0)) != 0) {
        fprintf(stderr, "ipc: unable to listen again on %s: %s\n", c->url, nng_strerror(rv));
        return nng_to_ipc(c, rv);
    }
    return 0;
}

int ipc__nng_dial(const char *url, int timeout_ms, ipc_conn **out)
{
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    ipc__nng *c;
    int rc, rv;

    if (url == NULL || out == NULL) return -EINVAL;
    if ((rc = conn_open(&c, 0)) != 0) return rc;
    /* Non-blocking: nng's dialer keeps trying until the listener is there. */
    if ((rv = nng_dial(c->sock, url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        fprintf(stderr, "ipc: unable to dial %s: %s\n", url, nng_strerror(rv));
        conn_free(c);
        return rv == NNG_ENOMEM ? -ENOMEM : IPC_ENNG;
    }
    if ((rv = await_hello(c, deadline)) != 0) {
        rc = nng_to_ipc(c, rv);
        if (rc == IPC_ENNG) fprintf(stderr, "ipc: unable to dial %s: %s\n", url, nng_strerror(rv));
        conn_free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

static int nng_conn_send(ipc_conn *conn, const char *buf, size_t len)
{
    ipc__nng *c = (ipc__nng *)conn;
    nng_msg *msg;
    int rv;

    if (c == NULL || buf == NULL || len == 0)
        return -EINVAL; /* empty messages are the accept handshake */
    if (len > IPC_MAX_FRAME) return IPC_ETOOBIG;
    if ((rv = nng_msg_alloc(&msg, len)) != 0) return nng_to_ipc(c, rv);
    memcpy(nng_msg_body(msg), buf, len);
    return c->listener ? listener_send(c, msg) : dialer_send(c, msg);
}

static void nng_conn_close(ipc_conn *conn)
{
    conn_free((ipc__nng *)conn);
}

const ipc__ops ipc__nng_ops = {nng_conn_send, nng_conn_recv, nng_conn_listen_restart,
                               nng_conn_close};
