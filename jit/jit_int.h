/* jit_int.h: shared between the native tier's files.
 *
 * jit/ is the one module that sees vm/'s internal headers (sx_bc.h): it
 * lowers the VM's bytecode, so it must know the bytecode and the value
 * layout, exactly as the runtime that interprets them does.
 */
#ifndef SXPOOL_JIT_INT_H
#define SXPOOL_JIT_INT_H

#include "jit/jit_gcc.h"

#include "jit/jit.h"
#include "vm/sx_bc.h"

/* Functions with more bytecode words than this are refused ("too-large"):
 * the compile time of one function grows with its size, and a compile must
 * not stall the compile thread (or, at threshold 0, the program). */
#define JIT_MAX_CODE 4000

/* The version of the code the lowering emits. It is part of the ABI hash
 * (jit.c): raise it whenever generated code changes in a way code built
 * before must not be mixed with (an entry point's signature, a frame's
 * layout), and whenever the lowering changes enough that cached code
 * should be rebuilt. */
#define JIT_LOWER_VERSION 15

/* Test-only fault injection (SXPOOL_INJECT=KIND:FUNCTION,...). */
enum jit_inject {
    JIT_INJECT_NONE = 0,
    JIT_INJECT_WRONG_PRIM_ARG = 1, /* a wrong first argument to the first primitive call */
    JIT_INJECT_NULL_DEREF = 2,     /* dereference NULL on entry */
    JIT_INJECT_ICE = 4,            /* exit(4) while compiling it */
    JIT_INJECT_COMPILE_ERROR = 8,  /* emit code libgccjit rejects (a compile error) */
    JIT_INJECT_WRONG_SUM = 16, /* the fixnum fast path of + adds one more: a silent miscompile */
};

/* Not a fault: jit_job.inject has this bit when the function is compiled
 * assuming no global (sx_proto.jit_checked), so that code has cache
 * entries and a symbol of its own, as injected code has. */
#define JIT_CHECKED 256

/* One function of a batch. */
typedef struct jit_job {
    sx_proto *p;
    char name[256];
    char hash[17];
    char symbol[64]; /* exported symbol: sx_<hash> */
    int inject;      /* enum jit_inject bits, and JIT_CHECKED */
    int ok;          /* lowered without error */
    uint64_t hot_us; /* when it got hot (jit.c's now_us), 0 if unknown */
} jit_job;

/* Lowers job->p into ctxt as an exported function named job->symbol.
 * @return 0, or -1 when the function uses something the JIT does not
 * compile (it then stays on the VM; nothing was added to ctxt) */
int jit__lower(gcc_jit_context *ctxt, jit_job *job);

/* Native code of a function that calls nothing but itself and the
 * built-ins the machine runs inline assumes the globals it loads them
 * from, instead of testing them at every use (jit/README.md, "Assumed
 * globals"): global K[k] holds K[prim], a built-in, or, prim < 0, a
 * closure of the function's own proto. */
typedef struct jit_assume {
    int32_t k, prim;
} jit_assume;

/* p's assumptions, the first cap of them into out, or -1 when p calls
 * something else, stores into a global or opens a guard (its code assumes
 * nothing then). site_g (NULL, or p->ncode + 1 entries): per pc of a
 * call or a PRIM, the constant index of the global its callee was loaded
 * from on every path to it, else -1. needed (NULL, or p->ncode + 1
 * entries): per pc of a GLOBAL, whether its value is read as anything but
 * the callee of a PRIM or a (non-tail) call, which, assumed, are known
 * without a load there. */
int jit__assumptions(const sx_proto *p, jit_assume *out, int cap, int *site_g, bool *needed);

/* Whether p has assumptions and they all hold now. */
bool jit__assumptions_hold(const sx_proto *p);

/* Why jit__lower would refuse p: a short token for the coverage report
 * (`guard`, `build-off`, ...), or NULL when p uses only what it compiles. */
const char *jit__supported(const sx_proto *p);

#endif
