/* fuzz_json.c: libFuzzer target for json-decode and json-encode
 * (vm/sx_prim_json.c, LANGUAGE.md 6.9).
 *
 * Each input that is valid UTF-8 (an SX string cannot hold anything else)
 * is handed to json-decode as an SX string literal, through the vm's public
 * entry point sx_vm_load. Built with ASan and UBSan by run_target.sh. The
 * properties, checked by json-check below in SX:
 *
 *   - decoding never crashes or hangs, and fails only with a json-error;
 *   - what decodes, encodes (unless it holds a float JSON cannot write,
 *     from a number such as 1e999) to a text that decodes to an equal?
 *     value, and encoding that value again gives the same text.
 *
 * Any other outcome is an error that escapes json-check; the harness then
 * prints it and calls abort(), which libFuzzer records as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char prelude[] =
    "(define (json-error? e) (eq? (error-kind e) 'json-error))\n"
    "(define (json-check s)\n"
    "  (guard (e ((json-error? e) 'refused))\n"
    "    (let* ((v (json-decode s))\n"
    "           (t (guard (e ((json-error? e) #f)) (json-encode v))))\n"
    "      (when t\n"
    "        (unless (equal? (json-decode t) v) (error \"round trip differs\" s t))\n"
    "        (unless (equal? (json-encode (json-decode t)) t) (error \"not a fixpoint\" t)))\n"
    "      'ok)))\n";

static bool valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c < 0xe0) {
            len = 2, cp = c & 0x1f;
        } else if (c >= 0xe0 && c < 0xf0) {
            len = 3, cp = c & 0x0f;
        } else if (c >= 0xf0 && c < 0xf5) {
            len = 4, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    sx_failure f;
    if (!ready) {
        if (sx_vm_init(NULL) != 0) abort();
        if (sx_vm_load("prelude", prelude, strlen(prelude), &f) != 0) {
            fprintf(stderr, "fuzz_json: prelude: %s\n", f.line);
            abort();
        }
        ready = 1;
    }
    if (!valid_utf8(data, size)) return 0;
    /* (json-check "…") with \ and " escaped and control bytes as \xHH; */
    size_t cap = size * 6 + 32, n = 0;
    char *prog = malloc(cap);
    if (!prog) return 0;
    n += (size_t)snprintf(prog, cap, "(json-check \"");
    for (size_t i = 0; i < size; i++) {
        uint8_t c = data[i];
        if (c == '"' || c == '\\') {
            prog[n++] = '\\';
            prog[n++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            n += (size_t)snprintf(prog + n, cap - n, "\\x%x;", c);
        } else {
            prog[n++] = (char)c;
        }
    }
    n += (size_t)snprintf(prog + n, cap - n, "\")");
    int rc = sx_vm_load("input", prog, n, &f);
    free(prog);
    if (rc != 0) {
        fprintf(stderr, "fuzz_json: %s\n", f.line);
        abort();
    }
    return 0;
}
