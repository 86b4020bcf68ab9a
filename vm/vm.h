/* vm.h: the vm module's public interface, used by worker/.
 *
 * One SX runtime per process (the collector and symbol table are global).
 * Nothing non-local crosses this interface: every entry point returns a
 * status and fills an sx_failure on error. Effects (perform) reach the host
 * through the byte-level callbacks of sx_effects; the vm checks the
 * arguments and converts values.
 */
#ifndef SXPOOL_VM_H
#define SXPOOL_VM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Why an evaluation failed. line is the one-line report
 * "error: KIND: MESSAGE [irritants]" with newlines written as \n. */
typedef struct sx_failure {
    char kind[48];
    char message[1024];
    char line[1200];
    /* Set when the error escaped from native (JIT) code: the SX function
     * it escaped from and its code hash. Empty otherwise. */
    char native_fn[256];
    char code_hash[40];
} sx_failure;

/* Host effects. Each returns 0 on success, 1 for "not found" where that
 * applies, and a negative value on failure (the vm raises effect-error
 * with errmsg). Values passed in are valid only during the call. */
typedef int (*sx_scan_item_fn)(void *ctx, const char *key, size_t klen, const char *val,
                               size_t vlen);
typedef struct sx_effects {
    void *arg;
    int (*kv_get)(void *arg, const char *k, size_t kl, const char **v, size_t *vl);
    int (*kv_put)(void *arg, const char *k, size_t kl, const char *v, size_t vl);
    int (*kv_del)(void *arg, const char *k, size_t kl);
    int (*kv_scan)(void *arg, const char *prefix, size_t pl, size_t limit, sx_scan_item_fn fn,
                   void *ctx);
    void (*log)(void *arg, const char *line, size_t len);
    char errmsg[256];
} sx_effects;

enum { SX_TIER_CEK = 0, SX_TIER_VM = 1 };

typedef struct sx_options {
    size_t heap_limit;   /* bytes of live heap before memory-limit; 0 = 1 GiB */
    size_t kstack_max;   /* continuation stack words; 0 = default */
    size_t cstack_bytes; /* C stack the evaluator may use; 0 = 64 MiB */
    int tier;            /* SX_TIER_CEK or SX_TIER_VM */
} sx_options;

/* Initializes the runtime. Call once per process. */
int sx_vm_init(const sx_options *opt);

/* Where display/write/print write (default stdout). */
void sx_vm_set_output(FILE *out);

/* Sets the effect handlers; NULL gives an in-memory store that lasts for
 * the process (what `sxpool eval` uses) and :log to stderr. */
void sx_vm_set_effects(sx_effects *fx);

/* Calls so far of built-ins whose value is not a function of their
 * arguments and the store (current-time-ms): a request during which it
 * grew cannot be run again with the same result. */
uint64_t sx_vm_nondet_calls(void);

/* Reads the whole buffer, then loads each form in order (macros expanded
 * at load time). @return 0, or 1 with *fail filled */
int sx_vm_load(const char *name, const char *buf, size_t len, sx_failure *fail);
/* sx_vm_sources_read, then sx_vm_sources_load. */
int sx_vm_load_file(const char *path, sx_failure *fail);

/* The texts of a file and the libraries it loads ((load "NAME") forms at
 * its top, LANGUAGE.md 9.1), in the order they are to be loaded: every
 * library before the file that loads it, the file itself last. */
typedef struct sx_source {
    char *name, *text; /* malloc'd */
    size_t len;
} sx_source;
typedef struct sx_sources {
    sx_source *v;
    int n;
} sx_sources;

/* Reads path and, recursively, the files its load forms name: looked up in
 * path's directory, then in the library directory (sx_vm_lib_dir()). Opens
 * files; evaluates nothing. On success the caller owns *out and frees it
 * with sx_vm_sources_free. @return 0, or 1 with *fail filled (io-error) */
int sx_vm_sources_read(const char *path, sx_sources *out, sx_failure *fail);
/* Loads each text in order with sx_vm_load. @return 0, or 1 with *fail */
int sx_vm_sources_load(const sx_sources *s, sx_failure *fail);
void sx_vm_sources_free(sx_sources *s);
/* The library directory load looks in after the file's own. */
const char *sx_vm_lib_dir(void);

/* Reads and evaluates the forms in buf, writing the write form of each
 * value followed by a newline to out (the REPL). @return 0 or 1 */
int sx_vm_eval_print(const char *buf, size_t len, FILE *out, sx_failure *fail);

/* An HTTP request for (handle req). */
typedef struct sx_header {
    const char *name, *value;
    size_t name_len, value_len;
} sx_header;

typedef struct sx_request {
    const char *id, *method, *path, *query, *body;
    size_t id_len, method_len, path_len, query_len, body_len;
    const sx_header *headers;
    int nheaders;
} sx_request;

typedef struct sx_response {
    int status;
    char *body; /* malloc'd, owned by the caller after success */
    size_t body_len;
    sx_header *headers; /* malloc'd array and strings, freed by sx_response_free */
    int nheaders;
    uint64_t built_ns; /* CLOCK_MONOTONIC once the request value was built (SXPOOL_STAGES) */
} sx_response;

/* Calls the loaded program's (handle req). @return 0 with *resp filled,
 * 1 with *fail filled (an SX error, or handle missing or returning a value
 * that is not a string or response dict). */
int sx_vm_handle(const sx_request *req, sx_response *resp, sx_failure *fail);
void sx_response_free(sx_response *resp);

/* Asks the running evaluation to stop with a timeout error (async-signal-safe). */
void sx_vm_interrupt(void);

/* ---- native tier hooks (see jit/jit.h) --------------------------------- */

/* Drops the native code of the function named fn whose code hash is
 * code_hash (any hash when NULL) and never compiles it again: it runs on
 * the VM from its next call. Safe between requests. */
void sx_vm_blacklist(const char *fn, const char *code_hash);

/* ---- for tests and fuzzing (vm/sx_fuzz_api.c) ---- */

/* Reads every form in buf without evaluating anything. Call sx_vm_init
 * first. @return 0, or 1 with *fail filled (a read-error, whose message
 * starts "LINE:COL: "). */
int sx_vm_read_only(const char *buf, size_t len, sx_failure *fail);

/* Like sx_vm_read_only, and on success also sets *text to the write form
 * of each form read, each followed by a newline (*text_len bytes plus a
 * terminating NUL). On success the caller owns *text and frees it with
 * free(); on failure *text is NULL. @return 0, or 1 with *fail filled */
int sx_vm_read_write(const char *buf, size_t len, char **text, size_t *text_len, sx_failure *fail);

#endif
