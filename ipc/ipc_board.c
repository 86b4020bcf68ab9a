/* ipc_board.c: the crash scoreboard's file, mapped shared by the supervisor
 * and one worker (the layout and its rules are in ipc.h).
 *
 * The supervisor creates and zeroes RUNDIR/slot-N.board before it spawns the
 * slot's worker; the worker maps the existing file after exec. Both keep the
 * mapping for their whole life: the file descriptor is closed at once, and
 * only the mapping (MAP_SHARED, so every store reaches the page cache and
 * outlives the writer) is handed out.
 *
 * Called from any thread before use, never from a signal handler: mapping
 * is not async-signal-safe, writing the mapped record is.
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void ipc_board_path(const char *rundir, int slot, char *dst, size_t cap)
{
    if (cap > 0) snprintf(dst, cap, "%s/slot-%d.board", rundir, slot);
}

/* Sizes (and with create, zeroes) the open file fd. @return 0 or -errno */
static int check_size(int fd, int create)
{
    if (create) {
        /* Truncating to 0 first drops whatever an earlier record held. */
        if (ftruncate(fd, 0) != 0 || ftruncate(fd, (off_t)sizeof(ipc_board)) != 0) return -errno;
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) return -errno;
    if (st.st_size != (off_t)sizeof(ipc_board)) return -EINVAL;
    return 0;
}

int ipc_board_map(const char *path, int create, ipc_board **out)
{
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    int fd = open(path, flags, 0600);
    if (fd < 0) return -errno;
    int err = check_size(fd, create);
    if (err != 0) {
        close(fd);
        return err;
    }
    void *p = mmap(NULL, sizeof(ipc_board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    err = p == MAP_FAILED ? -errno : 0;
    close(fd); /* the mapping stays valid without the descriptor */
    if (err != 0) return err;
    ipc_board *b = p;
    if (create) {
        memset(b, 0, sizeof *b);
        b->magic = IPC_BOARD_MAGIC;
        __atomic_thread_fence(__ATOMIC_RELEASE);
    } else if (b->magic != IPC_BOARD_MAGIC) {
        munmap(p, sizeof(ipc_board));
        return -EPROTO;
    }
    *out = b;
    return 0;
}

void ipc_board_unmap(ipc_board *b)
{
    if (b) munmap(b, sizeof *b);
}
