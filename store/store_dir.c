/* store_dir.c: trusted directories. The data directory holds the store and
 * the JIT's code cache, whose shared objects a worker loads and runs, so a
 * directory another local user could write to (or could have prepared
 * before sxpool started) must not be used: anyone who can plant a file
 * there runs code inside a worker, as root when sxpool runs as root.
 *
 * Called by the supervisor (--data, at start-up), by a JIT worker (its code
 * cache, DATA/jit-cache) and by `sxpool eval --jit-cache=DIR`, in whichever
 * process and thread asks; no state.
 *
 * The rule, for a path resolved with realpath() and then walked from / with
 * O_NOFOLLOW (so what is checked is a chain of real directories, each
 * opened from the one before it): the directory itself is owned by this
 * process's effective user and writable by nobody else; every directory
 * above it is owned by root or that user and is not writable by group or
 * others unless it has the sticky bit (/tmp), where nobody else can rename
 * or remove what this user owns.
 */
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int store_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) return -ENAMETOOLONG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) return -errno;
    struct stat st;
    if (stat(path, &st) != 0) return -errno;
    if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
    return 0;
}

/* Whether st, the directory at path, may be trusted; on failure writes why
 * into why. last: path is the directory itself, not one above it. */
static bool trusted(const struct stat *st, const char *path, bool last, char *why, size_t cap)
{
    uid_t me = geteuid();
    unsigned mode = (unsigned)st->st_mode & 07777;
    if (!S_ISDIR(st->st_mode)) {
        snprintf(why, cap, "%s is not a directory", path);
        return false;
    }
    if (last && st->st_uid != me) {
        snprintf(why, cap, "%s is owned by uid %u, not by this process's uid %u", path,
                 (unsigned)st->st_uid, (unsigned)me);
        return false;
    }
    if (!last && st->st_uid != me && st->st_uid != 0) {
        snprintf(why, cap, "%s is owned by uid %u, neither root nor this process's uid %u", path,
                 (unsigned)st->st_uid, (unsigned)me);
        return false;
    }
    if (!(mode & (S_IWGRP | S_IWOTH))) return true;
    if (!last && (mode & S_ISVTX)) return true;
    snprintf(why, cap, "%s is writable by %s (mode %04o%s)", path,
             (mode & S_IWOTH) ? ((mode & S_IWGRP) ? "group and others" : "others") : "its group",
             mode, last ? "" : ", no sticky bit");
    return false;
}

int store_check_private_dir(const char *dir, char *why, size_t cap)
{
    char real[PATH_MAX];
    if (!realpath(dir, real)) {
        int e = errno;
        snprintf(why, cap, "%s: %s", dir, strerror(e));
        return -e;
    }
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(why, cap, "/: %s", strerror(e));
        return -e;
    }
    /* fd is the directory shown; rest is what is left of real below it */
    int rc = 0;
    char shown[PATH_MAX] = "/";
    const char *rest = real + 1;
    for (;;) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            rc = -errno;
            snprintf(why, cap, "%s: %s", shown, strerror(-rc));
            break;
        }
        if (!trusted(&st, shown, *rest == '\0', why, cap)) {
            rc = STORE_EUNSAFE;
            break;
        }
        if (*rest == '\0') break;
        size_t n = strcspn(rest, "/");
        char name[NAME_MAX + 1];
        if (n > NAME_MAX) {
            rc = -ENAMETOOLONG;
            snprintf(why, cap, "%s: %s", real, strerror(-rc));
            break;
        }
        memcpy(name, rest, n);
        name[n] = '\0';
        snprintf(shown, sizeof shown, "%.*s", (int)(rest - real + (ptrdiff_t)n), real);
        int next = openat(fd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) {
            rc = -errno;
            snprintf(why, cap, "%s: %s", shown, strerror(-rc));
            break;
        }
        close(fd);
        fd = next;
        rest += n;
        if (*rest == '/') rest++;
    }
    close(fd);
    return rc;
}
