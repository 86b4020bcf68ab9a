/* wrk_native.c: the worker's one doorway to the native tier (jit/) and the
 * VM's native-code blacklist.
 *
 * Every call the worker's request loop and crash handler make into jit/
 * (jit_init, jit_abi_hash, jit_lookup_pc) and sx_vm_blacklist goes through
 * here, so the rest of worker/ depends on these four names only, and a
 * build that drops the native tier replaces this one file with stubs
 * (init returning -ENOSYS, lookups finding nothing).
 *
 * wrk_native_cache_dir decides whether the code cache may be used at all:
 * jit/ loads and runs the shared objects it finds there, so the directory
 * must be one nobody but this user can write to.
 *
 * Threads: wrk_native_lookup_pc is called from the crash handler and stays
 * async-signal-safe (jit_lookup_pc is, by its contract); the others run on
 * the worker's main thread.
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "vm/vm.h"
#include "worker/wrk_internal.h"

int wrk_native_init(const jit_options *opt, const jit_hooks *hooks)
{
    return jit_init(opt, hooks);
}

const char *wrk_native_abi_hash(void)
{
    return jit_abi_hash();
}

int wrk_native_lookup_pc(uintptr_t pc, char *name, size_t name_cap, char *hash, size_t hash_cap)
{
    return jit_lookup_pc(pc, name, name_cap, hash, hash_cap);
}

void wrk_native_blacklist(const char *fn, const char *code_hash)
{
    sx_vm_blacklist(fn, code_hash);
}

int wrk_native_cache_dir(const char *dir, char *why, size_t cap)
{
    int rc = store_mkdirs(dir);
    if (rc != 0) {
        snprintf(why, cap, "unable to create %s: %s", dir, strerror(-rc));
        return rc;
    }
    return store_check_private_dir(dir, why, cap);
}
