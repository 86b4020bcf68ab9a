/* sx_bc.h: bytecode and the VM tier. Internal to vm/.
 *
 * The bytecode compiler (sx_bcomp.c) translates the node trees the loader
 * builds (sx_cek.h: macros expanded, variables resolved) into one sx_proto
 * per lambda, so the VM and CEK share the front end and differ only in how
 * they run. The VM (sx_vm.c) is a stack machine: a call's frame is a window
 * on one value stack holding the callee, its local slots and its operand
 * stack. Slots captured by an inner lambda live instead in a heap sx_env
 * made at entry, chained to the closure's env; slots nobody captures stay
 * on the stack, so most calls allocate nothing.
 *
 * An instruction is an opcode word followed by its operands, all int32.
 * Jump offsets are relative to the word after the jump's last operand.
 */
#ifndef SX_BC_H
#define SX_BC_H

#include "vm/sx_cek.h"

/* X(name, operand count) */
#define SX_OPCODES(X)                                                                              \
    X(CONST, 1)           /* k: push K[k] */                                                       \
    X(NIL, 0)             /* push nil */                                                           \
    X(LOCAL, 1)           /* i: push slot i */                                                     \
    X(LOCAL_CK, 2)        /* i k: push slot i, unbound-variable K[k] if unassigned */              \
    X(SET_LOCAL, 1)       /* i: pop into slot i */                                                 \
    X(ENV, 2)             /* d i: push env d hops up, slot i */                                    \
    X(ENV_CK, 3)          /* d i k: same, checked */                                               \
    X(SET_ENV, 2)         /* d i: pop into env slot */                                             \
    X(GLOBAL, 1)          /* k: push the global K[k] (a symbol) */                                 \
    X(SET_GLOBAL, 1)      /* k: pop into an existing global */                                     \
    X(DEF_GLOBAL, 1)      /* k: pop into a global, defining it */                                  \
    X(POP, 0)             /* drop the top */                                                       \
    X(JUMP, 1)            /* off */                                                                \
    X(JUMP_FALSE, 1)      /* off: pop, jump if false */                                            \
    X(JUMP_FALSE_KEEP, 1) /* off: if the top is false jump (keeping it), else pop */               \
    X(JUMP_TRUE_KEEP, 1)  /* off: if the top is true jump (keeping it), else pop */                \
    X(CLOSURE, 1)         /* k: push a closure of proto K[k] over the current env */               \
    X(CALL, 1)            /* n: call the procedure below n arguments */                            \
    X(TAIL_CALL, 1)       /* n: the same, replacing the current frame */                           \
    X(PRIM, 3)            /* op k n: like CALL n, inline when the callee is the built-in K[k] */   \
    X(PRIM_LK, 5)         /* op k g i c: PRIM op k 2 on global K[g], slot i, constant K[c] */      \
    X(RETURN, 0)          /* return the top */                                                     \
    X(GUARD, 1)     /* off: install a handler at pc+off; a raise lands there with the value */     \
    X(GUARD_END, 0) /* remove the innermost handler */                                             \
    X(DICT, 1)      /* n: pop n keys and values, push a new dict */

enum sx_opcode {
#define SX_OP_ENUM(name, n) BC_##name,
    SX_OPCODES(SX_OP_ENUM)
#undef SX_OP_ENUM
        BC__COUNT
};

extern const char *const sx_opcode_names[];
extern const int sx_opcode_operands[];

typedef struct sx_proto {
    sx_obj h;
    sx_val name;       /* symbol or nil */
    int32_t nreq;      /* required parameters */
    int32_t rest;      /* 1 if a rest list follows */
    int32_t nslots;    /* local slots (the code's frame size) */
    int32_t maxstack;  /* operand stack words needed above the slots */
    int32_t env_size;  /* slots moved to a heap env (0: none) */
    int32_t *slot_env; /* per slot: index in the env, or -1 (stays on the stack) */
    int32_t *code;
    int32_t ncode;
    sx_val *k; /* constants */
    int32_t nk;
    sx_code *src;          /* the node tree it was compiled from */
    uint32_t calls;        /* tier-up counter */
    void *volatile native; /* native code (sx_native_fn), when compiled */
    /* Its direct entry (jit/README.md: the arguments in registers), when
     * the native code has one; installed and dropped with native, so it is
     * non-NULL only while native is. Native code calls it when it finds a
     * closure of this proto as a callee. */
    void *volatile native_d;
    volatile int jit_state; /* enum sx_jit_state */
    char hash[17];          /* code hash (hex), computed when first needed */
    /* Written by the prologue of its native code: sx_ctx's jit_epoch at
     * the last entry, so the native tier can tell which functions a
     * request ran natively (jit_request_entered). */
    volatile uint32_t jit_entered;
    uint32_t jit_requests; /* requests it ran natively in, in this process */
    /* its installed native code assumes globals, which are watched
     * (jit/README.md, "Assumed globals"); jit_checked: it is compiled
     * assuming none, since one it assumed was redefined */
    uint32_t jit_assumes, jit_checked;
    /* per env index: the slot it is filled from (slot_env inverted), so a
     * frame's env is made without walking the slots that stay */
    int32_t *env_from;
    /* env_writes: its code or a lambda inside it stores into an env
     * (SET_ENV). env_lazy: it has a heap env whose slots nothing stores
     * into after entry (no env_writes, no SET_LOCAL of a captured slot, no
     * guard): its native code makes the env only when a closure needs it,
     * so whoever enters native code of such a proto passes the closure's
     * env, not a new one (sx_vm.c's enter, jit_lower.c's callee_env). */
    int32_t env_writes, env_lazy;
} sx_proto;

enum sx_jit_state {
    SX_JIT_NONE,        /* not looked at yet */
    SX_JIT_QUEUED,      /* waiting for (or in) a compile */
    SX_JIT_NATIVE,      /* native code installed */
    SX_JIT_FAILED,      /* the compiler rejected it: stays on the VM */
    SX_JIT_UNSUPPORTED, /* uses something the JIT does not compile */
    SX_JIT_BLACKLISTED, /* its native code faulted: never again */
    SX_JIT_EXCLUDED,    /* matched a jit-exclude! glob */
};

/* ---- the native tier's view of the VM ------------------------------------ *
 *
 * Native code is entered by the interpreter after it has set up the frame
 * as for the VM (slots, env). Everything that depends on addresses in this
 * process comes in through the arguments, so code compiled by one process
 * runs in another: constants and symbols through K, runtime entry points
 * through the link table. A native function returns its result, or
 * SX_JIT_TAILCALL after writing a callee and its arguments to base[-1 ..
 * n) and n to cx->jit_tail_n: the interpreter then makes that tail call.
 */
#define SX_JIT_LINK_VERSION 8
#define SX_JIT_TAILCALL SX_NOARG
#define SX_JIT_FRAME_MARGIN 64

typedef struct sx_jit_link sx_jit_link;

/* The body of a guard in native code, outlined as a function of its own:
 * it reads and writes its function's slots in memory, at slots[0 ..
 * nslots), and returns the body's value. */
typedef sx_val (*sx_guard_body_fn)(sx_ctx *cx, sx_val *base, sx_env *env, const sx_val *K,
                                   const sx_jit_link *L, sx_val *slots);

struct sx_jit_link {
    uint32_t version, size;
    /* argv[0] applied to argv[1..n]; returns its value (may raise) */
    sx_val (*call)(sx_ctx *cx, sx_val *argv, int64_t n);
    void (*unbound)(sx_ctx *cx, sx_val sym); /* raises */
    sx_val (*closure)(sx_ctx *cx, sx_val proto, sx_env *env);
    sx_val (*dict)(sx_ctx *cx, sx_val *kv, int64_t n); /* n keys and values */
    sx_env *(*new_env)(sx_ctx *cx, sx_env *up, int64_t size);
    void (*interrupted)(sx_ctx *cx);                            /* raises timeout */
    sx_val (*fallback_op)(sx_ctx *cx, sx_val *argv, int64_t n); /* a PRIM's slow path */
    /* finishes a call whose native callee returned SX_JIT_TAILCALL (base is
     * the callee's frame, holding the tail callee at base[-1]) */
    sx_val (*finish_tail)(sx_ctx *cx, sx_val *base);
    /* the heap env of a frame of proto p at base (captured slots copied) */
    sx_env *(*frame_env)(sx_ctx *cx, sx_val p, sx_val *base, sx_env *up);
    /* runs a guard's body; *caught = 0 and its value, or, when the body
     * raised something a guard may catch, *caught = 1 and the raised value
     * (the VM's stacks are as they were at the guard) */
    sx_val (*guard)(sx_ctx *cx, sx_guard_body_fn body, sx_val *base, sx_env *env, const sx_val *K,
                    const sx_jit_link *L, sx_val *slots, int64_t *caught);
    /* The allocator's free lists (sx_core.h), which native code pops
     * inline as sx_cons and sx_alloc do: &sx__fl_pair and sx__fl. An empty
     * list is refilled by the runtime entry the inline path falls back to
     * (fallback_op, closure, new_env, frame_env), never by native code. */
    void **pair_fl;
    void **fl;
    /* after native code stored into the global sym while it is watched
     * (sx_set_global) */
    void (*global_written)(sx_ctx *cx, sx_val sym);
};

typedef sx_val (*sx_native_fn)(sx_ctx *cx, sx_val *base, sx_env *env, const sx_val *K,
                               const sx_jit_link *L);

/* Set by the native tier: called at a function's first call and when it
 * becomes hot (the VM counts calls in p->calls); may install p->native
 * before returning (from the code cache, or compiled at threshold 0). */
extern void (*sx_jit_hot_hook)(sx_ctx *cx, sx_proto *p);
extern uint32_t sx_jit_threshold;
extern const sx_jit_link sx_jit_link_table;
/* The calls that entered native code (the VM's and native code's own:
 * (jit-stats) :native-calls) and, of those, the calls native code made to
 * another function's direct entry (the report's calls-direct). Any thread. */
void sx_jit_calls(uint64_t *native, uint64_t *direct);
/* Set by the native tier: sx_vm_blacklist lands here. */
extern void (*sx_jit_blacklist_hook)(const char *fn, const char *code_hash);

/* Counters behind (jit-stats) and `eval --jit-report`: the first seven
 * are kept by the native tier; the VM counts vm_calls (entries into a frame of
 * a function, not a top-level form, that run interpreted) and
 * toplevel_forms (forms run by sx_vm_run_proto). Native entries are
 * sx_jit_native_calls. The link table's entries count the slow paths
 * native code takes: fallbacks (a PRIM whose inline path did not apply:
 * other operands, a redefined built-in, cons on an empty free list) and
 * runtime_allocs (closures and heap envs it could not pop off a free
 * list). */
typedef struct sx_jit_counters {
    uint64_t compiled, failed, blacklisted, excluded, unsupported, cache_hits;
    /* native code dropped, or not installed, because a global it assumed
     * (jit/README.md, "Assumed globals") no longer holds that value: the
     * function is compiled again, assuming nothing */
    uint64_t redefined;
    uint64_t vm_calls, toplevel_forms;
    uint64_t fallbacks, runtime_allocs;
} sx_jit_counters;
extern sx_jit_counters sx_jit_stats;

/* jit-exclude! globs (fnmatch patterns on function names). */
void sx_jit_exclude_add(const char *glob);
bool sx_jit_excluded(const char *name);
/* Set by the native tier: drop native code of functions now excluded. */
extern void (*sx_jit_exclude_hook)(void);

/* The code hash of p (16 hex digits), computed on first use. */
const char *sx_proto_hash(sx_proto *p);

typedef struct sx_vmclosure {
    sx_obj h;
    sx_proto *proto;
    sx_env *env;
} sx_vmclosure;

/* Compiles code (and every lambda inside it) to bytecode. */
sx_proto *sx_bc_compile(sx_ctx *cx, sx_code *code);

/* The machine. */
void sx_vm_tier_init(sx_ctx *cx);
sx_val sx_vm_run_proto(sx_ctx *cx, sx_proto *p);
sx_val sx_vm_apply(sx_ctx *cx, sx_val fn, int argc, sx_val *argv);
/* argv[0] applied to argv[1..n] from native code (the link table's call). */
sx_val sx_vm_jit_call(sx_ctx *cx, sx_val *argv, int64_t n);
/* The link table's guard (see sx_jit_link). */
sx_val sx_vm_jit_guard(sx_ctx *cx, sx_guard_body_fn body, sx_val *base, sx_env *env,
                       const sx_val *K, const sx_jit_link *L, sx_val *slots, int64_t *caught);

/* Debugging: the disassembly of p (and the lambdas in it) into b. */
void sx_bc_disassemble(sx_buf *b, sx_proto *p);
/* Turns tracing on or off; while on, each instruction is appended to b. */
void sx_vm_set_trace(sx_buf *b);

#endif
