/* wrk_internal.h: shared between the worker module's files. */
#ifndef SXPOOL_WRK_INTERNAL_H
#define SXPOOL_WRK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/ipc.h"
#include "jit/jit.h"

/* Checks a --tier value: 0 for cek; prints why and returns < 0 otherwise. */
int wrk_parse_tier(const char *prog, const char *value);

/* Parses a byte size with an optional K, M or G suffix. */
bool wrk_parse_size(const char *s, size_t *out);

/* ---- wrk_native.c: the worker's calls into the native tier -------------- */

/* jit_init. @return 0 or -errno */
int wrk_native_init(const jit_options *opt, const jit_hooks *hooks);
/* jit_abi_hash (16 hex digits). */
const char *wrk_native_abi_hash(void);
/* jit_lookup_pc (async-signal-safe). @return 1 pc in native code, 2 native
 * code running but pc elsewhere, 0 no native code */
int wrk_native_lookup_pc(uintptr_t pc, char *name, size_t name_cap, char *hash, size_t hash_cap);
/* sx_vm_blacklist: drops fn's native code (code_hash NULL: any). */
void wrk_native_blacklist(const char *fn, const char *code_hash);
/* Creates the code cache directory dir (mode 0700, with its parents) if
 * missing and checks that it is private to this user, every directory
 * above it included (store_check_private_dir): a cache another user can
 * write to would let them run code here. @return 0, or an error with why
 * set to one line naming the offending path (then run without the cache) */
int wrk_native_cache_dir(const char *dir, char *why, size_t cap);

/* ---- wrk_board.c: this slot's crash scoreboard ----------------------------- */

/* Maps RUNDIR/slot-N.board (created by the supervisor). @return 0 or -errno;
 * on error the other calls do nothing. */
int wrk_board_open(const char *rundir, int slot);
/* The mapped board, or NULL (async-signal-safe). */
ipc_board *wrk_board(void);
/* Records pid and ABI hash. */
void wrk_board_identity(const char *abi_hash);
void wrk_board_request_begin(uint64_t id);
/* Before a REQUEST or SHADOW frame id is started. @return false if the
 * supervisor took it back: it is skipped and answered with nothing */
bool wrk_board_start(uint64_t id);
/* Has the supervisor sent a REQUEST or SHADOW frame this process has not
 * taken up yet? (ipc_set_due's callback; arg unused) */
int wrk_board_frame_due(void *arg);
void wrk_board_request_end(void);
/* Publishes the native tier's totals on the board (the supervisor's
 * /metrics): before every reply, so a reply's effects are in them. */
void wrk_board_totals(void);
/* The JIT batch hooks that record each batch in the board. */
void wrk_board_hooks(jit_hooks *out);
/* Bounded NUL-terminated copy without libc (async-signal-safe). */
void wrk_board_copy(char *dst, size_t cap, const char *src);

/* ---- wrk_crash.c ------------------------------------------------------------ */

/* Installs the crash handler on an alternate stack for the calling thread.
 * native: look up the faulting PC in the JIT's registry. @return 0 or -errno */
int wrk_crash_install(bool native);

/* ---- wrk_sandbox.c: what a worker may do once it is set up --------------- */

/* RLIMIT_CORE 0 unless core_dumps; RLIMIT_DATA data_limit when not 0.
 * @return 0, 1 when data_limit was not applied (a sanitizer build; why
 *         set), or -errno with why set */
int wrk_sandbox_limits(bool core_dumps, size_t data_limit, char *why, size_t cap);
/* PR_SET_NO_NEW_PRIVS and the seccomp filter of a JIT (jit) or CEK worker
 * on every thread of the process. @return 0, or < 0 with why set */
int wrk_sandbox_enter(bool jit, char *why, size_t cap);
/* True in a sanitizer build, whose CEK workers may open files. */
bool wrk_sandbox_sanitized(void);

/* ---- wrk_hook.c: test-only failure points (SXPOOL_TEST_HOOK) --------------- */

/* Reads SXPOOL_TEST_HOOK for a worker of mode ("jit" or "cek"). */
void wrk_hook_init(const char *mode);
/* True if this worker is to exit before READY. */
bool wrk_hook_exit_at_start(void);
/* After a request to path committed its writes: may _exit(9). */
void wrk_hook_after_commit(const char *path, size_t len);
/* Sleeps before the commit of a writing request to a slow-commit path. */
void wrk_hook_before_commit(const char *path, size_t len);
/* Before a request to path runs: may raise SIGSEGV (CEK workers). */
void wrk_hook_before_request(const char *path, size_t len);
struct store;
/* Before a request to path runs: may hold st's write lock for 2 s. */
void wrk_hook_hold_lock(struct store *st, const char *path, size_t len);

/* Before a request to path runs: may try calls the sandbox refuses and log
 * what each returned. */
void wrk_hook_probe_sandbox(const char *path, size_t len);

/* --tier=jit: the VM with the native tier on top. */
#define WRK_TIER_JIT 2

struct sx_options;
struct jit_options;
/* Initializes the vm for opt->tier (WRK_TIER_JIT: the VM, then jit_init). */
int wrk_start_tier(struct sx_options *opt, const struct jit_options *jopt);

#endif
