/* wrk_sandbox.c: what a worker process may do, narrowed once it is set up.
 *
 * Runs on the worker's main thread during start-up (wrk_main.c, start()):
 *
 *   wrk_sandbox_limits, first thing: RLIMIT_CORE 0 (no core files, which
 *     would hold request data, unless the supervisor got --core-dumps) and,
 *     with --worker-memory=SIZE, RLIMIT_DATA at SIZE. RLIMIT_DATA, not
 *     RLIMIT_AS: the collector and libgccjit reserve address space they
 *     never touch, so an address-space limit fails healthy workers;
 *     RLIMIT_DATA counts private writable mappings, which is where a
 *     worker's memory goes (the SX heap, malloc, libgccjit), and thread
 *     stacks, so threads get 8 MiB stacks by default here instead of
 *     RLIMIT_STACK (1 GiB in sxpool). Measured (VmData in
 *     /proc/PID/status, after requests with JIT compiles, 14 threads):
 *     about 245 MB for a JIT worker, 146 MB for a CEK worker (13.7 GB
 *     each with 1 GiB thread stacks), plus what requests allocate, up to
 *     --memory-limit: --worker-memory is at least 256M and belongs above
 *     --memory-limit plus about 300 MB. The programs a JIT worker runs (gcc, as,
 *     ld) inherit the limit, each for itself.
 *   wrk_sandbox_enter, after the crash scoreboard, the store (LMDB) and the
 *     link to the supervisor (nng) are open and before the application's
 *     code runs: PR_SET_NO_NEW_PRIVS, then a seccomp filter on every thread
 *     of the process (SECCOMP_FILTER_FLAG_TSYNC: nng's threads and the
 *     JIT's compiler thread exist by then), inherited by every process a
 *     worker starts.
 *
 * The filter is an allowlist; any other system call fails with EPERM
 * (SCMP_ACT_ERRNO), it does not kill the process: a refused call is an
 * error the caller sees and reports, never something the supervisor's
 * fault classifier could take for a crash of native code. clone3 fails with
 * ENOSYS instead, so that glibc falls back to clone, whose flags a filter
 * can inspect.
 *
 * Both kinds of worker may (measured with strace -f on workers serving
 * requests with JIT compiles running): read/write/close and the other
 * calls on descriptors they already hold (the LMDB files, nng's socket,
 * its epoll and eventfd, stderr), pread64/pwrite64/fdatasync (LMDB),
 * sendmsg/recvmsg (nng), memory calls (mmap, munmap, mprotect, madvise,
 * mremap, brk), futex and the thread calls (clone with CLONE_THREAD,
 * set_robust_list, rseq), signals (rt_sigaction, rt_sigprocmask,
 * sigaltstack, and kill/tgkill/tkill only to its own process), time and
 * sleep, getrandom, getrusage, sysinfo, prlimit64 reading only, a few
 * prctl options (thread names) and exit.
 *
 * CEK workers, which never run native code they did not start with, get
 * nothing more: no open of any file (the application was read before the
 * filter; stat only of open descriptors), no socket, no new processes
 * (clone without CLONE_THREAD, fork, execve), no new executable memory
 * (mmap and mprotect with PROT_EXEC), no ioctl but TCGETS.
 *
 * JIT workers compile in a background thread with libgccjit, which
 * writes assembly, and then run as and ld as child processes (jit/jit.c,
 * assemble_and_link): they read and write files under TMPDIR or the code
 * cache, and the worker dlopens what they made. So a JIT
 * worker, and the programs it starts, may also open, create, stat,
 * rename and remove files, make processes (vfork, clone, execve, wait4)
 * and map executable memory. Running the compiler in a separate, less
 * restricted process would let the JIT worker be as tight as a CEK worker;
 * the file and process calls are the price of compiling in-process.
 * Neither kind may create a socket (so no network access), ptrace, mount,
 * change its credentials, load modules or BPF programs, or use io_uring.
 *
 * Sanitizer builds (ASan writes its report to a file of log_path, reads
 * /proc/self/maps and the executable to symbolize it) also allow opening
 * files and reading links in CEK workers; everything else is the same.
 */
#include <errno.h>
#include <pthread.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <unistd.h>

#include "worker/wrk_internal.h"

#define WRK_THREAD_STACK ((size_t)8 << 20) /* glibc's usual default */

#if defined(__SANITIZE_ADDRESS__)
#define WRK_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WRK_SANITIZED 1
#endif
#endif
#ifndef WRK_SANITIZED
#define WRK_SANITIZED 0
#endif

int wrk_sandbox_limits(bool core_dumps, size_t data_limit, char *why, size_t cap)
{
    /* Threads get glibc's default stack, RLIMIT_STACK, which sxpool raises
     * to 1 GiB for the main thread's deep recursion (supervisor/main.c):
     * each of nng's dozen threads would reserve 1 GiB, all of it counted
     * by RLIMIT_DATA. They need little; the JIT's compiler thread asks for
     * its own size. */
    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err == 0) err = pthread_attr_setstacksize(&attr, WRK_THREAD_STACK);
    if (err == 0) err = pthread_setattr_default_np(&attr);
    if (err != 0) {
        snprintf(why, cap, "unable to set the default thread stack size: %s", strerror(err));
        return -err;
    }
    pthread_attr_destroy(&attr);
    if (!core_dumps) {
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_CORE, &rl) != 0) {
            snprintf(why, cap, "unable to turn core dumps off (RLIMIT_CORE): %s", strerror(errno));
            return -errno;
        }
    }
    if (data_limit > 0 && WRK_SANITIZED) {
        /* ASan's shadow memory, terabytes of reserved address space, is
         * counted by RLIMIT_DATA: no limit lets a sanitized worker start */
        snprintf(why, cap,
                 "--worker-memory is not applied in a sanitizer build (RLIMIT_DATA "
                 "counts ASan's shadow memory)");
        return 1;
    }
    if (data_limit > 0) {
        struct rlimit rl = {data_limit, data_limit};
        if (setrlimit(RLIMIT_DATA, &rl) != 0) {
            snprintf(why, cap, "unable to set RLIMIT_DATA to %zu bytes: %s", data_limit,
                     strerror(errno));
            return -errno;
        }
    }
    return 0;
}

/* Both kinds of worker, no condition on the arguments. */
static const char *const common_calls[] = {"read",
                                           "write",
                                           "readv",
                                           "writev",
                                           "pread64",
                                           "pwrite64",
                                           "preadv",
                                           "pwritev",
                                           "close",
                                           "lseek",
                                           "fstat",
                                           "fcntl",
                                           "dup",
                                           "fdatasync",
                                           "fsync",
                                           "msync",
                                           "sendmsg",
                                           "recvmsg",
                                           "sendto",
                                           "recvfrom",
                                           "shutdown",
                                           "getsockopt",
                                           "setsockopt",
                                           "getsockname",
                                           "getpeername",
                                           "poll",
                                           "ppoll",
                                           "epoll_wait",
                                           "epoll_pwait",
                                           "epoll_pwait2",
                                           "epoll_ctl",
                                           "epoll_create1",
                                           "eventfd2",
                                           "pipe2",
                                           "futex",
                                           "futex_waitv",
                                           "set_robust_list",
                                           "get_robust_list",
                                           "rseq",
                                           "munmap",
                                           "mremap",
                                           "madvise",
                                           "brk",
                                           "mincore",
                                           "rt_sigaction",
                                           "rt_sigprocmask",
                                           "rt_sigreturn",
                                           "sigaltstack",
                                           "getpid",
                                           "gettid",
                                           "getppid",
                                           "getuid",
                                           "geteuid",
                                           "getgid",
                                           "getegid",
                                           "clock_gettime",
                                           "clock_getres",
                                           "gettimeofday",
                                           "time",
                                           "clock_nanosleep",
                                           "nanosleep",
                                           "sched_yield",
                                           "sched_getaffinity",
                                           "getrandom",
                                           "exit",
                                           "exit_group",
                                           "restart_syscall",
                                           "getrusage",
                                           "sysinfo",
                                           "uname",
                                           "getrlimit"};

/* JIT workers and the compiler programs they run. */
static const char *const jit_calls[] = {"open",
                                        "openat",
                                        "creat",
                                        "access",
                                        "faccessat",
                                        "faccessat2",
                                        "stat",
                                        "lstat",
                                        "newfstatat",
                                        "statx",
                                        "readlink",
                                        "readlinkat",
                                        "mkdir",
                                        "mkdirat",
                                        "rmdir",
                                        "unlink",
                                        "unlinkat",
                                        "rename",
                                        "renameat",
                                        "renameat2",
                                        "link",
                                        "linkat",
                                        "symlink",
                                        "symlinkat",
                                        "chmod",
                                        "fchmod",
                                        "fchmodat",
                                        "umask",
                                        "getcwd",
                                        "chdir",
                                        "fchdir",
                                        "getdents64",
                                        "dup2",
                                        "dup3",
                                        "ftruncate",
                                        "fallocate",
                                        "fadvise64",
                                        "flock",
                                        "utimensat",
                                        "statfs",
                                        "fstatfs",
                                        "pipe",
                                        "select",
                                        "pselect6",
                                        "execve",
                                        "execveat",
                                        "vfork",
                                        "fork",
                                        "clone",
                                        "wait4",
                                        "waitid",
                                        "arch_prctl",
                                        "set_tid_address",
                                        "setrlimit",
                                        "prlimit64",
                                        "times",
                                        "getpgrp",
                                        "ioctl",
                                        "mmap",
                                        "mprotect",
                                        "copy_file_range",
                                        "sendfile"};

/* Sanitizer builds, CEK workers too: the runtime's report path. */
static const char *const sanitizer_calls[] = {"open",       "openat", "readlink",   "readlinkat",
                                              "newfstatat", "statx",  "getdents64", "dup2",
                                              "dup3",       "prctl"};

static int allow_names(scmp_filter_ctx f, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR) continue; /* not on this architecture */
        int rc = seccomp_rule_add(f, SCMP_ACT_ALLOW, nr, 0);
        if (rc != 0) return rc;
    }
    return 0;
}

#define NAMES(a) (a), sizeof(a) / sizeof((a)[0])

/* The rules with conditions on the arguments. */
static int add_conditional(scmp_filter_ctx f, bool jit)
{
    int rc = 0;
    pid_t self = getpid();
    /* glibc tries clone3 first and uses clone when it is not there */
    rc |= seccomp_rule_add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    /* signals only to this process (raise, abort, the crash handler) */
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, SCMP_A0(SCMP_CMP_EQ, self));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, SCMP_A0(SCMP_CMP_EQ, self));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tkill), 0);
    /* thread names (nng), reading the dumpable flag */
    static const int prctl_ok[] = {PR_SET_NAME, PR_GET_NAME, PR_GET_DUMPABLE, PR_GET_NO_NEW_PRIVS};
    for (size_t i = 0; i < sizeof prctl_ok / sizeof prctl_ok[0]; i++)
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                               SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)prctl_ok[i]));
    if (jit) return rc;
    /* reading limits, never setting them */
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, SCMP_A2(SCMP_CMP_EQ, 0));
    /* threads (nng), never processes */
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                           SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
    /* memory, never executable */
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    /* isatty */
    rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, TCGETS));
    if (!WRK_SANITIZED) {
        /* fstat of an open descriptor (glibc: newfstatat(fd, "", AT_EMPTY_PATH)) */
        rc |= seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
                               SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
    }
    return rc;
}

int wrk_sandbox_enter(bool jit, char *why, size_t cap)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
        snprintf(why, cap, "unable to set PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        return -EPERM;
    }
    scmp_filter_ctx f = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!f) {
        snprintf(why, cap, "unable to create a seccomp filter: out of memory");
        return -ENOMEM;
    }
    int rc = seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1);
    const char *step = "set TSYNC";
    if (rc == 0) step = "add the common rules", rc = allow_names(f, NAMES(common_calls));
    if (rc == 0 && jit) step = "add the JIT rules", rc = allow_names(f, NAMES(jit_calls));
    if (rc == 0 && WRK_SANITIZED && !jit)
        step = "add the sanitizer rules", rc = allow_names(f, NAMES(sanitizer_calls));
    if (rc == 0) step = "add the conditional rules", rc = add_conditional(f, jit);
    if (rc == 0) step = "load the filter", rc = seccomp_load(f);
    seccomp_release(f);
    if (rc != 0) {
        snprintf(why, cap, "unable to %s of the seccomp filter: %s", step, strerror(-rc));
        return rc < 0 ? rc : -EINVAL;
    }
    return 0;
}

bool wrk_sandbox_sanitized(void)
{
    return WRK_SANITIZED;
}
