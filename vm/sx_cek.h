/* sx_cek.h: the CEK evaluator's structures, shared by the compiler
 * (sx_compile.c, source -> node tree with resolved variables) and the
 * machine (sx_cek.c). Internal to vm/.
 *
 * Variables are resolved at load time to (depth, slot): depth counts
 * lambda frames outward, slot indexes the frame. A lambda's frame holds its
 * parameters and every variable bound by let forms, internal defines and
 * guard in its body (not in nested lambdas), each with its own slot: SX
 * has no first-class continuations, so a let body runs at most once per
 * frame activation and a slot never needs to be fresh twice. Loops (named
 * let, do) are calls and get a fresh frame per iteration.
 */
#ifndef SX_CEK_H
#define SX_CEK_H

#include "vm/sx_core.h"

enum sx_op {
    N_CONST,   /* v */
    N_LREF,    /* depth a, slot b */
    N_LREF_CK, /* same, checks for an unassigned letrec/define variable */
    N_GREF,    /* v = symbol */
    N_LSET,    /* depth a, slot b, x = value; result nil */
    N_LINIT,   /* like N_LSET but for a binding form (result unused) */
    N_GSET,    /* v = symbol, x = value (set! of a global) */
    N_GDEF,    /* v = symbol, x = value (top-level define) */
    N_IF,      /* x test, y then, z else */
    N_SEQ,     /* kids[n] */
    N_AND,     /* kids[n] */
    N_OR,      /* kids[n] */
    N_LAMBDA,  /* code */
    N_CALL,    /* kids[0] operator, kids[1..n) arguments; a: all parts simple;
                  b: an sx_inline_op when the operator is a global naming a
                  built-in with an inline fast path, v: that built-in */
    N_GUARD,   /* b = slot of the variable, x body, y clauses */
    N_DICT,    /* kids[n]: key, value, key, value ... */
};

/* Built-ins the machine runs inline on fixnums and pairs while their global
 * still holds the original; anything else takes the normal call. */
enum sx_inline_op {
    OP_NONE,
    OP_ADD,
    OP_SUB,
    OP_LT,
    OP_GT,
    OP_LE,
    OP_GE,
    OP_NUMEQ,
    OP_CAR,
    OP_CDR,
    OP_NULLP,
    OP_PAIRP,
    OP_NOT,
    OP_EQ,
    OP_ZEROP,
    OP_CONS,
    OP_QUOTIENT,
    OP_REMAINDER,
    OP_MODULO,
};

typedef struct sx_code sx_code;
typedef struct sx_node sx_node;

struct sx_node {
    uint8_t op;
    uint8_t simple; /* CONST, LREF, GREF, LAMBDA: evaluated without a frame */
    uint8_t pure;   /* N_CALL of an inline built-in on simple or pure parts: the
                       CEK tries it without frames (sx_fast_op), else calls */
    uint16_t line;
    int32_t a, b;
    int32_t n;
    sx_val v;
    sx_node *x, *y, *z;
    sx_node **kids;
    sx_code *code;
};

struct sx_code {
    sx_obj h;
    sx_val name;  /* symbol, or SX_NIL when anonymous */
    int32_t nreq; /* required parameters */
    int32_t rest; /* 1 when a rest parameter follows (slot nreq) */
    int32_t frame_size;
    sx_node *body;
    uint8_t *captured;      /* per slot: referenced from an inner lambda (VM) */
    struct sx_proto *proto; /* its bytecode, once compiled (VM) */
};

typedef struct sx_env {
    sx_obj h; /* aux = number of slots */
    struct sx_env *up;
    sx_val slots[];
} sx_env;

typedef struct sx_closure {
    sx_obj h;
    sx_code *code;
    sx_env *env;
} sx_closure;

/* Compiles one top-level form (macros expanded) into a 0-parameter code
 * whose frame holds the form's own let-bound variables. Raises
 * syntax-error for malformed forms. A top-level define-macro is handled
 * here: the macro is defined and the result is a code returning nil. */
sx_code *sx_compile_toplevel(sx_ctx *cx, sx_val form);

/* The machine. */
sx_val sx_cek_run_code(sx_ctx *cx, sx_code *code);
sx_val sx_cek_apply(sx_ctx *cx, sx_val fn, int argc, sx_val *argv);
void sx_cek_init(sx_ctx *cx);

sx_val sx_make_closure(sx_code *code, sx_env *env);

/* The inline fast path of a marked call (see sx_inline_op). Returns false
 * when the operands need the built-in itself (non-fixnums, errors). */
static inline __attribute__((always_inline)) bool sx_fast_op(int op, const sx_val *a, sx_val *out)
{
    int64_t r;
    switch (op) {
    case OP_ADD:
        if (!sx_is_fix(a[0]) || !sx_is_fix(a[1]) ||
            __builtin_add_overflow((int64_t)a[0], (int64_t)(a[1] - 1), &r))
            return false;
        *out = (sx_val)r;
        return true;
    case OP_SUB:
        if (!sx_is_fix(a[0]) || !sx_is_fix(a[1]) ||
            __builtin_sub_overflow((int64_t)a[0], (int64_t)a[1], &r))
            return false;
        *out = (sx_val)r + 1;
        return true;
    case OP_LT:
    case OP_GT:
    case OP_LE:
    case OP_GE:
    case OP_NUMEQ: {
        if (!sx_is_fix(a[0]) || !sx_is_fix(a[1])) return false;
        int64_t x = (int64_t)a[0], y = (int64_t)a[1];
        bool b = op == OP_LT   ? x < y
                 : op == OP_GT ? x > y
                 : op == OP_LE ? x <= y
                 : op == OP_GE ? x >= y
                               : x == y;
        *out = sx_bool(b);
        return true;
    }
    case OP_CAR:
        if (!sx_is_pair(a[0])) return false;
        *out = SX_CAR(a[0]);
        return true;
    case OP_CDR:
        if (!sx_is_pair(a[0])) return false;
        *out = SX_CDR(a[0]);
        return true;
    case OP_NULLP: *out = sx_bool(a[0] == SX_NIL); return true;
    case OP_PAIRP: *out = sx_bool(sx_is_pair(a[0])); return true;
    case OP_NOT: *out = sx_bool(!sx_truthy(a[0])); return true;
    case OP_EQ:
        if (sx_is_obj(a[0]) && sx_is_float(a[0])) return false;
        *out = sx_bool(a[0] == a[1]);
        return true;
    case OP_ZEROP:
        if (!sx_is_fix(a[0])) return false;
        *out = sx_bool(a[0] == sx_mkfix(0));
        return true;
    case OP_CONS: *out = sx_cons(a[0], a[1]); return true;
    case OP_QUOTIENT:
    case OP_REMAINDER:
    case OP_MODULO: {
        /* what the built-ins compute on fixnums (sx_prim_num.c); a zero
         * divisor and the one quotient out of range, SX_FIX_MIN / -1,
         * take the built-in, which raises */
        if (!sx_is_fix(a[0]) || !sx_is_fix(a[1]) || a[1] == sx_mkfix(0)) return false;
        int64_t x = sx_fix(a[0]), y = sx_fix(a[1]);
        if (op == OP_QUOTIENT) {
            if (y == -1 && x == SX_FIX_MIN) return false;
            *out = sx_mkfix(x / y);
            return true;
        }
        int64_t m = x % y;
        if (op == OP_MODULO && m != 0 && (m < 0) != (y < 0)) m += y;
        *out = sx_mkfix(m);
        return true;
    }
    default: return false;
    }
}

#endif
