/* ipc_stage.c: per-request stage timestamps (see ipc_stage.h). A record is
 * 24 bytes in the machine's byte order: the request id, the stage (a
 * 64-bit integer, for alignment) and the time. */
#ifdef SXPOOL_STAGES

#include "ipc/ipc_stage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STAGE_BUF_RECORDS 2730 /* 64 KiB of records */

static int stage_fd = -1;
static uint64_t stage_buf[STAGE_BUF_RECORDS * 3];
static size_t stage_n; /* records in stage_buf */

static void stage_flush(void)
{
    const char *p = (const char *)stage_buf;
    size_t left = stage_n * 3 * sizeof(uint64_t);
    while (left > 0) {
        ssize_t w = write(stage_fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* a profiling aid: a full disk loses records, not requests */
        p += w;
        left -= (size_t)w;
    }
    stage_n = 0;
}

static void stage_at_exit(void)
{
    if (stage_fd >= 0 && stage_n > 0) stage_flush();
}

void ipc_stage_init(void)
{
    const char *dir = getenv("SXPOOL_STAGES");
    if (stage_fd >= 0 || !dir || !*dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/stages.%d", dir, (int)getpid());
    stage_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (stage_fd < 0) {
        fprintf(stderr, "sxpool: unable to open %s for stage records: %s\n", path, strerror(errno));
        return;
    }
    atexit(stage_at_exit);
}

uint64_t ipc_stage_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ipc_stage(uint64_t id, enum ipc_stage stage, uint64_t ns)
{
    if (stage_fd < 0) return;
    uint64_t *rec = &stage_buf[stage_n * 3];
    rec[0] = id;
    rec[1] = (uint64_t)stage;
    rec[2] = ns ? ns : ipc_stage_now();
    if (++stage_n == STAGE_BUF_RECORDS) stage_flush();
}

#else
typedef int ipc_stage_unused; /* ISO C wants a translation unit to declare something */
#endif
