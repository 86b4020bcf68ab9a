/* sx_cek.c: the CEK machine, SX's reference evaluator.
 *
 * C is the current node, E the environment frame, K an explicit stack of
 * continuation frames in one array (never on the C stack, so recursion
 * depth is bounded by kstack_max, not by the C stack). A frame is FRAME
 * words: previous frame index, tag, node, env, a counter; a call frame is
 * followed by the operator and arguments evaluated so far.
 *
 * Tail calls are proper by construction: a call pops its argument frame
 * before entering the callee, so a call in tail position leaves nothing
 * behind. Nodes marked simple (constants, variables, lambda) and calls
 * whose parts are all simple are evaluated without pushing a frame.
 *
 * Errors: primitives raise by longjmp to run(), which unwinds K to the
 * nearest guard frame pushed by this run. If there is none the run pops
 * everything it pushed and re-raises to the run below (a primitive such as
 * map calling back into SX starts a nested run). stack-overflow,
 * memory-limit and timeout are never caught by guard.
 *
 * The K stack is reserved once (address space only; pages are touched as
 * it grows) and never moves, so argument vectors handed to primitives stay
 * valid while they call back into SX. The collector scans its live part.
 * Its size is part of the memory limit (sx_api.c caps it at an eighth);
 * after an evaluation that hit a limit its dead pages go back to the system.
 */
#include <gc.h>
#include <stdlib.h>
#include <gc/gc_mark.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/sx_bc.h"

enum { F_PREV, F_TAG, F_NODE, F_ENV, F_I, FRAME };
enum { K_BASE = 1, K_ARGS, K_IF, K_SEQ, K_ANDOR, K_SET, K_GUARD, K_DICT };

typedef struct cek {
    sx_val *stk;
    size_t sp, fp, max;
} cek;

static cek M;
static sx_val err_memory_limit;
static sx_val p_apply; /* (apply f ...) in tail position must stay a tail call */
static GC_push_other_roots_proc prev_push_roots;

static void GC_CALLBACK push_kstack(void)
{
    if (M.stk && M.sp) GC_push_all(M.stk, M.stk + M.sp);
    if (prev_push_roots) prev_push_roots();
}

void sx_cek_init(sx_ctx *cx)
{
    if (M.stk) return;
    M.max = cx->kstack_max ? cx->kstack_max : (size_t)4 << 20;
    M.stk = mmap(NULL, M.max * sizeof(sx_val), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (M.stk == MAP_FAILED) {
        perror("sxpool: unable to reserve the evaluator stack");
        abort();
    }
    M.sp = M.fp = 0;
    prev_push_roots = GC_get_push_other_roots();
    GC_set_push_other_roots(push_kstack);
    p_apply = sx_sym(sx_intern_c("apply"))->global;
    err_memory_limit = sx_mkerror_c("memory-limit", "evaluation exceeded its memory limit");
    GC_add_roots(&err_memory_limit, &err_memory_limit + 1);
}

size_t sx__cek_stack_bytes(void)
{
    return M.sp * sizeof(sx_val);
}

void sx__cek_release_stack(void)
{
    if (!M.stk) return;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)(M.stk + M.sp) + pg - 1) & ~(pg - 1);
    uintptr_t end = (uintptr_t)(M.stk + M.max);
    if (a < end) madvise((void *)a, end - a, MADV_DONTNEED);
}

sx_val sx_make_closure(sx_code *code, sx_env *env)
{
    sx_closure *c = sx_alloc(sizeof *c);
    c->h.type = SX_T_CLOSURE;
    c->code = code;
    c->env = env;
    return sx_from_ptr(c);
}

const char *sx_proc_name(sx_val f)
{
    if (sx_is(f, SX_T_PRIM)) return SX_OBJ(sx_prim, f)->name;
    if (sx_is(f, SX_T_CLOSURE)) {
        sx_val n = SX_OBJ(sx_closure, f)->code->name;
        return n == SX_NIL ? NULL : sx_sym_name(n);
    }
    if (sx_is(f, SX_T_VMCLOSURE)) {
        sx_val n = SX_OBJ(sx_vmclosure, f)->proto->name;
        return n == SX_NIL ? NULL : sx_sym_name(n);
    }
    return NULL;
}

bool sx_is_procedure(sx_val v)
{
    return sx_is(v, SX_T_PRIM) || sx_is(v, SX_T_CLOSURE) || sx_is(v, SX_T_VMCLOSURE);
}

/* ---- helpers ------------------------------------------------------------ */

static inline void need_stack(sx_ctx *cx, size_t words)
{
    if (M.sp + words > M.max) sx_error(cx, "stack-overflow", "evaluation nested too deeply");
}

static inline void push_frame(sx_ctx *cx, int tag, sx_node *c, sx_env *e, size_t extra)
{
    need_stack(cx, FRAME + extra);
    sx_val *f = M.stk + M.sp;
    f[F_PREV] = (sx_val)M.fp;
    f[F_TAG] = (sx_val)tag;
    f[F_NODE] = (sx_val)c;
    f[F_ENV] = (sx_val)e;
    f[F_I] = 0;
    M.fp = M.sp;
    M.sp += FRAME;
}

static inline void pop_frame(void)
{
    M.sp = M.fp;
    M.fp = (size_t)M.stk[M.fp + F_PREV];
}

static inline sx_val ev_simple(sx_ctx *cx, sx_node *n, sx_env *e)
{
    switch (n->op) {
    case N_CONST: return n->v;
    case N_LREF:
    case N_LREF_CK: {
        sx_env *f = e;
        for (int d = n->a; d > 0; d--)
            f = f->up;
        sx_val v = f->slots[n->b];
        if (v == SX_UNDEF && n->op == N_LREF_CK) sx_unbound(cx, n->v);
        return v;
    }
    case N_GREF: {
        sx_val v = sx_sym(n->v)->global;
        if (v == SX_UNDEF) sx_unbound(cx, n->v);
        return v;
    }
    default: return sx_make_closure(n->code, e);
    }
}

static sx_env *bind_args(sx_ctx *cx, sx_closure *clo, int argc, const sx_val *argv)
{
    sx_code *k = clo->code;
    if (argc < k->nreq || (!k->rest && argc > k->nreq))
        sx_arity_error(cx, k->name == SX_NIL ? NULL : sx_sym_name(k->name), k->nreq,
                       k->rest ? -1 : k->nreq, argc);
    if (cx->interrupt) sx_timeout(cx);
    size_t n = (size_t)k->frame_size;
    sx_env *env = sx_alloc(sizeof(sx_env) + n * sizeof(sx_val));
    env->h.type = SX_T_ENV;
    env->h.aux = (uint32_t)n;
    env->up = clo->env;
    int i = 0;
    for (; i < k->nreq; i++)
        env->slots[i] = argv[i];
    if (k->rest) {
        sx_val rest = SX_NIL;
        for (int j = argc - 1; j >= k->nreq; j--)
            rest = sx_cons(argv[j], rest);
        env->slots[i++] = rest;
    }
    for (; (size_t)i < n; i++)
        env->slots[i] = SX_UNDEF;
    return env;
}

static inline sx_val call_prim(sx_ctx *cx, sx_val fn, int argc, sx_val *argv)
{
    sx_prim *p = SX_OBJ(sx_prim, fn);
    if (argc < p->min_args || (p->max_args >= 0 && argc > p->max_args))
        sx_arity_error(cx, p->name, p->min_args, p->max_args, argc);
    return p->fn(cx, argc, argv);
}

static void do_set(sx_ctx *cx, sx_node *c, sx_env *e, sx_val v)
{
    switch (c->op) {
    case N_LINIT: e->slots[c->b] = v; break;
    case N_LSET: {
        sx_env *f = e;
        for (int d = c->a; d > 0; d--)
            f = f->up;
        f->slots[c->b] = v;
        break;
    }
    case N_GSET:
        if (sx_sym(c->v)->global == SX_UNDEF) sx_unbound(cx, c->v);
        sx_set_global(sx_sym(c->v), v);
        break;
    default: sx_set_global(sx_sym(c->v), v); break;
    }
}

static sx_val build_dict(size_t from, int n)
{
    sx_val d = sx_mkdict((size_t)n / 2);
    for (int k = 0; k + 1 < n; k += 2)
        sx_dict_put(d, M.stk[from + k], M.stk[from + k + 1]);
    return d;
}

/* (apply f a ... list) -> a fresh vector f a ... elements; returns its
 * length minus one (the argument count). */
static int unpack_apply(sx_ctx *cx, int argc, const sx_val *argv, sx_val **out)
{
    sx_val last = argv[argc - 1];
    long n = sx_list_length(last);
    if (n < 0) sx_type_error(cx, "apply", "fn … list", argc, argv);
    sx_val *v = sx_alloc(sizeof(sx_val) * (size_t)(argc - 1 + n));
    int k = 0;
    for (int i = 0; i < argc - 1; i++)
        v[k++] = argv[i];
    for (; sx_is_pair(last); last = SX_CDR(last))
        v[k++] = SX_CAR(last);
    *out = v;
    return k - 1;
}

static bool ev_args(sx_ctx *cx, sx_node *c, sx_env *e, sx_val *argv);

/* A pure node's value without frames, when its built-in is unchanged and
 * takes the fast path; false if it needs the general path (nothing it
 * evaluated has an effect, so that path may evaluate it again). */
static bool ev_pure(sx_ctx *cx, sx_node *n, sx_env *e, sx_val *out)
{
    sx_val argv[9];
    return ev_args(cx, n, e, argv) && argv[0] == n->v && sx_fast_op(n->b, argv + 1, out);
}

/* The operator and arguments of a call whose parts are all simple or pure,
 * into argv; false if a pure part needs the general path. */
static bool ev_args(sx_ctx *cx, sx_node *c, sx_env *e, sx_val *argv)
{
    for (int k = 0; k < c->n; k++) {
        sx_node *kid = c->kids[k];
        if (kid->simple)
            argv[k] = ev_simple(cx, kid, e);
        else if (!ev_pure(cx, kid, e, &argv[k]))
            return false;
    }
    return true;
}

/* ---- the machine ------------------------------------------------------- */

/* Runs until the K_BASE frame below everything it pushes is reached. */
static sx_val loop(sx_ctx *cx, sx_node *c, sx_env *e)
{
    sx_val *stk = M.stk;
    sx_val acc;
    size_t f;
    int i;
    sx_val argv[9];
    sx_val afn, *aargv;
    int aargc;
    bool pending;

eval:
    switch (c->op) {
    case N_CONST: acc = c->v; goto ret;
    case N_LREF:
    case N_LREF_CK:
    case N_GREF:
    case N_LAMBDA: acc = ev_simple(cx, c, e); goto ret;
    case N_IF: {
        sx_node *t = c->x;
        if (t->simple) {
            acc = ev_simple(cx, t, e);
            c = sx_truthy(acc) ? c->y : c->z;
            goto eval;
        }
        if (t->op == N_CALL && t->a && ev_args(cx, t, e, argv)) {
            if (t->b && argv[0] == t->v && sx_fast_op(t->b, argv + 1, &acc)) {
                c = sx_truthy(acc) ? c->y : c->z;
                goto eval;
            }
            if (sx_is(argv[0], SX_T_PRIM) && argv[0] != p_apply) {
                acc = call_prim(cx, argv[0], t->n - 1, argv + 1);
                c = sx_truthy(acc) ? c->y : c->z;
                goto eval;
            }
            push_frame(cx, K_IF, c, e, 0);
            afn = argv[0];
            aargc = t->n - 1;
            aargv = argv + 1;
            pending = false;
            goto apply;
        }
        push_frame(cx, K_IF, c, e, 0);
        c = t;
        goto eval;
    }
    case N_SEQ:
        push_frame(cx, K_SEQ, c, e, 0);
        stk[M.fp + F_I] = 1;
        c = c->kids[0];
        goto eval;
    case N_AND:
    case N_OR:
        push_frame(cx, K_ANDOR, c, e, 0);
        stk[M.fp + F_I] = 1;
        c = c->kids[0];
        goto eval;
    case N_LSET:
    case N_LINIT:
    case N_GSET:
    case N_GDEF:
        if (c->x->simple) {
            do_set(cx, c, e, ev_simple(cx, c->x, e));
            acc = SX_NIL;
            goto ret;
        }
        push_frame(cx, K_SET, c, e, 0);
        c = c->x;
        goto eval;
    case N_GUARD:
        push_frame(cx, K_GUARD, c, e, 0);
        c = c->x;
        goto eval;
    case N_DICT:
        push_frame(cx, K_DICT, c, e, (size_t)c->n);
        i = 0;
        goto dict_args;
    case N_CALL:
        if (c->a && ev_args(cx, c, e, argv)) {
            if (c->b && argv[0] == c->v && sx_fast_op(c->b, argv + 1, &acc)) goto ret;
            afn = argv[0];
            aargc = c->n - 1;
            aargv = argv + 1;
            pending = false;
            goto apply;
        }
        push_frame(cx, K_ARGS, c, e, (size_t)c->n);
        i = 0;
        goto args;
    default: sx_error(cx, "internal-error", "bad node %d", c->op);
    }

args:
    for (; i < c->n; i++) {
        sx_node *k = c->kids[i];
        if (k->simple) {
            stk[M.sp++] = ev_simple(cx, k, e);
            continue;
        }
        stk[M.fp + F_I] = (sx_val)i;
        c = k;
        goto eval;
    }
    f = M.fp;
    if (c->b && stk[f + FRAME] == c->v && sx_fast_op(c->b, stk + f + FRAME + 1, &acc)) {
        pop_frame();
        goto ret;
    }
    afn = stk[f + FRAME];
    aargc = (int)(M.sp - f - FRAME - 1);
    aargv = stk + f + FRAME + 1;
    pending = true;

apply: /* afn applied to aargv[0..aargc); pending: pop the K_ARGS frame holding them */
    if (sx_is(afn, SX_T_CLOSURE)) {
        sx_closure *clo = SX_OBJ(sx_closure, afn);
        e = bind_args(cx, clo, aargc, aargv);
        if (pending) pop_frame();
        c = clo->code->body;
        goto eval;
    }
    if (sx_is(afn, SX_T_VMCLOSURE)) { /* defined on the VM tier, called by a macro */
        acc = sx_vm_apply(cx, afn, aargc, aargv);
        if (pending) pop_frame();
        goto ret;
    }
    if (!sx_is(afn, SX_T_PRIM)) sx_not_a_procedure(cx, afn);
    if (afn == p_apply) {
        if (aargc < 2) sx_arity_error(cx, "apply", 2, -1, aargc);
        sx_val *nv;
        aargc = unpack_apply(cx, aargc, aargv, &nv);
        if (pending) pop_frame();
        pending = false;
        afn = nv[0];
        aargv = nv + 1;
        goto apply;
    }
    acc = call_prim(cx, afn, aargc, aargv);
    if (pending) pop_frame();
    goto ret;

dict_args:
    for (; i < c->n; i++) {
        sx_node *k = c->kids[i];
        if (k->simple) {
            stk[M.sp++] = ev_simple(cx, k, e);
            continue;
        }
        stk[M.fp + F_I] = (sx_val)i;
        c = k;
        goto eval;
    }
    acc = build_dict(M.fp + FRAME, c->n);
    pop_frame();
    goto ret;

ret:
    f = M.fp;
    switch ((int)stk[f + F_TAG]) {
    case K_BASE: pop_frame(); return acc;
    case K_ARGS:
        stk[M.sp++] = acc;
        c = (sx_node *)stk[f + F_NODE];
        e = (sx_env *)stk[f + F_ENV];
        i = (int)stk[f + F_I] + 1;
        goto args;
    case K_DICT:
        stk[M.sp++] = acc;
        c = (sx_node *)stk[f + F_NODE];
        e = (sx_env *)stk[f + F_ENV];
        i = (int)stk[f + F_I] + 1;
        goto dict_args;
    case K_IF:
        c = (sx_node *)stk[f + F_NODE];
        e = (sx_env *)stk[f + F_ENV];
        pop_frame();
        c = sx_truthy(acc) ? c->y : c->z;
        goto eval;
    case K_SEQ:
    case K_ANDOR:
        c = (sx_node *)stk[f + F_NODE];
        e = (sx_env *)stk[f + F_ENV];
        i = (int)stk[f + F_I];
        if (c->op == N_AND && !sx_truthy(acc)) {
            pop_frame();
            goto ret;
        }
        if (c->op == N_OR && sx_truthy(acc)) {
            pop_frame();
            goto ret;
        }
        if (i == c->n - 1)
            pop_frame();
        else
            stk[f + F_I] = (sx_val)(i + 1);
        c = c->kids[i];
        goto eval;
    case K_SET:
        c = (sx_node *)stk[f + F_NODE];
        e = (sx_env *)stk[f + F_ENV];
        pop_frame();
        do_set(cx, c, e, acc);
        acc = SX_NIL;
        goto ret;
    case K_GUARD: pop_frame(); goto ret;
    default: sx_error(cx, "internal-error", "bad continuation frame %d", (int)stk[f + F_TAG]);
    }
}

/* Evaluates c in e on top of a K_BASE frame the caller pushed at M.fp. */
static sx_val run(sx_ctx *cx, sx_node *c0, sx_env *e0)
{
    size_t base = M.fp;
    sx_node *volatile c = c0;
    sx_env *volatile e = e0;
    sx_jmp j;
    for (;;) {
        if (sx_try(cx, &j) == 0) {
            sx_val v = loop(cx, c, e);
            sx_try_end(cx, &j);
            return v;
        }
        sx_try_end(cx, &j);
        sx_val obj = cx->raised == SX_UNDEF ? err_memory_limit : cx->raised;
        size_t f = M.fp;
        if (sx_catchable(obj))
            while (f > base && (int)M.stk[f + F_TAG] != K_GUARD)
                f = (size_t)M.stk[f + F_PREV];
        if (f > base && sx_catchable(obj)) {
            sx_node *g = (sx_node *)M.stk[f + F_NODE];
            sx_env *ge = (sx_env *)M.stk[f + F_ENV];
            M.sp = f;
            M.fp = (size_t)M.stk[f + F_PREV];
            ge->slots[g->b] = obj;
            c = g->y;
            e = ge;
            continue;
        }
        M.sp = base;
        M.fp = (size_t)M.stk[base + F_PREV];
        cx->raised = obj;
        sx_rethrow(cx);
    }
}

sx_val sx_cek_apply(sx_ctx *cx, sx_val fn, int argc, sx_val *argv)
{
    if (sx_is(fn, SX_T_PRIM)) return call_prim(cx, fn, argc, argv);
    if (sx_is(fn, SX_T_VMCLOSURE)) return sx_vm_apply(cx, fn, argc, argv);
    if (!sx_is(fn, SX_T_CLOSURE)) sx_not_a_procedure(cx, fn);
    sx_check_cstack(cx);
    sx_closure *clo = SX_OBJ(sx_closure, fn);
    sx_env *e = bind_args(cx, clo, argc, argv);
    push_frame(cx, K_BASE, NULL, NULL, 0);
    return run(cx, clo->code->body, e);
}

sx_val sx_cek_run_code(sx_ctx *cx, sx_code *code)
{
    sx_env *e = sx_alloc(sizeof(sx_env) + (size_t)code->frame_size * sizeof(sx_val));
    e->h.type = SX_T_ENV;
    e->h.aux = (uint32_t)code->frame_size;
    for (int i = 0; i < code->frame_size; i++)
        e->slots[i] = SX_UNDEF;
    push_frame(cx, K_BASE, NULL, NULL, 0);
    return run(cx, code->body, e);
}
