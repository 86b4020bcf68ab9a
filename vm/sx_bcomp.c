/* sx_bcomp.c: node trees -> bytecode (see sx_bc.h).
 *
 * Two passes over a top-level code and the lambdas inside it. The first
 * marks every slot that an inner lambda references (those go to the heap
 * env); the second emits one sx_proto per code, tracking the operand stack
 * depth so each proto knows how much stack its frame needs. Tail position
 * is tracked so calls there become TAIL_CALL and every path ends in RETURN.
 * Runs at load time, on the thread that evaluates.
 */
#include "vm/sx_bc.h"

const char *const sx_opcode_names[] = {
#define SX_OP_NAME(name, n) #name,
    SX_OPCODES(SX_OP_NAME)
#undef SX_OP_NAME
};

const int sx_opcode_operands[] = {
#define SX_OP_N(name, n) n,
    SX_OPCODES(SX_OP_N)
#undef SX_OP_N
};

/* ---- pass 1: captured slots ---------------------------------------------- */

#define MAX_NEST 4096

static void mark_captured(sx_ctx *cx, sx_node *n, sx_code **stack, int top)
{
    if (!n) return;
    switch (n->op) {
    case N_LREF:
    case N_LREF_CK:
    case N_LSET:
    case N_LINIT:
        if (n->a > 0) {
            if (n->a > top) sx_error(cx, "internal-error", "variable depth out of range");
            sx_code *t = stack[top - n->a];
            t->captured[n->b] = 1;
        }
        break;
    case N_LAMBDA: {
        if (top + 1 >= MAX_NEST) sx_error(cx, "syntax-error", "lambdas nested too deeply");
        sx_code *c = n->code;
        if (!c->captured) c->captured = sx_alloc((size_t)c->frame_size + 1);
        stack[top + 1] = c;
        mark_captured(cx, c->body, stack, top + 1);
        return;
    }
    default: break;
    }
    mark_captured(cx, n->x, stack, top);
    mark_captured(cx, n->y, stack, top);
    mark_captured(cx, n->z, stack, top);
    if (n->op == N_SEQ || n->op == N_AND || n->op == N_OR || n->op == N_CALL || n->op == N_DICT)
        for (int i = 0; i < n->n; i++)
            mark_captured(cx, n->kids[i], stack, top);
}

/* ---- pass 2: emission -------------------------------------------------------- */

typedef struct bc_fn {
    sx_ctx *cx;
    sx_code *src;
    sx_proto *p;
    struct bc_fn *up;
    int32_t *code;
    int n, cap;
    sx_val *k;
    int nk, kcap;
    int depth, maxdepth;
} bc_fn;

static void emit_word(bc_fn *f, int32_t w)
{
    if (f->n == f->cap) {
        int ncap = f->cap ? f->cap * 2 : 64;
        int32_t *nc = sx_alloc_atomic((size_t)ncap * sizeof *nc);
        if (f->n) memcpy(nc, f->code, (size_t)f->n * sizeof *nc);
        f->code = nc;
        f->cap = ncap;
    }
    f->code[f->n++] = w;
}

static void stack_effect(bc_fn *f, int d)
{
    f->depth += d;
    if (f->depth > f->maxdepth) f->maxdepth = f->depth;
}

static void emit(bc_fn *f, int op, int effect)
{
    emit_word(f, op);
    stack_effect(f, effect);
}

static void emit1(bc_fn *f, int op, int32_t a, int effect)
{
    emit(f, op, effect);
    emit_word(f, a);
}

static int konst(bc_fn *f, sx_val v)
{
    for (int i = 0; i < f->nk; i++)
        if (f->k[i] == v) return i;
    if (f->nk == f->kcap) {
        int ncap = f->kcap ? f->kcap * 2 : 8;
        sx_val *nk = sx_alloc((size_t)ncap * sizeof *nk);
        if (f->nk) memcpy(nk, f->k, (size_t)f->nk * sizeof *nk);
        f->k = nk;
        f->kcap = ncap;
    }
    f->k[f->nk] = v;
    return f->nk++;
}

/* A forward jump: emits op with a placeholder; patch with patch_here. */
static int emit_jump(bc_fn *f, int op, int effect)
{
    emit1(f, op, 0, effect);
    return f->n - 1;
}

static void patch_here(bc_fn *f, int at)
{
    f->code[at] = f->n - (at + 1);
}

static bool has_env(sx_code *c)
{
    return c->proto && c->proto->env_size > 0;
}

/* Emits a load (store when set) of the variable at (depth, slot). */
static void emit_var(bc_fn *f, int depth, int slot, bool set, bool check, sx_val name)
{
    bc_fn *t = f;
    int hops = 0;
    for (int d = 0; d < depth; d++) {
        if (has_env(t->src)) hops++;
        t = t->up;
    }
    int e = t->p->slot_env[slot];
    if (e < 0) {
        if (set)
            emit1(f, BC_SET_LOCAL, slot, -1);
        else if (check) {
            emit1(f, BC_LOCAL_CK, slot, 1);
            emit_word(f, konst(f, name));
        } else
            emit1(f, BC_LOCAL, slot, 1);
        return;
    }
    emit1(f, set ? BC_SET_ENV : check ? BC_ENV_CK : BC_ENV, hops, set ? -1 : 1);
    emit_word(f, e);
    if (check && !set) emit_word(f, konst(f, name));
}

static sx_proto *compile_code(sx_ctx *cx, sx_code *c, bc_fn *up);

static void comp(bc_fn *f, sx_node *n, bool tail);

static void ret_if(bc_fn *f, bool tail)
{
    if (tail) emit(f, BC_RETURN, -1);
}

/* Compiles n for its effect only (nothing left on the stack). */
static void comp_effect(bc_fn *f, sx_node *n)
{
    switch (n->op) {
    case N_CONST:
    case N_LREF:
    case N_LAMBDA: return;
    case N_LSET:
    case N_LINIT:
        comp(f, n->x, false);
        emit_var(f, n->op == N_LINIT ? 0 : n->a, n->b, true, false, SX_NIL);
        return;
    case N_GSET:
    case N_GDEF:
        comp(f, n->x, false);
        emit1(f, n->op == N_GSET ? BC_SET_GLOBAL : BC_DEF_GLOBAL, konst(f, n->v), -1);
        return;
    default: comp(f, n, false); emit(f, BC_POP, -1);
    }
}

static void comp_call(bc_fn *f, sx_node *n, bool tail)
{
    int base = f->depth;
    if (n->b && n->n == 3 && n->kids[0]->op == N_GREF && n->kids[1]->op == N_LREF &&
        n->kids[1]->a == 0 && f->p->slot_env[n->kids[1]->b] < 0 && n->kids[2]->op == N_CONST) {
        /* (op local constant), the commonest inline call: one instruction */
        stack_effect(f, 3); /* what its slow path pushes */
        emit1(f, BC_PRIM_LK, n->b, -2);
        emit_word(f, konst(f, n->v));
        emit_word(f, konst(f, n->kids[0]->v));
        emit_word(f, n->kids[1]->b);
        emit_word(f, konst(f, n->kids[2]->v));
        f->depth = base + 1;
        ret_if(f, tail);
        return;
    }
    for (int i = 0; i < n->n; i++)
        comp(f, n->kids[i], false);
    int argc = n->n - 1;
    if (n->b) {
        emit1(f, BC_PRIM, n->b, 0);
        emit_word(f, konst(f, n->v));
        emit_word(f, argc);
        f->depth = base + 1;
        ret_if(f, tail);
        return;
    }
    emit1(f, tail ? BC_TAIL_CALL : BC_CALL, argc, 0);
    f->depth = base + 1;
    if (tail) f->depth = base;
}

/* Forward jumps waiting for one target (comp_test). */
typedef struct jump_list {
    int *at;
    int n, cap;
} jump_list;

static void jumps_add(jump_list *j, int at)
{
    if (j->n == j->cap) {
        int ncap = j->cap ? j->cap * 2 : 4;
        int *na = sx_alloc_atomic(sizeof(int) * (size_t)ncap);
        if (j->n) memcpy(na, j->at, sizeof(int) * (size_t)j->n);
        j->at = na;
        j->cap = ncap;
    }
    j->at[j->n++] = at;
}

static void jumps_patch_here(bc_fn *f, const jump_list *j)
{
    for (int i = 0; i < j->n; i++)
        patch_here(f, j->at[i]);
}

/* Compiles the test of an if as branches: execution goes on after it when
 * x is true, and every jump it adds to fails (to be patched to the else
 * branch) is taken when x is false. An and or an or becomes the branches
 * it stands for, so no value of it is kept (JUMP_*_KEEP) only to be tested
 * again where its operands join, and each operand's JUMP_FALSE follows the
 * operand at once, where the native tier branches on a predicate without
 * making its boolean. A sequence (a let) ends in its test. */
static void comp_test(bc_fn *f, sx_node *x, jump_list *fails)
{
    if (x->op == N_AND && x->n > 0) {
        for (int i = 0; i < x->n; i++)
            comp_test(f, x->kids[i], fails);
        return;
    }
    if (x->op == N_OR && x->n > 0) {
        jump_list yes = {0};
        for (int i = 0; i < x->n - 1; i++) {
            jump_list no = {0};
            comp_test(f, x->kids[i], &no);
            jumps_add(&yes, emit_jump(f, BC_JUMP, 0));
            jumps_patch_here(f, &no);
        }
        comp_test(f, x->kids[x->n - 1], fails);
        jumps_patch_here(f, &yes);
        return;
    }
    if (x->op == N_SEQ && x->n > 0) { /* a let's bindings, then the test */
        for (int i = 0; i < x->n - 1; i++)
            comp_effect(f, x->kids[i]);
        comp_test(f, x->kids[x->n - 1], fails);
        return;
    }
    comp(f, x, false);
    jumps_add(fails, emit_jump(f, BC_JUMP_FALSE, -1));
}

static void comp_if(bc_fn *f, sx_node *n, bool tail)
{
    jump_list fails = {0};
    comp_test(f, n->x, &fails);
    int base = f->depth;
    comp(f, n->y, tail);
    int jend = -1;
    if (!tail) jend = emit_jump(f, BC_JUMP, 0);
    jumps_patch_here(f, &fails);
    f->depth = base;
    comp(f, n->z, tail);
    if (jend >= 0) patch_here(f, jend);
    f->depth = base + (tail ? 0 : 1);
}

static void comp_andor(bc_fn *f, sx_node *n, bool tail)
{
    int *jumps = sx_alloc_atomic(sizeof(int) * (size_t)n->n);
    int base = f->depth;
    for (int i = 0; i < n->n - 1; i++) {
        comp(f, n->kids[i], false);
        jumps[i] = emit_jump(f, n->op == N_AND ? BC_JUMP_FALSE_KEEP : BC_JUMP_TRUE_KEEP, -1);
    }
    comp(f, n->kids[n->n - 1], tail);
    for (int i = 0; i < n->n - 1; i++)
        patch_here(f, jumps[i]);
    f->depth = base + 1;
    ret_if(f, tail); /* values arriving by the jumps */
}

static void comp_guard(bc_fn *f, sx_node *n, bool tail)
{
    int base = f->depth;
    int g = emit_jump(f, BC_GUARD, 0);
    comp(f, n->x, false);
    emit(f, BC_GUARD_END, 0);
    int jend = -1;
    if (tail)
        emit(f, BC_RETURN, -1);
    else
        jend = emit_jump(f, BC_JUMP, 0);
    patch_here(f, g);
    f->depth = base + 1; /* the raised value */
    emit_var(f, 0, n->b, true, false, SX_NIL);
    comp(f, n->y, tail);
    if (jend >= 0) patch_here(f, jend);
    f->depth = base + (tail ? 0 : 1);
}

static void comp(bc_fn *f, sx_node *n, bool tail)
{
    switch (n->op) {
    case N_CONST:
        if (n->v == SX_NIL)
            emit(f, BC_NIL, 1);
        else
            emit1(f, BC_CONST, konst(f, n->v), 1);
        ret_if(f, tail);
        return;
    case N_LREF:
    case N_LREF_CK:
        emit_var(f, n->a, n->b, false, n->op == N_LREF_CK, n->v);
        ret_if(f, tail);
        return;
    case N_GREF:
        emit1(f, BC_GLOBAL, konst(f, n->v), 1);
        ret_if(f, tail);
        return;
    case N_LAMBDA: {
        sx_proto *p = compile_code(f->cx, n->code, f);
        emit1(f, BC_CLOSURE, konst(f, sx_from_ptr(p)), 1);
        ret_if(f, tail);
        return;
    }
    case N_LSET:
    case N_LINIT:
    case N_GSET:
    case N_GDEF:
        comp_effect(f, n);
        emit(f, BC_NIL, 1);
        ret_if(f, tail);
        return;
    case N_IF: comp_if(f, n, tail); return;
    case N_SEQ:
        for (int i = 0; i < n->n - 1; i++)
            comp_effect(f, n->kids[i]);
        comp(f, n->kids[n->n - 1], tail);
        return;
    case N_AND:
    case N_OR: comp_andor(f, n, tail); return;
    case N_CALL: comp_call(f, n, tail); return;
    case N_GUARD: comp_guard(f, n, tail); return;
    case N_DICT: {
        for (int i = 0; i < n->n; i++)
            comp(f, n->kids[i], false);
        emit1(f, BC_DICT, n->n, 1 - n->n);
        ret_if(f, tail);
        return;
    }
    default: sx_error(f->cx, "internal-error", "bytecode: unknown node %d", n->op);
    }
}

/* Sets p->env_writes and p->env_lazy (sx_bc.h) once p and the lambdas
 * inside it are compiled. */
static void env_laziness(sx_proto *p)
{
    bool writes = false, lazy = p->env_size > 0;
    for (int pc = 0; pc < p->ncode; pc += 1 + sx_opcode_operands[p->code[pc]]) {
        const int32_t *c = p->code + pc;
        switch (c[0]) {
        case BC_SET_ENV: writes = true; break;
        case BC_SET_LOCAL:
            if (p->slot_env[c[1]] >= 0) lazy = false;
            break;
        case BC_GUARD: lazy = false; break;
        case BC_CLOSURE:
            if (SX_OBJ(sx_proto, p->k[c[1]])->env_writes) writes = true;
            break;
        default: break;
        }
    }
    p->env_writes = writes;
    p->env_lazy = lazy && !writes;
}

static sx_proto *compile_code(sx_ctx *cx, sx_code *c, bc_fn *up)
{
    if (c->proto && c->proto->code) return c->proto;
    sx_proto *p = sx_alloc(sizeof *p);
    p->h.type = SX_T_PROTO;
    p->name = c->name;
    p->nreq = c->nreq;
    p->rest = c->rest;
    p->nslots = c->frame_size;
    p->src = c;
    p->slot_env = sx_alloc_atomic(sizeof(int32_t) * (size_t)(c->frame_size + 1));
    for (int i = 0; i < c->frame_size; i++)
        p->slot_env[i] = c->captured && c->captured[i] ? p->env_size++ : -1;
    p->env_from = sx_alloc_atomic(sizeof(int32_t) * (size_t)(p->env_size + 1));
    for (int i = 0; i < c->frame_size; i++)
        if (p->slot_env[i] >= 0) p->env_from[p->slot_env[i]] = i;
    c->proto = p;
    bc_fn f = {cx, c, p, up, NULL, 0, 0, NULL, 0, 0, 0, 0};
    comp(&f, c->body, true);
    p->code = f.code;
    p->ncode = f.n;
    p->k = f.k;
    p->nk = f.nk;
    p->maxstack = f.maxdepth + 2;
    env_laziness(p);
    return p;
}

sx_proto *sx_bc_compile(sx_ctx *cx, sx_code *code)
{
    sx_code **stack = sx_alloc(sizeof(sx_code *) * MAX_NEST);
    if (!code->captured) code->captured = sx_alloc((size_t)code->frame_size + 1);
    stack[0] = code;
    mark_captured(cx, code->body, stack, 0);
    return compile_code(cx, code, NULL);
}

/* ---- disassembly ---------------------------------------------------------------- */

static void disassemble_one(sx_buf *b, sx_proto *p, sx_proto **more, int *nmore, int cap)
{
    sx_buf_printf(b, "fn %s: %d required%s, %d slots (%d in env), stack %d\n",
                  p->name == SX_NIL ? "#<fn>" : sx_sym_name(p->name), p->nreq,
                  p->rest ? " + rest" : "", p->nslots, p->env_size, p->maxstack);
    for (int pc = 0; pc < p->ncode;) {
        int op = p->code[pc];
        sx_buf_printf(b, "  %4d  %-16s", pc, sx_opcode_names[op]);
        int nops = sx_opcode_operands[op];
        for (int i = 1; i <= nops; i++)
            sx_buf_printf(b, " %d", p->code[pc + i]);
        int kidx = -1;
        if (op == BC_CONST || op == BC_GLOBAL || op == BC_SET_GLOBAL || op == BC_DEF_GLOBAL ||
            op == BC_CLOSURE)
            kidx = p->code[pc + 1];
        else if (op == BC_PRIM || op == BC_PRIM_LK)
            kidx = p->code[pc + 2];
        else if (op == BC_LOCAL_CK)
            kidx = p->code[pc + 2];
        else if (op == BC_ENV_CK)
            kidx = p->code[pc + 3];
        if (op == BC_JUMP || op == BC_JUMP_FALSE || op == BC_JUMP_FALSE_KEEP ||
            op == BC_JUMP_TRUE_KEEP || op == BC_GUARD)
            sx_buf_printf(b, "    ; -> %d", pc + 2 + p->code[pc + 1]);
        if (kidx >= 0 && kidx < p->nk) {
            sx_val v = p->k[kidx];
            sx_buf_adds(b, "    ; ");
            if (sx_is(v, SX_T_PROTO)) {
                sx_proto *q = SX_OBJ(sx_proto, v);
                sx_buf_printf(b, "fn %s", q->name == SX_NIL ? "#<fn>" : sx_sym_name(q->name));
                if (*nmore < cap) more[(*nmore)++] = q;
            } else {
                sx_print(b, v, true);
            }
        }
        sx_buf_addc(b, '\n');
        pc += 1 + nops;
    }
}

void sx_bc_disassemble(sx_buf *b, sx_proto *p)
{
    sx_proto *todo[256];
    int n = 0, i = 0;
    todo[n++] = p;
    while (i < n) {
        if (i) sx_buf_addc(b, '\n');
        disassemble_one(b, todo[i++], todo, &n, 256);
    }
}
