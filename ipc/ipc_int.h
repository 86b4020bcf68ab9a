/* ipc_int.h: what the transports behind ipc.h's ipc_conn share. Each
 * transport's connection struct starts with an ipc_conn whose ops are that
 * transport's; ipc_conn.c picks the transport from the url's scheme. */
#ifndef SXPOOL_IPC_INT_H
#define SXPOOL_IPC_INT_H

#include "ipc/ipc.h"

typedef struct ipc__ops {
    int (*send)(ipc_conn *c, const char *buf, size_t len);
    int (*recv)(ipc_conn *c, int timeout_ms, char **buf, size_t *len);
    int (*listen_restart)(ipc_conn *c);
    void (*close)(ipc_conn *c);
} ipc__ops;

struct ipc_conn {
    const ipc__ops *ops;
};

/* nng PAIR1 over ipc:// (ipc_nng.c) */
extern const ipc__ops ipc__nng_ops;
int ipc__nng_listen(const char *url, ipc_recv_cb on_recv, void *arg, ipc_conn **out);
int ipc__nng_dial(const char *url, int timeout_ms, ipc_conn **out);
int ipc__nng_error(const ipc_conn *c);

/* a Unix stream socket (ipc_unix.c); path is the url without "unix://" */
extern const ipc__ops ipc__unix_ops;
int ipc__unix_listen(const char *path, ipc_recv_cb on_recv, void *arg, ipc_conn **out);
int ipc__unix_dial(const char *path, int timeout_ms, ipc_conn **out);
int ipc__unix_listen_on_loop(struct uv_loop_s *loop, const char *path, ipc_recv_cb on_recv,
                             void *arg, ipc_conn **out);
void ipc__unix_set_due(ipc_conn *c, ipc_due_cb due, void *arg);

#endif
