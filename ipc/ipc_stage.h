/* ipc_stage.h: per-request stage timestamps, for profiling the request path.
 *
 * Built in only with -DSXPOOL_STAGES=ON (CMake); otherwise every call below
 * is an empty inline function and costs nothing. In such a build, a process
 * started with SXPOOL_STAGES=DIR in its environment (the supervisor passes
 * its environment on to its workers) appends one record per stage a
 * request passes to DIR/stages.PID: the request id (the id of its frames),
 * the stage and CLOCK_MONOTONIC in nanoseconds, which every process on the
 * machine shares, so stages recorded by the supervisor and by a worker can
 * be subtracted. bench/http/stages.py turns the files into a table.
 *
 * Records are buffered and written in blocks of about 64 KiB, and at exit;
 * what a process killed by a signal had buffered is lost. The file is
 * opened at ipc_stage_init(), before a worker's sandbox forbids opening
 * files.
 */
#ifndef SXPOOL_IPC_STAGE_H
#define SXPOOL_IPC_STAGE_H

#include <stdint.h>

enum ipc_stage {
    STAGE_ARRIVED = 1, /* supervisor: the request's first byte was read */
    STAGE_PARSED,      /* supervisor: the whole request is parsed and queued */
    STAGE_SENT,        /* supervisor: its frame is encoded, about to be written to a worker */
    STAGE_RECEIVED,    /* worker: the frame is read and decoded */
    STAGE_BUILT,       /* worker: the request value is built, the handler starts */
    STAGE_HANDLED,     /* worker: the handler returned */
    STAGE_ENCODED,     /* worker: the response frame is encoded */
    STAGE_COMMITTED,   /* worker: the store transaction ended (committed or not) */
    STAGE_REPLIED,     /* worker: the response frame is about to be written */
    STAGE_ANSWERED,    /* supervisor: the response frame is read and decoded */
    STAGE_WRITTEN,     /* supervisor: the HTTP response is handed to the socket */
    STAGE_LAST = STAGE_WRITTEN
};

#ifdef SXPOOL_STAGES
/* Opens DIR/stages.PID when SXPOOL_STAGES=DIR is set; else recording stays off. */
void ipc_stage_init(void);
/* Records that request id reached stage now (ns 0) or at ns. */
void ipc_stage(uint64_t id, enum ipc_stage stage, uint64_t ns);
/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t ipc_stage_now(void);
#else
static inline void ipc_stage_init(void) {}
static inline void ipc_stage(uint64_t id, enum ipc_stage stage, uint64_t ns)
{
    (void)id;
    (void)stage;
    (void)ns;
}
static inline uint64_t ipc_stage_now(void)
{
    return 0;
}
#endif

#endif
