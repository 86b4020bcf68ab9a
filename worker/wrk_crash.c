/* wrk_crash.c: the worker's crash handler for SIGSEGV, SIGBUS, SIGILL, SIGFPE
 * and SIGABRT.
 *
 * It records in the slot's scoreboard (wrk_board.c) the signal and the
 * native function the faulting PC belongs to, as the JIT's registry says
 * (jit_lookup_pc, through wrk_native.c), then restores the default action
 * and raises the signal again, so the process still dies by that signal and
 * the supervisor sees both the exit signal and the record.
 *
 * Async-signal-safety: the handler touches only the mapped board (plain
 * stores, fixed-size arrays), calls jit_lookup_pc (async-signal-safe by its
 * contract), gettid, sigaction and raise. No allocation, no stdio, no locks.
 *
 * It runs on an alternate signal stack (sigaltstack, SA_ONSTACK), so a
 * native stack overflow, whose SIGSEGV finds no room on the normal stack, is
 * still recorded. The alternate stack belongs to the thread that installs
 * the handler (the main thread, which runs SX and its native code); a crash
 * on another thread runs the handler on that thread's own stack.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <ucontext.h>
#include <unistd.h>

#include "worker/wrk_internal.h"

#define ALT_STACK_SIZE (256 * 1024)

static const int crash_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static volatile sig_atomic_t look_up_native; /* set when native code may run */
static pid_t main_tid;                       /* the thread that runs SX (and native code) */

/* The faulting (or interrupted) PC from the signal's ucontext, or 0. */
static uintptr_t pc_of(void *ucv)
{
    if (!ucv) return 0;
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.pc;
#else
    (void)uc;
    return 0;
#endif
}

/* True if the kernel raised sig for an instruction of this process (a
 * fault), or it is SIGABRT (abort() raises it itself, from runtime code
 * that native code may have called). A SIGSEGV sent with kill(2) by
 * someone else names no function: it says nothing about native code. */
static bool from_this_process(int sig, const siginfo_t *si)
{
    return sig == SIGABRT || (si && si->si_code > 0);
}

/* Native code runs on the main thread only. A crash on another thread (the
 * JIT's compile thread, inside libgccjit) must not be pinned on whatever
 * native function the main thread happens to be running: it names none, and
 * the supervisor blames the batch being compiled. */
static bool on_main_thread(void)
{
    return (pid_t)syscall(SYS_gettid) == main_tid;
}

static void on_crash(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    ipc_board *b = wrk_board();
    if (b) {
        ipc_board_fn *f = &b->crash_fn;
        f->name[0] = f->code_hash[0] = '\0';
        uintptr_t pc = pc_of(ucv);
        /* 1: the PC is in a native function; 2: native code is running and
         * called into the runtime, which crashed on what it was given (the
         * native function is blamed), unless the JIT is compiling on this
         * thread, in which case the batch is */
        int found = 0;
        if (look_up_native && from_this_process(sig, si) && on_main_thread())
            found = wrk_native_lookup_pc(pc, f->name, sizeof f->name, f->code_hash,
                                         sizeof f->code_hash);
        if (!(found == 1 || (found == 2 && b->state != IPC_BOARD_COMPILING)))
            f->name[0] = f->code_hash[0] = '\0';
        __atomic_thread_fence(__ATOMIC_RELEASE);
        b->crash_signal = sig;
        __atomic_fetch_add(&b->seq, 1, __ATOMIC_RELEASE);
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    }
    /* Default action back, then the same signal again: it is blocked while
     * this handler runs and is delivered, fatally, as it returns (a fault
     * that was not raised by a kill would also recur on the instruction). */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    if (sigaction(sig, &dfl, NULL) != 0) _exit(128 + sig);
    raise(sig);
    errno = saved;
}

int wrk_crash_install(bool native)
{
    look_up_native = native;
    main_tid = (pid_t)syscall(SYS_gettid);
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = malloc(ALT_STACK_SIZE); /* kept for the life of the process */
    if (!ss.ss_sp) return -ENOMEM;
    ss.ss_size = ALT_STACK_SIZE;
    if (sigaltstack(&ss, NULL) != 0) {
        int e = errno;
        free(ss.ss_sp);
        return -e;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_crash;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
        if (sigaddset(&sa.sa_mask, crash_signals[i]) != 0) return -errno;
    for (size_t i = 0; i < sizeof crash_signals / sizeof crash_signals[0]; i++)
        if (sigaction(crash_signals[i], &sa, NULL) != 0) return -errno;
    return 0;
}
