/* ipc_unix.c: the default transport (unix://), one Unix stream socket per
 * worker slot.
 *
 * The contract is ipc.h's, the one the nng transport keeps, with less
 * machinery between a frame and the process that waits for it: the
 * supervisor listens on RUNDIR/slot-N.sock, the slot's worker connects, and
 * every message travels as a 4-byte little-endian length followed by that
 * many bytes. A message of length 0 is the hello (below); the others are
 * frames, which are never empty.
 *
 * Listener (supervisor). A thread per slot owns the listening socket and
 * the peer's socket and waits in poll() for a connection, for bytes from
 * the peer (each complete frame is handed to on_recv from that thread),
 * for room to write what is queued, and for ipc_close(). ipc_send() runs
 * on any thread: under c->mtx it writes straight to the peer's socket,
 * without blocking, when nothing is queued, and queues what did not fit
 * (at most IPC__SENDQ_MAX frames) for the thread, which it wakes to watch
 * for room. The thread is the only reader of the peer's socket and the only
 * one to close it, under c->mtx, so a sender never writes to a descriptor
 * that was closed and reused.
 *
 * One peer per slot. A connection that arrives while the slot's peer is
 * alive is closed at once: the dialer sees that and tries again until its
 * timeout. A peer is alive until its socket reads EOF or fails; whatever it
 * wrote before it went away is read and delivered first, so a worker's
 * last frames are not lost to its successor's arrival. When the peer goes
 * away, the frames still queued for it are dropped and counted in a log
 * line: frames are never kept for the slot's next worker.
 *
 * Listener on a loop (ipc_listen_on_loop). The same listener without a
 * thread: the supervisor's libuv loop accepts, reads (on_recv runs on the
 * loop's thread) and writes (uv_try_write, then uv_write for the rest, at
 * most IPC__SENDQ_MAX frames waiting), and ipc_send() and ipc_close() are
 * called on that thread. It saves a thread hand-off per frame from a worker.
 * A peer's uv_pipe_t lives in a upeer of its own, freed by its close
 * callback, so a peer that is replaced or dropped can finish closing while
 * the slot already serves the next one.
 *
 * Hello. The listener writes an empty message to a peer it accepts;
 * ipc_dial() returns only once it has read it, so a worker knows it is the
 * slot's peer and not one that is about to be closed.
 *
 * Dialer (worker). Blocking calls from one thread at a time: every
 * recv() and send() passes MSG_DONTWAIT and waits in poll() (until its
 * deadline, if any) when the socket is not ready, except a read without a
 * deadline while a frame is known to be on its way (ipc_set_due), which
 * sleeps in recv(); see dialer_fill for why. A frame read only in
 * part when ipc_recv() times out stays buffered for the next call. Once
 * the peer is gone (EOF, a reset, a malformed length, or a send that timed
 * out with part of a frame written), every call returns IPC_ECLOSED.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ipc/ipc_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* Frames the listener may hold for one slot before ipc_send() says -EAGAIN. */
#define IPC__SENDQ_MAX 256
/* How long a worker's ipc_send() waits for room to write a frame. */
#define IPC__SEND_TIMEOUT_MS 10000
/* How soon a worker tries again after a refused or dropped connection. */
#define IPC__RECONN_MIN_MS 10
#define IPC__RECONN_MAX_MS 200
/* How much the listener reads from its peer at a time, at least. */
#define IPC__READ_CHUNK (64u << 10)
#define IPC__LEN 4

typedef struct upending {
    struct upending *next;
    size_t len, off; /* bytes of message (length prefix included), written */
    char buf[];
} upending;

typedef struct ubuf {
    char *p;
    size_t len, cap;
} ubuf;

typedef struct ipc__unix ipc__unix;

/* A peer of a listener on a loop. */
typedef struct upeer {
    uv_pipe_t pipe;
    ipc__unix *c;
    int nwrites; /* uv_write requests not completed */
    int dropped; /* no longer the slot's peer */
    /* While the frames of one read are delivered, what is sent to this
     * peer is gathered here and written at once afterwards: the answers to
     * several replies (the next requests) cost one system call, not one
     * each. */
    int corked;
    ubuf out;
} upeer;

typedef struct uwrite {
    uv_write_t req;
    upeer *peer;
    char buf[];
} uwrite;

struct ipc__unix {
    ipc_conn base; /* first: ops */
    int listener;
    int fd;       /* the peer's socket (dialer: ours), -1 if none */
    ubuf in;      /* bytes read and not yet delivered */
    unsigned gen; /* listener: changes whenever the peer does */

    /* listener */
    pthread_mutex_t mtx; /* guards fd, the queue, closing */
    pthread_t thread;
    int thread_started;
    int lfd;  /* the listening socket */
    int wake; /* eventfd: ipc_close() or a queued frame */
    int closing;
    char *path;
    ipc_recv_cb on_recv;
    void *arg;
    upending *head, *tail;
    int npending;

    /* listener on a loop */
    uv_loop_t *loop;
    uv_pipe_t lpipe;
    upeer *peer;
    int handles; /* open handles (lpipe, peers) that ipc_close waits for */

    /* dialer */
    int lost;
    int blocking;   /* fd is blocking (ipc_set_due): only recv(0) can sleep */
    ipc_due_cb due; /* is a frame on its way? (NULL: not known) */
    void *due_arg;
};

static int loop_peer_alive(ipc__unix *c);

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_len(char *dst, uint32_t n)
{
    dst[0] = (char)(n & 0xff);
    dst[1] = (char)((n >> 8) & 0xff);
    dst[2] = (char)((n >> 16) & 0xff);
    dst[3] = (char)(n >> 24);
}

static uint32_t get_len(const char *src)
{
    const unsigned char *s = (const unsigned char *)src;

    return (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
}

static int buf_reserve(ubuf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : IPC__READ_CHUNK;
    char *p;

    if (b->len + more <= b->cap) return 0;
    while (cap < b->len + more)
        cap *= 2;
    if ((p = realloc(b->p, cap)) == NULL) return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Moves the undelivered bytes in[from..len) to the front. */
static void buf_consume(ubuf *b, size_t from)
{
    if (from == 0) return;
    memmove(b->p, b->p + from, b->len - from);
    b->len -= from;
}

static void buf_free(ubuf *b)
{
    free(b->p);
    *b = (ubuf){0};
}

/* A peer is alive until its socket reads EOF or fails; one with bytes
 * still to read counts as alive until they are read. */
static int fd_alive(int fd)
{
    char b;
    ssize_t r;

    if (fd < 0) return 0;
    r = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return r > 0 || (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR));
}

/* Hands every complete frame in c->in to on_recv and keeps the rest; stops
 * if on_recv made the listener drop its peer (c->gen moved).
 * @return 0, or -1 if the peer must be dropped (a length above the limit,
 *         or no memory for a long frame), said in a log line */
static int deliver_frames(ipc__unix *c)
{
    unsigned gen = c->gen;
    size_t at = 0;

    while (c->gen == gen && c->in.len - at >= IPC__LEN) {
        uint32_t n = get_len(c->in.p + at);

        if (n > IPC_MAX_FRAME) {
            fprintf(stderr,
                    "ipc: the worker on %s sent a message of %u bytes, above the %u-byte "
                    "limit; dropping it\n",
                    c->path, n, IPC_MAX_FRAME);
            return -1;
        }
        if (c->in.len - at - IPC__LEN < n) {
            if (buf_reserve(&c->in, n + IPC__LEN - (c->in.len - at)) != 0) {
                fprintf(stderr, "ipc: out of memory reading from the worker on %s\n", c->path);
                return -1;
            }
            break;
        }
        if (n > 0) c->on_recv(c->arg, c->in.p + at + IPC__LEN, n);
        at += IPC__LEN + n;
    }
    if (c->gen == gen) buf_consume(&c->in, at);
    return 0;
}

static int fill_sun(struct sockaddr_un *sa, const char *path)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path)) return -ENAMETOOLONG;
    memcpy(sa->sun_path, path, strlen(path));
    return 0;
}

/* Writes as much of iov as the socket takes now. @return bytes or -errno */
static ssize_t write_some(int fd, const struct iovec *iov, int n)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
    ssize_t w;

    do
        w = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (w < 0 && errno == EINTR);
    if (w < 0) return errno == EWOULDBLOCK ? 0 : -errno;
    return w;
}

/* ---- listener ------------------------------------------------------------ */

static void wake_thread(ipc__unix *c)
{
    uint64_t one = 1;
    ssize_t w = write(c->wake, &one, sizeof one);

    (void)w; /* the counter only saturates; the thread wakes either way */
}

static int drop_queue(ipc__unix *c)
{
    int n = c->npending;

    while (c->head != NULL) {
        upending *p = c->head;

        c->head = p->next;
        free(p);
    }
    c->tail = NULL;
    c->npending = 0;
    return n;
}

/* The peer went away or misbehaved. Called with mtx, on the thread. */
static void drop_peer(ipc__unix *c)
{
    int dropped;

    if (c->fd < 0) return;
    close(c->fd);
    c->fd = -1;
    c->gen++;
    c->in.len = 0;
    dropped = drop_queue(c);
    if (dropped > 0 && !c->closing)
        fprintf(stderr, "ipc: dropped %d frame(s) queued for a peer that went away\n", dropped);
}

/* Appends msg[off..len) to the queue. Called with mtx. */
static int enqueue(ipc__unix *c, const char *hdr, const char *buf, size_t len, size_t off)
{
    size_t total = IPC__LEN + len;
    upending *p;

    if (c->npending >= IPC__SENDQ_MAX) return -EAGAIN;
    if ((p = malloc(sizeof(*p) + total)) == NULL) return -ENOMEM;
    p->next = NULL;
    p->len = total;
    p->off = off;
    memcpy(p->buf, hdr, IPC__LEN);
    memcpy(p->buf + IPC__LEN, buf, len);
    if (c->tail != NULL)
        c->tail->next = p;
    else
        c->head = p;
    c->tail = p;
    c->npending++;
    return 0;
}

/* Writes queued messages until the socket is full. Called with mtx.
 * @return 0, or -errno if the peer's socket failed */
static int flush_queue(ipc__unix *c)
{
    while (c->head != NULL) {
        upending *p = c->head;
        struct iovec iov = {p->buf + p->off, p->len - p->off};
        ssize_t w = write_some(c->fd, &iov, 1);

        if (w < 0) return (int)w;
        p->off += (size_t)w;
        if (p->off < p->len) return 0;
        c->head = p->next;
        if (c->head == NULL) c->tail = NULL;
        c->npending--;
        free(p);
    }
    return 0;
}

/* Sends or queues one message (len 0: the hello). Called with mtx. */
static int listener_put(ipc__unix *c, const char *buf, size_t len)
{
    char hdr[IPC__LEN];
    struct iovec iov[2];
    ssize_t w;

    if (c->closing || c->fd < 0) return IPC_ECLOSED;
    put_len(hdr, (uint32_t)len);
    if (c->head != NULL) return enqueue(c, hdr, buf, len, 0);
    iov[0] = (struct iovec){hdr, IPC__LEN};
    iov[1] = (struct iovec){(void *)buf, len};
    w = write_some(c->fd, iov, len > 0 ? 2 : 1);
    if (w < 0) return IPC_ECLOSED; /* the thread sees the reset and drops the peer */
    if ((size_t)w == IPC__LEN + len) return 0;
    int rc = enqueue(c, hdr, buf, len, (size_t)w);
    if (rc != 0 && w > 0) {
        /* Part of the frame is on the wire and the rest cannot follow: the
         * stream is unusable. The thread drops the peer on its next turn. */
        shutdown(c->fd, SHUT_RDWR);
        return IPC_ECLOSED;
    }
    if (rc == 0) wake_thread(c); /* to watch for room */
    return rc;
}

static int unix_listener_send(ipc__unix *c, const char *buf, size_t len)
{
    int rc;

    pthread_mutex_lock(&c->mtx);
    rc = listener_put(c, buf, len);
    pthread_mutex_unlock(&c->mtx);
    return rc;
}

/* Is the current peer still there? A peer whose socket has bytes to read
 * counts as alive until they are read. Called with mtx. */
static int peer_alive(ipc__unix *c)
{
    return fd_alive(c->fd);
}

static void accept_peer(ipc__unix *c)
{
    int fd = accept4(c->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            fprintf(stderr, "ipc: unable to accept on %s: %s\n", c->path, strerror(errno));
        return;
    }
    pthread_mutex_lock(&c->mtx);
    if (c->closing || peer_alive(c)) {
        close(fd); /* the slot has its worker: this one tries again */
    } else {
        drop_peer(c);
        c->fd = fd;
        c->gen++;
        if (listener_put(c, "", 0) != 0) drop_peer(c);
    }
    pthread_mutex_unlock(&c->mtx);
}

/* Reads what the peer sent and delivers every complete frame. Only the
 * thread reads c->fd and c->in, so on_recv runs without the lock.
 * @return 0, or -1 if the peer is gone (the caller drops it) */
static int read_peer(ipc__unix *c)
{
    for (;;) {
        ssize_t r;
        size_t asked;

        if (buf_reserve(&c->in, IPC__READ_CHUNK) != 0) {
            fprintf(stderr, "ipc: out of memory reading from the worker on %s\n", c->path);
            return -1;
        }
        asked = c->in.cap - c->in.len;
        do
            r = recv(c->fd, c->in.p + c->in.len, asked, MSG_DONTWAIT);
        while (r < 0 && errno == EINTR);
        if (r == 0) return -1;
        if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->in.len += (size_t)r;
        if (deliver_frames(c) != 0) return -1;
        if ((size_t)r < asked) return 0; /* drained for now */
    }
}

static void *listener_thread(void *arg)
{
    ipc__unix *c = arg;

    for (;;) {
        struct pollfd p[3] = {{c->wake, POLLIN, 0}, {c->lfd, POLLIN, 0}, {-1, 0, 0}};
        int fd;

        pthread_mutex_lock(&c->mtx);
        if (c->closing) {
            pthread_mutex_unlock(&c->mtx);
            break;
        }
        fd = c->fd;
        p[2] = (struct pollfd){fd, (short)(POLLIN | (c->head != NULL ? POLLOUT : 0)), 0};
        pthread_mutex_unlock(&c->mtx);
        if (poll(p, fd >= 0 ? 3 : 2, -1) < 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "ipc: poll on %s failed: %s\n", c->path, strerror(errno));
            break;
        }
        if (p[0].revents) {
            uint64_t n;
            ssize_t r = read(c->wake, &n, sizeof n);

            (void)r;
        }
        /* The peer first: what a dead worker wrote is delivered before its
         * successor is accepted. */
        if (fd >= 0 && (p[2].revents & (POLLIN | POLLHUP | POLLERR)) && read_peer(c) != 0) {
            pthread_mutex_lock(&c->mtx);
            drop_peer(c);
            pthread_mutex_unlock(&c->mtx);
            fd = -1;
        }
        if (fd >= 0 && (p[2].revents & POLLOUT)) {
            pthread_mutex_lock(&c->mtx);
            if (c->fd >= 0 && flush_queue(c) != 0) drop_peer(c);
            pthread_mutex_unlock(&c->mtx);
        }
        if (p[1].revents & POLLIN) accept_peer(c);
    }
    return NULL;
}

static void listener_free(ipc__unix *c)
{
    if (c->thread_started) {
        pthread_mutex_lock(&c->mtx);
        c->closing = 1;
        pthread_mutex_unlock(&c->mtx);
        wake_thread(c);
        pthread_join(c->thread, NULL);
    }
    pthread_mutex_lock(&c->mtx);
    drop_peer(c);
    pthread_mutex_unlock(&c->mtx);
    if (c->lfd >= 0) {
        close(c->lfd);
        if (c->path) unlink(c->path);
    }
    if (c->wake >= 0) close(c->wake);
    pthread_mutex_destroy(&c->mtx);
    buf_free(&c->in);
    free(c->path);
    free(c);
}

/* A listener's common part, for either kind. @return it, or NULL with *rc */
static ipc__unix *listener_new(const char *path, ipc_recv_cb on_recv, void *arg,
                               struct sockaddr_un *sa, int *rc)
{
    ipc__unix *c;

    if ((*rc = fill_sun(sa, path)) != 0) {
        fprintf(stderr, "ipc: unable to listen on %s: the path is too long\n", path);
        return NULL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL || (c->path = strdup(path)) == NULL) {
        free(c);
        *rc = -ENOMEM;
        return NULL;
    }
    c->base.ops = &ipc__unix_ops;
    c->listener = 1;
    c->fd = c->lfd = c->wake = -1;
    c->on_recv = on_recv;
    c->arg = arg;
    return c;
}

int ipc__unix_listen(const char *path, ipc_recv_cb on_recv, void *arg, ipc_conn **out)
{
    struct sockaddr_un sa;
    int rc;
    ipc__unix *c = listener_new(path, on_recv, arg, &sa, &rc);

    if (c == NULL) return rc;
    if (pthread_mutex_init(&c->mtx, NULL) != 0) {
        free(c->path);
        free(c);
        return -ENOMEM;
    }
    if ((c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
        (c->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
        rc = -errno;
        fprintf(stderr, "ipc: unable to listen on %s: %s\n", path, strerror(errno));
        goto fail;
    }
    (void)unlink(path); /* a socket file left by a listener that is gone */
    if (bind(c->lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(c->lfd, 8) != 0) {
        rc = -errno;
        fprintf(stderr, "ipc: unable to listen on %s: %s\n", path, strerror(errno));
        close(c->lfd);
        c->lfd = -1; /* not ours to unlink */
        goto fail;
    }
    if ((rc = pthread_create(&c->thread, NULL, listener_thread, c)) != 0) {
        rc = -rc;
        fprintf(stderr, "ipc: unable to start the thread for %s: %s\n", path, strerror(-rc));
        goto fail;
    }
    c->thread_started = 1;
    *out = &c->base;
    return 0;
fail:
    listener_free(c);
    return rc;
}

static int unix_listen_restart(ipc_conn *conn)
{
    ipc__unix *c = (ipc__unix *)conn;
    int busy;

    if (!c->listener) return -EINVAL;
    if (c->loop) return c->closing || loop_peer_alive(c) ? -EBUSY : 0;
    pthread_mutex_lock(&c->mtx);
    busy = c->closing || peer_alive(c);
    pthread_mutex_unlock(&c->mtx);
    return busy ? -EBUSY : 0;
}

/* ---- listener on a loop -------------------------------------------------- */

static void loop_conn_release(ipc__unix *c)
{
    if (--c->handles > 0) return;
    buf_free(&c->in);
    free(c->path);
    free(c);
}

static void on_peer_closed(uv_handle_t *h)
{
    upeer *p = (upeer *)h;
    ipc__unix *c = p->c;

    buf_free(&p->out);
    free(p);
    loop_conn_release(c);
}

/* Stops using the current peer: what is still being written to it is
 * cancelled (its callbacks run before the close callback). */
static void loop_drop_peer(ipc__unix *c)
{
    upeer *p = c->peer;

    if (p == NULL) return;
    c->peer = NULL;
    c->gen++;
    c->in.len = 0;
    p->dropped = 1;
    if (p->nwrites > 0 && !c->closing)
        fprintf(stderr, "ipc: dropped %d frame(s) queued for a peer that went away\n", p->nwrites);
    uv_close((uv_handle_t *)&p->pipe, on_peer_closed);
}

static void on_write(uv_write_t *req, int status)
{
    uwrite *w = (uwrite *)req;

    w->peer->nwrites--;
    if (status < 0 && status != UV_ECANCELED && !w->peer->dropped)
        fprintf(stderr, "ipc: unable to send a frame: %s\n", uv_strerror(status));
    free(w);
}

/* Queues bytes [off..) of a message for uv_write. */
static int loop_queue(upeer *p, const char *hdr, const char *buf, size_t len, size_t off)
{
    size_t total = IPC__LEN + len;
    uwrite *w;
    uv_buf_t b;
    int err;

    if (p->nwrites >= IPC__SENDQ_MAX) return -EAGAIN;
    if ((w = malloc(sizeof(*w) + total - off)) == NULL) return -ENOMEM;
    w->peer = p;
    if (off < IPC__LEN) {
        memcpy(w->buf, hdr + off, IPC__LEN - off);
        memcpy(w->buf + IPC__LEN - off, buf, len);
    } else {
        memcpy(w->buf, buf + (off - IPC__LEN), total - off);
    }
    b = uv_buf_init(w->buf, (unsigned)(total - off));
    if ((err = uv_write(&w->req, (uv_stream_t *)&p->pipe, &b, 1, on_write)) != 0) {
        free(w);
        return IPC_ECLOSED;
    }
    p->nwrites++;
    return 0;
}

static void loop_uncork(ipc__unix *c, upeer *p);

static int loop_send(ipc__unix *c, const char *buf, size_t len)
{
    upeer *p = c->peer;
    char hdr[IPC__LEN];
    uv_buf_t b[2];
    int n = 0, w, rc;

    if (c->closing || p == NULL) return IPC_ECLOSED;
    put_len(hdr, (uint32_t)len);
    if (p->corked && p->out.len + IPC__LEN + len > IPC__READ_CHUNK && p->out.len > 0) {
        loop_uncork(c, p); /* a large frame goes on its own */
        p->out.len = 0;
        if (c->peer != p) return IPC_ECLOSED;
    }
    if (p->nwrites > 0) return loop_queue(p, hdr, buf, len, 0);
    if (p->corked && IPC__LEN + len <= IPC__READ_CHUNK) {
        if (buf_reserve(&p->out, IPC__LEN + len) != 0) return -ENOMEM;
        memcpy(p->out.p + p->out.len, hdr, IPC__LEN);
        memcpy(p->out.p + p->out.len + IPC__LEN, buf, len);
        p->out.len += IPC__LEN + len;
        return 0;
    }
    b[n++] = uv_buf_init(hdr, IPC__LEN);
    if (len > 0) b[n++] = uv_buf_init((char *)buf, (unsigned)len);
    w = uv_try_write((uv_stream_t *)&p->pipe, b, (unsigned)n);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) return IPC_ECLOSED; /* the read side sees the reset and drops the peer */
    if ((size_t)w == IPC__LEN + len) return 0;
    rc = loop_queue(p, hdr, buf, len, (size_t)w);
    if (rc != 0 && w > 0) {
        /* Half a frame is on the wire and the rest cannot follow. */
        loop_drop_peer(c);
        return IPC_ECLOSED;
    }
    return rc;
}

/* Writes what was gathered while p was corked, queueing what the socket
 * does not take at once (nothing was queued before it: loop_send). */
static void loop_uncork(ipc__unix *c, upeer *p)
{
    uv_buf_t b = uv_buf_init(p->out.p, (unsigned)p->out.len);
    int w = uv_try_write((uv_stream_t *)&p->pipe, &b, 1);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) return; /* the read side sees the reset and drops the peer */
    if ((size_t)w == p->out.len) return;
    uwrite *q = malloc(sizeof(*q) + p->out.len - (size_t)w);
    if (q == NULL) {
        loop_drop_peer(c); /* frames cut in half cannot be finished */
        return;
    }
    q->peer = p;
    memcpy(q->buf, p->out.p + w, p->out.len - (size_t)w);
    b = uv_buf_init(q->buf, (unsigned)(p->out.len - (size_t)w));
    if (uv_write(&q->req, (uv_stream_t *)&p->pipe, &b, 1, on_write) != 0) {
        free(q);
        loop_drop_peer(c);
        return;
    }
    p->nwrites++;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    ipc__unix *c = ((upeer *)h)->c;

    (void)suggested;
    if (buf_reserve(&c->in, IPC__READ_CHUNK) != 0) {
        *b = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
        return;
    }
    *b = uv_buf_init(c->in.p + c->in.len, (unsigned)(c->in.cap - c->in.len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    upeer *p = (upeer *)st;
    ipc__unix *c = p->c;

    (void)b;
    if (p != c->peer) return;
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            fprintf(stderr, "ipc: out of memory reading from the worker on %s\n", c->path);
        loop_drop_peer(c);
        return;
    }
    c->in.len += (size_t)nread;
    p->corked = 1;
    int bad = deliver_frames(c);
    p->corked = 0;
    if (bad != 0 && c->peer == p) loop_drop_peer(c);
    if (p->out.len > 0 && c->peer == p) loop_uncork(c, p);
    p->out.len = 0;
}

static int loop_peer_alive(ipc__unix *c)
{
    uv_os_fd_t fd;

    if (c->peer == NULL || uv_fileno((uv_handle_t *)&c->peer->pipe, &fd) != 0) return 0;
    return fd_alive(fd);
}

static void on_connection(uv_stream_t *server, int status)
{
    ipc__unix *c = server->data;
    upeer *p;

    if (status < 0) {
        fprintf(stderr, "ipc: unable to accept on %s: %s\n", c->path, uv_strerror(status));
        return;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL || uv_pipe_init(c->loop, &p->pipe, 0) != 0) {
        free(p);
        fprintf(stderr, "ipc: unable to accept on %s: out of memory\n", c->path);
        return;
    }
    p->c = c;
    c->handles++;
    if (uv_accept(server, (uv_stream_t *)&p->pipe) != 0 || c->closing || loop_peer_alive(c)) {
        uv_close((uv_handle_t *)&p->pipe, on_peer_closed); /* it tries again */
        return;
    }
    loop_drop_peer(c);
    c->peer = p;
    c->gen++;
    if (loop_send(c, "", 0) != 0 || uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read) != 0)
        loop_drop_peer(c);
}

static void on_lpipe_closed(uv_handle_t *h)
{
    loop_conn_release(h->data);
}

static void loop_close(ipc__unix *c)
{
    c->closing = 1;
    loop_drop_peer(c);
    uv_close((uv_handle_t *)&c->lpipe, on_lpipe_closed); /* libuv unlinks the path */
}

int ipc__unix_listen_on_loop(uv_loop_t *loop, const char *path, ipc_recv_cb on_recv, void *arg,
                             ipc_conn **out)
{
    struct sockaddr_un sa;
    int err;
    ipc__unix *c = listener_new(path, on_recv, arg, &sa, &err);

    if (c == NULL) return err;
    c->loop = loop;
    if ((err = uv_pipe_init(loop, &c->lpipe, 0)) != 0) {
        free(c->path);
        free(c);
        return err;
    }
    c->lpipe.data = c;
    c->handles = 1;
    (void)unlink(path); /* a socket file left by a listener that is gone */
    if ((err = uv_pipe_bind(&c->lpipe, path)) != 0 ||
        (err = uv_listen((uv_stream_t *)&c->lpipe, 8, on_connection)) != 0) {
        fprintf(stderr, "ipc: unable to listen on %s: %s\n", path, uv_strerror(err));
        c->closing = 1;
        uv_close((uv_handle_t *)&c->lpipe, on_lpipe_closed);
        return err;
    }
    *out = &c->base;
    return 0;
}

/* ---- dialer -------------------------------------------------------------- */

/* Waits for fd to be ready for `events` until deadline (-1: forever).
 * @return 1 ready, 0 timed out, -errno */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        long long left = deadline < 0 ? -1 : deadline - now_ms();
        int r;

        if (deadline >= 0 && left < 0) left = 0;
        r = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (r > 0) return 1;
        if (r == 0) {
            if (deadline >= 0 && now_ms() >= deadline) return 0;
            continue;
        }
        if (errno != EINTR) return -errno;
    }
}

/* Reads until c->in holds at least `want` bytes. @return 0, IPC_ETIMEDOUT,
 * IPC_ECLOSED (EOF or an error: the peer is gone) or -ENOMEM */
static int dialer_fill(ipc__unix *c, size_t want, long long deadline)
{
    int polled = 0;

    while (c->in.len < want) {
        ssize_t r;
        int flags = MSG_DONTWAIT;

        if (buf_reserve(&c->in, want - c->in.len > IPC__READ_CHUNK ? want - c->in.len
                                                                   : IPC__READ_CHUNK) != 0)
            return -ENOMEM;
        /* A task asleep in recv() on a Unix stream socket is woken, for
         * nothing, each time the peer reads what this side wrote (the
         * write-space callback wakes every waiter on the socket): a worker
         * waiting for its next request that way was woken once per reply
         * it had sent. poll() waits only for POLLIN. So a read sleeps in
         * recv() only when a frame is known to be on its way (the wait is
         * short, and the supervisor has read the replies before it sent
         * it, or is reading them as it does), and otherwise waits in
         * poll() first, without a recv() that would find nothing. Without
         * ipc_set_due: recv(MSG_DONTWAIT), and poll() if it found nothing. */
        if (deadline < 0 && c->due != NULL && !polled) {
            if (c->due(c->due_arg)) {
                flags = 0;
            } else {
                r = wait_fd(c->fd, POLLIN, -1);
                if (r < 0) return IPC_ECLOSED;
                polled = 1;
            }
        }
        r = recv(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len, flags);
        if (r > 0) {
            c->in.len += (size_t)r;
            polled = 0;
            continue;
        }
        if (r == 0) return IPC_ECLOSED;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return IPC_ECLOSED;
        r = wait_fd(c->fd, POLLIN, deadline);
        if (r == 0) return IPC_ETIMEDOUT;
        if (r < 0) return IPC_ECLOSED;
    }
    return 0;
}

/* Takes the next message out of the stream. @return as dialer_fill, or
 * IPC_ECLOSED for a length above the limit */
static int dialer_next(ipc__unix *c, long long deadline, uint32_t *len)
{
    int rc;
    uint32_t n;

    if ((rc = dialer_fill(c, IPC__LEN, deadline)) != 0) return rc;
    n = get_len(c->in.p);
    if (n > IPC_MAX_FRAME) {
        fprintf(stderr, "ipc: the supervisor sent a message of %u bytes, above the %u-byte limit\n",
                n, IPC_MAX_FRAME);
        return IPC_ECLOSED;
    }
    if ((rc = dialer_fill(c, IPC__LEN + (size_t)n, deadline)) != 0) return rc;
    *len = n;
    return 0;
}

static int unix_dialer_recv(ipc__unix *c, int timeout_ms, char **buf, size_t *len)
{
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    uint32_t n;
    int rc;

    if (c->lost) return IPC_ECLOSED;
    do { /* an empty message is a hello: not a frame */
        if ((rc = dialer_next(c, deadline, &n)) != 0) {
            if (rc == IPC_ECLOSED) c->lost = 1;
            return rc;
        }
        if (n == 0) buf_consume(&c->in, IPC__LEN);
    } while (n == 0);
    char *out = malloc((size_t)n + 1);
    if (out == NULL) return -ENOMEM;
    memcpy(out, c->in.p + IPC__LEN, n);
    out[n] = '\0';
    buf_consume(&c->in, IPC__LEN + (size_t)n);
    *buf = out;
    *len = n;
    return 0;
}

void ipc__unix_set_due(ipc_conn *conn, ipc_due_cb due, void *arg)
{
    ipc__unix *c = (ipc__unix *)conn;
    int fl;

    if (c->listener || c->fd < 0) return;
    /* Every other call passes MSG_DONTWAIT: only recv(0) blocks. */
    if (!c->blocking) {
        fl = fcntl(c->fd, F_GETFL);
        if (fl < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) != 0) return; /* poll() it is */
        c->blocking = 1;
    }
    c->due = due;
    c->due_arg = arg;
}

static int unix_dialer_send(ipc__unix *c, const char *buf, size_t len)
{
    long long deadline = now_ms() + IPC__SEND_TIMEOUT_MS;
    char hdr[IPC__LEN];
    size_t done = 0, total = IPC__LEN + len;

    if (c->lost) return IPC_ECLOSED;
    put_len(hdr, (uint32_t)len);
    while (done < total) {
        struct iovec iov[2];
        int n = 0;
        ssize_t w;

        if (done < IPC__LEN) iov[n++] = (struct iovec){hdr + done, IPC__LEN - done};
        size_t boff = done < IPC__LEN ? 0 : done - IPC__LEN;
        iov[n++] = (struct iovec){(void *)(buf + boff), len - boff};
        w = write_some(c->fd, iov, n);
        if (w < 0) {
            c->lost = 1;
            return IPC_ECLOSED;
        }
        done += (size_t)w;
        if (done < total && w == 0) {
            int r = wait_fd(c->fd, POLLOUT, deadline);

            if (r <= 0) {
                if (done > 0) c->lost = 1; /* the stream holds half a frame */
                return r == 0 ? IPC_ETIMEDOUT : IPC_ECLOSED;
            }
        }
    }
    return 0;
}

/* Connects and waits for the hello. @return 0, 1 (refused or dropped: try
 * again), IPC_ETIMEDOUT or -errno */
static int dial_once(ipc__unix *c, const struct sockaddr_un *sa, long long deadline)
{
    uint32_t n;
    int rc;

    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -errno;
    /* A Unix socket connects at once or not at all; EAGAIN is a full backlog. */
    if (connect(c->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
        rc = errno == ENOENT || errno == ECONNREFUSED || errno == EAGAIN ? 1 : -errno;
        goto fail;
    }
    rc = dialer_next(c, deadline, &n);
    if (rc == 0 && n == 0) {
        buf_consume(&c->in, IPC__LEN);
        return 0;
    }
    if (rc == 0) rc = 1; /* not a hello: not the slot's listener */
    if (rc == IPC_ECLOSED) rc = 1;
fail:
    close(c->fd);
    c->fd = -1;
    c->in.len = 0;
    return rc;
}

int ipc__unix_dial(const char *path, int timeout_ms, ipc_conn **out)
{
    long long deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int backoff = IPC__RECONN_MIN_MS, rc;
    struct sockaddr_un sa;
    ipc__unix *c;

    if ((rc = fill_sun(&sa, path)) != 0) {
        fprintf(stderr, "ipc: unable to dial %s: the path is too long\n", path);
        return rc;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) return -ENOMEM;
    c->base.ops = &ipc__unix_ops;
    c->fd = c->lfd = c->wake = -1;
    while ((rc = dial_once(c, &sa, deadline)) == 1) {
        long long left = deadline - now_ms();

        if (left <= 0) {
            rc = IPC_ETIMEDOUT;
            break;
        }
        struct timespec ts = {0, (long)(left < backoff ? left : backoff) * 1000000L};
        nanosleep(&ts, NULL);
        backoff = backoff * 2 > IPC__RECONN_MAX_MS ? IPC__RECONN_MAX_MS : backoff * 2;
    }
    if (rc != 0) {
        if (rc != IPC_ETIMEDOUT)
            fprintf(stderr, "ipc: unable to dial %s: %s\n", path,
                    rc > -4096 && rc < 0 ? strerror(-rc) : ipc_strerror(rc));
        buf_free(&c->in);
        free(c);
        return rc;
    }
    *out = &c->base;
    return 0;
}

/* ---- both ---------------------------------------------------------------- */

static int unix_send(ipc_conn *conn, const char *buf, size_t len)
{
    ipc__unix *c = (ipc__unix *)conn;

    if (c->loop) return loop_send(c, buf, len);
    return c->listener ? unix_listener_send(c, buf, len) : unix_dialer_send(c, buf, len);
}

static int unix_recv(ipc_conn *conn, int timeout_ms, char **buf, size_t *len)
{
    ipc__unix *c = (ipc__unix *)conn;

    return c->listener ? -EINVAL : unix_dialer_recv(c, timeout_ms, buf, len);
}

static void unix_close(ipc_conn *conn)
{
    ipc__unix *c = (ipc__unix *)conn;

    if (c->loop) {
        loop_close(c);
        return;
    }
    if (c->listener) {
        listener_free(c);
        return;
    }
    if (c->fd >= 0) close(c->fd);
    buf_free(&c->in);
    free(c);
}

const ipc__ops ipc__unix_ops = {unix_send, unix_recv, unix_listen_restart, unix_close};
