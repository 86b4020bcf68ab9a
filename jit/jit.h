/* jit.h: the native tier's public interface, used by worker/.
 *
 * The JIT compiles hot bytecode functions (sx_proto, vm/) to native code
 * with libgccjit, off the request path, in batches, through a code cache on
 * disk shared by the pool. This header is what the worker needs: turning it
 * on, the hooks that let the worker record what is being compiled in its
 * crash scoreboard, and the async-signal-safe lookups its crash handler uses.
 */
#ifndef SXPOOL_JIT_H
#define SXPOOL_JIT_H

#include <stddef.h>
#include <stdint.h>

typedef struct jit_options {
    const char *cache_dir; /* code cache (under --data); NULL: no cache */
    uint32_t threshold;    /* calls before a function is hot; 0: before its first call */
    const char *exclude;   /* comma-separated globs, or NULL */
} jit_options;

/* Hooks called by the compiler thread around each batch. names/hashes have
 * n entries. Must be quick; may be called from a thread other than main. */
typedef struct jit_hooks {
    void *arg;
    void (*batch_begin)(void *arg, const char *const *names, const char *const *hashes, int n);
    void (*batch_end)(void *arg);
} jit_hooks;

/* Turns the native tier on for this process (after sx_vm_init with the VM
 * tier) and starts the compile thread, which loads libgccjit while the
 * program runs (with a code cache, jit_init loads it itself). Should the
 * library not load, that is logged, no function gets native code, and
 * jit_abi_hash returns NULL. @return 0 or -errno */
int jit_init(const jit_options *opt, const jit_hooks *hooks);

/**
 * Writes the coverage report to path, one `key value` per line:
 * functions-compiled, functions-cached, functions-refused, functions-failed, calls-native,
 * calls-direct, calls-vm, toplevel-forms, then `refused NAME HASH REASON` for each
 * function kept on the VM and `compile-ms NAME HASH MS` for each function
 * this process compiled (jit/README.md). Callable at exit(), from any
 * thread, with the native tier on or off.
 * @return 0 or -errno
 */
int jit_write_report(const char *path);

/* Lets the batch being compiled finish and starts no other: call it before
 * the process exits (exit() while libgccjit is inside a compile crashes
 * and leaves its temporary files). Idempotent; the native code already
 * installed keeps running. */
void jit_shutdown(void);

/* Running totals of this process's native tier, for the supervisor's
 * /metrics (through the crash scoreboard). Any thread; each field is read
 * on its own, so the set is a near snapshot. All 0 with the tier off,
 * except vm_calls, which the VM counts. */
typedef struct jit_totals {
    uint64_t compiled;     /* functions given native code by a compile here */
    uint64_t cache_loads;  /* functions given native code from the code cache */
    uint64_t failed;       /* functions libgccjit could not compile */
    uint64_t compile_us;   /* time in batches: context, lowering, compile, load */
    uint64_t native_calls; /* calls that entered native code */
    uint64_t vm_calls;     /* calls of functions the VM ran */
} jit_totals;
void jit_totals_get(jit_totals *out);

/* ---- which native functions a request ran --------------------------------- *
 *
 * Every native function's prologue stamps the running request's epoch into
 * its proto (one store per call), so after a request the worker can list
 * the functions that ran natively in it: what shadow verification checks
 * and blacklists. Evaluating thread only, between requests. */

/* Starts a request: a new epoch. */
void jit_request_begin(void);

typedef struct jit_entered {
    const char *name; /* valid until the native tier drops the function (never) */
    const char *hash;
    uint32_t requests; /* requests it ran natively in before this one, in this process */
} jit_entered;

/**
 * Lists the functions whose native code ran since jit_request_begin and
 * counts this request for each (jit_entered.requests is the count before).
 * @return how many there were (entries past cap are counted, not listed)
 */
int jit_request_entered(jit_entered *out, int cap);

/* The ABI hash (sxpool version, libgccjit version, options): 16 hex digits,
 * or NULL when libgccjit cannot be loaded (the native tier is unavailable;
 * jit.c has logged why). Loads libgccjit if that has not happened yet. */
const char *jit_abi_hash(void);

/**
 * Async-signal-safe: the SX function whose native code contains pc, or, if
 * pc is not in native code, the native function running innermost (native
 * code calling into the runtime). Copies its name and code hash.
 * @return 1 if pc is in that function's native code, 2 if pc is elsewhere
 *         (the runtime, a library) while that native function runs, 0 if
 *         no native code was running
 */
int jit_lookup_pc(uintptr_t pc, char *name, size_t name_cap, char *hash, size_t hash_cap);

#endif
