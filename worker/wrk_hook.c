/* wrk_hook.c: test-only hooks that make a worker fail at a chosen point, so
 * the integration tests can drive the supervisor's fault handling
 * deterministically. Off unless the environment sets
 *
 *   SXPOOL_TEST_HOOK=HOOK[,HOOK...]
 *
 *   exit-after-commit:PATH  _exit(9) right after a request to PATH has
 *                           committed its writes and response record, before
 *                           the reply (the re-dispatch must answer from the
 *                           record)
 *   exit-at-start:MODE      a worker of that mode ("jit" or "cek") exits 1
 *                           before READY (so no worker of that kind is up)
 *   segv-in-cek:PATH        a CEK worker raises SIGSEGV when it starts a
 *                           request to PATH (with a native-code fault on
 *                           the JIT side: a request that kills both tiers)
 *   hold-lock:PATH          a request to PATH holds LMDB's write lock for
 *                           2 s before it runs (a locked transaction,
 *                           aborted), so a test can check that nothing but
 *                           the store's writers waits on it
 *   slow-commit:MS:PATH     a request to PATH that writes sleeps MS ms
 *                           before its commit (with the supervisor's
 *                           kill-delay:MS, sup_pool.c, a commit that lands
 *                           after the deadline, before the worker dies)
 *   probe-sandbox:PATH      a request to PATH first makes, from the worker
 *                           itself, the system calls its seccomp filter
 *                           refuses (wrk_sandbox.c) and logs one line with
 *                           what each returned, "sandbox probe: NAME=RESULT
 *                           ...", RESULT "ok" or an errno name; what was
 *                           made is undone (the socket closed, the child
 *                           reaped)
 *
 * An unknown hook is logged and ignored. Read once at start, on the main
 * thread; the checks afterwards only compare strings.
 *
 * Compiled in only with SXPOOL_TEST_HOOKS (the sxpool-test binary the test
 * suite runs). Without it the variable is never read and every hook is off:
 * the release binary cannot be made to fail on purpose.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#include "worker/wrk_internal.h"

#define HOOK_PATH_MAX 256

static struct {
    bool cek; /* this worker runs --mode=cek */
    char exit_after_commit[HOOK_PATH_MAX];
    char segv_in_cek[HOOK_PATH_MAX];
    char hold_lock[HOOK_PATH_MAX];
    char slow_commit[HOOK_PATH_MAX];
    char probe_sandbox[HOOK_PATH_MAX];
    unsigned slow_commit_ms;
    bool exit_at_start;
} H;

#ifdef SXPOOL_TEST_HOOKS
static bool take(const char *item, const char *kind, char *dst)
{
    size_t n = strlen(kind);
    if (strncmp(item, kind, n) != 0 || strlen(item + n) >= HOOK_PATH_MAX) return false;
    memcpy(dst, item + n, strlen(item + n) + 1);
    return true;
}
#endif

void wrk_hook_init(const char *mode)
{
    H.cek = strcmp(mode, "cek") == 0;
#ifdef SXPOOL_TEST_HOOKS
    const char *v = getenv("SXPOOL_TEST_HOOK");
    if (!v || !*v) return;
    char *copy = strdup(v), *save = NULL;
    if (!copy) {
        fprintf(stderr, "sxpool worker: SXPOOL_TEST_HOOK ignored: out of memory\n");
        return;
    }
    for (char *it = strtok_r(copy, ",", &save); it; it = strtok_r(NULL, ",", &save)) {
        char m[HOOK_PATH_MAX];
        if (take(it, "exit-after-commit:", H.exit_after_commit) ||
            take(it, "segv-in-cek:", H.segv_in_cek) || take(it, "hold-lock:", H.hold_lock) ||
            take(it, "probe-sandbox:", H.probe_sandbox))
            continue;
        if (take(it, "exit-at-start:", m)) {
            if (strcmp(m, mode) == 0) H.exit_at_start = true;
            continue;
        }
        if (take(it, "slow-commit:", m)) {
            char *end;
            unsigned long ms = strtoul(m, &end, 10);
            if (*end == ':' && ms <= 600000) {
                H.slow_commit_ms = (unsigned)ms;
                memcpy(H.slow_commit, end + 1, strlen(end + 1) + 1);
                continue;
            }
        }
        if (take(it, "kill-delay:", m)) continue;  /* the supervisor's */
        if (take(it, "prune-every:", m)) continue; /* the supervisor's (sup_main.c) */
        fprintf(stderr, "sxpool worker: ignoring an unknown SXPOOL_TEST_HOOK '%s'\n", it);
    }
    free(copy);
#endif
}

static bool is(const char *hook, const char *path, size_t len)
{
    return hook[0] && strlen(hook) == len && memcmp(hook, path, len) == 0;
}

bool wrk_hook_exit_at_start(void)
{
    return H.exit_at_start;
}

void wrk_hook_after_commit(const char *path, size_t len)
{
    if (is(H.exit_after_commit, path, len)) _exit(9);
}

void wrk_hook_before_commit(const char *path, size_t len)
{
    if (!is(H.slow_commit, path, len)) return;
    struct timespec ts = {H.slow_commit_ms / 1000, (long)(H.slow_commit_ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

void wrk_hook_before_request(const char *path, size_t len)
{
    if (H.cek && is(H.segv_in_cek, path, len)) raise(SIGSEGV);
}

void wrk_hook_hold_lock(struct store *st, const char *path, size_t len)
{
    if (!is(H.hold_lock, path, len)) return;
    store_txn *t;
    int err = store_txn_begin_locked(st, &t);
    if (err != 0) {
        fprintf(stderr, "sxpool worker: test hook hold-lock: unable to take the write lock: %s\n",
                store_strerror(err));
        return;
    }
    fprintf(stderr, "sxpool worker: test hook: holding the write lock for 2 s\n");
    struct timespec ts = {2, 0};
    while (nanosleep(&ts, &ts) != 0) {
    }
    store_txn_abort(t);
    fprintf(stderr, "sxpool worker: test hook: released the write lock\n");
}

/* Appends " name=ok" or " name=ERRNO" to line. */
static void probe_note(char *line, size_t cap, const char *name, int rc, int err)
{
    size_t n = strlen(line);
    snprintf(line + n, cap - n, " %s=%s", name, rc >= 0 ? "ok" : strerrorname_np(err));
}

void wrk_hook_probe_sandbox(const char *path, size_t len)
{
    if (!is(H.probe_sandbox, path, len)) return;
    char line[512] = "sxpool worker: test hook: sandbox probe:";
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    probe_note(line, sizeof line, "socket-inet", fd, errno);
    if (fd >= 0) close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    probe_note(line, sizeof line, "socket-unix", fd, errno);
    if (fd >= 0) close(fd);
    fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
    probe_note(line, sizeof line, "open-read", fd, errno);
    if (fd >= 0) close(fd);
    fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    probe_note(line, sizeof line, "open-write", fd, errno);
    if (fd >= 0) close(fd);
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    probe_note(line, sizeof line, "fork", pid, errno);
    if (pid > 0) waitpid(pid, NULL, 0);
    void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    probe_note(line, sizeof line, "mmap-exec", p == MAP_FAILED ? -1 : 0, errno);
    if (p != MAP_FAILED) munmap(p, 4096);
    /* harmless without the filter too: the parent is not traced (ESRCH) */
    long r = ptrace(PTRACE_PEEKDATA, getppid(), NULL, NULL);
    probe_note(line, sizeof line, "ptrace", r < 0 ? -1 : 0, errno);
    probe_note(line, sizeof line, "kill-parent", kill(getppid(), 0), errno);
    probe_note(line, sizeof line, "setuid", setuid(0), errno);
    fprintf(stderr, "%s\n", line);
}
