/* jit_lower.c: one sx_proto's bytecode -> one libgccjit function.
 *
 * Runs on whichever thread compiles (the JIT thread, or the evaluating one
 * when the threshold is 0); reads only the proto's bytecode arrays, which
 * never change once built. The generated function has the sx_native_fn
 * signature (vm/sx_bc.h):
 *
 *   sx_val f(sx_ctx *cx, sx_val *base, sx_env *env, const sx_val *K,
 *            const sx_jit_link *L)
 *
 * A function with a short fixed parameter list also gets a direct entry
 * SYMBOL_d(cx, base, arg0, ...) (the link table is cx->jit_link) that self calls, and calls of it
 * from other native code (through sx_proto.native_d), call with the arguments in registers, and
 * often a head (emit_head) in front of its body SYMBOL_b; the generic entry stamps the entry and
 * jumps to it (jit/README.md, "Entries of a compiled function").
 *
 * One block per bytecode basic block; the VM's local slots and operand
 * stack slots become C locals (the operand depth at every pc is known
 * statically); calls and slow paths copy their operands to a local array
 * and go through the link table. Fixnum arithmetic, comparisons and pair
 * access of unchanged built-ins are inline, with the same overflow rule as
 * the VM (64-bit overflow of the tagged words). A self tail call becomes a
 * jump back to the top; a tail call of other native code is a required
 * tail call of its entry, of a built-in a call whose value is returned;
 * any other is handed back to the interpreter (SX_JIT_TAILCALL), so the C
 * stack never grows with them.
 * Names by role, after the runtime's: emit_* mirrors one VM instruction.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "jit/jit_int.h"

/* The most parameters a direct entry takes (see direct_entry_ok). */
#define JIT_DIRECT_ARGS 3

typedef struct lower {
    gcc_jit_context *c;
    gcc_jit_function *fn;
    gcc_jit_function *f_sadd, *f_ssub; /* GCC's checked add and sub, once used */
    gcc_jit_type *t_i64, *t_u64, *t_i32, *t_bool, *t_char, *t_voidp, *t_i64p, *t_i32p, *t_charp;
    gcc_jit_field *f_call, *f_unbound, *f_closure, *f_dict, *f_new_env, *f_interrupted, *f_fallback,
        *f_finish_tail, *f_frame_env, *f_guard, *f_pair_fl, *f_fl, *f_global_written;
    gcc_jit_type *t_link_p, *t_body_fn; /* sx_jit_link *, sx_guard_body_fn */
    gcc_jit_type *t_native;             /* pointer to an sx_native_fn */
    /* pointers to a direct entry of 0 .. JIT_DIRECT_ARGS parameters */
    gcc_jit_type *t_direct[JIT_DIRECT_ARGS + 1];
    gcc_jit_lvalue *cframe; /* a direct callee's frame */
    gcc_jit_param *cx, *base, *env0, *K, *L;
    /* the constant vector and the env the function was entered with: the
     * parameters of the generic entry, or what the direct entry loads */
    gcc_jit_rvalue *Kv, *env0v;
    /* The direct entry (NULL if the function has none): the arguments are
     * parameters, the constants and env are found from the frame's callee
     * (base[-1]) and cx->native_proto. Self calls call it. */
    gcc_jit_function *direct;
    gcc_jit_param *dargs[JIT_DIRECT_ARGS];   /* the argument parameters of l->fn */
    gcc_jit_param *bparams[JIT_DIRECT_ARGS]; /* the body's */
    /* The body, when the direct entry is a head of its own (emit_head),
     * and the head's parameters; head_mode: the head is being emitted. */
    gcc_jit_function *body;
    gcc_jit_param *hparams[2 + JIT_DIRECT_ARGS];
    bool head_mode;
    /* The body's last parameter when it has a head (cx, base, at most
     * JIT_DIRECT_ARGS arguments and it stay in registers): the pc of the
     * block the head restarts it at, 0 for its start (emit_resume) */
    gcc_jit_param *resume;
    int head_leader;          /* in the head: the block being emitted starts here */
    bool *resumed;            /* per pc: the head restarts the body there */
    gcc_jit_block **body_blk; /* the body's blocks (blk, before the head's) */
    gcc_jit_block *dispatch;  /* the body's block that goes to the resume pc */
    bool *head_ret;           /* head_returns() */
    gcc_jit_lvalue *env;      /* current env (changes on a self tail call) */
    gcc_jit_lvalue *up0;      /* the closure's env: parent of a fresh env */
    /* The proto's env is lazy (env_lazy, sx_bc.h): the function is entered
     * with its closure's env, reads its captured slots, which nothing
     * stores into, from the slots, and makes its env when a closure first
     * needs it; env_made says whether it has (l->env is valid only then). */
    bool lazy;
    gcc_jit_lvalue *env_made;
    gcc_jit_lvalue **slot, **stk, *argbuf;
    gcc_jit_block **blk; /* per pc: the block starting there, or NULL (made on first use) */
    gcc_jit_block *cur, *head;
    bool *leader;   /* per pc: a basic block starts there */
    int *depth;     /* per pc: operand depth before it, -1 if unreachable */
    int *pushed_by; /* per operand depth: pc of the GLOBAL that pushed it, or -1 */
    /* per operand depth: the immediate constant (a fixnum or another
     * non-pointer value) the slot holds at this point of the block, or 0
     * when unknown (no immediate has the object tag with a zero address) */
    sx_val *imm;
    sx_proto *p;
    jit_job *job;
    bool injected_prim; /* the wrong-prim-arg fault has been placed */
    int nblocks;
    /* In the body of a guard (an outlined function of its own): the slots
     * live in the caller's memory (slots_mem), and there is no self call
     * or tail call. */
    gcc_jit_rvalue *slots_mem;
    int nguards;
    int ndirect; /* call sites given the inline direct path so far */
    /* The code assumes its globals (jit__assumptions): assumed[k] for
     * each global K[k] it assumes, and site_g as jit__assumptions fills it.
     * Its loads of them need no unbound check, its PRIMs no identity test
     * of the callee, and its calls are self calls. */
    bool fast;
    bool *assumed;
    int *site_g;
    bool *needed; /* per GLOBAL pc: its value is read (jit__assumptions) */
    /* Fast code of a function that reads no env (env_free): every closure
     * of its proto behaves the same, so a self call calls the running one,
     * `me` (base[-1]), and the constants are read through it where used
     * (l->Kv is that expression), not kept in a register. */
    bool by_me;
    gcc_jit_lvalue *me;
    /* The specialized body SYMBOL_c (emit_spec): the body from spec_pc on,
     * which the head restarts at when the parameters in spec_fix[] are
     * fixnums. While it is emitted, fix_slot is spec_fix (else NULL) and
     * fixd[j] tells an operand at depth j was loaded from such a slot. */
    gcc_jit_function *spec;
    gcc_jit_param *sparams[2 + JIT_DIRECT_ARGS];
    int spec_pc;
    bool *spec_fix, *fix_slot, *fixd;
    /* A lower bound the specialized body knows of one parameter (the
     * head's test that leads to spec_pc, made again in the spec's
     * condition, where GCC folds it into the head's own): lo_slot >= 0
     * and that slot's word is at least lo_word (a tagged fixnum); while the
     * spec is emitted, lod[j] is that bound for an operand at depth j
     * loaded from the slot, else 0. */
    int lo_slot, lo_op;
    sx_val lo_word, lo_k;
    bool lo_on;
    sx_val *lod;
    /* The head again as SYMBOL_e, for callers that know the arguments
     * the spec counts on are fixnums (the spec's self calls with such
     * arguments): it tests only the rest. fix_result: the instruction just
     * emitted leaves a fixnum (an add or sub that cannot overflow). */
    gcc_jit_function *head_fix;
    gcc_jit_param *eparams[2 + JIT_DIRECT_ARGS];
    bool fix_result;
} lower;

/* What the inline paths below assume of the value representation (vm/
 * sx_value.h); the ABI hash (jit.c) covers the same constants, so code
 * built against another layout is never loaded from the cache. */
_Static_assert((SX_NIL | (SX_NIL ^ SX_FALSE)) == SX_FALSE, "nil and #f differ in one bit");
_Static_assert(SX_TRUE > SX_FALSE, "#t above #f");
_Static_assert(SX_TAG_FIX != SX_TAG_OBJ && SX_TAG_PAIR != SX_TAG_OBJ, "distinct tags");

/* ---- small builders ------------------------------------------------------- */

static gcc_jit_rvalue *i64(lower *l, long v)
{
    return gcc_jit_context_new_rvalue_from_long(l->c, l->t_i64, v);
}

static gcc_jit_rvalue *rv(gcc_jit_lvalue *lv)
{
    return gcc_jit_lvalue_as_rvalue(lv);
}

static gcc_jit_rvalue *prv(gcc_jit_param *p)
{
    return gcc_jit_param_as_rvalue(p);
}

static gcc_jit_rvalue *binop(lower *l, enum gcc_jit_binary_op op, gcc_jit_type *t,
                             gcc_jit_rvalue *a, gcc_jit_rvalue *b)
{
    return gcc_jit_context_new_binary_op(l->c, NULL, op, t, a, b);
}

static gcc_jit_rvalue *cmp(lower *l, enum gcc_jit_comparison op, gcc_jit_rvalue *a,
                           gcc_jit_rvalue *b)
{
    return gcc_jit_context_new_comparison(l->c, NULL, op, a, b);
}

static gcc_jit_rvalue *land(lower *l, gcc_jit_rvalue *a, gcc_jit_rvalue *b)
{
    return binop(l, GCC_JIT_BINARY_OP_LOGICAL_AND, l->t_bool, a, b);
}

/* The word at index i of the memory a tagged value (minus off) points to. */
static gcc_jit_lvalue *word_at(lower *l, gcc_jit_rvalue *v, long off, long i)
{
    gcc_jit_rvalue *addr = off ? binop(l, GCC_JIT_BINARY_OP_MINUS, l->t_i64, v, i64(l, off)) : v;
    gcc_jit_rvalue *ptr = gcc_jit_context_new_bitcast(l->c, NULL, addr, l->t_i64p);
    return gcc_jit_context_new_array_access(l->c, NULL, ptr, i64(l, i));
}

static gcc_jit_lvalue *ptr_word(lower *l, gcc_jit_rvalue *ptr, long i)
{
    return gcc_jit_context_new_array_access(l->c, NULL, ptr, i64(l, i));
}

/* An int32 field at byte offset off of the pointer p (a void* or value). */
static gcc_jit_lvalue *i32_field(lower *l, gcc_jit_rvalue *p, long off)
{
    gcc_jit_rvalue *cp = gcc_jit_context_new_cast(l->c, NULL, p, l->t_charp);
    gcc_jit_lvalue *at = gcc_jit_context_new_array_access(l->c, NULL, cp, i64(l, off));
    gcc_jit_rvalue *ip =
        gcc_jit_context_new_cast(l->c, NULL, gcc_jit_lvalue_get_address(at, NULL), l->t_i32p);
    return gcc_jit_rvalue_dereference(ip, NULL);
}

static gcc_jit_lvalue *i64_field(lower *l, gcc_jit_rvalue *p, long off)
{
    gcc_jit_rvalue *cp = gcc_jit_context_new_cast(l->c, NULL, p, l->t_charp);
    gcc_jit_lvalue *at = gcc_jit_context_new_array_access(l->c, NULL, cp, i64(l, off));
    gcc_jit_rvalue *ip =
        gcc_jit_context_new_cast(l->c, NULL, gcc_jit_lvalue_get_address(at, NULL), l->t_i64p);
    return gcc_jit_rvalue_dereference(ip, NULL);
}

static gcc_jit_rvalue *u64(lower *l, unsigned long v)
{
    return gcc_jit_context_new_rvalue_from_long(l->c, l->t_u64, (long)v);
}

/* v - tag as an unsigned word (no signed overflow) */
static gcc_jit_rvalue *untag(lower *l, gcc_jit_rvalue *v, unsigned long tag)
{
    gcc_jit_rvalue *u = gcc_jit_context_new_bitcast(l->c, NULL, v, l->t_u64);
    return tag ? binop(l, GCC_JIT_BINARY_OP_MINUS, l->t_u64, u, u64(l, tag)) : u;
}

/* (v - tag) & MASK == 0: one instruction fewer than (v & MASK) == tag
 * (lea and test, no compare with the tag) */
static gcc_jit_rvalue *tag_is(lower *l, gcc_jit_rvalue *v, long tag)
{
    return cmp(l, GCC_JIT_COMPARISON_EQ,
               binop(l, GCC_JIT_BINARY_OP_BITWISE_AND, l->t_u64, untag(l, v, (unsigned long)tag),
                     u64(l, SX_TAG_MASK)),
               u64(l, 0));
}

static gcc_jit_rvalue *truthy(lower *l, gcc_jit_rvalue *v)
{
    return cmp(
        l, GCC_JIT_COMPARISON_NE,
        binop(l, GCC_JIT_BINARY_OP_BITWISE_OR, l->t_i64, v, i64(l, (long)(SX_NIL ^ SX_FALSE))),
        i64(l, (long)SX_FALSE));
}

static gcc_jit_rvalue *as_bool_val(lower *l, gcc_jit_rvalue *b)
{
    /* #f + (#t - #f) * b */
    gcc_jit_rvalue *n = gcc_jit_context_new_cast(l->c, NULL, b, l->t_i64);
    return binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, i64(l, (long)SX_FALSE),
                 binop(l, GCC_JIT_BINARY_OP_MULT, l->t_i64, n, i64(l, (long)(SX_TRUE - SX_FALSE))));
}

static gcc_jit_block *new_block(lower *l)
{
    char name[32];
    snprintf(name, sizeof name, "b%d", l->nblocks++);
    return gcc_jit_function_new_block(l->fn, name);
}

static void assign(lower *l, gcc_jit_lvalue *dst, gcc_jit_rvalue *v)
{
    gcc_jit_block_add_assignment(l->cur, NULL, dst, v);
}

/* The link table: a parameter of the generic entry and of a guard's body,
 * read from cx in a direct entry (cx->jit_link), which leaves the register
 * to an argument. */
static gcc_jit_rvalue *Lv(lower *l)
{
    if (l->L) return prv(l->L);
    return gcc_jit_context_new_bitcast(
        l->c, NULL, rv(i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, jit_link))), l->t_link_p);
}

static gcc_jit_rvalue *link_fn(lower *l, gcc_jit_field *f)
{
    return rv(gcc_jit_rvalue_dereference_field(Lv(l), NULL, f));
}

static gcc_jit_rvalue *call_link(lower *l, gcc_jit_field *f, int n, gcc_jit_rvalue **args)
{
    return gcc_jit_context_new_call_through_ptr(l->c, NULL, link_fn(l, f), n, args);
}

static gcc_jit_rvalue *argbuf_addr(lower *l)
{
    gcc_jit_lvalue *first = gcc_jit_context_new_array_access(l->c, NULL, rv(l->argbuf), i64(l, 0));
    return gcc_jit_lvalue_get_address(first, NULL);
}

/* Calls a link entry that does not return, then ends the block. */
static void end_restart(lower *l);

static void call_noreturn(lower *l, gcc_jit_field *f, gcc_jit_rvalue *a)
{
    if (l->head_mode) { /* the body raises it */
        end_restart(l);
        return;
    }
    gcc_jit_rvalue *args[2] = {prv(l->cx), a};
    gcc_jit_block_add_eval(l->cur, NULL, call_link(l, f, a ? 2 : 1, args));
    gcc_jit_block_end_with_return(l->cur, NULL, i64(l, SX_NIL));
}

/* if (cond) { error block: call f(cx, a) } else continue in a new block */
static void check_or_raise(lower *l, gcc_jit_rvalue *bad, gcc_jit_field *f, gcc_jit_rvalue *a)
{
    gcc_jit_block *err = new_block(l), *ok = new_block(l);
    gcc_jit_block_end_with_conditional(l->cur, NULL, bad, err, ok);
    l->cur = err;
    call_noreturn(l, f, a);
    l->cur = ok;
}

/* ---- inline allocation ---------------------------------------------------------- *
 *
 * Native code allocates as sx_cons and sx_alloc do (vm/sx_core.h): it pops
 * an object off one of the VM's free lists, which the link table points
 * to (pair_fl, fl). The lists are static data of the process, which the
 * collector scans, and an object popped is held in a local (a register or
 * the C stack, both scanned conservatively) until it is stored: nothing
 * allocates in between. An empty list sends the allocation to the runtime
 * entry that would have made the object anyway, which refills it. */

/* The word ptr[idx] (ptr an i64 *, idx computed at run time). */
static gcc_jit_lvalue *word_idx(lower *l, gcc_jit_rvalue *ptr, gcc_jit_rvalue *idx)
{
    return gcc_jit_context_new_array_access(l->c, NULL, ptr, idx);
}

/* obj = pop(*head): goes on in a new block when the list held an object,
 * to `empty` when it did not. `obj` is zero but for the link word, which
 * the caller overwrites (the header, or a pair's car). */
static void emit_pop(lower *l, gcc_jit_lvalue *head, gcc_jit_lvalue *obj, gcc_jit_block *empty)
{
    gcc_jit_block *ok = new_block(l);
    assign(l, obj, rv(head));
    gcc_jit_block_end_with_conditional(
        l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_EQ, rv(obj), i64(l, 0)), empty, ok);
    l->cur = ok;
    assign(l, head, rv(word_at(l, rv(obj), 0, 0)));
}

/* The header word of an object of type t with aux field aux, as the host
 * lays it out (the code runs where it was compiled, or was cached under
 * an ABI hash that covers the layout). */
static gcc_jit_rvalue *header_word(lower *l, uint32_t t, uint32_t aux)
{
    sx_obj h = {t, aux};
    int64_t w;
    _Static_assert(sizeof h == sizeof w, "an object header is one word");
    memcpy(&w, &h, sizeof w);
    return i64(l, (long)w);
}

/* The head of the free list of objects of g granules (sx__fl[g]). */
static gcc_jit_lvalue *fl_head(lower *l, gcc_jit_rvalue *g)
{
    return word_idx(l, link_fn(l, l->f_fl), g);
}

/* ---- analysis ------------------------------------------------------------------ */

const char *jit__supported(const sx_proto *p)
{
    if (p->ncode == 0) return "empty";
    return p->ncode > JIT_MAX_CODE ? "too-large" : NULL;
}

/* The pc of the GUARD_END closing the guard whose GUARD is at pc, or -1.
 * A guard's body is compiled as a non-tail expression: it enters at
 * pc + 2, leaves only through its GUARD_END and holds nested guards
 * whole. */
static int guard_end(const sx_proto *p, int pc)
{
    int nest = 0;
    for (int q = pc; q < p->ncode; q += 1 + sx_opcode_operands[p->code[q]]) {
        if (p->code[q] == BC_GUARD)
            nest++;
        else if (p->code[q] == BC_GUARD_END && --nest == 0)
            return q;
    }
    return -1;
}

static int succ_depth(int op, const int32_t *pc, int d, int *branch_depth)
{
    *branch_depth = -1;
    switch (op) {
    case BC_CONST:
    case BC_NIL:
    case BC_LOCAL:
    case BC_LOCAL_CK:
    case BC_ENV:
    case BC_ENV_CK:
    case BC_GLOBAL:
    case BC_CLOSURE: return d + 1;
    case BC_SET_LOCAL:
    case BC_SET_ENV:
    case BC_SET_GLOBAL:
    case BC_DEF_GLOBAL:
    case BC_POP: return d - 1;
    case BC_JUMP: *branch_depth = d; return -1;
    case BC_JUMP_FALSE: *branch_depth = d - 1; return d - 1;
    case BC_JUMP_FALSE_KEEP:
    case BC_JUMP_TRUE_KEEP: *branch_depth = d; return d - 1;
    case BC_PRIM: return d - pc[3];
    case BC_PRIM_LK: return d + 1;
    case BC_CALL: return d - pc[1];
    case BC_DICT: return d - pc[1] + 1;
    case BC_GUARD: *branch_depth = d + 1; return d; /* the handler gets the raised value */
    case BC_GUARD_END: return d;
    default: return -1; /* RETURN, TAIL_CALL: no successor */
    }
}

/* Fills l->depth and marks block leaders in l->blk (non-NULL placeholder). */
static int analyze(lower *l)
{
    sx_proto *p = l->p;
    int *work = calloc((size_t)p->ncode + 1, sizeof(int));
    if (!work) return -1;
    for (int i = 0; i < p->ncode; i++)
        l->depth[i] = -1;
    int nw = 0;
    l->depth[0] = 0;
    work[nw++] = 0;
    bool *leader = calloc((size_t)p->ncode + 1, sizeof(bool));
    if (!leader) {
        free(work);
        return -1;
    }
    leader[0] = true;
    while (nw > 0) {
        int pc = work[--nw];
        int d = l->depth[pc];
        for (;;) {
            int op = p->code[pc];
            int bd;
            int nd = succ_depth(op, p->code + pc, d, &bd);
            int next = pc + 1 + sx_opcode_operands[op];
            if (bd >= 0) {
                int target = next + p->code[pc + 1];
                leader[target] = true;
                if (next < p->ncode) leader[next] = true;
                if (l->depth[target] < 0) {
                    l->depth[target] = bd;
                    work[nw++] = target;
                }
            }
            if (nd < 0 || next >= p->ncode) {
                if (next < p->ncode) leader[next] = true;
                break;
            }
            if (l->depth[next] >= 0) break;
            l->depth[next] = nd;
            pc = next;
            d = nd;
        }
    }
    l->leader = leader;
    free(work);
    return 0;
}

static bool direct_entry_ok(const sx_proto *p);

/* Whether p's code reads no env: neither a variable of an enclosing
 * function nor the env a closure it makes would capture. */
static bool env_free(const sx_proto *p)
{
    for (int pc = 0; pc < p->ncode; pc += 1 + sx_opcode_operands[p->code[pc]]) {
        int op = p->code[pc];
        if (op == BC_ENV || op == BC_ENV_CK || op == BC_SET_ENV || op == BC_CLOSURE) return false;
    }
    return true;
}

/* Adds (k, prim) to a[0..*n) unless it is there. */
static void add_assume(jit_assume *a, int *n, int k, int prim)
{
    for (int i = 0; i < *n; i++)
        if (a[i].k == k && a[i].prim == prim) return;
    a[(*n)++] = (jit_assume){k, prim};
}

/* A value read at depth j of state cur (a GLOBAL's pc, or -1) is used
 * as something other than an assumed PRIM's callee: the GLOBAL must load it. */
static void used(bool *needed, const int *cur, int j)
{
    if (needed && cur[j] >= 0) needed[cur[j]] = true;
}

/* The code only goes forwards (a self tail call is not a jump), so one
 * pass in pc order sees every path to an instruction before it: a block
 * entered by jumps starts from the meet of their states (stored at the
 * target), and the one falling through meets that too. The state is, per
 * operand depth, the pc of the GLOBAL whose value is there, or -1. */
int jit__assumptions(const sx_proto *p, jit_assume *out, int cap, int *site_g, bool *needed)
{
    if (!direct_entry_ok(p)) return -1;
    bool by_me = env_free(p);
    int ns = p->maxstack + 2, n = 0, rc = -1, d = 0;
    int *cur = calloc((size_t)ns, sizeof *cur);
    int **at_pc = calloc((size_t)p->ncode + 1, sizeof *at_pc); /* [0]: depth, then the state */
    jit_assume *all = calloc((size_t)p->ncode + 1, sizeof *all);
    if (!cur || !at_pc || !all) goto out;
    if (needed) memset(needed, 0, sizeof *needed * ((size_t)p->ncode + 1));
    bool live = true;
    for (int pc = 0, next; pc < p->ncode; pc = next) {
        const int32_t *c = p->code + pc;
        int op = c[0];
        next = pc + 1 + sx_opcode_operands[op];
        if (site_g) site_g[pc] = -1;
        int *in = at_pc[pc];
        if (in && live) {
            for (int j = 0; j < d; j++)
                if (cur[j] != in[1 + j]) { /* either may be read later, as the other */
                    used(needed, cur, j);
                    used(needed, in + 1, j);
                    cur[j] = -1;
                }
        } else if (in) {
            d = in[0];
            memcpy(cur, in + 1, sizeof *cur * (size_t)d);
            live = true;
        }
        if (!live) continue;
        int bd, nd = succ_depth(op, c, d, &bd);
        switch (op) {
        case BC_GUARD:
        case BC_GUARD_END:
        case BC_SET_GLOBAL:
        case BC_DEF_GLOBAL: goto out;
        case BC_GLOBAL: cur[d] = pc; break;
        case BC_PRIM:
        case BC_CALL:
        case BC_TAIL_CALL: {
            int argc = op == BC_PRIM ? c[3] : c[1], at = d - argc - 1;
            int g = at >= 0 && cur[at] >= 0 ? p->code[cur[at] + 1] : -1;
            int prim = op == BC_PRIM ? c[2] : -1;
            /* a call is of this function, by its name, with its arity */
            if (g < 0 || (prim < 0 && (p->k[g] != p->name || argc != p->nreq))) goto out;
            add_assume(all, &n, g, prim);
            if (site_g) site_g[pc] = g;
            /* a tail call compares its callee with the running closure
             * unless that is the callee (env_free); a call loads it again,
             * for the callee's frame */
            if (op == BC_TAIL_CALL && !by_me) used(needed, cur, at);
            for (int j = at + 1; j < d; j++)
                used(needed, cur, j);
            cur[at] = -1;
            break;
        }
        case BC_PRIM_LK:
            add_assume(all, &n, c[3], c[2]);
            if (site_g) site_g[pc] = c[3];
            cur[d] = -1;
            break;
        case BC_DICT:
            for (int j = d - c[1]; j < d; j++)
                used(needed, cur, j);
            cur[d - c[1]] = -1;
            break;
        case BC_POP: break;
        default:
            /* reads the top (a JUMP does not, and may come with none) */
            if (d > 0 && op != BC_JUMP && (nd < d || bd >= 0 || nd < 0)) used(needed, cur, d - 1);
            if (nd > d) cur[d] = -1; /* pushed something else */
        }
        if (bd >= 0) {
            int target = next + c[1];
            if (target <= pc || target > p->ncode) goto out;
            int *t = at_pc[target];
            if (!t) {
                if (!(t = at_pc[target] = malloc(sizeof *t * (size_t)(ns + 1)))) goto out;
                t[0] = bd;
                memcpy(t + 1, cur, sizeof *cur * (size_t)bd);
            } else {
                for (int j = 0; j < bd; j++)
                    if (t[1 + j] != cur[j]) {
                        used(needed, t + 1, j);
                        used(needed, cur, j);
                        t[1 + j] = -1;
                    }
            }
        }
        if (nd < 0)
            live = false;
        else
            d = nd;
    }
    rc = n;
    if (out) memcpy(out, all, sizeof *all * (size_t)(n < cap ? n : cap));
out:
    if (at_pc)
        for (int i = 0; i <= p->ncode; i++)
            free(at_pc[i]);
    free(at_pc);
    free(cur);
    free(all);
    return rc;
}

bool jit__assumptions_hold(const sx_proto *p)
{
    jit_assume *a = calloc((size_t)p->ncode + 1, sizeof *a);
    if (!a) return false;
    int n = jit__assumptions(p, a, p->ncode + 1, NULL, NULL);
    bool ok = n > 0;
    for (int i = 0; ok && i < n; i++) {
        sx_val g = sx_sym(p->k[a[i].k])->global;
        ok = a[i].prim >= 0 ? g == p->k[a[i].prim]
                            : sx_is(g, SX_T_VMCLOSURE) && SX_OBJ(sx_vmclosure, g)->proto == p;
    }
    free(a);
    return ok;
}

/* The block starting at pc, made in the function being emitted (every pc
 * belongs to one function: the body of a guard is a function of its own). */
static gcc_jit_block *block_at(lower *l, int pc)
{
    if (!l->blk[pc]) l->blk[pc] = new_block(l);
    return l->blk[pc];
}

/* ---- instructions ----------------------------------------------------------------- */

static gcc_jit_rvalue *S(lower *l, int i)
{
    return rv(l->stk[i]);
}

static gcc_jit_lvalue *env_slot(lower *l, int hops, int i)
{
    gcc_jit_rvalue *e = rv(l->env);
    if (l->lazy) {
        /* the env's slots hold what the slots hold; its parent is up0 */
        if (hops == 0) return l->slot[l->p->env_from[i]];
        e = gcc_jit_context_new_cast(l->c, NULL, rv(l->up0), l->t_i64p);
        hops--;
    }
    for (int h = 0; h < hops; h++)
        e = gcc_jit_context_new_bitcast(l->c, NULL, rv(ptr_word(l, e, 1)), l->t_i64p);
    return ptr_word(l, e, 2 + i);
}

static gcc_jit_lvalue *global_of(lower *l, int k)
{
    return word_at(l, rv(ptr_word(l, l->Kv, k)), 0,
                   (long)(offsetof(sx_symbol, global) / sizeof(sx_val)));
}

static void emit_load_checked(lower *l, gcc_jit_lvalue *src, int d, int k)
{
    assign(l, l->stk[d], rv(src));
    check_or_raise(l, cmp(l, GCC_JIT_COMPARISON_EQ, S(l, d), i64(l, SX_UNDEF)), l->f_unbound,
                   rv(ptr_word(l, l->Kv, k)));
}

/* Copies stk[from .. from+n) to argbuf[0..n). */
static void spill_args(lower *l, int from, int n)
{
    for (int i = 0; i < n; i++)
        assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->argbuf), i64(l, i)),
               S(l, from + i));
}

/* stk[d-n-1] = call(stk[d-n-1 .. d)) through the link table. */
static bool head_restart(lower *l);

static void emit_generic_call(lower *l, int d, int n)
{
    if (head_restart(l)) {
        assign(l, l->stk[d - n - 1], i64(l, SX_NIL));
        return;
    }
    spill_args(l, d - n - 1, n + 1);
    gcc_jit_rvalue *args[3] = {prv(l->cx), argbuf_addr(l), i64(l, n)};
    assign(l, l->stk[d - n - 1], call_link(l, l->f_call, 3, args));
}

#define JIT_CFRAME 64 /* words of a direct callee's frame on the C stack */
/* Call sites per function that get the inline direct path (checks, frame
 * set-up, the callee's native code called directly): it is most of the
 * compile time of a call (about five times a call through the link table,
 * measured), so a function with many calls gives only its first few the
 * inline path, which is where recursive functions call themselves. */
#define JIT_DIRECT_CALLS 4

/* Ends the current block with a branch to yes, which becomes the current
 * block, when callee is a heap object (as every procedure is), else to no.
 * @return callee as a pointer, for yes to look into */
static gcc_jit_rvalue *branch_if_obj(lower *l, gcc_jit_rvalue *callee, gcc_jit_block *yes,
                                     gcc_jit_block *no)
{
    gcc_jit_block_end_with_conditional(l->cur, NULL,
                                       land(l, tag_is(l, callee, (long)SX_TAG_OBJ),
                                            cmp(l, GCC_JIT_COMPARISON_NE, callee, i64(l, 0))),
                                       yes, no);
    l->cur = yes;
    return gcc_jit_context_new_bitcast(l->c, NULL, callee, l->t_voidp);
}

static gcc_jit_rvalue *i32_at(lower *l, gcc_jit_rvalue *p, size_t off);

/* Loads the direct entry of proto pp (a pointer) into a new local and ends
 * the current block with a branch to yes, which becomes the current block,
 * when there is one and the proto takes exactly n arguments, else to no.
 * @return the local holding the entry */
static gcc_jit_lvalue *branch_if_direct(lower *l, gcc_jit_rvalue *pp, int n, const char *name,
                                        gcc_jit_block *yes, gcc_jit_block *no)
{
    gcc_jit_lvalue *entry = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, name);
    assign(l, entry, rv(i64_field(l, pp, (long)offsetof(sx_proto, native_d))));
    gcc_jit_block_end_with_conditional(
        l->cur, NULL,
        land(l, cmp(l, GCC_JIT_COMPARISON_NE, rv(entry), i64(l, 0)),
             cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pp, offsetof(sx_proto, nreq)), i64(l, n))),
        yes, no);
    l->cur = yes;
    return entry;
}

/* rt_frame_env inline: e = the heap env of a frame of proto pp (whose
 * env_size is not 0) at fbase, chained to cenv, then on to join. Goes on
 * in the current block when the env's size has no free list or the list
 * is empty (the caller calls frame_env there). */
static void emit_frame_env(lower *l, gcc_jit_lvalue *e, gcc_jit_rvalue *pp, gcc_jit_rvalue *cenv,
                           gcc_jit_rvalue *fbase, gcc_jit_block *join)
{
    gcc_jit_lvalue *n = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "fe_n");
    gcc_jit_lvalue *g = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "fe_g");
    gcc_jit_lvalue *o = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "fe_o");
    gcc_jit_lvalue *j = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "fe_j");
    gcc_jit_block *small = new_block(l), *fill = new_block(l), *test = new_block(l),
                  *body = new_block(l), *done = new_block(l), *slow = new_block(l);
    assign(l, n, i32_at(l, pp, offsetof(sx_proto, env_size)));
    /* sx__granules(sizeof(sx_env) + n * sizeof(sx_val)) */
    assign(l, g,
           binop(l, GCC_JIT_BINARY_OP_RSHIFT, l->t_i64,
                 binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64,
                       binop(l, GCC_JIT_BINARY_OP_MULT, l->t_i64, rv(n), i64(l, sizeof(sx_val))),
                       i64(l, (long)sizeof(sx_env) + 16)),
                 i64(l, 4)));
    _Static_assert(sizeof(sx_env) + 16 == 32 && sizeof(sx_val) == 8, "sx__granules as above");
    gcc_jit_block_end_with_conditional(
        l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_LE, rv(g), i64(l, SX_FL_GRANULES)), small, slow);
    l->cur = small;
    emit_pop(l, fl_head(l, rv(g)), o, slow);
    gcc_jit_rvalue *po = gcc_jit_context_new_bitcast(l->c, NULL, rv(o), l->t_voidp);
    assign(l, i32_field(l, po, (long)offsetof(sx_obj, type)),
           gcc_jit_context_new_rvalue_from_int(l->c, l->t_i32, SX_T_ENV));
    assign(l, i32_field(l, po, (long)offsetof(sx_obj, aux)),
           gcc_jit_context_new_cast(l->c, NULL, rv(n), l->t_i32));
    assign(l, word_at(l, rv(o), 0, (long)(offsetof(sx_env, up) / sizeof(sx_val))),
           gcc_jit_context_new_bitcast(l->c, NULL, cenv, l->t_i64));
    assign(l, j, i64(l, 0));
    gcc_jit_block_end_with_jump(l->cur, NULL, fill);
    l->cur = fill;
    gcc_jit_lvalue *from = gcc_jit_function_new_local(l->fn, NULL, l->t_voidp, "fe_from");
    assign(l, from,
           gcc_jit_context_new_bitcast(
               l->c, NULL, rv(i64_field(l, pp, (long)offsetof(sx_proto, env_from))), l->t_voidp));
    gcc_jit_block_end_with_jump(l->cur, NULL, test);
    l->cur = test;
    gcc_jit_block_end_with_conditional(l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_LT, rv(j), rv(n)),
                                       body, done);
    l->cur = body;
    /* e->slots[j] = fbase[from[j]] */
    gcc_jit_rvalue *fromp =
        gcc_jit_context_new_cast(l->c, NULL, rv(from), gcc_jit_type_get_pointer(l->t_i32));
    gcc_jit_rvalue *src = gcc_jit_context_new_cast(
        l->c, NULL, rv(gcc_jit_context_new_array_access(l->c, NULL, fromp, rv(j))), l->t_i64);
    gcc_jit_rvalue *slots =
        binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(o), i64(l, (long)offsetof(sx_env, slots)));
    assign(l, word_idx(l, gcc_jit_context_new_bitcast(l->c, NULL, slots, l->t_i64p), rv(j)),
           rv(word_idx(l, fbase, src)));
    assign(l, j, binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(j), i64(l, 1)));
    gcc_jit_block_end_with_jump(l->cur, NULL, test);
    l->cur = done;
    assign(l, e, gcc_jit_context_new_bitcast(l->c, NULL, rv(o), l->t_voidp));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = slow;
}

/* The env a callee of proto pp (closure env cenv, frame at fbase) runs
 * with: its own heap env when it has captured slots and its env is not
 * lazy, else cenv. */
static gcc_jit_rvalue *callee_env(lower *l, gcc_jit_rvalue *proto, gcc_jit_rvalue *pp,
                                  gcc_jit_rvalue *cenv, gcc_jit_rvalue *fbase)
{
    gcc_jit_lvalue *e = gcc_jit_function_new_local(l->fn, NULL, l->t_voidp, "callee_env");
    gcc_jit_block *mk = new_block(l), *plain = new_block(l), *join = new_block(l);
    /* a callee whose env is lazy makes it itself */
    gcc_jit_block_end_with_conditional(
        l->cur, NULL,
        land(l,
             cmp(l, GCC_JIT_COMPARISON_NE, i32_at(l, pp, offsetof(sx_proto, env_size)), i64(l, 0)),
             cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pp, offsetof(sx_proto, env_lazy)), i64(l, 0))),
        mk, plain);
    l->cur = mk;
    emit_frame_env(l, e, pp, cenv, fbase, join);
    gcc_jit_rvalue *args[4] = {prv(l->cx), proto, fbase,
                               gcc_jit_context_new_bitcast(l->c, NULL, cenv, l->t_voidp)};
    assign(l, e, call_link(l, l->f_frame_env, 4, args));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = plain;
    assign(l, e, gcc_jit_context_new_bitcast(l->c, NULL, cenv, l->t_voidp));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
    return gcc_jit_context_new_cast(l->c, NULL, rv(e), l->t_i64p);
}

static gcc_jit_rvalue *i32_at(lower *l, gcc_jit_rvalue *p, size_t off)
{
    return gcc_jit_context_new_cast(l->c, NULL, rv(i32_field(l, p, (long)off)), l->t_i64);
}

static gcc_jit_rvalue *cf_addr(lower *l, int i)
{
    return gcc_jit_lvalue_get_address(
        gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, i)), NULL);
}

/* A call whose callee turns out to be a closure with native code, a plain
 * parameter list and no heap env calls that code directly, its frame in
 * this function's cframe; anything else takes the link table's call. */
/* frame[j] = unassigned for n <= j < the nslots of proto pp (a frame's
 * slots past its parameters). */
static void fill_unassigned(lower *l, gcc_jit_rvalue *frame, int n, gcc_jit_rvalue *pp)
{
    gcc_jit_rvalue *ptr = gcc_jit_context_new_cast(l->c, NULL, frame, l->t_i64p);
    gcc_jit_lvalue *j = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "fill");
    gcc_jit_block *test = new_block(l), *body = new_block(l), *done = new_block(l);
    assign(l, j, i64(l, n));
    gcc_jit_block_end_with_jump(l->cur, NULL, test);
    l->cur = test;
    gcc_jit_block_end_with_conditional(
        l->cur, NULL,
        cmp(l, GCC_JIT_COMPARISON_LT, rv(j), i32_at(l, pp, offsetof(sx_proto, nslots))), body,
        done);
    l->cur = body;
    assign(l, gcc_jit_context_new_array_access(l->c, NULL, ptr, rv(j)), i64(l, SX_UNDEF));
    assign(l, j, binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(j), i64(l, 1)));
    gcc_jit_block_end_with_jump(l->cur, NULL, test);
    l->cur = done;
}

static void emit_stamp(lower *l, gcc_jit_rvalue *proto);

/* cx's counter at offset off += 1: one instruction */
static void count_in_cx(lower *l, size_t off)
{
    gcc_jit_lvalue *counter = i64_field(l, prv(l->cx), (long)off);
    assign(l, counter, binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(counter), i64(l, 1)));
}

/* (jit-stats) :native-calls += 1 */
static void count_native_call(lower *l)
{
    count_in_cx(l, offsetof(sx_ctx, jit_native_calls));
}

/* After a direct call whose value is in r: a callee that handed back a
 * tail call has it finished by the runtime; the value goes to stk[at]. */
static void finish_direct(lower *l, gcc_jit_lvalue *r, int at, gcc_jit_block *join)
{
    gcc_jit_block *tail = new_block(l), *done = new_block(l);
    gcc_jit_block_end_with_conditional(
        l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_EQ, rv(r), i64(l, SX_JIT_TAILCALL)), tail, done);
    l->cur = tail;
    gcc_jit_rvalue *targs[2] = {prv(l->cx),
                                gcc_jit_context_new_cast(l->c, NULL, cf_addr(l, 1), l->t_i64p)};
    assign(l, r, call_link(l, l->f_finish_tail, 2, targs));
    gcc_jit_block_end_with_jump(l->cur, NULL, done);
    l->cur = done;
    assign(l, l->stk[at], rv(r));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
}

/* The proto at pp (a void *) is entered now by native code that does not
 * go through its generic entry: cx->native_proto becomes it (so what it
 * raises, and a fault in the runtime under it, is attributed to it), the
 * request's epoch is stamped into it as its generic entry would, and the
 * call is counted (calls-native and calls-direct). */
static void enter_other(lower *l, gcc_jit_rvalue *proto, gcc_jit_rvalue *pp)
{
    assign(l, i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto)), proto);
    emit_stamp(l, pp);
    count_native_call(l);
    count_in_cx(l, offsetof(sx_ctx, jit_direct_calls));
}

/* The callee at operand depth at, a closure (pcallee, its address) of
 * proto `proto`: if that proto has a direct entry (sx_proto.native_d)
 * taking n arguments, it is called with the arguments in registers, its
 * frame (only base[-1], the callee, and what a tail call it hands back
 * writes) in this function's cframe, and the value goes to stk[at];
 * otherwise the code goes on in `other`. The callee's body checks the C
 * stack and a pending interrupt on entry (emit_entry_checks) and its head
 * does bounded work without a call, so the call site checks neither. */
static void emit_entry_call(lower *l, int at, int n, gcc_jit_lvalue *proto, gcc_jit_block *other,
                            gcc_jit_block *join)
{
    gcc_jit_rvalue *pp = gcc_jit_context_new_bitcast(l->c, NULL, rv(proto), l->t_voidp);
    gcc_jit_block *go = new_block(l);
    gcc_jit_lvalue *entry = branch_if_direct(l, pp, n, "callee_d", go, other);
    assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, 0)), S(l, at));
    gcc_jit_lvalue *cur_native = i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto));
    gcc_jit_lvalue *saved = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "saved_native");
    assign(l, saved, rv(cur_native));
    enter_other(l, rv(proto), pp);
    gcc_jit_rvalue *args[2 + JIT_DIRECT_ARGS] = {
        prv(l->cx), gcc_jit_context_new_cast(l->c, NULL, cf_addr(l, 1), l->t_i64p)};
    for (int i = 0; i < n; i++)
        args[2 + i] = S(l, at + 1 + i);
    gcc_jit_lvalue *r = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "entry_r");
    assign(l, r,
           gcc_jit_context_new_call_through_ptr(
               l->c, NULL, gcc_jit_context_new_bitcast(l->c, NULL, rv(entry), l->t_direct[n]),
               2 + n, args));
    assign(l, cur_native, rv(saved));
    finish_direct(l, r, at, join);
}

/* Ends the current block with a branch on whether pcallee (a non-NULL
 * object) is a closure: to yes, which becomes the current block and where
 * the new local `name` holds its proto, or to other. */
static gcc_jit_lvalue *branch_if_closure(lower *l, gcc_jit_rvalue *pcallee, const char *name,
                                         gcc_jit_block *yes, gcc_jit_block *other)
{
    gcc_jit_block_end_with_conditional(
        l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pcallee, 0), i64(l, SX_T_VMCLOSURE)),
        yes, other);
    l->cur = yes;
    gcc_jit_lvalue *proto = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, name);
    assign(l, proto, rv(i64_field(l, pcallee, (long)offsetof(sx_vmclosure, proto))));
    return proto;
}

/* The callee at operand depth at (pcallee, a non-NULL object): if it is
 * a closure, emit_entry_call for its proto; anything else goes to slow.
 * Ends the current block. */
static void emit_closure_entry_call(lower *l, gcc_jit_rvalue *pcallee, int at, int n,
                                    gcc_jit_block *slow, gcc_jit_block *join)
{
    gcc_jit_block *clo = new_block(l);
    gcc_jit_lvalue *proto = branch_if_closure(l, pcallee, "callee_proto", clo, slow);
    emit_entry_call(l, at, n, proto, slow, join);
}

/* Whether native code of p can return SX_JIT_TAILCALL: only its tail
 * calls hand one back (directly, or from the native callee they jump to). */
static bool has_tail_call(const sx_proto *p)
{
    for (int q = 0; q < p->ncode; q += 1 + sx_opcode_operands[p->code[q]])
        if (p->code[q] == BC_TAIL_CALL) return true;
    return false;
}

/* Whether a self call may get SX_JIT_TAILCALL back: not when every tail
 * call of the function is a jump to its start (by_me: each is a self call
 * of the running closure). */
static bool hands_back_tail(lower *l)
{
    return has_tail_call(l->p) && !l->by_me;
}

/* Calls this very function (the callee is the running closure): a direct
 * call, its frame in cframe, everything about it known here, including
 * whether it can hand back a tail call. */
static void emit_self_frame_call(lower *l, int at, int n, gcc_jit_lvalue *r);

static void emit_self_call(lower *l, int at, int n, gcc_jit_block *join)
{
    gcc_jit_rvalue *callee = S(l, at);
    assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, 0)), callee);
    gcc_jit_lvalue *r = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "self_r");
    if (l->direct) { /* the arguments in registers; cframe is the callee's base */
        gcc_jit_rvalue *dargs[2 + JIT_DIRECT_ARGS] = {
            prv(l->cx), gcc_jit_context_new_cast(l->c, NULL, cf_addr(l, 1), l->t_i64p)};
        bool fix = l->head_fix && !l->head_mode;
        for (int i = 0; i < n; i++) {
            dargs[2 + i] = S(l, at + 1 + i);
            fix = fix && (!l->spec_fix[i] || l->fixd[at + 1 + i]);
        }
        count_native_call(l);
        assign(l, r,
               gcc_jit_context_new_call(l->c, NULL, fix ? l->head_fix : l->direct, 2 + n, dargs));
        if (hands_back_tail(l)) {
            /* a native tail call the callee made left cx->native_proto at
             * its tail callee's proto: this function runs again */
            gcc_jit_rvalue *me = gcc_jit_context_new_bitcast(
                l->c, NULL, rv(ptr_word(l, prv(l->base), -1)), l->t_voidp);
            assign(l, i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto)),
                   rv(i64_field(l, me, (long)offsetof(sx_vmclosure, proto))));
        }
    } else {
        emit_self_frame_call(l, at, n, r);
    }
    if (hands_back_tail(l)) {
        finish_direct(l, r, at, join);
    } else {
        assign(l, l->stk[at], rv(r));
        gcc_jit_block_end_with_jump(l->cur, NULL, join);
    }
}

/* A self call through the generic entry: the arguments in cframe. */
static void emit_self_frame_call(lower *l, int at, int n, gcc_jit_lvalue *r)
{
    sx_proto *p = l->p;
    for (int i = 0; i < n; i++)
        assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, 1 + i)),
               S(l, at + 1 + i));
    for (int i = n; i < p->nslots; i++)
        assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, 1 + i)),
               i64(l, SX_UNDEF));
    count_native_call(l);
    gcc_jit_rvalue *cargs[5] = {
        prv(l->cx), gcc_jit_context_new_cast(l->c, NULL, cf_addr(l, 1), l->t_i64p),
        gcc_jit_context_new_cast(l->c, NULL, rv(l->up0), l->t_i64p), l->Kv, Lv(l)};
    assign(l, r, gcc_jit_context_new_call(l->c, NULL, l->fn, 5, cargs));
}

/* The built-in a call site's callee (at operand depth at) was loaded
 * from a global holding when the function was compiled, or NULL; *gk is
 * then the global's constant index. */
static const sx_prim *site_prim(lower *l, int at, int *gk)
{
    int by = at >= 0 ? l->pushed_by[at] : -1;
    if (by < 0 || l->p->code[by] != BC_GLOBAL) return NULL;
    *gk = l->p->code[by + 1];
    sx_val g = sx_sym(l->p->k[*gk])->global;
    return sx_is(g, SX_T_PRIM) ? SX_OBJ(sx_prim, g) : NULL;
}

_Static_assert(offsetof(sx_prim, max_args) == offsetof(sx_prim, min_args) + 4,
               "a built-in's arity is one word");

/* The callee (pcallee, at operand depth at, known to be a non-NULL
 * object) may be a built-in: call its C function directly when the
 * argument count fits its arity (otherwise the slow path raises the arity
 * error). known: the built-in the site's global held at compile time, or
 * NULL; a built-in of the same arity (both bounds compared as one word)
 * needs no other arity test. tail_gk >= 0: a tail call (of the global
 * K[tail_gk], which is not `apply`): only a built-in named as that global
 * is called (never `apply`, whose tail calls must stay tail calls), and
 * its value is returned. Ends the current block. */
static void emit_prim_direct(lower *l, gcc_jit_rvalue *pcallee, int at, int n, const sx_prim *known,
                             int tail_gk, gcc_jit_block *slow, gcc_jit_block *join)
{
    gcc_jit_block *call = new_block(l);
    gcc_jit_rvalue *fits;
    if (known && known->min_args <= n && (known->max_args < 0 || known->max_args >= n)) {
        uint64_t pair = (uint64_t)(uint32_t)known->max_args << 32 | (uint32_t)known->min_args;
        fits = cmp(
            l, GCC_JIT_COMPARISON_EQ,
            gcc_jit_context_new_bitcast(
                l->c, NULL, rv(i64_field(l, pcallee, (long)offsetof(sx_prim, min_args))), l->t_u64),
            u64(l, pair));
    } else {
        gcc_jit_rvalue *mn = i32_at(l, pcallee, offsetof(sx_prim, min_args));
        gcc_jit_rvalue *mx = i32_at(l, pcallee, offsetof(sx_prim, max_args));
        fits = land(l, cmp(l, GCC_JIT_COMPARISON_LE, mn, i64(l, n)),
                    binop(l, GCC_JIT_BINARY_OP_LOGICAL_OR, l->t_bool,
                          cmp(l, GCC_JIT_COMPARISON_LT, mx, i64(l, 0)),
                          cmp(l, GCC_JIT_COMPARISON_GE, mx, i64(l, n))));
    }
    gcc_jit_rvalue *ok =
        land(l, cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pcallee, 0), i64(l, SX_T_PRIM)), fits);
    if (tail_gk >= 0)
        ok = land(l, ok,
                  cmp(l, GCC_JIT_COMPARISON_EQ,
                      rv(i64_field(l, pcallee, (long)offsetof(sx_prim, name_sym))),
                      rv(ptr_word(l, l->Kv, tail_gk))));
    gcc_jit_block_end_with_conditional(l->cur, NULL, ok, call, slow);
    l->cur = call;
    spill_args(l, at, n + 1);
    gcc_jit_type *pt[3] = {l->t_voidp, l->t_i32, l->t_i64p};
    gcc_jit_type *fn_t = gcc_jit_context_new_function_ptr_type(l->c, NULL, l->t_i64, 3, pt, 0);
    gcc_jit_rvalue *fnp = gcc_jit_context_new_bitcast(
        l->c, NULL, rv(i64_field(l, pcallee, (long)offsetof(sx_prim, fn))), fn_t);
    gcc_jit_rvalue *argv1 = gcc_jit_lvalue_get_address(
        gcc_jit_context_new_array_access(l->c, NULL, rv(l->argbuf), i64(l, 1)), NULL);
    gcc_jit_rvalue *args[3] = {prv(l->cx), gcc_jit_context_new_rvalue_from_int(l->c, l->t_i32, n),
                               argv1};
    gcc_jit_rvalue *r = gcc_jit_context_new_call_through_ptr(l->c, NULL, fnp, 3, args);
    if (tail_gk >= 0) {
        gcc_jit_block_end_with_return(l->cur, NULL, r);
        return;
    }
    assign(l, l->stk[at], r);
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
}

/* Whether the callee at operand depth at was loaded from the global named
 * as this function: a call site that calls the running closure unless the
 * global was redefined, so past its self check it needs only a closure's
 * direct entry and the generic call (the redefined case is rare and stays
 * correct there), and a tail call only the hand-back. */
static bool self_named(lower *l, int at)
{
    int by = at >= 0 ? l->pushed_by[at] : -1;
    return by >= 0 && l->p->code[by] == BC_GLOBAL && l->p->name != SX_NIL &&
           l->p->k[l->p->code[by + 1]] == l->p->name;
}

static void emit_call_direct(lower *l, int d, int n)
{
    int at = d - n - 1;
    gcc_jit_rvalue *callee = S(l, at);
    gcc_jit_block *slow = new_block(l), *join = new_block(l);
    sx_proto *p = l->p;
    if (!l->slots_mem && !p->rest && n == p->nreq && p->env_size == 0 &&
        p->nslots + p->maxstack < JIT_CFRAME) {
        gcc_jit_block *self = new_block(l);
        gcc_jit_rvalue *me = rv(ptr_word(l, prv(l->base), -1));
        gcc_jit_rvalue *limit = rv(i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, jit_limit)));
        gcc_jit_rvalue *here = gcc_jit_context_new_bitcast(l->c, NULL, cf_addr(l, 0), l->t_i64);
        /* a direct body checks the C stack and a pending interrupt on
         * entry (emit_entry_checks): its head makes no call and no loop */
        gcc_jit_rvalue *go = cmp(l, GCC_JIT_COMPARISON_EQ, callee, me);
        if (!l->direct) go = land(l, go, cmp(l, GCC_JIT_COMPARISON_GT, here, limit));
        bool only_self = self_named(l, at);
        gcc_jit_block *other = new_block(l);
        gcc_jit_block_end_with_conditional(l->cur, NULL, go, self, other);
        l->cur = self;
        emit_self_call(l, at, n, join);
        l->cur = other;
        if (only_self && n <= JIT_DIRECT_ARGS) {
            /* another closure's direct entry, else the generic call */
            gcc_jit_block *ochk = new_block(l);
            emit_closure_entry_call(l, branch_if_obj(l, callee, ochk, slow), at, n, slow, join);
            l->cur = slow;
            emit_generic_call(l, d, n);
            gcc_jit_block_end_with_jump(l->cur, NULL, join);
            l->cur = join;
            return;
        }
    }
    gcc_jit_block *chk = new_block(l), *chk2 = new_block(l), *direct = new_block(l);
    gcc_jit_rvalue *pcallee = branch_if_obj(l, callee, chk, slow);
    gcc_jit_block *primchk = new_block(l);
    gcc_jit_lvalue *proto = branch_if_closure(l, pcallee, "callee_proto", chk2, primchk);
    l->cur = primchk;
    emit_prim_direct(l, pcallee, at, n, NULL, -1, slow, join);
    l->cur = chk2;
    if (n <= JIT_DIRECT_ARGS) { /* its direct entry, if it has one */
        gcc_jit_block *generic = new_block(l);
        emit_entry_call(l, at, n, proto, generic, join);
        l->cur = generic;
    }
    gcc_jit_rvalue *pp = gcc_jit_context_new_bitcast(l->c, NULL, rv(proto), l->t_voidp);
    gcc_jit_lvalue *nat = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "callee_native");
    assign(l, nat, rv(i64_field(l, pp, (long)offsetof(sx_proto, native))));
    gcc_jit_rvalue *size =
        binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, i32_at(l, pp, offsetof(sx_proto, nslots)),
              i32_at(l, pp, offsetof(sx_proto, maxstack)));
    /* the C stack and a pending interrupt: one test (sx_core.h) */
    gcc_jit_rvalue *limit = rv(i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, jit_limit)));
    gcc_jit_rvalue *here = gcc_jit_context_new_bitcast(l->c, NULL, cf_addr(l, 0), l->t_i64);
    gcc_jit_rvalue *ok = land(
        l, cmp(l, GCC_JIT_COMPARISON_NE, rv(nat), i64(l, 0)),
        land(l, cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pp, offsetof(sx_proto, nreq)), i64(l, n)),
             land(l,
                  cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pp, offsetof(sx_proto, rest)), i64(l, 0)),
                  (land(l, cmp(l, GCC_JIT_COMPARISON_LT, size, i64(l, JIT_CFRAME)),
                        cmp(l, GCC_JIT_COMPARISON_GT, here, limit))))));
    gcc_jit_block_end_with_conditional(l->cur, NULL, ok, direct, slow);

    l->cur = direct;
    assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, 0)), callee);
    for (int i = 0; i < n; i++)
        assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->cframe), i64(l, 1 + i)),
               S(l, at + 1 + i));
    /* slots past the parameters start unassigned: fill up to nslots */
    fill_unassigned(l, cf_addr(l, 1), n, pp);
    gcc_jit_lvalue *cur_native = i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto));
    gcc_jit_lvalue *saved = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "saved_native");
    assign(l, saved, rv(cur_native));
    assign(l, cur_native, rv(proto));
    count_native_call(l);
    gcc_jit_rvalue *cenv = rv(i64_field(l, pcallee, (long)offsetof(sx_vmclosure, env)));
    gcc_jit_rvalue *ck = rv(i64_field(l, pp, (long)offsetof(sx_proto, k)));
    gcc_jit_rvalue *fb = gcc_jit_context_new_cast(l->c, NULL, cf_addr(l, 1), l->t_i64p);
    gcc_jit_rvalue *cargs[5] = {
        prv(l->cx),
        fb,
        callee_env(l, rv(proto), pp, cenv, fb),
        gcc_jit_context_new_bitcast(l->c, NULL, ck, l->t_i64p),
        Lv(l),
    };
    gcc_jit_lvalue *r = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "direct_r");
    assign(
        l, r,
        gcc_jit_context_new_call_through_ptr(
            l->c, NULL, gcc_jit_context_new_bitcast(l->c, NULL, rv(nat), l->t_native), 5, cargs));
    assign(l, cur_native, rv(saved));
    finish_direct(l, r, at, join);

    l->cur = slow;
    emit_generic_call(l, d, n);
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
}

/* PRIM op k n whose op has no inline path (cons and the rest): while the
 * callee is the built-in K[k] (always, when assumed), whose arity is known
 * here, its C function is called directly (what the link table's call
 * would do for it); anything else takes that call. */
static void emit_prim_op_call(lower *l, int d, int n, int k, bool assumed)
{
    int at = d - n - 1;
    sx_val pv = l->p->k[k];
    const sx_prim *pr = sx_is(pv, SX_T_PRIM) ? SX_OBJ(sx_prim, pv) : NULL;
    if (l->head_mode || !pr || n < pr->min_args || (pr->max_args >= 0 && n > pr->max_args)) {
        emit_generic_call(l, d, n);
        return;
    }
    gcc_jit_rvalue *kp = rv(ptr_word(l, l->Kv, k));
    gcc_jit_block *call = new_block(l), *slow = new_block(l), *join = new_block(l);
    gcc_jit_block_end_with_conditional(l->cur, NULL,
                                       assumed
                                           ? gcc_jit_context_new_rvalue_from_int(l->c, l->t_bool, 1)
                                           : cmp(l, GCC_JIT_COMPARISON_EQ, S(l, at), kp),
                                       call, slow);
    l->cur = call;
    if (assumed) assign(l, l->stk[at], kp); /* the GLOBAL that assumed it left nothing there */
    spill_args(l, at, n + 1);
    gcc_jit_type *pt[3] = {l->t_voidp, l->t_i32, l->t_i64p};
    gcc_jit_type *fn_t = gcc_jit_context_new_function_ptr_type(l->c, NULL, l->t_i64, 3, pt, 0);
    gcc_jit_rvalue *pk = gcc_jit_context_new_bitcast(l->c, NULL, kp, l->t_voidp);
    gcc_jit_rvalue *fnp = gcc_jit_context_new_bitcast(
        l->c, NULL, rv(i64_field(l, pk, (long)offsetof(sx_prim, fn))), fn_t);
    gcc_jit_rvalue *argv1 = gcc_jit_lvalue_get_address(
        gcc_jit_context_new_array_access(l->c, NULL, rv(l->argbuf), i64(l, 1)), NULL);
    gcc_jit_rvalue *args[3] = {prv(l->cx), gcc_jit_context_new_rvalue_from_int(l->c, l->t_i32, n),
                               argv1};
    assign(l, l->stk[at], gcc_jit_context_new_call_through_ptr(l->c, NULL, fnp, 3, args));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = slow;
    emit_generic_call(l, d, n);
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
}

/* Places the wrong-prim-arg fault at the first primitive call site. */
static bool inject_here(lower *l, int n)
{
    if (!(l->job->inject & JIT_INJECT_WRONG_PRIM_ARG) || l->injected_prim || n < 1) return false;
    l->injected_prim = true;
    return true;
}

/* Whether v, an immediate known at compile time (0: unknown), is a fixnum. */
static bool imm_fix(sx_val v)
{
    return v != 0 && (v & SX_TAG_MASK) == SX_TAG_FIX;
}

/* Whether constant i of p is an immediate (a fixnum, a character, a
 * boolean, nil: no pointer), which generated code may hold as a number. */
static bool const_imm(const sx_proto *p, int i)
{
    sx_val v = p->k[i];
    return (v & SX_TAG_MASK) == SX_TAG_FIX || (v & SX_TAG_MASK) == SX_TAG_IMM;
}

/* The tag test of a fixnum fast path on a and, unless NULL, b; an operand
 * known to be a fixnum (fa, fb: a fixnum constant, or loaded from a slot
 * known to hold one) is not tested. NULL when nothing needs testing. */
static gcc_jit_rvalue *fix_test(lower *l, gcc_jit_rvalue *a, bool fa, gcc_jit_rvalue *b, bool fb)
{
    fb = fb || !b;
    if (fa && fb) return NULL;
    if (fb) return tag_is(l, a, (long)SX_TAG_FIX);
    if (fa) return tag_is(l, b, (long)SX_TAG_FIX);
    /* both tags are FIX iff ((a - FIX) | (b - FIX)) has no tag bits */
    gcc_jit_rvalue *both = binop(l, GCC_JIT_BINARY_OP_BITWISE_OR, l->t_u64, untag(l, a, SX_TAG_FIX),
                                 untag(l, b, SX_TAG_FIX));
    return cmp(l, GCC_JIT_COMPARISON_EQ,
               binop(l, GCC_JIT_BINARY_OP_BITWISE_AND, l->t_u64, both, u64(l, SX_TAG_MASK)),
               u64(l, 0));
}

static gcc_jit_rvalue *and_maybe(lower *l, gcc_jit_rvalue *a, gcc_jit_rvalue *b)
{
    return b ? land(l, a, b) : a;
}

/* The unbound-variable check of a global callee whose load was left
 * unchecked (BC_PRIM_LK: nothing with an effect runs between the load and
 * the call, so checking just before the call raises the same error). */
static void check_callee_bound(lower *l, int at, int unbound_k)
{
    if (unbound_k < 0) return;
    check_or_raise(l, cmp(l, GCC_JIT_COMPARISON_EQ, S(l, at), i64(l, SX_UNDEF)), l->f_unbound,
                   rv(ptr_word(l, l->Kv, unbound_k)));
}

/* The fixnum fast path of quotient, remainder or modulo (sx_fast_op): a
 * and b are fixnums, b is not 0 (kb: b's value when it is a constant, or
 * 0). On the tagged words, with A = a - tag = 4x and B = b - tag = 4y,
 * C's truncating division gives A / B = x / y and A % B = 4 (x % y),
 * and it cannot trap: B is never -1. The one quotient out of the fixnum
 * range, SX_FIX_MIN / -1 = 2^61, goes to `slow`, whose built-in raises. */
static gcc_jit_rvalue *emit_divop(lower *l, int op, gcc_jit_rvalue *a, gcc_jit_rvalue *b, sx_val kb,
                                  gcc_jit_block *slow)
{
    gcc_jit_lvalue *A = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "divA");
    gcc_jit_lvalue *B = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "divB");
    gcc_jit_lvalue *r = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "divr");
    enum gcc_jit_binary_op dop =
        op == OP_QUOTIENT ? GCC_JIT_BINARY_OP_DIVIDE : GCC_JIT_BINARY_OP_MODULO;
    assign(l, A, binop(l, GCC_JIT_BINARY_OP_MINUS, l->t_i64, a, i64(l, (long)SX_TAG_FIX)));
    if (imm_fix(kb)) {
        /* a constant divisor: the compiler multiplies instead */
        assign(l, B, i64(l, (long)(kb - SX_TAG_FIX)));
        assign(l, r, binop(l, dop, l->t_i64, rv(A), rv(B)));
    } else {
        /* both words in 32 bits: the 32-bit division, several times faster
         * than the 64-bit one on many processors (as small_divide in
         * sx_prim_num.c); it cannot trap either, B being a multiple of 4 */
        assign(l, B, binop(l, GCC_JIT_BINARY_OP_MINUS, l->t_i64, b, i64(l, (long)SX_TAG_FIX)));
        gcc_jit_rvalue *half = u64(l, 1ul << 31);
        gcc_jit_rvalue *fits =
            cmp(l, GCC_JIT_COMPARISON_LT,
                binop(l, GCC_JIT_BINARY_OP_BITWISE_OR, l->t_u64,
                      binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_u64, untag(l, rv(A), 0), half),
                      binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_u64, untag(l, rv(B), 0), half)),
                u64(l, 1ul << 32));
        gcc_jit_block *narrow = new_block(l), *wide = new_block(l), *join = new_block(l);
        gcc_jit_block_end_with_conditional(l->cur, NULL, fits, narrow, wide);
        l->cur = narrow;
        assign(l, r,
               gcc_jit_context_new_cast(
                   l->c, NULL,
                   binop(l, dop, l->t_i32, gcc_jit_context_new_cast(l->c, NULL, rv(A), l->t_i32),
                         gcc_jit_context_new_cast(l->c, NULL, rv(B), l->t_i32)),
                   l->t_i64));
        gcc_jit_block_end_with_jump(l->cur, NULL, join);
        l->cur = wide;
        assign(l, r, binop(l, dop, l->t_i64, rv(A), rv(B)));
        gcc_jit_block_end_with_jump(l->cur, NULL, join);
        l->cur = join;
    }
    if (op == OP_QUOTIENT) {
        if (!imm_fix(kb) || kb == sx_mkfix(-1)) {
            gcc_jit_block *store = new_block(l);
            gcc_jit_block_end_with_conditional(
                l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_EQ, rv(r), i64(l, SX_FIX_MAX + 1)), slow,
                store);
            l->cur = store;
        }
        return binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64,
                     binop(l, GCC_JIT_BINARY_OP_MULT, l->t_i64, rv(r), i64(l, 4)),
                     i64(l, (long)SX_TAG_FIX));
    }
    if (op == OP_MODULO) {
        /* a remainder whose sign is not the divisor's moves by the divisor */
        gcc_jit_rvalue *adj =
            land(l, cmp(l, GCC_JIT_COMPARISON_NE, rv(r), i64(l, 0)),
                 cmp(l, GCC_JIT_COMPARISON_LT,
                     binop(l, GCC_JIT_BINARY_OP_BITWISE_XOR, l->t_i64, rv(r), rv(B)), i64(l, 0)));
        assign(l, r,
               binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(r),
                     binop(l, GCC_JIT_BINARY_OP_MULT, l->t_i64, rv(B),
                           gcc_jit_context_new_cast(l->c, NULL, adj, l->t_i64))));
    }
    return binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(r), i64(l, (long)SX_TAG_FIX));
}

/* BC_PRIM op k n at operand depth d. ka, kb: the immediates the first two
 * operands are known to hold (0: unknown). unbound_k: the constant index
 * of the global callee whose unbound check is still to be made, or -1.
 * jf: the pc of the BC_JUMP_FALSE that tests the result, or -1; a
 * predicate's fast path then branches on its C condition without making
 * the boolean value. not_k >= 0: a `not` (PRIM OP_NOT k 1, k = not_k)
 * stands between this predicate and the JUMP_FALSE; the fast path, taken
 * only while the callee below this one is that built-in, branches the
 * other way, and the slow path goes on to the `not` as usual.
 * assumed, not_assumed: the callee of this PRIM, and of the `not`, is
 * known to be its built-in (l->fast), so the fast path tests only the
 * operands.
 * @return false if the block ended (the JUMP_FALSE was emitted too) */
/* r = a + b (add) or a - b, going to `slow` instead when it overflows 64
 * bits: GCC's checked arithmetic, an add or sub and a jump on the
 * overflow flag. Goes on in a new block. */
static void emit_checked_op(lower *l, bool add, gcc_jit_rvalue *a, gcc_jit_rvalue *b,
                            gcc_jit_lvalue *r, gcc_jit_block *slow)
{
    gcc_jit_function **f = add ? &l->f_sadd : &l->f_ssub;
    if (!*f)
        *f = gcc_jit_context_get_builtin_function(l->c, add ? "__builtin_saddl_overflow"
                                                            : "__builtin_ssubl_overflow");
    gcc_jit_type *t_long = gcc_jit_context_get_type(l->c, GCC_JIT_TYPE_LONG);
    gcc_jit_lvalue *w = gcc_jit_function_new_local(l->fn, NULL, t_long, "w");
    gcc_jit_rvalue *args[3] = {gcc_jit_context_new_cast(l->c, NULL, a, t_long),
                               gcc_jit_context_new_cast(l->c, NULL, b, t_long),
                               gcc_jit_lvalue_get_address(w, NULL)};
    gcc_jit_block *ok = new_block(l);
    gcc_jit_block_end_with_conditional(l->cur, NULL,
                                       gcc_jit_context_new_call(l->c, NULL, *f, 3, args), slow, ok);
    l->cur = ok;
    assign(l, r, gcc_jit_context_new_cast(l->c, NULL, rv(w), l->t_i64));
}

static bool emit_prim(lower *l, const int32_t *pc, int d, sx_val ka, sx_val kb, int unbound_k,
                      int jf, int not_k, bool assumed, bool not_assumed)
{
    int op = pc[1], k = pc[2], n = pc[3];
    int at = d - n - 1;
    gcc_jit_rvalue *a = S(l, at + 1), *b = n > 1 ? S(l, at + 2) : NULL;
    if (n < 2) kb = 0;
    if (n < 1) ka = 0;
    if (inject_here(l, n)) {
        /* a miscompile: the primitive gets a value it rejects */
        check_callee_bound(l, at, unbound_k);
        assign(l, l->stk[at + 1], i64(l, SX_TRUE));
        emit_generic_call(l, d, n);
        return true;
    }
    gcc_jit_rvalue *same = assumed
                               ? gcc_jit_context_new_rvalue_from_int(l->c, l->t_bool, 1)
                               : cmp(l, GCC_JIT_COMPARISON_EQ, S(l, at), rv(ptr_word(l, l->Kv, k)));
    gcc_jit_rvalue *guard = same, *result = NULL;
    bool fa = n > 0 && (imm_fix(ka) || l->fixd[at + 1]),
         fb = n > 1 && (imm_fix(kb) || l->fixd[at + 2]);
    if (op == OP_ADD && imm_fix(ka) && !imm_fix(kb)) { /* a constant first: add it second */
        gcc_jit_rvalue *t = a;
        sx_val tk = ka;
        bool tf = fa;
        a = b, b = t;
        ka = kb, kb = tk;
        fa = fb, fb = tf;
    }
    switch (op) {
    case OP_ADD:
    case OP_SUB:
    case OP_LT:
    case OP_GT:
    case OP_LE:
    case OP_GE:
    case OP_NUMEQ: guard = and_maybe(l, same, fix_test(l, a, fa, b, fb)); break;
    case OP_ZEROP: guard = and_maybe(l, same, fix_test(l, a, fa, NULL, false)); break;
    case OP_CAR:
    case OP_CDR: guard = land(l, same, tag_is(l, a, (long)SX_TAG_PAIR)); break;
    case OP_EQ:
        guard = land(
            l, same,
            cmp(l, GCC_JIT_COMPARISON_NE,
                binop(l, GCC_JIT_BINARY_OP_BITWISE_AND, l->t_i64, a, i64(l, (long)SX_TAG_MASK)),
                i64(l, (long)SX_TAG_OBJ)));
        break;
    case OP_NULLP:
    case OP_PAIRP:
    case OP_NOT:
    case OP_CONS: break;
    case OP_QUOTIENT:
    case OP_REMAINDER:
    case OP_MODULO:
        if (imm_fix(kb) && kb == sx_mkfix(0)) { /* always the built-in: it raises */
            guard = NULL;
            break;
        }
        guard = and_maybe(l, same, fix_test(l, a, fa, b, fb));
        if (!imm_fix(kb))
            guard = land(l, guard, cmp(l, GCC_JIT_COMPARISON_NE, b, i64(l, (long)sx_mkfix(0))));
        break;
    default: guard = NULL; /* the rest: always the call */
    }
    if (!guard) {
        check_callee_bound(l, at, unbound_k);
        emit_prim_op_call(l, d, n, k, assumed);
        return true;
    }
    bool predicate = op == OP_LT || op == OP_GT || op == OP_LE || op == OP_GE || op == OP_NUMEQ ||
                     op == OP_EQ || op == OP_ZEROP || op == OP_NULLP || op == OP_PAIRP ||
                     op == OP_NOT;
    if (!predicate || jf < 0 || (not_k >= 0 && at < 1)) jf = -1, not_k = -1;
    if (not_k >= 0 && !not_assumed)
        guard = land(l, guard,
                     cmp(l, GCC_JIT_COMPARISON_EQ, S(l, at - 1), rv(ptr_word(l, l->Kv, not_k))));
    gcc_jit_block *fast = new_block(l), *slow = new_block(l);
    gcc_jit_rvalue *cond = NULL; /* a predicate's fast result, as a C condition */
    gcc_jit_block_end_with_conditional(l->cur, NULL, guard, fast, slow);
    l->cur = fast;
    switch (op) {
    case OP_ADD:
    case OP_SUB: {
        /* the tagged words' 64-bit overflow is the VM's rule: with A = a -
         * tag, a + b = a + (b - tag) and a - b = (a - b) + tag, where adding
         * the tag back cannot overflow (a - b has tag bits 00); a constant
         * b is C, and a +/- (C - tag) is one operation */
        gcc_jit_lvalue *r = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "r");
        if (imm_fix(kb)) {
            int64_t c = (int64_t)(kb - SX_TAG_FIX);
            sx_val lo = fa ? l->lod[at + 1] : 0;
            if (c == 0)
                assign(l, r, a);
            else if (op == OP_SUB && c > 0 && lo && (int64_t)lo >= INT64_MIN + c) {
                /* a >= lo: a - c cannot go below the range; with nothing
                 * but this path (the callee assumed), the result is a
                 * fixnum */
                assign(l, r, binop(l, GCC_JIT_BINARY_OP_MINUS, l->t_i64, a, i64(l, (long)c)));
                l->fix_result = assumed;
            } else
                emit_checked_op(l, op == OP_ADD, a, i64(l, (long)c), r, slow);
        } else if (op == OP_ADD) {
            emit_checked_op(
                l, true, a,
                binop(l, GCC_JIT_BINARY_OP_MINUS, l->t_i64, b, i64(l, (long)SX_TAG_FIX)), r, slow);
        } else {
            gcc_jit_lvalue *dlt = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "dlt");
            emit_checked_op(l, false, a, b, dlt, slow);
            assign(l, r,
                   binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(dlt), i64(l, (long)SX_TAG_FIX)));
        }
        result = rv(r);
        if (op == OP_ADD && (l->job->inject & JIT_INJECT_WRONG_SUM)) /* a silent miscompile */
            result = binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, result,
                           i64(l, (long)(sx_mkfix(1) - sx_mkfix(0))));
        break;
    }
    case OP_LT: cond = cmp(l, GCC_JIT_COMPARISON_LT, a, b); break;
    case OP_GT: cond = cmp(l, GCC_JIT_COMPARISON_GT, a, b); break;
    case OP_LE: cond = cmp(l, GCC_JIT_COMPARISON_LE, a, b); break;
    case OP_GE: cond = cmp(l, GCC_JIT_COMPARISON_GE, a, b); break;
    case OP_NUMEQ:
    case OP_EQ: cond = cmp(l, GCC_JIT_COMPARISON_EQ, a, b); break;
    case OP_ZEROP: cond = cmp(l, GCC_JIT_COMPARISON_EQ, a, i64(l, (long)sx_mkfix(0))); break;
    case OP_CAR: result = rv(word_at(l, a, (long)SX_TAG_PAIR, 0)); break;
    case OP_CDR: result = rv(word_at(l, a, (long)SX_TAG_PAIR, 1)); break;
    case OP_NULLP: cond = cmp(l, GCC_JIT_COMPARISON_EQ, a, i64(l, SX_NIL)); break;
    case OP_PAIRP: cond = tag_is(l, a, (long)SX_TAG_PAIR); break;
    case OP_NOT:
        cond = gcc_jit_context_new_unary_op(l->c, NULL, GCC_JIT_UNARY_OP_LOGICAL_NEGATE, l->t_bool,
                                            truthy(l, a));
        break;
    case OP_CONS: {
        /* sx_cons: a pair off the free list, car and cdr stored; an empty
         * list takes the built-in, which refills it */
        gcc_jit_lvalue *q = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "pair");
        emit_pop(l, gcc_jit_rvalue_dereference(link_fn(l, l->f_pair_fl), NULL), q, slow);
        assign(l, word_at(l, rv(q), 0, 0), a);
        assign(l, word_at(l, rv(q), 0, 1), b);
        result = binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, rv(q), i64(l, (long)SX_TAG_PAIR));
        break;
    }
    case OP_QUOTIENT:
    case OP_REMAINDER:
    case OP_MODULO: result = emit_divop(l, op, a, b, kb, slow); break;
    }
    gcc_jit_block *yes = NULL, *no = NULL, *join = NULL;
    if (cond && jf >= 0) { /* JUMP_FALSE: on to the next pc when true, else to its target */
        int next = jf + 1 + sx_opcode_operands[BC_JUMP_FALSE];
        yes = block_at(l, next);
        no = block_at(l, next + l->p->code[jf + 1]);
        gcc_jit_block_end_with_conditional(l->cur, NULL, cond, not_k >= 0 ? no : yes,
                                           not_k >= 0 ? yes : no);
    } else {
        join = new_block(l);
        assign(l, l->stk[at], cond ? as_bool_val(l, cond) : result);
        gcc_jit_block_end_with_jump(l->cur, NULL, join);
    }
    l->cur = slow;
    if (head_restart(l)) {
        assign(l, l->stk[at], i64(l, SX_NIL));
    } else {
        check_callee_bound(l, at, unbound_k);
        if (assumed) /* the GLOBAL that assumed it left nothing there */
            assign(l, l->stk[at], rv(ptr_word(l, l->Kv, k)));
        spill_args(l, at, n + 1);
        gcc_jit_rvalue *args[3] = {prv(l->cx), argbuf_addr(l), i64(l, n)};
        assign(l, l->stk[at], call_link(l, l->f_fallback, 3, args));
    }
    if (not_k >= 0) join = new_block(l); /* the `not` follows, emitted as usual */
    if (join) {
        gcc_jit_block_end_with_jump(l->cur, NULL, join);
        l->cur = join;
        return true;
    }
    gcc_jit_block_end_with_conditional(l->cur, NULL, truthy(l, S(l, at)), yes, no);
    return false;
}

/* A call site past the budget of inline direct calls, or one whose callee
 * was a built-in when the function was compiled: a built-in is called
 * directly (emit_prim_direct) and a closure through its direct entry
 * (emit_entry_call), both of which take little compile time; anything
 * else takes the link table's call. */
static void emit_call_light(lower *l, int d, int n, bool prim)
{
    int at = d - n - 1;
    gcc_jit_rvalue *callee = S(l, at);
    gcc_jit_block *chk = new_block(l), *slow = new_block(l), *join = new_block(l);
    gcc_jit_rvalue *pcallee = branch_if_obj(l, callee, chk, slow);
    if (prim) {
        int gk = -1;
        emit_prim_direct(l, pcallee, at, n, site_prim(l, at, &gk), -1, slow, join);
    } else {
        emit_closure_entry_call(l, pcallee, at, n, slow, join);
    }
    l->cur = slow;
    emit_generic_call(l, d, n);
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
}

static void emit_call(lower *l, const int32_t *pc, int d, bool first_prim_site)
{
    int n = pc[1];
    if (first_prim_site && inject_here(l, n)) {
        assign(l, l->stk[d - n], i64(l, SX_TRUE));
        emit_generic_call(l, d, n);
        return;
    }
    /* a built-in is called directly; past the budget of inline direct
     * calls, a closure only through its direct entry */
    if (first_prim_site) {
        emit_call_light(l, d, n, true);
    } else if (l->ndirect >= JIT_DIRECT_CALLS) {
        if (n <= JIT_DIRECT_ARGS)
            emit_call_light(l, d, n, false);
        else
            emit_generic_call(l, d, n);
    } else {
        l->ndirect++;
        emit_call_direct(l, d, n);
    }
}

/* The interrupt check a loop back-edge makes (timeouts). It tests the
 * flag, not jit_limit as calls do: as cheap (a load, a test and a branch),
 * and its slow path raises timeout, which a limit a late setter left
 * poisoned with the flag clear (sx_core.h) must not do. */
static void emit_interrupt_check(lower *l)
{
    gcc_jit_rvalue *flag = rv(i32_field(l, prv(l->cx), (long)offsetof(sx_ctx, interrupt)));
    check_or_raise(
        l,
        cmp(l, GCC_JIT_COMPARISON_NE, flag, gcc_jit_context_new_rvalue_from_int(l->c, l->t_i32, 0)),
        l->f_interrupted, NULL);
}

/* The callee and its n arguments are in base[-1 .. n). If the callee is a
 * closure with native code, a plain parameter list, no heap env and a frame
 * that fits the margin, jump to it in this frame (a real tail call);
 * otherwise fall through to the interpreter's trampoline. */
static void emit_native_tail_call(lower *l, int at, int n)
{
    gcc_jit_rvalue *callee = rv(ptr_word(l, prv(l->base), -1));
    gcc_jit_block *chk = new_block(l), *chk2 = new_block(l), *go = new_block(l),
                  *tramp = new_block(l);
    gcc_jit_rvalue *pcallee = branch_if_obj(l, callee, chk, tramp);
    gcc_jit_lvalue *proto = branch_if_closure(l, pcallee, "tail_proto", chk2, tramp);
    gcc_jit_rvalue *pp = gcc_jit_context_new_bitcast(l->c, NULL, rv(proto), l->t_voidp);
    if (n <= JIT_DIRECT_ARGS) {
        /* its direct entry, the arguments in registers (the callee in
         * base[-1] is all of the frame it reads); its body checks the C
         * stack and a pending interrupt on entry */
        gcc_jit_block *dgo = new_block(l), *generic = new_block(l);
        gcc_jit_lvalue *entry = branch_if_direct(l, pp, n, "tail_d", dgo, generic);
        enter_other(l, rv(proto), pp);
        gcc_jit_rvalue *dargs[2 + JIT_DIRECT_ARGS] = {prv(l->cx), prv(l->base)};
        for (int i = 0; i < n; i++)
            dargs[2 + i] = S(l, at + 1 + i);
        gcc_jit_rvalue *dcall = gcc_jit_context_new_call_through_ptr(
            l->c, NULL, gcc_jit_context_new_bitcast(l->c, NULL, rv(entry), l->t_direct[n]), 2 + n,
            dargs);
        gcc_jit_rvalue_set_bool_require_tail_call(dcall, 1);
        gcc_jit_block_end_with_return(l->cur, NULL, dcall);
        l->cur = generic;
    }
    gcc_jit_lvalue *nat = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "tail_native");
    assign(l, nat, rv(i64_field(l, pp, (long)offsetof(sx_proto, native))));
    gcc_jit_rvalue *size =
        binop(l, GCC_JIT_BINARY_OP_PLUS, l->t_i64, i32_at(l, pp, offsetof(sx_proto, nslots)),
              i32_at(l, pp, offsetof(sx_proto, maxstack)));
    /* the flag itself, not jit_limit: the callee reuses this frame, so
     * there is no C stack to check, and the trampoline's tail calls do not
     * pass through sx_check_cstack, which repairs a limit a late setter
     * left poisoned (sx_core.h) */
    gcc_jit_rvalue *ok = land(
        l, cmp(l, GCC_JIT_COMPARISON_NE, rv(nat), i64(l, 0)),
        land(l, cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pp, offsetof(sx_proto, nreq)), i64(l, n)),
             land(l,
                  cmp(l, GCC_JIT_COMPARISON_EQ, i32_at(l, pp, offsetof(sx_proto, rest)), i64(l, 0)),
                  (land(l, cmp(l, GCC_JIT_COMPARISON_LT, size, i64(l, SX_JIT_FRAME_MARGIN)),
                        cmp(l, GCC_JIT_COMPARISON_EQ,
                            i32_at(l, prv(l->cx), offsetof(sx_ctx, interrupt)), i64(l, 0)))))));
    gcc_jit_block_end_with_conditional(l->cur, NULL, ok, go, tramp);
    l->cur = go;
    /* slots past the parameters start unassigned */
    fill_unassigned(l, prv(l->base), n, pp);
    assign(l, i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto)), rv(proto));
    count_native_call(l);
    gcc_jit_rvalue *cenv = rv(i64_field(l, pcallee, (long)offsetof(sx_vmclosure, env)));
    gcc_jit_rvalue *ck = rv(i64_field(l, pp, (long)offsetof(sx_proto, k)));
    gcc_jit_rvalue *cargs[5] = {prv(l->cx), prv(l->base),
                                callee_env(l, rv(proto), pp, cenv, prv(l->base)),
                                gcc_jit_context_new_bitcast(l->c, NULL, ck, l->t_i64p), Lv(l)};
    gcc_jit_rvalue *call = gcc_jit_context_new_call_through_ptr(
        l->c, NULL, gcc_jit_context_new_bitcast(l->c, NULL, rv(nat), l->t_native), 5, cargs);
    gcc_jit_rvalue_set_bool_require_tail_call(call, 1);
    gcc_jit_block_end_with_return(l->cur, NULL, call);
    l->cur = tramp;
}

/* A new heap env for this function's frame, whose slots are set (the
 * captured ones among them): the env is made, and filled from the slots,
 * as the VM does on entry. Inline when its size has a free list, else
 * through new_env. */
static void emit_own_env(lower *l)
{
    sx_proto *p = l->p;
    size_t g = sx__granules(sizeof(sx_env) + (size_t)p->env_size * sizeof(sx_val));
    gcc_jit_block *join = new_block(l);
    if (g <= SX_FL_GRANULES) {
        gcc_jit_lvalue *o = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "own_env");
        gcc_jit_block *empty = new_block(l);
        emit_pop(l, fl_head(l, i64(l, (long)g)), o, empty);
        assign(l, word_at(l, rv(o), 0, 0), header_word(l, SX_T_ENV, (uint32_t)p->env_size));
        assign(l, word_at(l, rv(o), 0, (long)(offsetof(sx_env, up) / sizeof(sx_val))),
               gcc_jit_context_new_bitcast(l->c, NULL, rv(l->up0), l->t_i64));
        for (int j = 0; j < p->env_size; j++)
            assign(l, word_at(l, rv(o), 0, (long)(offsetof(sx_env, slots) / sizeof(sx_val)) + j),
                   rv(l->slot[p->env_from[j]]));
        assign(l, l->env, gcc_jit_context_new_bitcast(l->c, NULL, rv(o), l->t_i64p));
        gcc_jit_block_end_with_jump(l->cur, NULL, join);
        l->cur = empty;
    }
    gcc_jit_rvalue *args[3] = {prv(l->cx), rv(l->up0), i64(l, p->env_size)};
    gcc_jit_rvalue *ne = call_link(l, l->f_new_env, 3, args);
    assign(l, l->env, gcc_jit_context_new_cast(l->c, NULL, ne, l->t_i64p));
    for (int j = 0; j < p->env_size; j++)
        assign(l, ptr_word(l, rv(l->env), 2 + j), rv(l->slot[p->env_from[j]]));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
}

/* A tail call of the running closure (the callee at operand depth at,
 * with n arguments): a jump back to the start. Ends the block. */
static void emit_self_tail_call(lower *l, int at, int n)
{
    sx_proto *p = l->p;
    emit_interrupt_check(l);
    for (int i = 0; i < n; i++)
        assign(l, l->slot[i], S(l, at + 1 + i));
    for (int i = n; i < p->nslots; i++)
        assign(l, l->slot[i], i64(l, SX_UNDEF));
    if (l->lazy) {
        assign(l, l->env_made, i64(l, 0));
        assign(l, l->env, gcc_jit_context_new_cast(l->c, NULL, rv(l->up0), l->t_i64p));
    } else if (p->env_size) {
        emit_own_env(l);
    }
    gcc_jit_block_end_with_jump(l->cur, NULL, l->head);
}

static void emit_tail_call(lower *l, const int32_t *pc, int d)
{
    sx_proto *p = l->p;
    int n = pc[1];
    int at = d - n - 1;
    gcc_jit_block *self = NULL, *other = new_block(l);
    if (!p->rest && n == p->nreq) {
        self = new_block(l);
        gcc_jit_rvalue *me = rv(ptr_word(l, prv(l->base), -1));
        gcc_jit_block_end_with_conditional(
            l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_EQ, S(l, at), me), self, other);
        l->cur = self;
        emit_self_tail_call(l, at, n);
    } else {
        gcc_jit_block_end_with_jump(l->cur, NULL, other);
    }
    l->cur = other;
    int gk = -1;
    const sx_prim *tp = site_prim(l, at, &gk);
    if (tp && strcmp(sx_sym_name(p->k[gk]), "apply") != 0) {
        /* a built-in (not apply) called in tail position is called here,
         * as the interpreter would call it for this function */
        gcc_jit_rvalue *callee = S(l, at);
        gcc_jit_block *chk = new_block(l), *rest = new_block(l);
        gcc_jit_rvalue *pcallee = branch_if_obj(l, callee, chk, rest);
        emit_prim_direct(l, pcallee, at, n, tp, gk, rest, NULL);
        l->cur = rest;
    }
    for (int i = 0; i <= n; i++)
        assign(l, ptr_word(l, prv(l->base), i - 1), S(l, at + i));
    /* a callee named as this function that is not the running closure
     * (the global was redefined) is left to the trampoline */
    if (!self || !self_named(l, at)) emit_native_tail_call(l, at, n);
    assign(l, i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, jit_tail_n)), i64(l, n));
    gcc_jit_block_end_with_return(l->cur, NULL, i64(l, SX_JIT_TAILCALL));
}

/* Whether the callee at operand depth at was loaded from a global that
 * holds a built-in now: a primitive call site. */
static bool prim_site(lower *l, int at)
{
    int by = at >= 0 ? l->pushed_by[at] : -1;
    if (by < 0 || l->p->code[by] != BC_GLOBAL) return false;
    sx_val sym = l->p->k[l->p->code[by + 1]];
    return sx_is(sx_sym(sym)->global, SX_T_PRIM);
}

/* The JUMP_FALSE at next, or after a `not` (PRIM OP_NOT k 1) at next
 * (*not_k = k), that only the instructions before it reach (they start no
 * block), or -1: a predicate before next can branch directly. */
static int fusable_jump(lower *l, int next, int *not_k)
{
    const sx_proto *p = l->p;
    *not_k = -1;
    if (next >= p->ncode || l->leader[next]) return -1;
    if (p->code[next] == BC_JUMP_FALSE) return next;
    if (p->code[next] != BC_PRIM || p->code[next + 1] != OP_NOT || p->code[next + 3] != 1)
        return -1;
    int jf = next + 1 + sx_opcode_operands[BC_PRIM];
    if (jf >= p->ncode || l->leader[jf] || p->code[jf] != BC_JUMP_FALSE) return -1;
    *not_k = p->code[next + 2];
    return jf;
}

/* BC_CLOSURE k at operand depth d: rt_closure's object, allocated inline. */
static void emit_closure(lower *l, int k, int d)
{
    if (l->lazy) { /* the env this function has not made yet */
        gcc_jit_block *mk = new_block(l), *made = new_block(l);
        gcc_jit_block_end_with_conditional(
            l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_NE, rv(l->env_made), i64(l, 0)), made, mk);
        l->cur = mk;
        emit_own_env(l);
        assign(l, l->env_made, i64(l, 1));
        gcc_jit_block_end_with_jump(l->cur, NULL, made);
        l->cur = made;
    }
    /* sx_alloc's size class: a closure has a free list (asserted in sx_jitrt.c) */
    long g = (long)sx__granules(sizeof(sx_vmclosure));
    gcc_jit_lvalue *o = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "clo");
    gcc_jit_block *empty = new_block(l), *join = new_block(l);
    emit_pop(l, fl_head(l, i64(l, g)), o, empty);
    assign(l, word_at(l, rv(o), 0, 0), header_word(l, SX_T_VMCLOSURE, 0));
    assign(l, word_at(l, rv(o), 0, (long)(offsetof(sx_vmclosure, proto) / sizeof(sx_val))),
           rv(ptr_word(l, l->Kv, k)));
    assign(l, word_at(l, rv(o), 0, (long)(offsetof(sx_vmclosure, env) / sizeof(sx_val))),
           gcc_jit_context_new_bitcast(l->c, NULL, rv(l->env), l->t_i64));
    assign(l, l->stk[d], rv(o));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = empty;
    gcc_jit_rvalue *args[3] = {prv(l->cx), rv(ptr_word(l, l->Kv, k)),
                               gcc_jit_context_new_cast(l->c, NULL, rv(l->env), l->t_voidp)};
    assign(l, l->stk[d], call_link(l, l->f_closure, 3, args));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
}

/* Whether the callee of the call or PRIM at pc is assumed (l->fast): a
 * call's is this function, a PRIM's its built-in. */
static bool site_assumed(lower *l, int pc)
{
    return l->fast && l->site_g[pc] >= 0;
}

/* A call of this function by its name K[g], in code that assumes the
 * global holds a closure of it: a self call with nothing to test first.
 * The callee is loaded here, not where the GLOBAL pushed it (it still
 * holds what it held then), so it is not kept across the arguments. */
static void emit_assumed_self_call(lower *l, int d, int n, int g)
{
    gcc_jit_block *join = new_block(l);
    assign(l, l->stk[d - n - 1],
           l->by_me ? gcc_jit_context_new_bitcast(l->c, NULL, rv(l->me), l->t_i64)
                    : rv(global_of(l, g)));
    emit_self_call(l, d - n - 1, n, join);
    l->cur = join;
}

/* global K[k] = stk[d - 1], as sx_set_global: a watched global's write
 * is reported to the runtime. */
static void emit_set_global(lower *l, int k, int d)
{
    assign(l, global_of(l, k), S(l, d - 1));
    gcc_jit_rvalue *sym = rv(ptr_word(l, l->Kv, k));
    gcc_jit_rvalue *watched = i32_at(l, gcc_jit_context_new_bitcast(l->c, NULL, sym, l->t_voidp),
                                     offsetof(sx_symbol, watched));
    gcc_jit_block *hook = new_block(l), *join = new_block(l);
    gcc_jit_block_end_with_conditional(
        l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_NE, watched, i64(l, 0)), hook, join);
    l->cur = hook;
    gcc_jit_rvalue *args[2] = {prv(l->cx), sym};
    gcc_jit_block_add_eval(l->cur, NULL, call_link(l, l->f_global_written, 2, args));
    gcc_jit_block_end_with_jump(l->cur, NULL, join);
    l->cur = join;
}

/* Emits one instruction at pc (operand depth d). Returns false if the block ended. */
static bool emit_insn(lower *l, int pc, int d)
{
    const int32_t *c = l->p->code + pc;
    int next = pc + 1 + sx_opcode_operands[c[0]];
    switch (c[0]) {
    case BC_CONST:
        /* an immediate is part of the code: the code hash covers constants */
        assign(l, l->stk[d],
               const_imm(l->p, c[1]) ? i64(l, (long)l->p->k[c[1]]) : rv(ptr_word(l, l->Kv, c[1])));
        return true;
    case BC_NIL: assign(l, l->stk[d], i64(l, SX_NIL)); return true;
    case BC_LOCAL: assign(l, l->stk[d], rv(l->slot[c[1]])); return true;
    case BC_LOCAL_CK: emit_load_checked(l, l->slot[c[1]], d, c[2]); return true;
    case BC_SET_LOCAL: assign(l, l->slot[c[1]], S(l, d - 1)); return true;
    case BC_ENV: assign(l, l->stk[d], rv(env_slot(l, c[1], c[2]))); return true;
    case BC_ENV_CK: emit_load_checked(l, env_slot(l, c[1], c[2]), d, c[3]); return true;
    case BC_SET_ENV: assign(l, env_slot(l, c[1], c[2]), S(l, d - 1)); return true;
    case BC_GLOBAL:
        if (!l->fast || !l->assumed[c[1]])
            emit_load_checked(l, global_of(l, c[1]), d, c[1]);
        else if (l->needed[pc]) /* else only an assumed PRIM reads it, as its callee */
            assign(l, l->stk[d], rv(global_of(l, c[1])));
        return true;
    case BC_SET_GLOBAL:
        check_or_raise(l, cmp(l, GCC_JIT_COMPARISON_EQ, rv(global_of(l, c[1])), i64(l, SX_UNDEF)),
                       l->f_unbound, rv(ptr_word(l, l->Kv, c[1])));
        emit_set_global(l, c[1], d);
        return true;
    case BC_DEF_GLOBAL: emit_set_global(l, c[1], d); return true;
    case BC_POP: return true;
    case BC_JUMP: gcc_jit_block_end_with_jump(l->cur, NULL, block_at(l, next + c[1])); return false;
    case BC_JUMP_FALSE:
        gcc_jit_block_end_with_conditional(l->cur, NULL, truthy(l, S(l, d - 1)), block_at(l, next),
                                           block_at(l, next + c[1]));
        return false;
    case BC_JUMP_FALSE_KEEP:
        gcc_jit_block_end_with_conditional(l->cur, NULL, truthy(l, S(l, d - 1)), block_at(l, next),
                                           block_at(l, next + c[1]));
        return false;
    case BC_JUMP_TRUE_KEEP:
        gcc_jit_block_end_with_conditional(l->cur, NULL, truthy(l, S(l, d - 1)),
                                           block_at(l, next + c[1]), block_at(l, next));
        return false;
    case BC_CLOSURE: emit_closure(l, c[1], d); return true;
    case BC_PRIM: {
        int at = d - c[3] - 1;
        int not_k = -1, jf = fusable_jump(l, next, &not_k);
        return emit_prim(l, c, d, c[3] > 0 ? l->imm[at + 1] : 0, c[3] > 1 ? l->imm[at + 2] : 0, -1,
                         jf, not_k, site_assumed(l, pc), not_k >= 0 && site_assumed(l, next));
    }
    case BC_PRIM_LK: {
        /* GLOBAL g; LOCAL i; CONST c; PRIM op k 2. The global's unbound
         * check waits for the primitive's slow path: the fast path's
         * identity test already rules out an unbound global. */
        bool as = site_assumed(l, pc);
        if (!as) assign(l, l->stk[d], rv(global_of(l, c[3])));
        assign(l, l->stk[d + 1], rv(l->slot[c[4]]));
        l->fixd[d + 1] = l->fix_slot && l->fix_slot[c[4]];
        l->fixd[d + 2] = false;
        l->lod[d + 1] = l->lo_on && c[4] == l->lo_slot ? l->lo_word : 0;
        l->lod[d + 2] = 0;
        sx_val kc = const_imm(l->p, c[5]) ? l->p->k[c[5]] : 0;
        assign(l, l->stk[d + 2], kc ? i64(l, (long)kc) : rv(ptr_word(l, l->Kv, c[5])));
        const int32_t prim[4] = {BC_PRIM, c[1], c[2], 2};
        int not_k = -1, jf = fusable_jump(l, next, &not_k);
        return emit_prim(l, prim, d + 3, 0, kc, as ? -1 : c[3], jf, not_k, as,
                         not_k >= 0 && site_assumed(l, next));
    }
    case BC_CALL:
        if (site_assumed(l, pc))
            emit_assumed_self_call(l, d, c[1], l->site_g[pc]);
        else
            emit_call(l, c, d, prim_site(l, d - c[1] - 1));
        return true;
    case BC_TAIL_CALL:
        if (l->by_me && site_assumed(l, pc)) { /* the callee is the running closure */
            emit_self_tail_call(l, d - c[1] - 1, c[1]);
            return false;
        }
        if (prim_site(l, d - c[1] - 1) && inject_here(l, c[1]))
            assign(l, l->stk[d - c[1]], i64(l, SX_TRUE));
        emit_tail_call(l, c, d);
        return false;
    case BC_RETURN:
    case BC_GUARD_END: /* in a guard's body: its value */
        gcc_jit_block_end_with_return(l->cur, NULL, S(l, d - 1));
        return false;
    case BC_DICT: {
        int n = c[1];
        spill_args(l, d - n, n);
        gcc_jit_rvalue *args[3] = {prv(l->cx), argbuf_addr(l), i64(l, n)};
        assign(l, l->stk[d - n], call_link(l, l->f_dict, 3, args));
        return true;
    }
    default: return false;
    }
}

/* ---- the function ---------------------------------------------------------------------- */

static void make_types(lower *l)
{
    gcc_jit_context *c = l->c;
    l->t_i64 = gcc_jit_context_get_type(c, GCC_JIT_TYPE_INT64_T);
    l->t_u64 = gcc_jit_context_get_type(c, GCC_JIT_TYPE_UINT64_T);
    l->t_i32 = gcc_jit_context_get_type(c, GCC_JIT_TYPE_INT);
    l->t_bool = gcc_jit_context_get_type(c, GCC_JIT_TYPE_BOOL);
    l->t_char = gcc_jit_context_get_type(c, GCC_JIT_TYPE_CHAR);
    l->t_voidp = gcc_jit_context_get_type(c, GCC_JIT_TYPE_VOID_PTR);
    l->t_i64p = gcc_jit_type_get_pointer(l->t_i64);
    l->t_i32p = gcc_jit_type_get_pointer(gcc_jit_type_get_volatile(l->t_i32));
    l->t_charp = gcc_jit_type_get_pointer(l->t_char);
    gcc_jit_type *u32 = gcc_jit_context_get_type(c, GCC_JIT_TYPE_UINT32_T);
    gcc_jit_type *p3[3] = {l->t_voidp, l->t_i64p, l->t_i64};
    gcc_jit_type *call_t = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 3, p3, 0);
    gcc_jit_type *p2[2] = {l->t_voidp, l->t_i64};
    gcc_jit_type *unbound_t = gcc_jit_context_new_function_ptr_type(
        c, NULL, gcc_jit_context_get_type(c, GCC_JIT_TYPE_VOID), 2, p2, 0);
    gcc_jit_type *pc3[3] = {l->t_voidp, l->t_i64, l->t_voidp};
    gcc_jit_type *closure_t = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 3, pc3, 0);
    gcc_jit_type *pe3[3] = {l->t_voidp, l->t_voidp, l->t_i64};
    gcc_jit_type *env_t = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_voidp, 3, pe3, 0);
    gcc_jit_type *p1[1] = {l->t_voidp};
    gcc_jit_type *intr_t = gcc_jit_context_new_function_ptr_type(
        c, NULL, gcc_jit_context_get_type(c, GCC_JIT_TYPE_VOID), 1, p1, 0);
    gcc_jit_type *pt2[2] = {l->t_voidp, l->t_i64p};
    gcc_jit_type *tail_t = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 2, pt2, 0);
    gcc_jit_type *pf4[4] = {l->t_voidp, l->t_i64, l->t_i64p, l->t_voidp};
    gcc_jit_type *fenv_t = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_voidp, 4, pf4, 0);
    /* the link table's type refers to itself through the guard body's type */
    gcc_jit_struct *link = gcc_jit_context_new_opaque_struct(c, NULL, "sx_jit_link");
    gcc_jit_type *link_p = gcc_jit_type_get_pointer(gcc_jit_struct_as_type(link));
    gcc_jit_type *pb[6] = {l->t_voidp, l->t_i64p, l->t_i64p, l->t_i64p, link_p, l->t_i64p};
    l->t_body_fn = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 6, pb, 0);
    gcc_jit_type *pg[8] = {l->t_voidp, l->t_body_fn, l->t_i64p, l->t_i64p,
                           l->t_i64p,  link_p,       l->t_i64p, l->t_i64p};
    gcc_jit_type *guard_t = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 8, pg, 0);
    gcc_jit_field *fields[15] = {
        gcc_jit_context_new_field(c, NULL, u32, "version"),
        gcc_jit_context_new_field(c, NULL, u32, "size"),
        l->f_call = gcc_jit_context_new_field(c, NULL, call_t, "call"),
        l->f_unbound = gcc_jit_context_new_field(c, NULL, unbound_t, "unbound"),
        l->f_closure = gcc_jit_context_new_field(c, NULL, closure_t, "closure"),
        l->f_dict = gcc_jit_context_new_field(c, NULL, call_t, "dict"),
        l->f_new_env = gcc_jit_context_new_field(c, NULL, env_t, "new_env"),
        l->f_interrupted = gcc_jit_context_new_field(c, NULL, intr_t, "interrupted"),
        l->f_fallback = gcc_jit_context_new_field(c, NULL, call_t, "fallback_op"),
        l->f_finish_tail = gcc_jit_context_new_field(c, NULL, tail_t, "finish_tail"),
        l->f_frame_env = gcc_jit_context_new_field(c, NULL, fenv_t, "frame_env"),
        l->f_guard = gcc_jit_context_new_field(c, NULL, guard_t, "guard"),
        l->f_pair_fl = gcc_jit_context_new_field(c, NULL, l->t_i64p, "pair_fl"),
        l->f_fl = gcc_jit_context_new_field(c, NULL, l->t_i64p, "fl"),
        l->f_global_written = gcc_jit_context_new_field(c, NULL, unbound_t, "global_written"),
    };
    gcc_jit_struct_set_fields(link, NULL, 15, fields);
    l->t_link_p = link_p;
    gcc_jit_type *pn[5] = {l->t_voidp, l->t_i64p, l->t_i64p, l->t_i64p, link_p};
    l->t_native = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 5, pn, 0);
    gcc_jit_type *pd[2 + JIT_DIRECT_ARGS] = {l->t_voidp, l->t_i64p};
    for (int i = 0; i < JIT_DIRECT_ARGS; i++)
        pd[2 + i] = l->t_i64;
    for (int n = 0; n <= JIT_DIRECT_ARGS; n++)
        l->t_direct[n] = gcc_jit_context_new_function_ptr_type(c, NULL, l->t_i64, 2 + n, pd, 0);
    l->cx = gcc_jit_context_new_param(c, NULL, l->t_voidp, "cx");
    l->base = gcc_jit_context_new_param(c, NULL, l->t_i64p, "base");
    l->env0 = gcc_jit_context_new_param(c, NULL, l->t_i64p, "env");
    l->K = gcc_jit_context_new_param(c, NULL, l->t_i64p, "K");
    l->L = gcc_jit_context_new_param(c, NULL, link_p, "L");
}

/* The locals of the function being emitted (l->fn): operand stack,
 * argument buffer, a direct callee's frame, the env. */
static void make_frame_locals(lower *l)
{
    char name[32];
    for (int i = 0; i < l->p->maxstack + 2; i++) {
        snprintf(name, sizeof name, "s%d", i);
        l->stk[i] = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, name);
    }
    l->argbuf = gcc_jit_function_new_local(
        l->fn, NULL, gcc_jit_context_new_array_type(l->c, NULL, l->t_i64, l->p->maxstack + 3),
        "argv");
    l->env = gcc_jit_function_new_local(l->fn, NULL, l->t_i64p, "e");
    l->cframe = gcc_jit_function_new_local(
        l->fn, NULL, gcc_jit_context_new_array_type(l->c, NULL, l->t_i64, JIT_CFRAME + 1),
        "cframe");
    l->up0 = gcc_jit_function_new_local(l->fn, NULL, l->t_voidp, "up0");
    l->env_made = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "env_made");
}

static int emit_range(lower *l, int from, int to);

/* Whether p gets a direct entry: a fixed parameter list short enough that
 * cx, base, L and the arguments all travel in registers (the generic entry
 * calls it in tail position, so it must take no arguments on the stack),
 * no heap env made on entry (its env is its closure's: it has none, or a
 * lazy one) and a frame that fits a cframe (where a caller puts the
 * callee, and the callee a tail call). */
static bool direct_entry_ok(const sx_proto *p)
{
    return !p->rest && p->nreq <= JIT_DIRECT_ARGS && (p->env_size == 0 || p->env_lazy) &&
           p->nslots + p->maxstack < JIT_CFRAME;
}

/* Makes l->fn, the generic entry (the VM's sx_native_fn), a tail call of
 * the direct entry `SYMBOL_d`(cx, base, L, arg0, ...), which becomes
 * l->fn: the body is emitted into it. base is still the frame: base[-1]
 * holds the callee, and a tail call not made here is written at base[-1 ..
 * n] as from the generic entry. */
static bool *head_returns(const sx_proto *p);
static void emit_stamp(lower *l, gcc_jit_rvalue *proto);

/* New parameters cx, base and one per argument into dp, as the direct
 * entry takes them. @return how many */
static int direct_params(lower *l, gcc_jit_param **dp)
{
    dp[0] = gcc_jit_context_new_param(l->c, NULL, l->t_voidp, "cx");
    dp[1] = gcc_jit_context_new_param(l->c, NULL, l->t_i64p, "base");
    char name[32];
    for (int i = 0; i < l->p->nreq; i++) {
        snprintf(name, sizeof name, "a%d", i);
        dp[2 + i] = gcc_jit_context_new_param(l->c, NULL, l->t_i64, name);
    }
    return 2 + l->p->nreq;
}

/* The function SYMBOL_<suffix> of np parameters dp, exported unless it is
 * the head for fixnum arguments (`_e`): that one is called only from this
 * code, so GCC may inline it at its calls (JIT_INLINE_OPTION, jit.c). */
static gcc_jit_function *direct_fn(lower *l, char suffix, int np, gcc_jit_param **dp)
{
    char name[80];
    snprintf(name, sizeof name, "%s_%c", l->job->symbol, suffix);
    enum gcc_jit_function_kind kind =
        suffix == 'e' ? GCC_JIT_FUNCTION_INTERNAL : GCC_JIT_FUNCTION_EXPORTED;
    return gcc_jit_context_new_function(l->c, NULL, kind, l->t_i64, name, np, dp, 0);
}

/* Ends the head's restart with a call of fn (the body or the specialized
 * body) whose value it returns. It is a required tail call, except in
 * `_e`: GCC 12 keeps that flag on a call of a function it inlines, and
 * where `_e` is inlined its call is not in tail position (the caller goes
 * on with its value), so a required tail call there would become a jump
 * out of the caller (seen at -O2, which inlines it too). Without the flag
 * `_e` not inlined costs one more frame, once per call. */
static void end_with_restart(lower *l, gcc_jit_block *b, gcc_jit_function *fn, int n,
                             gcc_jit_rvalue **args)
{
    gcc_jit_rvalue *call = gcc_jit_context_new_call(l->c, NULL, fn, n, args);
    if (l->fn != l->head_fix) gcc_jit_rvalue_set_bool_require_tail_call(call, 1);
    gcc_jit_block_end_with_return(b, NULL, call);
}

static void make_direct_entry(lower *l)
{
    sx_proto *p = l->p;
    /* the head is worth its compile time when the function can return
     * before its first call; any injected fault stays in one function */
    bool head =
        !(l->job->inject & ~JIT_CHECKED) && (l->head_ret = head_returns(p)) && l->head_ret[0];
    gcc_jit_function *fns[2] = {NULL, NULL};
    gcc_jit_param *dp[2][3 + JIT_DIRECT_ARGS];
    for (int f = 0; f < (head ? 2 : 1); f++) {
        int np = direct_params(l, dp[f]);
        if (f == 1) /* the body: where to start */
            dp[f][np++] = l->resume = gcc_jit_context_new_param(l->c, NULL, l->t_i64, "resume");
        fns[f] = direct_fn(l, f == 0 ? 'd' : 'b', np, dp[f]);
    }
    l->direct = fns[0];
    gcc_jit_block *b = gcc_jit_function_new_block(l->fn, "entry");
    l->cur = b;
    emit_stamp(l,
               gcc_jit_context_new_bitcast(
                   l->c, NULL, rv(i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto))),
                   l->t_voidp));
    gcc_jit_rvalue *args[2 + JIT_DIRECT_ARGS] = {prv(l->cx), prv(l->base)};
    for (int i = 0; i < p->nreq; i++)
        args[2 + i] = rv(ptr_word(l, prv(l->base), i));
    gcc_jit_rvalue *call = gcc_jit_context_new_call(l->c, NULL, l->direct, 2 + p->nreq, args);
    gcc_jit_rvalue_set_bool_require_tail_call(call, 1);
    gcc_jit_block_end_with_return(b, NULL, call);
    int f = head ? 1 : 0; /* the function the body goes into */
    if (head) {
        l->body = fns[1];
        for (int i = 0; i < 2 + p->nreq; i++)
            l->hparams[i] = dp[0][i];
    }
    l->fn = fns[f];
    l->cx = dp[f][0];
    l->base = dp[f][1];
    l->L = NULL; /* Lv() reads it from cx */
    for (int i = 0; i < p->nreq; i++)
        l->bparams[i] = l->dargs[i] = dp[f][2 + i];
    l->env0 = l->K = NULL;
}

/* In the head: ends the current block with the restart in the body (a tail
 * call with the head's arguments). */
static bool resumable(lower *l, int pc);

/* The most code words a specialized body (SYMBOL_c) copies. */
#define JIT_SPEC_MAX 256

static bool fixnum_op(int op)
{
    return op == OP_ADD || op == OP_SUB || op == OP_LT || op == OP_GT || op == OP_LE ||
           op == OP_GE || op == OP_NUMEQ || op == OP_ZEROP || op == OP_QUOTIENT ||
           op == OP_REMAINDER || op == OP_MODULO;
}

/* Whether parameter i is worth knowing to be a fixnum from pc on: nothing
 * stores into it, and from pc on it is an operand of an inline fixnum
 * primitive (loaded at most two instructions before it). */
static bool fix_worth(const sx_proto *p, int i, int from)
{
    for (int q = 0; q < p->ncode; q += 1 + sx_opcode_operands[p->code[q]])
        if (p->code[q] == BC_SET_LOCAL && p->code[q + 1] == i) return false;
    for (int q = from; q < p->ncode; q += 1 + sx_opcode_operands[p->code[q]]) {
        const int32_t *c = p->code + q;
        if (c[0] == BC_PRIM_LK && c[4] == i && fixnum_op(c[1])) return true;
        if (c[0] != BC_LOCAL || c[1] != i) continue;
        int r = q;
        for (int k = 0; k < 3 && r < p->ncode; k++) {
            r += 1 + sx_opcode_operands[p->code[r]];
            if (r < p->ncode && p->code[r] == BC_PRIM && fixnum_op(p->code[r + 1])) return true;
        }
    }
    return false;
}

/* A lower bound of a parameter at pc at, for the specialized body: when
 * a JUMP_FALSE to at follows a test (< x C) or (<= x C) of a parameter x
 * the spec counts on being a fixnum (PRIM_LK), x >= C or x > C there. The
 * spec's condition tests it again, in the head's own terms, so it holds
 * whichever way the body got there (the test's slow path, a redefined <);
 * where the head has just made the same test, GCC drops the second. */
static void spec_bound(lower *l, int at)
{
    const sx_proto *p = l->p;
    l->lo_slot = -1;
    for (int q = 0, prev = -1; q < at; prev = q, q += 1 + sx_opcode_operands[p->code[q]]) {
        const int32_t *c = p->code + q, *t = prev >= 0 ? p->code + prev : NULL;
        if (c[0] != BC_JUMP_FALSE || q + 2 + c[1] != at || !t || t[0] != BC_PRIM_LK ||
            (t[1] != OP_LT && t[1] != OP_LE) || t[4] >= p->nreq || !l->spec_fix[t[4]] ||
            !const_imm(p, t[5]) || !imm_fix(p->k[t[5]]))
            continue;
        int64_t v = sx_fix(p->k[t[5]]);
        if (t[1] == OP_LE && !sx_fix_fits(v + 1)) continue;
        l->lo_slot = t[4];
        l->lo_op = t[1];
        l->lo_k = p->k[t[5]];
        l->lo_word = t[1] == OP_LT ? p->k[t[5]] : sx_mkfix(v + 1);
        return;
    }
}

/* Whether the head's restart at pc at goes to the specialized body when
 * its parameters are fixnums: there is one, for the first pc the head
 * restarts at whose code is short enough and has parameters worth it
 * (l->spec_fix); it is declared here and emitted by emit_spec. */
static bool want_spec(lower *l, int at)
{
    sx_proto *p = l->p;
    if (l->spec) return l->spec_pc == at;
    /* a self tail call would leave it through the direct entry, giving up
     * its frame where the body jumps back to its start (tak) */
    if ((l->job->inject & ~JIT_CHECKED) || p->ncode - at > JIT_SPEC_MAX || has_tail_call(p))
        return false;
    if (!l->spec_fix && !(l->spec_fix = calloc((size_t)p->nslots + 1, sizeof *l->spec_fix)))
        return false;
    int nf = 0;
    for (int i = 0; i < p->nreq; i++)
        nf += l->spec_fix[i] = fix_worth(p, i, at);
    if (!nf) return false;
    l->spec = direct_fn(l, 'c', direct_params(l, l->sparams), l->sparams);
    l->spec_pc = at;
    spec_bound(l, at);
    if (l->fast) l->head_fix = direct_fn(l, 'e', direct_params(l, l->eparams), l->eparams);
    return true;
}

static void end_restart(lower *l)
{
    gcc_jit_rvalue *args[3 + JIT_DIRECT_ARGS] = {prv(l->cx), prv(l->base)};
    int n = 2;
    for (int i = 0; i < l->p->nreq; i++)
        args[n++] = prv(l->dargs[i]);
    if (l->resume) {
        int at = resumable(l, l->head_leader) ? l->head_leader : 0;
        if (at && want_spec(l, at)) {
            /* SYMBOL_c when the parameters it counts on are fixnums */
            gcc_jit_rvalue *ok = NULL;
            for (int i = 0; i < l->p->nreq; i++)
                if (l->spec_fix[i] && !(l->fix_slot && l->fix_slot[i]))
                    ok = and_maybe(l, tag_is(l, prv(l->dargs[i]), (long)SX_TAG_FIX), ok);
            if (l->lo_slot >= 0) /* not (< x C), not (<= x C): as the head's fast path */
                ok = and_maybe(
                    l,
                    cmp(l, l->lo_op == OP_LT ? GCC_JIT_COMPARISON_GE : GCC_JIT_COMPARISON_GT,
                        prv(l->dargs[l->lo_slot]), i64(l, (long)l->lo_k)),
                    ok);
            gcc_jit_block *yes = new_block(l), *no = new_block(l);
            if (ok)
                gcc_jit_block_end_with_conditional(l->cur, NULL, ok, yes, no);
            else
                gcc_jit_block_end_with_jump(l->cur, NULL, yes);
            end_with_restart(l, yes, l->spec, n, args);
            l->cur = no;
        }
        if (at) l->resumed[at] = true;
        args[n++] = i64(l, at);
    }
    end_with_restart(l, l->cur, l->body, n, args);
}

/* Whether the body can start at pc, a block the head entered, rather
 * than at its own start: the operand stack is empty there, and nothing
 * before pc stores into a slot (SET_LOCAL is the one store a head makes)
 * or opens a guard (whose body is a function of its own), so the body
 * arriving there from its start would hold what its entry holds: the
 * arguments, the other slots unassigned, the closure's env. What the head
 * did since it entered pc has no effect and is done again. */
static bool resumable(lower *l, int pc)
{
    const sx_proto *p = l->p;
    if (pc <= 0 || pc >= p->ncode || l->depth[pc] != 0 || !l->leader[pc]) return false;
    for (int q = 0; q < pc; q += 1 + sx_opcode_operands[p->code[q]])
        if (p->code[q] == BC_SET_LOCAL || p->code[q] == BC_GUARD) return false;
    return true;
}

/* Ends the body's dispatch block: to the block at each pc the head
 * restarts the body at, else to its start (the block start). */
static void emit_resume(lower *l, gcc_jit_block *start)
{
    gcc_jit_block *b = l->dispatch;
    for (int pc = 1; pc < l->p->ncode; pc++) {
        if (!l->resumed[pc] || !l->body_blk[pc]) continue;
        gcc_jit_block *next = gcc_jit_function_new_block(l->body, NULL);
        gcc_jit_block_end_with_conditional(
            b, NULL, cmp(l, GCC_JIT_COMPARISON_EQ, prv(l->resume), i64(l, pc)), l->body_blk[pc],
            next);
        b = next;
    }
    gcc_jit_block_end_with_jump(b, NULL, start);
}

/* In the head: restarts in the body here; what follows goes to a block
 * nothing reaches. @return false outside the head */
static bool head_restart(lower *l)
{
    if (!l->head_mode) return false;
    end_restart(l);
    l->cur = new_block(l);
    return true;
}

static bool head_stops(const sx_proto *p, int pc);

/* Per pc: whether the head, going on from pc, may reach a RETURN (then it
 * is emitted from there; elsewhere it restarts in the body at once). The
 * head only goes forwards, so one pass from the end decides. NULL if no
 * memory. */
static bool *head_returns(const sx_proto *p)
{
    bool *r = calloc((size_t)p->ncode + 1, sizeof *r);
    if (!r) return NULL;
    int *at = malloc(((size_t)p->ncode + 1) * sizeof *at); /* instruction starts */
    if (!at) {
        free(r);
        return NULL;
    }
    int n = 0;
    for (int q = 0; q < p->ncode; q += 1 + sx_opcode_operands[p->code[q]])
        at[n++] = q;
    for (int i = n - 1; i >= 0; i--) {
        int q = at[i], op = p->code[q];
        int next = q + 1 + sx_opcode_operands[op];
        bool fall = next < p->ncode && r[next];
        if (head_stops(p, q)) continue;
        switch (op) {
        case BC_RETURN: r[q] = true; break;
        case BC_JUMP: r[q] = r[next + p->code[q + 1]]; break;
        case BC_JUMP_FALSE:
        case BC_JUMP_FALSE_KEEP:
        case BC_JUMP_TRUE_KEEP: r[q] = fall || r[next + p->code[q + 1]]; break;
        case BC_GUARD_END: break;
        default: r[q] = fall;
        }
    }
    free(at);
    return r;
}

/* Whether the instruction at pc ends the head (restarts in the body): a
 * call, an effect, a loop. */
static bool head_stops(const sx_proto *p, int pc)
{
    const int32_t *c = p->code + pc;
    switch (c[0]) {
    case BC_CALL:
    case BC_TAIL_CALL:
    case BC_CLOSURE:
    case BC_DICT:
    case BC_GUARD:
    case BC_SET_ENV:
    case BC_SET_GLOBAL:
    case BC_DEF_GLOBAL: return true;
    case BC_JUMP:
    case BC_JUMP_FALSE:
    case BC_JUMP_FALSE_KEEP:
    case BC_JUMP_TRUE_KEEP: return c[1] < 0; /* backwards */
    default: return false;
    }
}

/* The function state a guard's body replaces while it is emitted. */
typedef struct fn_state {
    gcc_jit_function *fn;
    gcc_jit_param *cx, *base, *env0, *K, *L;
    gcc_jit_rvalue *Kv, *env0v;
    gcc_jit_lvalue *env, *up0, **slot, **stk, *argbuf, *cframe;
    gcc_jit_block *cur;
    gcc_jit_rvalue *slots_mem;
} fn_state;

static fn_state save_fn(const lower *l)
{
    return (fn_state){l->fn,  l->cx,  l->base, l->env0, l->K,      l->L,      l->Kv,  l->env0v,
                      l->env, l->up0, l->slot, l->stk,  l->argbuf, l->cframe, l->cur, l->slots_mem};
}

static void restore_fn(lower *l, const fn_state *s)
{
    l->fn = s->fn, l->cx = s->cx, l->base = s->base, l->env0 = s->env0, l->K = s->K, l->L = s->L;
    l->Kv = s->Kv, l->env0v = s->env0v;
    l->env = s->env, l->up0 = s->up0, l->slot = s->slot, l->stk = s->stk, l->argbuf = s->argbuf;
    l->cframe = s->cframe, l->cur = s->cur, l->slots_mem = s->slots_mem;
}

/* BC_GUARD at pc (operand depth d). Its body, [pc + 2, GUARD_END], becomes
 * a function of its own that reads and writes the slots in memory; the
 * link table's guard runs it under a protected boundary. Its value goes on
 * after the GUARD_END; a raised value goes to the handler at the guard's
 * target, at the same depth. Ends the current block.
 * @return the pc of the GUARD_END, or -1 */
static int emit_guard(lower *l, int pc, int d)
{
    sx_proto *p = l->p;
    int end = guard_end(p, pc);
    if (end < 0 || end + 1 >= p->ncode) return -1;
    int handler = pc + 2 + p->code[pc + 1];

    /* the body */
    fn_state outer = save_fn(l);
    gcc_jit_lvalue **slot = calloc((size_t)p->nslots + 1, sizeof *slot);
    gcc_jit_lvalue **stk = calloc((size_t)p->maxstack + 2, sizeof *stk);
    if (!slot || !stk) {
        free(slot);
        free(stk);
        return -1;
    }
    char name[96];
    snprintf(name, sizeof name, "%s_g%d", l->job->symbol, l->nguards++);
    l->cx = gcc_jit_context_new_param(l->c, NULL, l->t_voidp, "cx");
    l->base = gcc_jit_context_new_param(l->c, NULL, l->t_i64p, "base");
    l->env0 = gcc_jit_context_new_param(l->c, NULL, l->t_i64p, "env");
    l->K = gcc_jit_context_new_param(l->c, NULL, l->t_i64p, "K");
    l->L = gcc_jit_context_new_param(l->c, NULL, l->t_link_p, "L");
    l->Kv = prv(l->K);
    l->env0v = prv(l->env0);
    gcc_jit_param *slots = gcc_jit_context_new_param(l->c, NULL, l->t_i64p, "slots");
    gcc_jit_param *params[6] = {l->cx, l->base, l->env0, l->K, l->L, slots};
    gcc_jit_function *body = gcc_jit_context_new_function(l->c, NULL, GCC_JIT_FUNCTION_INTERNAL,
                                                          l->t_i64, name, 6, params, 0);
    l->fn = body;
    l->slots_mem = prv(slots);
    l->slot = slot;
    l->stk = stk;
    for (int i = 0; i < p->nslots; i++)
        l->slot[i] = ptr_word(l, l->slots_mem, i);
    make_frame_locals(l);
    l->cur = gcc_jit_function_new_block(body, "entry");
    assign(l, l->env, l->env0v);
    assign(l, l->up0, gcc_jit_context_new_cast(l->c, NULL, l->env0v, l->t_voidp));
    int rc = emit_range(l, pc + 2, end + 1);
    restore_fn(l, &outer);
    free(slot);
    free(stk);
    if (rc != 0) return -1;

    /* the call, in the function that holds the guard */
    gcc_jit_rvalue *mem = l->slots_mem;
    gcc_jit_lvalue *spill = NULL;
    if (!mem) {
        spill = gcc_jit_function_new_local(
            l->fn, NULL, gcc_jit_context_new_array_type(l->c, NULL, l->t_i64, p->nslots + 1),
            "guard_slots");
        mem = gcc_jit_lvalue_get_address(
            gcc_jit_context_new_array_access(l->c, NULL, rv(spill), i64(l, 0)), NULL);
        for (int i = 0; i < p->nslots; i++)
            assign(l, ptr_word(l, mem, i), rv(l->slot[i]));
    }
    gcc_jit_lvalue *caught = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, "caught");
    gcc_jit_rvalue *args[8] = {
        prv(l->cx),
        gcc_jit_context_new_cast(l->c, NULL, gcc_jit_function_get_address(body, NULL),
                                 l->t_body_fn),
        prv(l->base),
        rv(l->env),
        l->Kv,
        Lv(l),
        mem,
        gcc_jit_lvalue_get_address(caught, NULL),
    };
    assign(l, l->stk[d], call_link(l, l->f_guard, 8, args));
    if (spill)
        for (int i = 0; i < p->nslots; i++)
            assign(l, l->slot[i], rv(ptr_word(l, mem, i)));
    if (l->depth[end + 1] < 0) { /* the body never ends normally */
        gcc_jit_block_end_with_jump(l->cur, NULL, block_at(l, handler));
    } else {
        l->leader[end + 1] = true;
        gcc_jit_block_end_with_conditional(l->cur, NULL,
                                           cmp(l, GCC_JIT_COMPARISON_NE, rv(caught), i64(l, 0)),
                                           block_at(l, handler), block_at(l, end + 1));
    }
    return end;
}

/* Forgets what is known of operand slots from depth `from` up. */
static void forget_imm(lower *l, int from)
{
    for (int j = from < 0 ? 0 : from; j < l->p->maxstack + 2; j++) {
        l->imm[j] = 0;
        l->fixd[j] = false;
        l->lod[j] = 0;
    }
}

/* After the instruction at pc (operand depth d before it): a constant
 * pushed is known; the slot an instruction writes (the top after it), and
 * everything above, is not. */
static void track_imm(lower *l, int pc, int d)
{
    const int32_t *c = l->p->code + pc;
    if (c[0] == BC_CONST && const_imm(l->p, c[1])) {
        l->imm[d] = l->p->k[c[1]];
        l->fixd[d] = false;
        l->lod[d] = 0;
        return;
    }
    int bd;
    int nd = succ_depth(c[0], c, d, &bd);
    forget_imm(l, nd < 0 ? 0 : nd - 1);
    if (c[0] == BC_LOCAL && l->fix_slot) l->fixd[d] = l->fix_slot[c[1]];
    if (c[0] == BC_LOCAL && l->lo_on && c[1] == l->lo_slot) l->lod[d] = l->lo_word;
    if (l->fix_result && nd > 0) l->fixd[nd - 1] = true;
    l->fix_result = false;
}

/* Emits the instructions in [from, to) into l->fn, continuing l->cur;
 * a guard's body in the range goes to a function of its own.
 * @return 0 or -1 */
static int emit_range(lower *l, int from, int to)
{
    sx_proto *p = l->p;
    bool open = true;
    forget_imm(l, 0);
    for (int pc = from; pc < to; pc += 1 + sx_opcode_operands[p->code[pc]]) {
        if (l->depth[pc] < 0) continue;
        if (l->leader[pc]) {
            forget_imm(l, 0);
            if (l->head_mode && !open && !l->blk[pc]) { /* the head never gets here */
                continue;
            }
            l->head_leader = pc;
            gcc_jit_block *b = block_at(l, pc);
            if (open) gcc_jit_block_end_with_jump(l->cur, NULL, b);
            l->cur = b;
            open = true;
        }
        if (!open) continue;
        int d = l->depth[pc];
        if (l->head_mode && (head_stops(p, pc) || !l->head_ret[pc])) {
            end_restart(l);
            open = false;
            continue;
        }
        if (p->code[pc] == BC_GUARD) {
            int end = emit_guard(l, pc, d);
            if (end < 0) return -1;
            forget_imm(l, 0);
            pc = end; /* the loop steps past the GUARD_END */
            open = false;
            continue;
        }
        open = emit_insn(l, pc, d);
        l->pushed_by[d] = p->code[pc] == BC_GLOBAL ? pc : -1;
        track_imm(l, pc, d);
    }
    if (open) gcc_jit_block_end_with_return(l->cur, NULL, i64(l, SX_NIL));
    return 0;
}

/* cx->native_proto is this function's proto on every entry (the VM's
 * call_native and the direct calls below set it first): stamp the
 * request's epoch into it, so the worker learns which functions ran
 * natively (jit_request_entered): one load and one store per call. */
static void emit_stamp(lower *l, gcc_jit_rvalue *proto)
{
    assign(l, i32_field(l, proto, (long)offsetof(sx_proto, jit_entered)),
           rv(i32_field(l, prv(l->cx), (long)offsetof(sx_ctx, jit_epoch))));
}

/* On entry to a direct body: when its frame is past the C stack's limit or
 * a deadline has passed, the call is made again through the link table,
 * whose checks raise stack-overflow or timeout as the VM's calls do. One
 * test covers both: cx->jit_limit is the stack's limit, or above every
 * address while an interrupt is pending (sx_core.h). Its self calls need
 * not check either before calling: a head returns after bounded work
 * without a call, and anything else enters a body. */
static void emit_entry_checks(lower *l)
{
    sx_proto *p = l->p;
    gcc_jit_rvalue *limit = rv(i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, jit_limit)));
    gcc_jit_rvalue *here = gcc_jit_context_new_bitcast(l->c, NULL, cf_addr(l, 0), l->t_i64);
    gcc_jit_block *slow = new_block(l), *ok = new_block(l);
    gcc_jit_block_end_with_conditional(l->cur, NULL, cmp(l, GCC_JIT_COMPARISON_LE, here, limit),
                                       slow, ok);
    l->cur = slow;
    assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->argbuf), i64(l, 0)),
           rv(ptr_word(l, prv(l->base), -1)));
    for (int i = 0; i < p->nreq; i++)
        assign(l, gcc_jit_context_new_array_access(l->c, NULL, rv(l->argbuf), i64(l, 1 + i)),
               prv(l->dargs[i]));
    gcc_jit_rvalue *args[3] = {prv(l->cx), argbuf_addr(l), i64(l, p->nreq)};
    gcc_jit_block_end_with_return(l->cur, NULL, call_link(l, l->f_call, 3, args));
    l->cur = ok;
}

/* The start of a function of p's (the body, or the head): the fault
 * injected on entry, the entry stamp, the slots and env. direct: the
 * arguments are l->dargs and K and the env are found as the direct entry
 * finds them. */
static void emit_prologue(lower *l, bool direct)
{
    sx_proto *p = l->p;
    gcc_jit_context *ctxt = l->c;
    char name[32];
    for (int i = 0; i < p->nslots; i++) {
        snprintf(name, sizeof name, "l%d", i);
        l->slot[i] = gcc_jit_function_new_local(l->fn, NULL, l->t_i64, name);
    }
    make_frame_locals(l);
    l->cur = gcc_jit_function_new_block(l->fn, "entry");
    if (l->job->inject & JIT_INJECT_NULL_DEREF) {
        /* a volatile pointer holding NULL, so the compiler cannot see it */
        gcc_jit_type *vp = gcc_jit_type_get_pointer(gcc_jit_type_get_volatile(l->t_i64));
        gcc_jit_lvalue *np =
            gcc_jit_function_new_local(l->fn, NULL, gcc_jit_type_get_volatile(vp), "np");
        assign(l, np, gcc_jit_context_null(ctxt, vp));
        assign(l, gcc_jit_rvalue_dereference(rv(np), NULL), i64(l, 0));
    }
    gcc_jit_lvalue *self = gcc_jit_function_new_local(l->fn, NULL, l->t_voidp, "proto");
    assign(l, self,
           gcc_jit_context_new_bitcast(
               ctxt, NULL, rv(i64_field(l, prv(l->cx), (long)offsetof(sx_ctx, native_proto))),
               l->t_voidp));
    /* the generic entry stamps the request's epoch (emit_stamp); the direct
     * entry is entered from it, or by a self call, whose caller was */
    if (!direct) emit_stamp(l, rv(self));
    if (direct) {
        /* the constants are the proto's and the env is the closure's (no
         * heap env of its own), the closure being base[-1] on every entry
         * (cx->native_proto is not: a native tail call made by a callee
         * leaves it at the tail callee's proto) */
        l->me = gcc_jit_function_new_local(l->fn, NULL, l->t_voidp, "me");
        assign(
            l, l->me,
            gcc_jit_context_new_bitcast(ctxt, NULL, rv(ptr_word(l, prv(l->base), -1)), l->t_voidp));
        gcc_jit_rvalue *clo = rv(l->me);
        gcc_jit_rvalue *cproto = gcc_jit_context_new_bitcast(
            ctxt, NULL, rv(i64_field(l, clo, (long)offsetof(sx_vmclosure, proto))), l->t_voidp);
        gcc_jit_rvalue *kv = gcc_jit_context_new_bitcast(
            ctxt, NULL, rv(i64_field(l, cproto, (long)offsetof(sx_proto, k))), l->t_i64p);
        if (l->by_me) {
            l->Kv = kv;
        } else {
            gcc_jit_lvalue *k = gcc_jit_function_new_local(l->fn, NULL, l->t_i64p, "K");
            assign(l, k, kv);
            l->Kv = rv(k);
        }
        gcc_jit_lvalue *e = gcc_jit_function_new_local(l->fn, NULL, l->t_i64p, "env0");
        assign(l, e,
               gcc_jit_context_new_bitcast(ctxt, NULL,
                                           rv(i64_field(l, clo, (long)offsetof(sx_vmclosure, env))),
                                           l->t_i64p));
        l->env0v = rv(e);
        for (int i = 0; i < p->nslots; i++)
            assign(l, l->slot[i], i < p->nreq ? prv(l->dargs[i]) : i64(l, SX_UNDEF));
    } else {
        for (int i = 0; i < p->nslots; i++)
            assign(l, l->slot[i], rv(ptr_word(l, prv(l->base), i)));
    }
    if (direct && !l->head_mode) emit_entry_checks(l);
    assign(l, l->env, l->env0v);
    /* the closure's env: the parent of the env this frame made, if any
     * (a lazy env is made later, from the closure's) */
    if (l->lazy) assign(l, l->env_made, i64(l, 0));
    if (p->env_size && !l->lazy)
        assign(l, l->up0,
               gcc_jit_context_new_bitcast(ctxt, NULL, rv(ptr_word(l, l->env0v, 1)), l->t_voidp));
    else
        assign(l, l->up0, gcc_jit_context_new_cast(ctxt, NULL, l->env0v, l->t_voidp));
}

/* The head (the direct entry when the function has a body of its own):
 * the function again, from its start, as far as it goes without a call
 * or an effect. Whatever it cannot finish so (a call, a slow path, an
 * unbound variable, a store, a loop) restarts the function in the body
 * (a tail call with the same arguments); only what it has computed is
 * lost. So a call that returns early (fib's (< n 2)) needs no callee-saved
 * register and no frame. */
/* Starts emitting fn, a function with the direct entry's parameters
 * (params: cx, base, the arguments), from its prologue; head: it is the
 * head (emit_head). */
static void begin_direct_fn(lower *l, gcc_jit_function *fn, gcc_jit_param **params, bool head)
{
    sx_proto *p = l->p;
    l->fn = fn;
    l->cx = params[0];
    l->base = params[1];
    l->L = NULL;
    for (int i = 0; i < p->nreq; i++)
        l->dargs[i] = params[2 + i];
    for (int i = 0; i <= p->ncode; i++)
        l->blk[i] = NULL;
    l->head_mode = head;
    emit_prologue(l, true);
    l->head = NULL;
}

static int emit_head(lower *l)
{
    l->head_leader = 0;
    begin_direct_fn(l, l->direct, l->hparams, true);
    return emit_range(l, 0, l->p->ncode); /* the entry block goes on to pc 0's */
}

/* SYMBOL_e: the head, knowing the parameters in spec_fix are fixnums. It
 * restarts where the head does (the body's resume points are the head's). */
static int emit_head_fix(lower *l)
{
    l->head_leader = 0;
    l->ndirect = 0;
    begin_direct_fn(l, l->head_fix, l->eparams, true);
    l->fix_slot = l->spec_fix;
    int rc = emit_range(l, 0, l->p->ncode);
    l->fix_slot = NULL;
    return rc;
}

/* The specialized body SYMBOL_c(cx, base, arg0, ...): the body from
 * spec_pc on, entered by the head where it would restart the body there,
 * when the parameters in spec_fix are fixnums; their fixnum tests are left
 * out (nothing stores into them). A function with a tail call gets none
 * (want_spec): its start is not the function's, so there is nowhere to
 * jump back to. */
static int emit_spec(lower *l)
{
    l->ndirect = 0;
    begin_direct_fn(l, l->spec, l->sparams, false);
    l->fix_slot = l->spec_fix;
    l->lo_on = l->lo_slot >= 0;
    int rc = emit_range(l, l->spec_pc, l->p->ncode);
    l->fix_slot = NULL;
    l->lo_on = false;
    return rc;
}

/* Makes the code assume its globals (l->fast) when it can and they hold
 * now, and then exports SYMBOL_a(), which returns how many it assumes:
 * the runtime installs the code only while they hold (jit.c). */
static int assume_globals(lower *l)
{
    sx_proto *p = l->p;
    l->site_g = malloc(sizeof *l->site_g * ((size_t)p->ncode + 1));
    l->needed = malloc(sizeof *l->needed * ((size_t)p->ncode + 1));
    jit_assume *a = calloc((size_t)p->ncode + 1, sizeof *a);
    l->assumed = calloc((size_t)p->nk + 1, sizeof *l->assumed);
    if (!l->site_g || !l->needed || !a || !l->assumed) {
        free(a);
        return -1;
    }
    int n = jit__assumptions(p, a, p->ncode + 1, l->site_g, l->needed);
    l->fast = n > 0 && jit__assumptions_hold(p);
    for (int i = 0; l->fast && i < n; i++)
        l->assumed[a[i].k] = true;
    free(a);
    if (!l->fast) return 0;
    l->by_me = env_free(p);
    char name[80];
    snprintf(name, sizeof name, "%s_a", l->job->symbol);
    gcc_jit_function *f = gcc_jit_context_new_function(l->c, NULL, GCC_JIT_FUNCTION_EXPORTED,
                                                       l->t_i64, name, 0, NULL, 0);
    gcc_jit_block_end_with_return(gcc_jit_function_new_block(f, NULL), NULL, i64(l, n));
    return 0;
}

int jit__lower(gcc_jit_context *ctxt, jit_job *job)
{
    sx_proto *p = job->p;
    if (jit__supported(p)) return -1;
    lower l = {0};
    l.c = ctxt;
    l.p = p;
    l.job = job;
    l.lazy = p->env_lazy != 0;
    make_types(&l);
    gcc_jit_param *params[5] = {l.cx, l.base, l.env0, l.K, l.L};
    l.fn = gcc_jit_context_new_function(ctxt, NULL, GCC_JIT_FUNCTION_EXPORTED, l.t_i64, job->symbol,
                                        5, params, 0);
    l.Kv = prv(l.K);
    l.env0v = prv(l.env0);
    if (direct_entry_ok(p)) make_direct_entry(&l);
    int nstk = p->maxstack + 2;
    l.slot = calloc((size_t)p->nslots + 1, sizeof *l.slot);
    l.stk = calloc((size_t)nstk, sizeof *l.stk);
    l.blk = calloc((size_t)p->ncode + 1, sizeof *l.blk);
    l.depth = calloc((size_t)p->ncode + 1, sizeof *l.depth);
    l.pushed_by = calloc((size_t)nstk + 1, sizeof *l.pushed_by);
    l.imm = calloc((size_t)nstk + 1, sizeof *l.imm);
    l.fixd = calloc((size_t)nstk + 1, sizeof *l.fixd);
    l.lod = calloc((size_t)nstk + 1, sizeof *l.lod);
    l.lo_slot = -1;
    int rc = -1;
    if (!l.slot || !l.stk || !l.blk || !l.depth || !l.pushed_by || !l.imm || !l.fixd || !l.lod)
        goto out;
    for (int i = 0; i <= nstk; i++)
        l.pushed_by[i] = -1;
    if (l.direct && !job->inject && assume_globals(&l) != 0) goto out;
    emit_prologue(&l, l.direct != NULL);
    l.head = gcc_jit_function_new_block(l.fn, "head");
    if (l.resume) {
        l.dispatch = gcc_jit_function_new_block(l.fn, "dispatch");
        gcc_jit_block_end_with_jump(l.cur, NULL, l.dispatch);
        l.resumed = calloc((size_t)p->ncode + 1, sizeof *l.resumed);
        l.body_blk = calloc((size_t)p->ncode + 1, sizeof *l.body_blk);
        if (!l.resumed || !l.body_blk) goto out;
    } else {
        gcc_jit_block_end_with_jump(l.cur, NULL, l.head);
    }
    if (analyze(&l) != 0) goto out;
    l.cur = l.head;
    if (emit_range(&l, 0, p->ncode) != 0) goto out;
    if (job->inject & JIT_INJECT_COMPILE_ERROR)
        (void)gcc_jit_function_new_block(l.fn, "never_terminated"); /* rejected at compile */
    if (l.resume) memcpy(l.body_blk, l.blk, sizeof *l.blk * ((size_t)p->ncode + 1));
    gcc_jit_block *start = l.head; /* the body's, before the head's */
    if (l.body && emit_head(&l) != 0) goto out;
    if (l.head_fix && emit_head_fix(&l) != 0) goto out;
    if (l.resume) emit_resume(&l, start);
    if (l.spec && emit_spec(&l) != 0) goto out;
    rc = 0;
out:
    free(l.slot);
    free(l.stk);
    free(l.blk);
    free(l.leader);
    free(l.depth);
    free(l.pushed_by);
    free(l.imm);
    free(l.fixd);
    free(l.lod);
    free(l.spec_fix);
    free(l.head_ret);
    free(l.resumed);
    free(l.body_blk);
    free(l.assumed);
    free(l.site_g);
    free(l.needed);
    return rc;
}
