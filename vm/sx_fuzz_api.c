/* sx_fuzz_api.c: vm.h entry points for tests and fuzzing: read a buffer
 * without evaluating it, and optionally hand back the write form of every
 * form read (so a caller can check that printed data reads back).
 *
 * Runs on the context sx_vm_init set up (sx_cur), in the thread that
 * called it. Like every vm.h entry point each call is one protected call:
 * a read-error (or memory-limit) raised inside becomes a status and an
 * sx_failure, never a longjmp out of the module. The text is an sx_buf (in
 * the collected heap) kept in a job record on the stack of the caller of
 * the protected call, so it is still valid, and freed, when an error lands
 * there; on success it is handed back as a malloc'd copy.
 */
#include <stdlib.h>

#include "vm/sx_core.h"
#include "vm/sx_read.h"
#include "vm/vm.h"

typedef struct read_job {
    const char *buf;
    size_t len;
    bool want_text;
    sx_buf text;
} read_job;

static void read_body(read_job *job)
{
    sx_val forms = sx_read_all(sx_cur, job->buf, job->len);
    if (!job->want_text) return;
    for (; sx_is_pair(forms); forms = SX_CDR(forms)) {
        sx_print(&job->text, SX_CAR(forms), true);
        sx_buf_addc(&job->text, '\n');
    }
}

/* Copies at most cap-1 bytes of src, writing newlines as \n when escape. */
static void copy_text(char *dst, size_t cap, const char *src, size_t len, bool escape)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 3 < cap; i++) {
        if (escape && src[i] == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else {
            dst[o++] = src[i];
        }
    }
    dst[o] = 0;
}

static void set_failure(sx_failure *fail, const char *kind, const char *msg, size_t len)
{
    char esc[1100]; /* fits in line after "error: KIND: " */
    snprintf(fail->kind, sizeof fail->kind, "%s", kind);
    copy_text(fail->message, sizeof fail->message, msg, len, false);
    copy_text(esc, sizeof esc, msg, len, true);
    snprintf(fail->line, sizeof fail->line, "error: %s: %s", fail->kind, esc);
}

static void fill_failure(sx_val obj, sx_failure *fail)
{
    if (obj == SX_UNDEF) {
        static const char oom[] = "reading exceeded the memory limit";
        set_failure(fail, "memory-limit", oom, sizeof oom - 1);
        return;
    }
    sx_buf b;
    sx_buf_init(&b);
    const char *kind = "raised";
    if (sx_is(obj, SX_T_ERROR)) {
        sx_errobj *e = SX_OBJ(sx_errobj, obj);
        kind = sx_sym_name(e->kind);
        sx_print(&b, e->message, false);
    } else {
        sx_print(&b, obj, true);
    }
    set_failure(fail, kind, b.p ? b.p : "", b.len);
    sx_buf_free(&b);
}

/* Runs read_body(job) as one protected call. */
static int protect(read_job *job, sx_failure *fail)
{
    sx_ctx *cx = sx_cur;
    sx_jmp j;
    if (sx_try(cx, &j) == 0) {
        read_body(job);
        sx_try_end(cx, &j);
        return 0;
    }
    sx_try_end(cx, &j);
    if (fail) fill_failure(cx->raised, fail);
    return 1;
}

static int run_job(read_job *job, sx_failure *fail)
{
    if (!sx_cur) {
        static const char why[] = "sx_vm_init has not been called";
        if (fail) set_failure(fail, "vm-error", why, sizeof why - 1);
        return 1;
    }
    return protect(job, fail);
}

int sx_vm_read_only(const char *buf, size_t len, sx_failure *fail)
{
    read_job job = {buf, len, false, {NULL, 0, 0}};
    return run_job(&job, fail);
}

int sx_vm_read_write(const char *buf, size_t len, char **text, size_t *text_len, sx_failure *fail)
{
    read_job job = {buf, len, true, {NULL, 0, 0}};
    *text = NULL;
    *text_len = 0;
    if (run_job(&job, fail)) {
        sx_buf_free(&job.text);
        return 1;
    }
    /* the text is in the collected heap: hand the caller a malloc'd copy */
    char *copy = malloc(job.text.len + 1);
    if (!copy) abort();
    if (job.text.len) memcpy(copy, job.text.p, job.text.len);
    copy[job.text.len] = 0;
    *text = copy;
    *text_len = job.text.len;
    sx_buf_free(&job.text);
    return 0;
}
