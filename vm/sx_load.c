/* sx_load.c: (load "NAME") at the top of a source file, resolved when the
 * file is read, never while a program runs (LANGUAGE.md 9.1).
 *
 * A file may begin with load forms, with only whitespace and ; comments
 * before and between them. sx_vm_sources_read reads the file, finds those
 * forms, reads each named library the same way (depth first, every file at
 * most once) and blanks the load forms out with spaces, so line and column
 * numbers in read errors stay right. The result is an ordered list of
 * texts that sx_vm_sources_load loads one after the other. A worker reads
 * the sources before it enters its sandbox and loads them after, so the
 * application never opens a file.
 *
 * NAME is a relative path of plain segments ending in .sx; it is looked up
 * in the top file's directory, then in the library directory (SXPOOL_LIB_DIR,
 * the bundled examples/lib). The file found must resolve (symlinks
 * followed) to a path inside the directory it was found in. Anything else is
 * an io-error. There is no load procedure: a load form anywhere else is a
 * call of an unbound variable, so nothing is ever read at run time.
 *
 * Runs in the process that calls it, before or between evaluations; the
 * sources are malloc'd, outside the collected heap.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "vm/sx_core.h"
#include "vm/vm.h"

#ifndef SXPOOL_LIB_DIR
#define SXPOOL_LIB_DIR "examples/lib"
#endif

#define MAX_SOURCES 64
#define MAX_SOURCE_BYTES (16u << 20)

static void fail_io(sx_failure *fail, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail_io(sx_failure *fail, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fail->message, sizeof fail->message, fmt, ap);
    va_end(ap);
    snprintf(fail->kind, sizeof fail->kind, "io-error");
    snprintf(fail->line, sizeof fail->line, "error: io-error: %s", fail->message);
}

const char *sx_vm_lib_dir(void)
{
    return SXPOOL_LIB_DIR;
}

static int slurp(const char *path, char **out, size_t *len, sx_failure *fail)
{
    FILE *f = fopen(path, "rbe");
    if (!f) {
        fail_io(fail, "cannot open %s: %s", path, strerror(errno));
        return 1;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) break;
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0 || n > MAX_SOURCE_BYTES) break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (!buf || bad || n > MAX_SOURCE_BYTES) {
        fail_io(fail, "cannot read %s: %s", path,
                !buf  ? "out of memory"
                : bad ? strerror(errno)
                      : "larger than 16 MiB");
        free(buf);
        return 1;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Whether name is a relative path of plain segments ending in ".sx". */
static bool plain_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 4 || n > 255 || name[0] == '/' || strcmp(name + n - 3, ".sx") != 0) return false;
    const char *seg = name;
    for (const char *p = name;; p++) {
        char c = *p;
        if (c == '/' || c == 0) {
            size_t sl = (size_t)(p - seg);
            if (sl == 0 || (sl == 1 && seg[0] == '.') ||
                (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                return false;
            if (c == 0) return true;
            seg = p + 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return false;
    }
}

/* Resolves name in dir: the real path when it exists inside dir's real
 * path. Returns 0 found, 1 absent, -1 present but outside dir. */
static int resolve_in(const char *dir, const char *name, char out[PATH_MAX])
{
    char realdir[PATH_MAX], cand[PATH_MAX * 2];
    if (!realpath(dir, realdir)) return 1;
    snprintf(cand, sizeof cand, "%s/%s", realdir, name);
    if (!realpath(cand, out)) return 1;
    size_t dl = strlen(realdir);
    if (strncmp(out, realdir, dl) != 0 || out[dl] != '/') return -1;
    return 0;
}

typedef struct loader {
    sx_sources *out;
    const char *dirs[2];
    size_t total;
    sx_failure *fail;
} loader;

static int add_file(loader *ld, const char *path, int depth);

/* The load forms at the top of text: each one's name is read, the form is
 * blanked, and the named file is added first. */
static int expand_loads(loader *ld, const char *path, char *text, size_t len, int depth)
{
    size_t i = 0;
    for (;;) {
        while (i < len &&
               (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r' ||
                text[i] == '\f' || text[i] == '\v' || text[i] == ';')) {
            if (text[i] == ';')
                while (i < len && text[i] != '\n')
                    i++;
            else
                i++;
        }
        size_t start = i;
        if (len - i < 6 || memcmp(text + i, "(load", 5) != 0) return 0;
        i += 5;
        if (text[i] != ' ' && text[i] != '\t') return 0;
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i >= len || text[i] != '"') return 0;
        size_t name_at = ++i;
        while (i < len && text[i] != '"' && text[i] != '\n' && text[i] != '\\')
            i++;
        if (i >= len || text[i] != '"') return 0;
        char name[256];
        size_t nl = i - name_at;
        if (nl >= sizeof name) nl = sizeof name - 1;
        memcpy(name, text + name_at, nl);
        name[nl] = 0;
        i++;
        while (i < len && (text[i] == ' ' || text[i] == '\t'))
            i++;
        if (i >= len || text[i] != ')') return 0;
        i++;
        if (!plain_name(name)) {
            fail_io(ld->fail,
                    "load \"%s\" in %s: not a relative path of plain segments ending in .sx", name,
                    path);
            return 1;
        }
        char real[PATH_MAX];
        int found = 1;
        for (int d = 0; d < 2 && found == 1; d++) {
            found = resolve_in(ld->dirs[d], name, real);
            if (found < 0) {
                fail_io(ld->fail, "load \"%s\" in %s: resolves outside %s", name, path,
                        ld->dirs[d]);
                return 1;
            }
        }
        if (found != 0) {
            fail_io(ld->fail, "load \"%s\" in %s: not found in %s or %s", name, path, ld->dirs[0],
                    ld->dirs[1]);
            return 1;
        }
        memset(text + start, ' ', i - start);
        if (add_file(ld, real, depth + 1) != 0) return 1;
    }
}

static int add_file(loader *ld, const char *path, int depth)
{
    sx_sources *s = ld->out;
    for (int k = 0; k < s->n; k++)
        if (strcmp(s->v[k].name, path) == 0) return 0; /* each file once */
    if (s->n >= MAX_SOURCES || depth > 16) {
        fail_io(ld->fail, "load: more than %d files, or loads nested more than 16 deep, at %s",
                MAX_SOURCES, path);
        return 1;
    }
    char *text;
    size_t len;
    if (slurp(path, &text, &len, ld->fail) != 0) return 1;
    ld->total += len;
    if (ld->total > MAX_SOURCE_BYTES) {
        free(text);
        fail_io(ld->fail, "load: the sources are larger than 16 MiB together, at %s", path);
        return 1;
    }
    /* reserve this file's place after its libraries: they are added first */
    char *name = strdup(path);
    if (!name) {
        free(text);
        fail_io(ld->fail, "load: out of memory");
        return 1;
    }
    s->v[s->n++] = (sx_source){name, NULL, 0}; /* marks it seen (cycles) */
    int at = s->n - 1;
    if (expand_loads(ld, path, text, len, depth) != 0) {
        free(text);
        return 1;
    }
    /* move this file after the ones its loads added */
    sx_source me = {s->v[at].name, text, len};
    memmove(&s->v[at], &s->v[at + 1], (size_t)(s->n - at - 1) * sizeof *s->v);
    s->v[s->n - 1] = me;
    return 0;
}

int sx_vm_sources_read(const char *path, sx_sources *out, sx_failure *fail)
{
    memset(out, 0, sizeof *out);
    out->v = calloc(MAX_SOURCES, sizeof *out->v);
    if (!out->v) {
        fail_io(fail, "load: out of memory");
        return 1;
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof dir, ".");
    if (dir[0] == 0) snprintf(dir, sizeof dir, "/");
    loader ld = {out, {dir, SXPOOL_LIB_DIR}, 0, fail};
    /* the top file keeps the name it was given (messages name it so) */
    char *text;
    size_t len;
    if (slurp(path, &text, &len, fail) != 0) goto fail;
    char *name = strdup(path);
    if (!name) {
        free(text);
        fail_io(fail, "load: out of memory");
        goto fail;
    }
    char real[PATH_MAX];
    out->v[out->n++] = (sx_source){realpath(path, real) ? strdup(real) : strdup(path), NULL, 0};
    if (expand_loads(&ld, path, text, len, 0) != 0) {
        free(text);
        free(name);
        goto fail;
    }
    free(out->v[0].name);
    memmove(&out->v[0], &out->v[1], (size_t)(out->n - 1) * sizeof *out->v);
    out->v[out->n - 1] = (sx_source){name, text, len};
    return 0;
fail:
    sx_vm_sources_free(out);
    return 1;
}

int sx_vm_sources_load(const sx_sources *s, sx_failure *fail)
{
    for (int i = 0; i < s->n; i++)
        if (sx_vm_load(s->v[i].name, s->v[i].text, s->v[i].len, fail) != 0) return 1;
    return 0;
}

void sx_vm_sources_free(sx_sources *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].text);
    }
    free(s->v);
    memset(s, 0, sizeof *s);
}
