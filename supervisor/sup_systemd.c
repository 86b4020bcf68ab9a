/* sup_systemd.c: what the supervisor does for systemd: socket activation
 * (listening sockets passed in, LISTEN_FDS) and readiness (sd_notify).
 *
 * Runs on the supervisor's loop thread (sup__systemd_listen_fds before the
 * loop exists, before any worker or thread is started).
 *
 * Socket activation: when LISTEN_PID is this process and LISTEN_FDS is at
 * least 1, the sockets from fd 3 on are the listeners: the one named
 * "admin" in LISTEN_FDNAMES (FileDescriptorName=admin in the socket unit)
 * serves /metrics and /status, the first other one HTTP; more are closed
 * with a warning. The variables are removed from the environment, so the
 * workers spawned later do not take the sockets for theirs. Without
 * LISTEN_FDS everything is bound as --listen and --admin say.
 *
 * Readiness: nothing is sent unless NOTIFY_SOCKET is set (sd_notify does
 * nothing then). READY=1 goes once, when the first worker is ready (so a
 * unit that others order after is up only when requests can be served),
 * STATUS= says how many workers are ready whenever that changes, and
 * STOPPING=1 goes when a stop begins.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "supervisor/sup_internal.h"

int sup__systemd_listen_fds(sup_server *s)
{
    s->inherited_fd = s->inherited_admin_fd = -1;
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names); /* 1: unset LISTEN_PID, LISTEN_FDS, ... */
    if (n < 0) {
        sup__error("unable to read the sockets systemd passed: %s", strerror(-n));
        return n;
    }
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        const char *name = names && names[i] ? names[i] : "";
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            sup__error("descriptor %d (%s) passed by systemd is not a listening stream socket", fd,
                       name[0] ? name : "unnamed");
            n = -EINVAL;
            break;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            sup__error("unable to make descriptor %d non-blocking: %s", fd, strerror(errno));
            n = -errno;
            break;
        }
        if (strcmp(name, "admin") == 0 && s->inherited_admin_fd < 0) {
            s->inherited_admin_fd = fd;
            s->cfg.admin = true;
        } else if (s->inherited_fd < 0) {
            s->inherited_fd = fd;
        } else {
            sup__warn("ignoring descriptor %d (%s) passed by systemd: only one HTTP and one "
                      "admin socket are used",
                      fd, name[0] ? name : "unnamed");
            close(fd);
        }
    }
    if (names) {
        for (char **p = names; *p; p++)
            free(*p);
        free(names);
    }
    if (n > 0 && s->inherited_fd < 0) {
        sup__error("systemd passed %d socket%s but none for HTTP (only one named admin)", n,
                   n == 1 ? "" : "s");
        return -EINVAL;
    }
    return n < 0 ? n : 0;
}

static void notify(const char *state)
{
    int err = sd_notify(0, state);
    if (err < 0) sup__warn("unable to tell systemd %s: %s", state, strerror(-err));
}

void sup__systemd_tick(sup_server *s)
{
    if (s->stop != STOP_NONE) return;
    int ready = sup__pool_ready(s);
    if (ready == s->sd_ready_count && s->sd_ready_sent) return;
    char state[160];
    if (!s->sd_ready_sent && ready > 0) {
        snprintf(state, sizeof state, "READY=1\nSTATUS=serving: %d of %d workers ready", ready,
                 s->cfg.workers + s->cfg.cek_workers);
        s->sd_ready_sent = true;
    } else if (ready != s->sd_ready_count) {
        snprintf(state, sizeof state, "STATUS=%s: %d of %d workers ready",
                 s->sd_ready_sent ? "serving" : "starting", ready,
                 s->cfg.workers + s->cfg.cek_workers);
    } else {
        return;
    }
    s->sd_ready_count = ready;
    notify(state);
}

void sup__systemd_stopping(sup_server *s)
{
    (void)s;
    notify("STOPPING=1\nSTATUS=stopping: draining requests");
}
