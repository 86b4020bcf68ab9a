/* wrk_board.c: the worker's side of its slot's crash scoreboard (ipc_board,
 * see ipc.h), which the supervisor reads after this process has died.
 *
 * What is written, and by whom:
 *   - main thread, at start: pid and ABI hash;
 *   - main thread, around each request: request_id and IDLE <-> REQUEST;
 *   - main thread, before each request: started, and taken[] entries it
 *     finds (wrk_board_start);
 *   - the JIT's compiler thread, through the batch hooks: the batch's
 *     names and code hashes, batch_len and COMPILING;
 *   - the crash handler (wrk_crash.c): crash_signal and crash_fn.
 * Each update ends with a seq bump and a release fence, so a reader that
 * sees the new seq sees the fields written before it. The main thread
 * changes state only by compare-and-swap, so it never hides a COMPILING set
 * by the compiler thread; batch_len is the reliable "compiling" mark.
 *
 * Without a board (it could not be mapped: logged at start) every call here
 * does nothing, and the supervisor classifies this worker's death as one
 * with no crash record.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "worker/wrk_internal.h"

static ipc_board *board;

int wrk_board_open(const char *rundir, int slot)
{
    char path[4200];
    ipc_board_path(rundir, slot, path, sizeof path);
    return ipc_board_map(path, 0, &board);
}

ipc_board *wrk_board(void)
{
    return board;
}

static void bump(void)
{
    __atomic_fetch_add(&board->seq, 1, __ATOMIC_RELEASE);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

/* Copies src into dst[cap] truncated, NUL-terminated, without libc (the
 * crash handler uses it too). */
void wrk_board_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    if (cap == 0) return;
    if (src)
        for (; i + 1 < cap && src[i]; i++)
            dst[i] = src[i];
    dst[i] = '\0';
}

/* The REQUEST and SHADOW frames this process has taken up (ipc_board). */
static uint64_t frames;

/* The protocol is ipc_board's (ipc.h). */
bool wrk_board_start(uint64_t id)
{
    if (!board) return true; /* the supervisor takes nothing back: pid is never set */
    __atomic_store_n(&board->started, ++frames, __ATOMIC_SEQ_CST);
    for (int i = 0; i < IPC_BOARD_TAKEN; i++) {
        uint64_t v = id;
        if (__atomic_load_n(&board->taken[i], __ATOMIC_SEQ_CST) == id &&
            __atomic_compare_exchange_n(&board->taken[i], &v, 0, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return false;
    }
    return true;
}

int wrk_board_frame_due(void *arg)
{
    (void)arg;
    return board && __atomic_load_n(&board->sent, __ATOMIC_ACQUIRE) > frames;
}

void wrk_board_identity(const char *abi_hash)
{
    if (!board) return;
    board->pid = (uint32_t)getpid();
    wrk_board_copy(board->abi_hash, sizeof board->abi_hash, abi_hash);
    bump();
}

void wrk_board_request_begin(uint64_t id)
{
    if (!board) return;
    board->request_id = id;
    uint32_t idle = IPC_BOARD_IDLE;
    __atomic_compare_exchange_n(&board->state, &idle, IPC_BOARD_REQUEST, false, __ATOMIC_RELEASE,
                                __ATOMIC_RELAXED);
    bump();
}

void wrk_board_totals(void)
{
    if (!board) return;
    jit_totals t;
    jit_totals_get(&t);
    board->jit_compiled = t.compiled;
    board->jit_cache_loads = t.cache_loads;
    board->jit_failed = t.failed;
    board->jit_compile_us = t.compile_us;
    board->jit_native_calls = t.native_calls;
    board->jit_vm_calls = t.vm_calls;
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

void wrk_board_request_end(void)
{
    if (!board) return;
    wrk_board_totals();
    board->request_id = 0;
    uint32_t req = IPC_BOARD_REQUEST;
    __atomic_compare_exchange_n(&board->state, &req, IPC_BOARD_IDLE, false, __ATOMIC_RELEASE,
                                __ATOMIC_RELAXED);
    bump();
}

/* ---- the JIT's batch hooks (compiler thread) ----------------------------- */

static void batch_begin(void *arg, const char *const *names, const char *const *hashes, int n)
{
    (void)arg;
    if (!board) return;
    if (n < 0) n = 0;
    if (n > IPC_BOARD_BATCH) {
        /* Only the first IPC_BOARD_BATCH can be recorded (and so blacklisted
         * if the compile dies); the JIT keeps its batches within that. */
        fprintf(stderr, "sxpool worker: a JIT batch of %d functions; recording the first %d\n", n,
                IPC_BOARD_BATCH);
        n = IPC_BOARD_BATCH;
    }
    for (int i = 0; i < n; i++) {
        ipc_board_fn *f = &board->batch[i];
        wrk_board_copy(f->name, sizeof f->name, names ? names[i] : NULL);
        wrk_board_copy(f->code_hash, sizeof f->code_hash, hashes ? hashes[i] : NULL);
    }
    __atomic_store_n(&board->batch_len, (uint32_t)n, __ATOMIC_RELEASE);
    __atomic_store_n(&board->state, IPC_BOARD_COMPILING, __ATOMIC_RELEASE);
    bump();
}

static void batch_end(void *arg)
{
    (void)arg;
    if (!board) return;
    __atomic_store_n(&board->batch_len, 0, __ATOMIC_RELEASE);
    uint32_t st = board->request_id ? IPC_BOARD_REQUEST : IPC_BOARD_IDLE;
    __atomic_store_n(&board->state, st, __ATOMIC_RELEASE);
    bump();
}

void wrk_board_hooks(jit_hooks *out)
{
    memset(out, 0, sizeof *out);
    out->batch_begin = batch_begin;
    out->batch_end = batch_end;
}
