/* sup_priv.c: the supervisor's privileges: --user (dropping root once the
 * listeners are bound) and the admin token (--admin-token-file).
 *
 * Runs on the main thread during start-up, before the loop runs
 * (sup_main.c, run_server), and the token comparison on the loop thread.
 *
 * Order at start-up as root with --user=NAME: NAME is looked up and the
 * token file read first (a file only root can read is fine), then the
 * listeners are bound (ports below 1024 need root), then this file drops
 * to NAME: supplementary groups (initgroups), gid, uid, each checked, and
 * finally it checks that root cannot be had back (setuid(0) and seteuid(0)
 * must fail). Only then is the data directory created and opened, the run
 * directory made and any worker started: everything on disk belongs to
 * NAME, and no worker ever runs as root.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/sup_internal.h"

int sup__user_lookup(const char *name, uid_t *uid, gid_t *gid)
{
    errno = 0;
    struct passwd *pw = getpwnam(name);
    if (!pw) {
        if (errno != 0)
            sup__error("--user: unable to look up user '%s': %s", name, strerror(errno));
        else
            sup__error("--user: no user named '%s' on this system", name);
        return -1;
    }
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

int sup__drop_privileges(const char *name, uid_t uid, gid_t gid)
{
    if (initgroups(name, gid) != 0) {
        sup__error("--user=%s: unable to set its supplementary groups: %s", name, strerror(errno));
        return -1;
    }
    if (setgid(gid) != 0) {
        sup__error("--user=%s: unable to set the group id to %u: %s", name, (unsigned)gid,
                   strerror(errno));
        return -1;
    }
    if (setuid(uid) != 0) {
        sup__error("--user=%s: unable to set the user id to %u: %s", name, (unsigned)uid,
                   strerror(errno));
        return -1;
    }
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != uid || eu != uid ||
        su != uid || rg != gid || eg != gid || sg != gid) {
        sup__error("--user=%s: the user and group ids did not all change; refusing to go on", name);
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)) {
        sup__error("--user=%s: root could be regained after dropping privileges; refusing to go on",
                   name);
        return -1;
    }
    sup__info("running as user %s (uid %u, gid %u)", name, (unsigned)uid, (unsigned)gid);
    return 0;
}

int sup__admin_token_load(const char *path, char *token, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        fprintf(stderr, "sxpool: --admin-token-file: cannot open '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "sxpool: --admin-token-file: '%s' is not a regular file\n", path);
        close(fd);
        return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr,
                "sxpool: --admin-token-file: refusing '%s': its mode %04o lets group or others "
                "at it (chmod 600 it)\n",
                path, (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        fprintf(stderr,
                "sxpool: --admin-token-file: refusing '%s': it belongs to uid %u, neither this "
                "user (%u) nor root\n",
                path, (unsigned)st.st_uid, (unsigned)geteuid());
        close(fd);
        return -1;
    }
    ssize_t n = read(fd, token, cap);
    close(fd);
    if (n < 0) {
        fprintf(stderr, "sxpool: --admin-token-file: cannot read '%s': %s\n", path,
                strerror(errno));
        return -1;
    }
    if ((size_t)n >= cap) {
        fprintf(stderr, "sxpool: --admin-token-file: '%s' is longer than %zu bytes\n", path,
                cap - 1);
        return -1;
    }
    while (n > 0 && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
        n--;
    token[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (token[i] <= ' ' || token[i] > '~') {
            fprintf(stderr,
                    "sxpool: --admin-token-file: '%s' holds a character that cannot be in a "
                    "bearer token (printable ASCII without spaces)\n",
                    path);
            return -1;
        }
    if (n < SUP_ADMIN_TOKEN_MIN) {
        fprintf(stderr,
                "sxpool: --admin-token-file: the token in '%s' is %zd bytes; at least %d are "
                "needed\n",
                path, n, SUP_ADMIN_TOKEN_MIN);
        return -1;
    }
    *len = (size_t)n;
    return 0;
}

bool sup__token_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    /* Time depends on blen (the secret's length, fixed) only: every byte of
     * the secret is compared, whatever the candidate's length and content. */
    volatile unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < blen; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return diff == 0;
}
