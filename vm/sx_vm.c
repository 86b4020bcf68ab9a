/* sx_vm.c: the bytecode interpreter (see sx_bc.h for the frame layout).
 *
 * One value stack and one frame stack, both reserved once and never moved
 * (argument vectors handed to primitives stay valid while those call back
 * into SX); the collector scans their live parts. Each is sized to at
 * most an eighth of the memory limit, and their dead pages go back to the
 * system after an evaluation that hit a limit. A frame is
 *
 *     base[-1]              the procedure being run
 *     base[0 .. nslots)     its local slots (parameters first)
 *     base[nslots ..]       its operand stack
 *
 * Calls from C (sx_vm_apply, used by map, sort, ... through cx->apply) run
 * a nested interpreter loop whose first frame is marked stop: returning
 * from it returns to C. A guard installs a handler recording the frame
 * depth, the stack top and the handler's pc; a raise (a longjmp from a
 * primitive or from the VM itself) lands in run(), which restores exactly
 * that frame depth and stack top before resuming at the handler, so no
 * call after an unwind can see shifted arguments. Handlers below this
 * run's first one belong to outer runs: if there is none here, the run
 * drops its frames and re-raises.
 *
 * Dispatch uses computed goto when SX_COMPUTED_GOTO is defined, a switch
 * otherwise; both builds are tested.
 */
#include <gc.h>
#include <gc/gc_mark.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vm/sx_bc.h"

typedef struct vm_frame {
    sx_proto *p;
    const int32_t *pc; /* saved while a callee runs */
    sx_val *base;
    sx_env *env;
    int stop; /* returning from this frame returns to C */
} vm_frame;

typedef struct vm_handler {
    int frame;  /* frame index that installed it */
    sx_val *sp; /* stack top when installed */
    const int32_t *pc;
} vm_handler;

static struct {
    sx_val *stk, *stk_end;
    sx_val *sp; /* live top, kept current across calls out of the loop */
    vm_frame *frames;
    int nframes, max_frames;
    vm_handler *handlers;
    int nhandlers, hcap;
    sx_buf *trace;
} V;

static GC_push_other_roots_proc prev_push_roots;
static sx_val p_apply;

/* The VM stack is scanned up to the live top plus the native frame margin:
 * native code does not move V.sp when it reuses its frame for a tail
 * callee (sx_bc.h), so between writing the callee's arguments to
 * base[-1 .. n) and entering it (rt_frame_env allocates), values can sit
 * above V.sp, at most SX_JIT_FRAME_MARGIN words past it (enter() leaves
 * that margin, and V.sp is at or above every running native frame's base). */
static void GC_CALLBACK push_vm_roots(void)
{
    if (V.stk) {
        sx_val *top = V.sp + SX_JIT_FRAME_MARGIN + 2;
        if (top > V.stk_end) top = V.stk_end;
        GC_push_all(V.stk, top);
    }
    if (V.frames && V.nframes > 0) GC_push_all(V.frames, V.frames + V.nframes);
    if (prev_push_roots) prev_push_roots();
}

static void *reserve(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) {
        perror("sxpool: unable to reserve the VM stacks");
        abort();
    }
    return p;
}

void sx_vm_tier_init(sx_ctx *cx)
{
    if (V.stk) return;
    size_t words = cx->kstack_max ? cx->kstack_max : (size_t)4 << 20;
    V.stk = reserve(words * sizeof(sx_val));
    V.stk_end = V.stk + words;
    V.sp = V.stk;
    /* the frames get an eighth of the memory limit, at most 2^20 of them */
    size_t frames = cx->heap_limit ? cx->heap_limit / 8 / sizeof(vm_frame) : (size_t)1 << 20;
    V.max_frames = (int)(frames > ((size_t)1 << 20) ? (size_t)1 << 20
                         : frames < 4096            ? 4096
                                                    : frames);
    V.frames = reserve((size_t)V.max_frames * sizeof(vm_frame));
    prev_push_roots = GC_get_push_other_roots();
    GC_set_push_other_roots(push_vm_roots);
    p_apply = sx_sym(sx_intern_c("apply"))->global;
}

size_t sx__vm_stack_bytes(void)
{
    if (!V.stk) return 0;
    return (size_t)(V.sp - V.stk) * sizeof(sx_val) + (size_t)V.nframes * sizeof(vm_frame);
}

/* Drops the pages of [from, end) that hold nothing live. */
static void release_range(void *from, void *end)
{
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)from + pg - 1) & ~(pg - 1);
    if (a < (uintptr_t)end) madvise((void *)a, (uintptr_t)end - a, MADV_DONTNEED);
}

void sx__vm_release_stacks(void)
{
    if (!V.stk) return;
    sx_val *top = V.sp + SX_JIT_FRAME_MARGIN + 2;
    if (top < V.stk_end) release_range(top, V.stk_end);
    release_range(V.frames + V.nframes, V.frames + V.max_frames);
}

void sx_vm_set_trace(sx_buf *b)
{
    V.trace = b;
}

/* ---- helpers --------------------------------------------------------------- */

static _Noreturn void vm_overflow(sx_ctx *cx)
{
    sx_error(cx, "stack-overflow", "evaluation nested too deeply");
}

static inline sx_env *env_up(sx_env *e, int hops)
{
    while (hops-- > 0)
        e = e->up;
    return e;
}

static sx_val make_vmclosure(sx_proto *p, sx_env *env)
{
    sx_vmclosure *c = sx_alloc(sizeof *c);
    c->h.type = SX_T_VMCLOSURE;
    c->proto = p;
    c->env = env;
    return sx_from_ptr(c);
}

static inline sx_val call_prim(sx_ctx *cx, sx_val fn, int argc, sx_val *argv)
{
    sx_prim *p = SX_OBJ(sx_prim, fn);
    if (argc < p->min_args || (p->max_args >= 0 && argc > p->max_args))
        sx_arity_error(cx, p->name, p->min_args, p->max_args, argc);
    return p->fn(cx, argc, argv);
}

/* Sets up a frame for closure fn whose arguments are at args[0..argc)
 * (fn itself at args[-1]). Returns the new frame. A call (count: every
 * entry but a top-level form's) that will run interpreted is counted in
 * sx_jit_stats.vm_calls; one that runs native code is counted where the
 * native code is entered. may_native: the caller runs the proto's native
 * code if it has any (else it interprets the frame, which needs the env). */
static inline __attribute__((always_inline)) vm_frame *
enter(sx_ctx *cx, sx_vmclosure *clo, sx_val *args, int argc, int stop, bool count, bool may_native)
{
    sx_proto *p = clo->proto;
    if (argc < p->nreq || (!p->rest && argc > p->nreq))
        sx_arity_error(cx, p->name == SX_NIL ? NULL : sx_sym_name(p->name), p->nreq,
                       p->rest ? -1 : p->nreq, argc);
    if (cx->interrupt) sx_timeout(cx);
    /* the margin lets native code reuse a frame for a tail callee of up to
     * SX_JIT_FRAME_MARGIN words */
    if (args + p->nslots + p->maxstack + SX_JIT_FRAME_MARGIN >= V.stk_end ||
        V.nframes + 1 >= V.max_frames)
        vm_overflow(cx);
    /* the hook runs at the first call too: native code waiting in the
     * code cache is installed then, without waiting for the threshold */
    if (sx_jit_hot_hook && p->jit_state <= SX_JIT_QUEUED &&
        (++p->calls > sx_jit_threshold || p->calls == 1))
        sx_jit_hot_hook(cx, p);
    if (count) sx_jit_stats.vm_calls += !p->native;
    int i = p->nreq;
    if (p->rest) {
        sx_val rest = SX_NIL;
        for (int j = argc - 1; j >= p->nreq; j--)
            rest = sx_cons(args[j], rest);
        args[i++] = rest;
    }
    for (; i < p->nslots; i++)
        args[i] = SX_UNDEF;
    sx_env *env = clo->env;
    /* native code of a proto with a lazy env makes its own (sx_bc.h) */
    if (p->env_size && !(may_native && p->env_lazy && p->native)) {
        sx_env *ne = sx_alloc(sizeof(sx_env) + (size_t)p->env_size * sizeof(sx_val));
        ne->h.type = SX_T_ENV;
        ne->h.aux = (uint32_t)p->env_size;
        ne->up = env;
        const int32_t *from = p->env_from;
        for (int j = 0, n = p->env_size; j < n; j++)
            ne->slots[j] = args[from[j]];
        env = ne;
    }
    vm_frame *f = &V.frames[V.nframes++];
    f->p = p;
    f->pc = p->code;
    f->base = args;
    f->env = env;
    f->stop = stop;
    V.sp = args + p->nslots;
    return f;
}

/* Applies a callee that is not a VM closure: a built-in (apply excepted,
 * the caller spreads it), a CEK closure (macro code), or an error. */
static sx_val call_other(sx_ctx *cx, sx_val fn, int n, sx_val *args)
{
    if (sx_is(fn, SX_T_PRIM)) return call_prim(cx, fn, n, args);
    if (sx_is(fn, SX_T_CLOSURE)) return cx->apply(cx, fn, n, args);
    sx_not_a_procedure(cx, fn);
}

/* Calls a built-in on behalf of native function p (its tail call), so that
 * an error it raises is recorded as escaping p's native code. */
static sx_val call_prim_for(sx_ctx *cx, sx_proto *p, sx_val fn, int argc, sx_val *argv)
{
    void *prev = cx->native_proto;
    cx->native_proto = p;
    sx_val r = call_prim(cx, fn, argc, argv);
    cx->native_proto = prev;
    return r;
}

/* Runs frame f's native code; returns its value or SX_JIT_TAILCALL. */
static inline sx_val call_native(sx_ctx *cx, vm_frame *f)
{
    void *prev = cx->native_proto;
    cx->native_proto = f->p;
    cx->jit_native_calls++;
    sx_native_fn fn = (sx_native_fn)f->p->native;
    sx_val r = fn(cx, f->base, f->env, f->p->k, &sx_jit_link_table);
    cx->native_proto = prev;
    return r;
}

/* (apply f a ... list) on the stack at args[-1..argc): rewrites it in place
 * as f a ... elements; returns the new argument count. */
static int spread_apply(sx_ctx *cx, sx_val *args, int argc)
{
    if (argc < 2) sx_arity_error(cx, "apply", 2, -1, argc);
    sx_val last = args[argc - 1];
    long n = sx_list_length(last);
    if (n < 0 || !sx_is_procedure(args[0])) sx_type_error(cx, "apply", "fn … list", argc, args);
    if (args + argc + n + 8 >= V.stk_end) vm_overflow(cx);
    /* shift f a ... down over the apply slot */
    for (int i = 0; i < argc - 1; i++)
        args[i - 1] = args[i];
    int k = argc - 2;
    for (; sx_is_pair(last); last = SX_CDR(last))
        args[k++] = SX_CAR(last);
    return k;
}

static void trace_insn(vm_frame *f, const int32_t *pc, sx_val *sp)
{
    sx_buf *b = V.trace;
    int op = *pc;
    sx_buf_printf(b, "%s@%-4d %-16s", f->p->name == SX_NIL ? "#<fn>" : sx_sym_name(f->p->name),
                  (int)(pc - f->p->code), sx_opcode_names[op]);
    for (int i = 1; i <= sx_opcode_operands[op]; i++)
        sx_buf_printf(b, " %d", pc[i]);
    sx_buf_adds(b, "  [");
    sx_val *from = f->base + f->p->nslots;
    for (sx_val *q = from; q < sp; q++) {
        if (q != from) sx_buf_addc(b, ' ');
        if (*q == SX_UNDEF)
            sx_buf_adds(b, "#<unassigned>");
        else
            sx_print(b, *q, true);
    }
    sx_buf_adds(b, "]\n");
}

/* ---- the interpreter loop ---------------------------------------------------------- */

#ifdef SX_COMPUTED_GOTO
/* Tracing swaps in a table whose every entry goes through the tracer, so
 * the normal dispatch pays nothing for it. */
#define vmdispatch(o) goto *table[o];
#define vmcase(l) L_##l:
#define vmbreak goto *table[*pc]
#else
#define vmdispatch(o) switch (o)
#define vmcase(l) case BC_##l:
#define vmbreak goto next
#endif

/* Saves the live stack top before anything that can raise, allocate or
 * call out, so the collector and the unwinder see it. */
#define SAVE() (V.sp = sp)

/* Loads the interpreter's registers from the frame just entered. */
#define LOAD_FRAME() (pc = f->pc, base = f->base, sp = V.sp, K = f->p->k)

static sx_val loop(sx_ctx *cx)
{
#ifdef SX_COMPUTED_GOTO
    static const void *const dispatch_table[] = {
#define SX_OP_LABEL(name, n) &&L_##name,
        SX_OPCODES(SX_OP_LABEL)
#undef SX_OP_LABEL
    };
    static const void *const trace_table[] = {
#define SX_OP_TRACE(name, n) &&L__trace,
        SX_OPCODES(SX_OP_TRACE)
#undef SX_OP_TRACE
    };
    const void *const *table = V.trace ? trace_table : dispatch_table;
#endif
    vm_frame *f = &V.frames[V.nframes - 1];
    const int32_t *pc = f->pc;
    sx_val *base = f->base;
    sx_val *sp = V.sp;
    sx_val *K = f->p->k;
    int n;
    sx_val fn, *args;

    if (f->p->native && pc == f->p->code) goto native_entry;
#ifdef SX_COMPUTED_GOTO
    vmbreak;
L__trace:
    trace_insn(f, pc, sp);
    goto *dispatch_table[*pc];
#else
next:
    if (__builtin_expect(V.trace != NULL, 0)) trace_insn(f, pc, sp);
#endif
    vmdispatch(*pc)
    {
        vmcase(CONST)
        {
            *sp++ = K[pc[1]];
            pc += 2;
            vmbreak;
        }
        vmcase(NIL)
        {
            *sp++ = SX_NIL;
            pc += 1;
            vmbreak;
        }
        vmcase(LOCAL)
        {
            *sp++ = base[pc[1]];
            pc += 2;
            vmbreak;
        }
        vmcase(LOCAL_CK)
        {
            sx_val v = base[pc[1]];
            if (v == SX_UNDEF) {
                SAVE();
                sx_unbound(cx, K[pc[2]]);
            }
            *sp++ = v;
            pc += 3;
            vmbreak;
        }
        vmcase(SET_LOCAL)
        {
            base[pc[1]] = *--sp;
            pc += 2;
            vmbreak;
        }
        vmcase(ENV)
        {
            *sp++ = env_up(f->env, pc[1])->slots[pc[2]];
            pc += 3;
            vmbreak;
        }
        vmcase(ENV_CK)
        {
            sx_val v = env_up(f->env, pc[1])->slots[pc[2]];
            if (v == SX_UNDEF) {
                SAVE();
                sx_unbound(cx, K[pc[3]]);
            }
            *sp++ = v;
            pc += 4;
            vmbreak;
        }
        vmcase(SET_ENV)
        {
            env_up(f->env, pc[1])->slots[pc[2]] = *--sp;
            pc += 3;
            vmbreak;
        }
        vmcase(GLOBAL)
        {
            sx_val v = sx_sym(K[pc[1]])->global;
            if (v == SX_UNDEF) {
                SAVE();
                sx_unbound(cx, K[pc[1]]);
            }
            *sp++ = v;
            pc += 2;
            vmbreak;
        }
        vmcase(SET_GLOBAL)
        {
            sx_symbol *s = sx_sym(K[pc[1]]);
            if (s->global == SX_UNDEF) {
                SAVE();
                sx_unbound(cx, K[pc[1]]);
            }
            sx_set_global(s, *--sp);
            pc += 2;
            vmbreak;
        }
        vmcase(DEF_GLOBAL)
        {
            sx_set_global(sx_sym(K[pc[1]]), *--sp);
            pc += 2;
            vmbreak;
        }
        vmcase(POP)
        {
            sp--;
            pc += 1;
            vmbreak;
        }
        vmcase(JUMP)
        {
            pc += 2 + pc[1];
            vmbreak;
        }
        vmcase(JUMP_FALSE)
        {
            pc += sx_truthy(*--sp) ? 2 : 2 + pc[1];
            vmbreak;
        }
        vmcase(JUMP_FALSE_KEEP)
        {
            if (!sx_truthy(sp[-1]))
                pc += 2 + pc[1];
            else {
                sp--;
                pc += 2;
            }
            vmbreak;
        }
        vmcase(JUMP_TRUE_KEEP)
        {
            if (sx_truthy(sp[-1]))
                pc += 2 + pc[1];
            else {
                sp--;
                pc += 2;
            }
            vmbreak;
        }
        vmcase(CLOSURE)
        {
            SAVE();
            sx_val c = make_vmclosure(SX_OBJ(sx_proto, K[pc[1]]), f->env);
            *sp++ = c;
            pc += 2;
            vmbreak;
        }
        vmcase(PRIM)
        {
            n = pc[3];
            args = sp - n;
            SAVE(); /* the fast path may allocate (cons) */
            if (args[-1] == K[pc[2]] && sx_fast_op(pc[1], args, &args[-1])) {
                pc += 4;
                if (*pc == BC_JUMP_FALSE) { /* a test: branch without the push and pop */
                    pc += sx_truthy(args[-1]) ? 2 : 2 + pc[1];
                    sp = args - 1;
                    vmbreak;
                }
                sp = args;
                vmbreak;
            }
            pc += 4;
            if (*pc == BC_RETURN) goto do_tail_call; /* PRIM then RETURN: a tail call */
            goto do_call;
        }
        vmcase(PRIM_LK)
        {
            /* (op local constant) with op an unchanged built-in: inline */
            sx_val g = sx_sym(K[pc[3]])->global;
            sx_val ab[2] = {base[pc[4]], K[pc[5]]};
            SAVE(); /* the fast path may allocate (cons) */
            if (g == K[pc[2]] && sx_fast_op(pc[1], ab, sp)) {
                pc += 6;
                if (*pc == BC_JUMP_FALSE) { /* a test: branch without the push and pop */
                    pc += sx_truthy(*sp) ? 2 : 2 + pc[1];
                    vmbreak;
                }
                sp++;
                vmbreak;
            }
            if (g == SX_UNDEF) sx_unbound(cx, K[pc[3]]);
            sp[0] = g;
            sp[1] = ab[0];
            sp[2] = ab[1];
            sp += 3;
            n = 2;
            args = sp - 2;
            pc += 6;
            if (*pc == BC_RETURN) goto do_tail_call;
            goto do_call;
        }
        vmcase(CALL)
        {
            n = pc[1];
            args = sp - n;
            pc += 2;
        do_call: /* args[-1] applied to args[0..n); pc is the return address */
            fn = args[-1];
            if (sx_is(fn, SX_T_VMCLOSURE)) {
                f->pc = pc;
                SAVE();
                f = enter(cx, SX_OBJ(sx_vmclosure, fn), args, n, 0, true, true);
                if (f->p->native) goto native_entry;
                LOAD_FRAME();
                vmbreak;
            }
            SAVE();
            f->pc = pc;
            if (fn == p_apply) {
                n = spread_apply(cx, args, n);
                sp = args + n;
                goto do_call;
            }
            args[-1] = call_other(cx, fn, n, args);
            sp = args;
            vmbreak;
        }
        vmcase(TAIL_CALL)
        {
            n = pc[1];
            args = sp - n;
            pc += 2;
        do_tail_call:
            fn = args[-1];
            if (sx_is(fn, SX_T_VMCLOSURE)) {
                /* move the callee and its arguments down over this frame */
                sx_val *dst = base - 1;
                for (int i = -1; i < n; i++)
                    dst[i + 1] = args[i];
                int stop = f->stop;
                V.nframes--;
                sp = base + n;
                SAVE();
                f = enter(cx, SX_OBJ(sx_vmclosure, fn), base, n, stop, true, true);
                if (f->p->native) goto native_entry;
                LOAD_FRAME();
                vmbreak;
            }
            SAVE();
            f->pc = pc;
            if (fn == p_apply) {
                n = spread_apply(cx, args, n);
                sp = args + n;
                goto do_tail_call;
            }
            args[-1] = call_other(cx, fn, n, args);
            sp = args;
            goto do_return_value;
        }
        vmcase(RETURN)
        {
        do_return_value:;
            sx_val r = sp[-1];
            base[-1] = r;
            sp = base;
            int stop = f->stop;
            V.nframes--;
            V.sp = sp;
            if (stop) return r;
            f = &V.frames[V.nframes - 1];
            pc = f->pc;
            base = f->base;
            K = f->p->k;
            vmbreak;
        }
    native_entry : {
        /* f was just entered and has native code */
        sx_val r = call_native(cx, f);
        base = f->base;
        if (r == SX_JIT_TAILCALL) {
            n = (int)cx->jit_tail_n;
            args = base;
            sp = base + n;
            K = f->p->k;
            if (sx_is(args[-1], SX_T_PRIM) && args[-1] != p_apply) {
                /* a built-in the native code called in tail position: what
                 * it raises escapes that native code */
                SAVE();
                args[-1] = call_prim_for(cx, f->p, args[-1], n, args);
                sp = args;
                goto do_return_value;
            }
            goto do_tail_call;
        }
        sp = base;
        *sp++ = r;
        goto do_return_value;
    }
        vmcase(GUARD)
        {
            if (V.nhandlers == V.hcap) {
                int ncap = V.hcap ? V.hcap * 2 : 64;
                vm_handler *nh = realloc(V.handlers, (size_t)ncap * sizeof *nh);
                if (!nh) {
                    SAVE();
                    sx_error(cx, "memory-limit", "too many nested guards");
                }
                V.handlers = nh;
                V.hcap = ncap;
            }
            vm_handler *h = &V.handlers[V.nhandlers++];
            h->frame = V.nframes - 1;
            h->sp = sp;
            h->pc = pc + 2 + pc[1];
            pc += 2;
            vmbreak;
        }
        vmcase(GUARD_END)
        {
            V.nhandlers--;
            pc += 1;
            vmbreak;
        }
        vmcase(DICT)
        {
            n = pc[1];
            SAVE();
            sx_val d = sx_mkdict((size_t)n / 2);
            for (int i = 0; i + 1 < n; i += 2)
                sx_dict_put(d, sp[i - n], sp[i + 1 - n]);
            sp -= n;
            *sp++ = d;
            pc += 2;
            vmbreak;
        }
#ifndef SX_COMPUTED_GOTO
    default: break;
#endif
    }
    SAVE();
    sx_error(cx, "internal-error", "bad opcode %d", *pc);
}

/* Runs the frame on top (marked stop) to its return. */
static sx_val run(sx_ctx *cx)
{
    int frame0 = V.nframes - 1; /* the stop frame */
    sx_val *sp0 = V.frames[frame0].base - 1;
    int hbase = V.nhandlers;
    sx_jmp j;
    for (;;) {
        if (sx_try(cx, &j) == 0) {
            j.vm = true;
            sx_val v = loop(cx);
            sx_try_end(cx, &j);
            return v;
        }
        sx_try_end(cx, &j);
        sx_val obj = cx->raised;
        if (obj == SX_UNDEF)
            obj = sx_mkerror_c("memory-limit", "evaluation exceeded its memory limit");
        cx->native_proto = NULL; /* this run's own frames are interpreted */
        if (sx_catchable(obj) && V.nhandlers > hbase) {
            cx->raised_native = NULL; /* handled: it no longer escapes anything */
            vm_handler h = V.handlers[--V.nhandlers];
            V.nframes = h.frame + 1;
            V.frames[h.frame].pc = h.pc;
            V.sp = h.sp;
            *V.sp++ = obj;
            continue;
        }
        V.nhandlers = hbase;
        V.nframes = frame0;
        V.sp = sp0;
        cx->raised = obj;
        sx_rethrow(cx);
    }
}

/* fn applied from C; a top-level form's entry is not counted as a call. */
static sx_val apply_closure(sx_ctx *cx, sx_val fn, int argc, sx_val *argv, bool toplevel)
{
    sx_check_cstack(cx);
    sx_val *args = V.sp + 1;
    if (args + argc + 8 >= V.stk_end) vm_overflow(cx);
    args[-1] = fn;
    if (argc) memmove(args, argv, (size_t)argc * sizeof(sx_val)); /* argv may be on this stack */
    V.sp = args + argc;
    sx_val *saved = args - 1;
    void *prev_native = cx->native_proto;
    cx->native_proto = NULL;
    enter(cx, SX_OBJ(sx_vmclosure, fn), args, argc, 1, !toplevel, false);
    sx_val r = run(cx);
    cx->native_proto = prev_native;
    V.sp = saved;
    return r;
}

/* fn, a closure with native code, applied to args[0..n) (which may be on
 * the VM stack): its native code is entered directly, without an
 * interpreter run (a raise unwinds to the VM boundary below, which resets
 * the stacks), and the tail calls it hands back are made here in a loop,
 * so native code calling native code in tail position runs in constant C
 * stack. */
static sx_val __attribute__((noinline)) jit_apply(sx_ctx *cx, sx_val fn, int n, const sx_val *argv)
{
    sx_check_cstack(cx);
    sx_val *args = V.sp + 1;
    if (args + n + 8 >= V.stk_end) vm_overflow(cx);
    sx_val *saved = args - 1;
    args[-1] = fn;
    if (n == 1) /* map, for-each: no library call for one word */
        args[0] = argv[0];
    else if (n)
        memmove(args, argv, (size_t)n * sizeof(sx_val)); /* argv may be on this stack */
    V.sp = args + n;
    sx_val r;
    for (;;) {
        vm_frame *f = enter(cx, SX_OBJ(sx_vmclosure, fn), args, n, 1, true, true);
        if (!f->p->native) { /* dropped meanwhile: interpret it */
            void *prev = cx->native_proto;
            cx->native_proto = NULL;
            r = run(cx);
            cx->native_proto = prev;
            break;
        }
        sx_proto *caller = f->p;
        r = call_native(cx, f);
        V.nframes--;
        if (r != SX_JIT_TAILCALL) break;
        n = (int)cx->jit_tail_n;
        fn = args[-1];
        V.sp = args + n;
        if (sx_is(fn, SX_T_VMCLOSURE) && SX_OBJ(sx_vmclosure, fn)->proto->native) continue;
        if (sx_is(fn, SX_T_PRIM) && fn != p_apply)
            r = call_prim_for(cx, caller, fn, n, args);
        else
            r = sx_vm_apply(cx, fn, n, args);
        break;
    }
    V.sp = saved;
    return r;
}

/* fn applied from C (map, sort, ... through cx->apply). A closure with
 * native code is entered directly when the innermost protected boundary
 * is the VM's own, which resets the VM's stacks if a raise lands there;
 * below any other (a CEK run calling a macro's helper, a top-level
 * protected call) it runs under a run of its own, as interpreted code. */
sx_val sx_vm_apply(sx_ctx *cx, sx_val fn, int argc, sx_val *argv)
{
    if (sx_is(fn, SX_T_PRIM)) return call_prim(cx, fn, argc, argv);
    if (!sx_is(fn, SX_T_VMCLOSURE)) {
        if (sx_is(fn, SX_T_CLOSURE)) return cx->apply(cx, fn, argc, argv);
        sx_not_a_procedure(cx, fn);
    }
    if (SX_OBJ(sx_vmclosure, fn)->proto->native && cx->jmp && cx->jmp->vm)
        return jit_apply(cx, fn, argc, argv);
    return apply_closure(cx, fn, argc, argv, false);
}

/* The link table's call: argv[0] applied to argv[1..n], from native code.
 * A built-in is called at once (a tail call: nothing of this function's
 * frame is set up for it); a closure with native code is entered directly
 * (jit_apply). */
sx_val sx_vm_jit_call(sx_ctx *cx, sx_val *argv, int64_t n64)
{
    sx_val fn = argv[0];
    int n = (int)n64;
    if (sx_is(fn, SX_T_PRIM) && fn != p_apply) return call_prim(cx, fn, n, argv + 1);
    if (!sx_is(fn, SX_T_VMCLOSURE) || !SX_OBJ(sx_vmclosure, fn)->proto->native)
        return sx_vm_apply(cx, fn, n, argv + 1);
    return jit_apply(cx, fn, n, argv + 1);
}

/* A guard in native code: the body runs under a protected boundary of its
 * own, so a raise inside it lands here, as it lands in run() for a guard
 * the interpreter installed; what run() does with the caught value, this
 * does too (the stacks back to the guard's, the raise no longer escaping
 * any native code). */
sx_val sx_vm_jit_guard(sx_ctx *cx, sx_guard_body_fn body, sx_val *base, sx_env *env,
                       const sx_val *K, const sx_jit_link *L, sx_val *slots, int64_t *caught)
{
    int nframes = V.nframes, nhandlers = V.nhandlers;
    sx_val *sp = V.sp;
    void *native = cx->native_proto;
    sx_jmp j;
    if (sx_try(cx, &j) == 0) {
        j.vm = true;
        sx_val r = body(cx, base, env, K, L, slots);
        sx_try_end(cx, &j);
        *caught = 0;
        return r;
    }
    sx_try_end(cx, &j);
    sx_val obj = cx->raised;
    if (obj == SX_UNDEF) obj = sx_mkerror_c("memory-limit", "evaluation exceeded its memory limit");
    V.nframes = nframes;
    V.nhandlers = nhandlers;
    V.sp = sp;
    if (!sx_catchable(obj)) {
        cx->native_proto = native;
        cx->raised = obj;
        sx_rethrow(cx);
    }
    cx->native_proto = native;
    cx->raised_native = NULL; /* handled: it no longer escapes anything */
    *caught = 1;
    return obj;
}

sx_val sx_vm_run_proto(sx_ctx *cx, sx_proto *p)
{
    p->jit_state = SX_JIT_UNSUPPORTED; /* top-level forms run once */
    sx_jit_stats.toplevel_forms++;
    sx_val clo = make_vmclosure(p, NULL);
    return apply_closure(cx, clo, 0, NULL, true);
}
