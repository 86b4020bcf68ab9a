/* jit_gcc.c: loads libgccjit on first use (jit_gcc.h says why). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "jit/jit_gcc.h"

/* libgccjit's soname: Debian's libgccjit0, which libgccjit-12-dev pulls
 * in, installs it in the dynamic loader's default path. */
#define JIT_GCC_LIBRARY "libgccjit.so.0"

jit_gcc_api jit_gcc;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512]; /* empty once loaded */

static void load(void)
{
    const char *lib = JIT_GCC_LIBRARY;
#ifdef SXPOOL_TEST_HOOKS
    /* tests: another library, or one that is not there */
    if (getenv("SXPOOL_TEST_GCCJIT")) lib = getenv("SXPOOL_TEST_GCCJIT");
#endif
    /* RTLD_NOW: a missing symbol is found here, not at some later call */
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "unable to load %s (Debian package libgccjit0): %s",
                 lib, dlerror());
        return;
    }
    jit_gcc_api api;
#define JIT_GCC_LOOKUP(name)                                                                       \
    if (!(*(void **)&api.name = dlsym(h, "gcc_jit_" #name))) {                                     \
        snprintf(load_error, sizeof load_error,                                                    \
                 JIT_GCC_LIBRARY " has no gcc_jit_" #name " (libgccjit 12 or later is needed)");   \
        dlclose(h);                                                                                \
        return;                                                                                    \
    }
    JIT_GCC_FUNCTIONS(JIT_GCC_LOOKUP)
#undef JIT_GCC_LOOKUP
    jit_gcc = api;
}

int jit_gcc_load(char *why, size_t cap)
{
    pthread_once(&load_once, load);
    if (!load_error[0]) return 0;
    snprintf(why, cap, "%s", load_error);
    return -1;
}
