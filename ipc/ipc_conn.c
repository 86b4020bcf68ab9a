/* ipc_conn.c: ipc.h's transport calls, handed to the transport that the
 * url names: "unix://PATH" (ipc_unix.c, the default) or "ipc://PATH"
 * (nng, ipc_nng.c). */
#include "ipc/ipc_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define UNIX_SCHEME "unix://"
#define NNG_SCHEME "ipc://"

int ipc_transport_parse(const char *name)
{
    if (name == NULL || strcmp(name, "unix") == 0) return IPC_TRANSPORT_UNIX;
    if (strcmp(name, "nng") == 0) return IPC_TRANSPORT_NNG;
    return -EINVAL;
}

const char *ipc_transport_name(int transport)
{
    return transport == IPC_TRANSPORT_NNG ? "nng" : "unix";
}

void ipc_slot_url(const char *rundir, int slot, int transport, char *dst, size_t cap)
{
    if (cap > 0)
        snprintf(dst, cap, "%s%s/slot-%d.sock",
                 transport == IPC_TRANSPORT_NNG ? NNG_SCHEME : UNIX_SCHEME, rundir, slot);
}

static int has_scheme(const char *url, const char *scheme)
{
    return strncmp(url, scheme, strlen(scheme)) == 0;
}

int ipc_listen(const char *url, ipc_recv_cb on_recv, void *arg, ipc_conn **out)
{
    if (url == NULL || on_recv == NULL || out == NULL) return -EINVAL;
    if (has_scheme(url, UNIX_SCHEME))
        return ipc__unix_listen(url + strlen(UNIX_SCHEME), on_recv, arg, out);
    return ipc__nng_listen(url, on_recv, arg, out);
}

int ipc_listen_on_loop(struct uv_loop_s *loop, const char *url, ipc_recv_cb on_recv, void *arg,
                       ipc_conn **out)
{
    if (loop == NULL || url == NULL || on_recv == NULL || out == NULL) return -EINVAL;
    if (has_scheme(url, UNIX_SCHEME))
        return ipc__unix_listen_on_loop(loop, url + strlen(UNIX_SCHEME), on_recv, arg, out);
    return ipc__nng_listen(url, on_recv, arg, out);
}

int ipc_dial(const char *url, int timeout_ms, ipc_conn **out)
{
    if (url == NULL || out == NULL) return -EINVAL;
    if (has_scheme(url, UNIX_SCHEME))
        return ipc__unix_dial(url + strlen(UNIX_SCHEME), timeout_ms, out);
    return ipc__nng_dial(url, timeout_ms, out);
}

int ipc_listen_restart(ipc_conn *c)
{
    return c == NULL ? -EINVAL : c->ops->listen_restart(c);
}

int ipc_send(ipc_conn *c, const char *buf, size_t len)
{
    if (c == NULL || buf == NULL || len == 0)
        return -EINVAL; /* empty messages are the accept handshake */
    if (len > IPC_MAX_FRAME) return IPC_ETOOBIG;
    return c->ops->send(c, buf, len);
}

int ipc_recv(ipc_conn *c, int timeout_ms, char **buf, size_t *len)
{
    if (c == NULL || buf == NULL || len == NULL) return -EINVAL;
    return c->ops->recv(c, timeout_ms, buf, len);
}

void ipc_close(ipc_conn *c)
{
    if (c != NULL) c->ops->close(c);
}

void ipc_set_due(ipc_conn *c, ipc_due_cb due, void *arg)
{
    if (c != NULL && c->ops == &ipc__unix_ops) ipc__unix_set_due(c, due, arg);
}

int ipc_nng_error(const ipc_conn *c)
{
    return c != NULL && c->ops == &ipc__nng_ops ? ipc__nng_error(c) : 0;
}
