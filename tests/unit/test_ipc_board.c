/* test_ipc_board.c: the crash scoreboard file of ipc/ipc_board.c.
 *
 * Created zeroed with its magic; a second mapping of the same file (as the
 * worker makes it) sees the same bytes, and what one writes survives the
 * other's unmapping (it is a shared file mapping); creating it again zeroes
 * it. A missing file, a file of the wrong size and one without the magic
 * are refused with their own errors.
 */
#include "ipc/ipc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/check.h"

int main(void)
{
    char dir[] = "/tmp/sxpool-board-XXXXXX";
    CHECK_EQ(mkdtemp(dir) != NULL, 1);
    char path[256];
    ipc_board_path(dir, 3, path, sizeof path);
    char want[256];
    snprintf(want, sizeof want, "%s/slot-3.board", dir);
    CHECK_EQ(strcmp(path, want), 0);

    ipc_board *b = NULL, *w = NULL;
    CHECK_EQ(ipc_board_map(path, 0, &w), -ENOENT);
    CHECK_EQ(ipc_board_map(path, 1, &b), 0);
    CHECK_EQ(b->magic, IPC_BOARD_MAGIC);
    CHECK_EQ(b->state, IPC_BOARD_IDLE);
    CHECK_EQ(b->request_id, 0);
    CHECK_EQ(b->crash_signal, 0);

    /* the worker's mapping: same bytes both ways */
    CHECK_EQ(ipc_board_map(path, 0, &w), 0);
    w->request_id = 42;
    w->crash_signal = 11;
    snprintf(w->crash_fn.name, sizeof w->crash_fn.name, "edges-block");
    w->batch_len = 2;
    ipc_board_unmap(w); /* the writer goes away; its record stays */
    CHECK_EQ(b->request_id, 42);
    CHECK_EQ(b->crash_signal, 11);
    CHECK_EQ(strcmp(b->crash_fn.name, "edges-block"), 0);
    CHECK_EQ(b->batch_len, 2);
    ipc_board_unmap(b);

    /* created again before the next spawn: zeroed */
    CHECK_EQ(ipc_board_map(path, 1, &b), 0);
    CHECK_EQ(b->request_id, 0);
    CHECK_EQ(b->crash_fn.name[0], 0);
    CHECK_EQ(b->magic, IPC_BOARD_MAGIC);
    b->magic = 0; /* not a board any more */
    ipc_board_unmap(b);
    CHECK_EQ(ipc_board_map(path, 0, &w), -EPROTO);

    /* wrong size */
    CHECK_EQ(truncate(path, 100), 0);
    CHECK_EQ(ipc_board_map(path, 0, &w), -EINVAL);

    CHECK_EQ(unlink(path), 0);
    CHECK_EQ(rmdir(dir), 0);
    printf("ok\n");
    return 0;
}
