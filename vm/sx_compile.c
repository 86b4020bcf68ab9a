/* sx_compile.c: macro expansion and compilation of SX forms into the CEK
 * evaluator's node trees (see sx_cek.h for the frame layout).
 *
 * Runs at load time, one top-level form at a time, so a define-macro is in
 * effect for the forms after it. Derived forms (when, unless, cond, case,
 * let*, named let, do, quasiquote) become core nodes here; nothing of the
 * surface syntax survives into evaluation. Malformed forms raise
 * syntax-error naming the form.
 */
#include "vm/sx_cek.h"

enum special {
    SF_NONE,
    SF_QUOTE,
    SF_QUASIQUOTE,
    SF_UNQUOTE,
    SF_UNQUOTE_SPLICING,
    SF_LAMBDA,
    SF_DEFINE,
    SF_IF,
    SF_WHEN,
    SF_UNLESS,
    SF_COND,
    SF_CASE,
    SF_AND,
    SF_OR,
    SF_BEGIN,
    SF_LET,
    SF_LETSTAR,
    SF_LETREC,
    SF_DO,
    SF_SET,
    SF_DEFINE_MACRO,
    SF_GUARD,
    SF_PERFORM,
    SF_ELSE,
    SF_ARROW,
};

static const struct {
    const char *name;
    int id;
} specials[] = {
    {"quote", SF_QUOTE},     {"quasiquote", SF_QUASIQUOTE},
    {"unquote", SF_UNQUOTE}, {"unquote-splicing", SF_UNQUOTE_SPLICING},
    {"lambda", SF_LAMBDA},   {"fn", SF_LAMBDA},
    {"define", SF_DEFINE},   {"if", SF_IF},
    {"when", SF_WHEN},       {"unless", SF_UNLESS},
    {"cond", SF_COND},       {"case", SF_CASE},
    {"and", SF_AND},         {"or", SF_OR},
    {"begin", SF_BEGIN},     {"let", SF_LET},
    {"let*", SF_LETSTAR},    {"letrec", SF_LETREC},
    {"letrec*", SF_LETREC},  {"do", SF_DO},
    {"set!", SF_SET},        {"define-macro", SF_DEFINE_MACRO},
    {"guard", SF_GUARD},     {"perform", SF_PERFORM},
};

/* Built-ins the compiled code calls directly (immune to user redefinition). */
static sx_val p_cons, p_append2, p_list_to_vector, p_memv, p_raise, p_perform, p_list;
static sx_val sym_else, sym_arrow, sym_quote, sym_quasiquote, sym_unquote, sym_unquote_splicing;

static sx_val perform_prim(sx_ctx *cx, int argc, sx_val *argv)
{
    if (!cx->perform) sx_error(cx, "effect-error", "perform: no effect handler in this host");
    return cx->perform(cx, argv[0], argc - 1, argv + 1);
}

static sx_val global_of(const char *name)
{
    return sx_sym(sx_intern_c(name))->global;
}

void sx__compile_init(void)
{
    for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
        sx_sym(sx_intern_c(specials[i].name))->special = specials[i].id;
    p_cons = global_of("cons");
    p_append2 = global_of("append");
    p_list_to_vector = global_of("list->vector");
    p_memv = global_of("memv");
    p_raise = global_of("raise");
    p_list = global_of("list");
    sx_prim *pp = sx_alloc(sizeof *pp);
    pp->h.type = SX_T_PRIM;
    pp->name = "perform";
    pp->fn = perform_prim;
    pp->min_args = 1;
    pp->max_args = -1;
    pp->name_sym = sx_intern_c("perform");
    p_perform = sx_from_ptr(pp);
    sym_else = sx_intern_c("else");
    sym_arrow = sx_intern_c("=>");
    sym_quote = sx_intern_c("quote");
    sym_quasiquote = sx_intern_c("quasiquote");
    sym_unquote = sx_intern_c("unquote");
    sym_unquote_splicing = sx_intern_c("unquote-splicing");
}

/* ---- compile-time scopes ------------------------------------------------ */

typedef struct cvar {
    sx_val sym;
    int slot;
    bool check; /* may be read before assignment (letrec, internal define) */
    struct cvar *next;
} cvar;

typedef struct cscope {
    struct cscope *up;
    cvar *vars;
    int nslots;
    sx_ctx *cx;
} cscope;

static cvar *lookup(cscope *sc, sx_val sym, int *depth)
{
    for (int d = 0; sc; sc = sc->up, d++)
        for (cvar *v = sc->vars; v; v = v->next)
            if (v->sym == sym) {
                *depth = d;
                return v;
            }
    return NULL;
}

static cvar *bind(cscope *sc, sx_val sym, bool check)
{
    cvar *v = sx_alloc(sizeof *v);
    v->sym = sym;
    v->slot = sc->nslots++;
    v->check = check;
    v->next = sc->vars;
    sc->vars = v;
    return v;
}

/* A slot with no name, for temporaries (cond =>, case keys). */
static int temp_slot(cscope *sc)
{
    return sc->nslots++;
}

/* ---- nodes ------------------------------------------------------------- */

static sx_node *mknode(int op)
{
    sx_node *n = sx_alloc(sizeof *n);
    n->op = (uint8_t)op;
    return n;
}

static sx_node *mkconst(sx_val v)
{
    sx_node *n = mknode(N_CONST);
    n->v = v;
    n->simple = 1;
    return n;
}

static sx_node *mklref(int depth, int slot)
{
    sx_node *n = mknode(N_LREF);
    n->a = depth;
    n->b = slot;
    n->simple = 1;
    return n;
}

static sx_node *mklinit(int slot, sx_node *x)
{
    sx_node *n = mknode(N_LINIT);
    n->a = 0;
    n->b = slot;
    n->x = x;
    return n;
}

static sx_node *mkif(sx_node *t, sx_node *a, sx_node *b)
{
    sx_node *n = mknode(N_IF);
    n->x = t;
    n->y = a;
    n->z = b;
    return n;
}

static const struct {
    const char *name;
    int op, argc;
} inline_ops[] = {
    {"+", OP_ADD, 2},
    {"-", OP_SUB, 2},
    {"<", OP_LT, 2},
    {">", OP_GT, 2},
    {"<=", OP_LE, 2},
    {">=", OP_GE, 2},
    {"=", OP_NUMEQ, 2},
    {"car", OP_CAR, 1},
    {"cdr", OP_CDR, 1},
    {"null?", OP_NULLP, 1},
    {"pair?", OP_PAIRP, 1},
    {"not", OP_NOT, 1},
    {"eq?", OP_EQ, 2},
    {"zero?", OP_ZEROP, 1},
    {"cons", OP_CONS, 2},
    {"quotient", OP_QUOTIENT, 2},
    {"remainder", OP_REMAINDER, 2},
    {"modulo", OP_MODULO, 2},
};

/* Marks a call of a global built-in that the machine can run inline. */
static void inline_op(sx_node *c, sx_val sym, int argc)
{
    sx_val g = sx_sym(sym)->global;
    if (!sx_is(g, SX_T_PRIM)) return;
    const char *name = SX_OBJ(sx_prim, g)->name;
    for (size_t i = 0; i < sizeof inline_ops / sizeof inline_ops[0]; i++)
        if (inline_ops[i].argc == argc && !strcmp(inline_ops[i].name, name) &&
            sx_intern_c(name) == sym) {
            c->b = inline_ops[i].op;
            c->v = g;
            return;
        }
}

static sx_node *mkcall(int n, sx_node **kids)
{
    sx_node *c = mknode(N_CALL);
    c->n = n;
    c->kids = sx_alloc((size_t)n * sizeof(sx_node *));
    bool all = true;
    for (int i = 0; i < n; i++) {
        c->kids[i] = kids[i];
        all = all && (kids[i]->simple || kids[i]->pure);
    }
    c->a = all && n <= 8; /* all parts simple or pure: evaluated without frames */
    if (kids[0]->op == N_GREF) inline_op(c, kids[0]->v, n - 1);
    c->pure = c->a && c->b != 0;
    return c;
}

static sx_node *mkcall2(sx_val prim, sx_node *a, sx_node *b)
{
    sx_node *k[3] = {mkconst(prim), a, b};
    return mkcall(b ? 3 : 2, k);
}

/* A sequence node from a list of nodes (collapsed when it has one). */
typedef struct nodelist {
    sx_node **v;
    int n, cap;
} nodelist;

static void nl_add(nodelist *l, sx_node *x)
{
    if (l->n == l->cap) {
        int ncap = l->cap ? l->cap * 2 : 8;
        sx_node **nv = sx_alloc((size_t)ncap * sizeof *nv);
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof *nv);
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = x;
}

static sx_node *nl_seq(nodelist *l)
{
    if (l->n == 0) return mkconst(SX_NIL);
    if (l->n == 1) return l->v[0];
    sx_node *s = mknode(N_SEQ);
    s->n = l->n;
    s->kids = l->v;
    return s;
}

/* ---- errors ------------------------------------------------------------ */

static _Noreturn void syntax_error(sx_ctx *cx, const char *what, sx_val form)
{
    sx_buf b;
    sx_buf_init(&b);
    sx_buf_printf(&b, "%s: ", what);
    sx_print(&b, form, true);
    if (b.len > 300) {
        b.len = 297;
        sx_buf_adds(&b, "...");
    }
    sx_val msg = sx_mkstring(b.p, b.len);
    sx_buf_free(&b);
    sx_raise(cx, sx_mkerror(sx_intern_c("syntax-error"), msg, SX_NIL));
}

static sx_val nth(sx_val l, int i)
{
    while (i-- > 0 && sx_is_pair(l))
        l = SX_CDR(l);
    return sx_is_pair(l) ? SX_CAR(l) : SX_UNDEF;
}

static void need_list(sx_ctx *cx, sx_val form, long min, const char *what)
{
    long n = sx_list_length(form);
    if (n < min) syntax_error(cx, what, form);
}

/* ---- the compiler -------------------------------------------------------- */

static sx_node *comp(cscope *sc, sx_val x);
static sx_node *comp_body(cscope *sc, sx_val body, sx_val whole);
static sx_code *comp_lambda(cscope *sc, sx_val params, sx_val body, sx_val name, sx_val whole);

static int special_of(cscope *sc, sx_val head)
{
    if (!sx_is(head, SX_T_SYMBOL)) return SF_NONE;
    int d;
    if (lookup(sc, head, &d)) return SF_NONE;
    return sx_sym(head)->special;
}

static bool is_macro_call(cscope *sc, sx_val x)
{
    if (!sx_is_pair(x) || !sx_is(SX_CAR(x), SX_T_SYMBOL)) return false;
    int d;
    return sx_sym(SX_CAR(x))->macro != SX_UNDEF && !lookup(sc, SX_CAR(x), &d);
}

static sx_val expand_once(cscope *sc, sx_val x)
{
    sx_val args[64];
    int n = 0;
    for (sx_val l = SX_CDR(x); sx_is_pair(l); l = SX_CDR(l)) {
        if (n == 64) syntax_error(sc->cx, "macro call with more than 64 forms", x);
        args[n++] = SX_CAR(l);
    }
    return sx_cek_apply(sc->cx, sx_sym(SX_CAR(x))->macro, n, args);
}

static sx_val expand(cscope *sc, sx_val x)
{
    for (int i = 0; is_macro_call(sc, x); i++) {
        if (i > 10000) syntax_error(sc->cx, "macro expansion does not terminate", x);
        x = expand_once(sc, x);
    }
    return x;
}

static sx_node *comp_ref(cscope *sc, sx_val sym)
{
    int d;
    cvar *v = lookup(sc, sym, &d);
    if (!v) {
        sx_node *n = mknode(N_GREF);
        n->v = sym;
        n->simple = 1;
        return n;
    }
    sx_node *n = mklref(d, v->slot);
    if (v->check) {
        n->op = N_LREF_CK;
        n->v = sym;
    }
    return n;
}

static sx_node *comp_args_call(cscope *sc, sx_node *op, sx_val args, sx_val whole)
{
    nodelist l = {0};
    nl_add(&l, op);
    sx_val a = args;
    for (; sx_is_pair(a); a = SX_CDR(a))
        nl_add(&l, comp(sc, SX_CAR(a)));
    if (a != SX_NIL) syntax_error(sc->cx, "improper argument list", whole);
    return mkcall(l.n, l.v);
}

/* (sym v) as a constant, or the call that builds it. */
static sx_node *qq_wrap(sx_val sym, sx_node *inner)
{
    if (inner->op == N_CONST) return mkconst(sx_list(2, sym, inner->v));
    return mkcall2(p_list, mkconst(sym), inner);
}

/* (h . rest) as a constant when both parts are, else the cons call. The
 * constant is built from the parts' values: a part may be an unquoted
 * constant (`(a ,4)), so the source form itself is not the value. */
static sx_node *qq_cons(sx_node *h, sx_node *rest)
{
    if (h->op == N_CONST && rest->op == N_CONST) return mkconst(sx_cons(h->v, rest->v));
    return mkcall2(p_cons, h, rest);
}

/* quasiquote at nesting depth `depth` (1 = outermost). */
static sx_node *comp_qq(cscope *sc, sx_val x, int depth)
{
    if (sx_is(x, SX_T_VECTOR) && sx_vec(x)->h.aux == 0) {
        sx_val l = SX_NIL;
        for (uint32_t i = sx_vec(x)->len; i > 0; i--)
            l = sx_cons(sx_vec(x)->items[i - 1], l);
        sx_node *ln = comp_qq(sc, l, depth);
        if (ln->op != N_CONST) return mkcall2(p_list_to_vector, ln, NULL);
        long n = sx_list_length(ln->v);
        sx_val v = sx_mkvector((size_t)n, SX_NIL);
        sx_val e = ln->v;
        for (long i = 0; i < n; i++, e = SX_CDR(e))
            sx_vec(v)->items[i] = SX_CAR(e);
        return mkconst(v);
    }
    if (!sx_is_pair(x)) return mkconst(x);
    sx_val head = SX_CAR(x);
    if (head == sym_unquote && sx_list_length(x) == 2) {
        if (depth == 1) return comp(sc, nth(x, 1));
        return qq_wrap(sym_unquote, comp_qq(sc, nth(x, 1), depth - 1));
    }
    if (head == sym_quasiquote && sx_list_length(x) == 2)
        return qq_wrap(sym_quasiquote, comp_qq(sc, nth(x, 1), depth + 1));
    sx_node *rest = comp_qq(sc, SX_CDR(x), depth);
    if (sx_is_pair(head) && SX_CAR(head) == sym_unquote_splicing && sx_list_length(head) == 2) {
        if (depth == 1) return mkcall2(p_append2, comp(sc, nth(head, 1)), rest);
        return qq_cons(qq_wrap(sym_unquote_splicing, comp_qq(sc, nth(head, 1), depth - 1)), rest);
    }
    return qq_cons(comp_qq(sc, head, depth), rest);
}

static sx_node *comp_lambda_node(cscope *sc, sx_val params, sx_val body, sx_val name, sx_val whole)
{
    sx_node *n = mknode(N_LAMBDA);
    n->code = comp_lambda(sc, params, body, name, whole);
    n->simple = 1;
    return n;
}

/* (define name expr) / (define (name . params) body...): the name and value node. */
static sx_node *comp_define_value(cscope *sc, sx_val x, sx_val *name)
{
    need_list(sc->cx, x, 2, "define: bad syntax");
    sx_val target = nth(x, 1);
    if (sx_is_pair(target)) {
        *name = SX_CAR(target);
        if (!sx_is(*name, SX_T_SYMBOL)) syntax_error(sc->cx, "define: bad name", x);
        return comp_lambda_node(sc, SX_CDR(target), SX_CDR(SX_CDR(x)), *name, x);
    }
    if (!sx_is(target, SX_T_SYMBOL)) syntax_error(sc->cx, "define: bad name", x);
    *name = target;
    long len = sx_list_length(x);
    if (len == 2) return mkconst(SX_NIL);
    if (len != 3) syntax_error(sc->cx, "define: expected (define name expr)", x);
    sx_val e = nth(x, 2);
    if (sx_is_pair(e) && special_of(sc, SX_CAR(e)) == SF_LAMBDA && !is_macro_call(sc, e)) {
        need_list(sc->cx, e, 3, "lambda: bad syntax");
        return comp_lambda_node(sc, nth(e, 1), SX_CDR(SX_CDR(e)), target, e);
    }
    return comp(sc, e);
}

static sx_node *comp_if(cscope *sc, sx_val x)
{
    long n = sx_list_length(x);
    if (n != 3 && n != 4) syntax_error(sc->cx, "if: expected (if test then [else])", x);
    return mkif(comp(sc, nth(x, 1)), comp(sc, nth(x, 2)),
                n == 4 ? comp(sc, nth(x, 3)) : mkconst(SX_NIL));
}

static sx_node *comp_seq(cscope *sc, sx_val forms)
{
    nodelist l = {0};
    for (; sx_is_pair(forms); forms = SX_CDR(forms))
        nl_add(&l, comp(sc, SX_CAR(forms)));
    return nl_seq(&l);
}

static sx_node *comp_andor(cscope *sc, sx_val x, int op)
{
    sx_val args = SX_CDR(x);
    if (args == SX_NIL) return mkconst(op == N_AND ? SX_TRUE : SX_FALSE);
    if (SX_CDR(args) == SX_NIL) return comp(sc, SX_CAR(args));
    sx_node *n = comp_seq(sc, args);
    n->op = (uint8_t)op;
    return n;
}

/* cond clauses from `clauses` on; `x` is the whole form for messages. */
static sx_node *comp_cond_clauses(cscope *sc, sx_val clauses, sx_val x)
{
    if (clauses == SX_NIL) return mkconst(SX_NIL);
    sx_val cl = SX_CAR(clauses);
    if (!sx_is_pair(cl) || sx_list_length(cl) < 1) syntax_error(sc->cx, "cond: bad clause", x);
    sx_val test = SX_CAR(cl), body = SX_CDR(cl);
    int d;
    if (test == sym_else && !lookup(sc, sym_else, &d)) {
        if (body == SX_NIL) syntax_error(sc->cx, "cond: empty else clause", x);
        return comp_seq(sc, body);
    }
    sx_node *rest = comp_cond_clauses(sc, SX_CDR(clauses), x);
    if (sx_is_pair(body) && SX_CAR(body) == sym_arrow) {
        if (sx_list_length(body) != 2) syntax_error(sc->cx, "cond: bad => clause", x);
        int t = temp_slot(sc);
        sx_node *call_k[2] = {comp(sc, nth(body, 1)), mklref(0, t)};
        nodelist l = {0};
        nl_add(&l, mklinit(t, comp(sc, test)));
        nl_add(&l, mkif(mklref(0, t), mkcall(2, call_k), rest));
        sx_node *s = nl_seq(&l);
        return s;
    }
    if (body == SX_NIL) {
        int t = temp_slot(sc);
        nodelist l = {0};
        nl_add(&l, mklinit(t, comp(sc, test)));
        nl_add(&l, mkif(mklref(0, t), mklref(0, t), rest));
        return nl_seq(&l);
    }
    return mkif(comp(sc, test), comp_seq(sc, body), rest);
}

static sx_node *comp_case(cscope *sc, sx_val x)
{
    need_list(sc->cx, x, 2, "case: bad syntax");
    int t = temp_slot(sc);
    nodelist top = {0};
    nl_add(&top, mklinit(t, comp(sc, nth(x, 1))));
    /* build the clause chain back to front */
    sx_val clauses = sx_reverse(SX_CDR(SX_CDR(x)));
    sx_node *chain = mkconst(SX_NIL);
    for (; sx_is_pair(clauses); clauses = SX_CDR(clauses)) {
        sx_val cl = SX_CAR(clauses);
        if (!sx_is_pair(cl) || SX_CDR(cl) == SX_NIL) syntax_error(sc->cx, "case: bad clause", x);
        sx_val data = SX_CAR(cl), body = SX_CDR(cl);
        sx_node *then;
        if (SX_CAR(body) == sym_arrow) {
            sx_node *k[2] = {comp(sc, nth(body, 1)), mklref(0, t)};
            then = mkcall(2, k);
        } else {
            then = comp_seq(sc, body);
        }
        if (data == sym_else) {
            chain = then;
        } else {
            if (sx_list_length(data) < 0) syntax_error(sc->cx, "case: bad datum list", x);
            chain = mkif(mkcall2(p_memv, mklref(0, t), mkconst(data)), then, chain);
        }
    }
    nl_add(&top, chain);
    return nl_seq(&top);
}

/* Checks a binding list ((v e) ...) and returns its length. */
static long check_bindings(cscope *sc, sx_val bindings, sx_val x, const char *what)
{
    long n = sx_list_length(bindings);
    if (n < 0) syntax_error(sc->cx, what, x);
    for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b)) {
        sx_val one = SX_CAR(b);
        long len = sx_list_length(one);
        if (!(len == 1 || len == 2) || !sx_is(SX_CAR(one), SX_T_SYMBOL))
            syntax_error(sc->cx, what, x);
    }
    return n;
}

static sx_node *binding_init(cscope *sc, sx_val one)
{
    return SX_CDR(one) == SX_NIL ? mkconst(SX_NIL) : comp(sc, nth(one, 1));
}

static sx_node *comp_named_let(cscope *sc, sx_val x)
{
    need_list(sc->cx, x, 4, "let: bad syntax");
    sx_val name = nth(x, 1), bindings = nth(x, 2);
    check_bindings(sc, bindings, x, "let: bad bindings");
    sx_val params = SX_NIL;
    nodelist call = {0};
    nl_add(&call, NULL); /* the operator, filled below */
    for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b)) {
        params = sx_cons(SX_CAR(SX_CAR(b)), params);
        nl_add(&call, binding_init(sc, SX_CAR(b)));
    }
    params = sx_reverse(params);
    cvar *saved = sc->vars;
    cvar *v = bind(sc, name, false);
    sx_node *lam = comp_lambda_node(sc, params, SX_CDR(SX_CDR(SX_CDR(x))), name, x);
    sc->vars = saved;
    call.v[0] = mklref(0, v->slot);
    nodelist l = {0};
    nl_add(&l, mklinit(v->slot, lam));
    nl_add(&l, mkcall(call.n, call.v));
    return nl_seq(&l);
}

static sx_node *comp_let(cscope *sc, sx_val x, int kind)
{
    if (kind == SF_LET && sx_is(nth(x, 1), SX_T_SYMBOL)) return comp_named_let(sc, x);
    need_list(sc->cx, x, 3, "let: bad syntax");
    sx_val bindings = nth(x, 1);
    check_bindings(sc, bindings, x, "let: bad bindings");
    cvar *saved = sc->vars;
    nodelist l = {0};
    if (kind == SF_LET) {
        nodelist inits = {0};
        for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b))
            nl_add(&inits, binding_init(sc, SX_CAR(b)));
        int i = 0;
        for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b), i++) {
            cvar *v = bind(sc, SX_CAR(SX_CAR(b)), false);
            nl_add(&l, mklinit(v->slot, inits.v[i]));
        }
    } else if (kind == SF_LETSTAR) {
        for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b)) {
            sx_node *init = binding_init(sc, SX_CAR(b));
            cvar *v = bind(sc, SX_CAR(SX_CAR(b)), false);
            nl_add(&l, mklinit(v->slot, init));
        }
    } else { /* letrec, letrec* */
        cvar **vs = sx_alloc(sizeof(cvar *) * (size_t)(sx_list_length(bindings) + 1));
        int i = 0;
        for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b))
            vs[i++] = bind(sc, SX_CAR(SX_CAR(b)), true);
        i = 0;
        for (sx_val b = bindings; sx_is_pair(b); b = SX_CDR(b), i++) {
            sx_val one = SX_CAR(b), e = nth(one, 1);
            sx_node *init;
            if (sx_is_pair(e) && special_of(sc, SX_CAR(e)) == SF_LAMBDA && !is_macro_call(sc, e) &&
                sx_list_length(e) >= 3)
                init = comp_lambda_node(sc, nth(e, 1), SX_CDR(SX_CDR(e)), SX_CAR(one), e);
            else
                init = binding_init(sc, one);
            nl_add(&l, mklinit(vs[i]->slot, init));
        }
    }
    nl_add(&l, comp_body(sc, SX_CDR(SX_CDR(x)), x));
    sc->vars = saved;
    return nl_seq(&l);
}

/* (do ((var init step)...) (test res...) body...) as a named-let loop. */
static sx_node *comp_do(cscope *sc, sx_val x)
{
    need_list(sc->cx, x, 3, "do: bad syntax");
    sx_val specs = nth(x, 1), exit = nth(x, 2), body = SX_CDR(SX_CDR(SX_CDR(x)));
    if (sx_list_length(specs) < 0 || sx_list_length(exit) < 1)
        syntax_error(sc->cx, "do: bad syntax", x);
    /* the loop procedure: its own frame holds the variables */
    cscope inner = {sc, NULL, 0, sc->cx};
    nodelist init = {0};
    nl_add(&init, NULL);
    int nvars = 0;
    for (sx_val s = specs; sx_is_pair(s); s = SX_CDR(s)) {
        sx_val one = SX_CAR(s);
        long len = sx_list_length(one);
        if (len < 2 || len > 3 || !sx_is(SX_CAR(one), SX_T_SYMBOL))
            syntax_error(sc->cx, "do: bad variable spec", x);
        nl_add(&init, comp(sc, nth(one, 1)));
        nvars++;
    }
    for (sx_val s = specs; sx_is_pair(s); s = SX_CDR(s))
        bind(&inner, SX_CAR(SX_CAR(s)), false);
    /* the loop variable lives in the enclosing frame, seen from inner at depth 1 */
    int loop_slot = temp_slot(sc);
    nodelist step = {0};
    nl_add(&step, mklref(1, loop_slot));
    int i = 0;
    for (sx_val s = specs; sx_is_pair(s); s = SX_CDR(s), i++) {
        sx_val one = SX_CAR(s);
        nl_add(&step, sx_list_length(one) == 3 ? comp(&inner, nth(one, 2)) : mklref(0, i));
    }
    nodelist loop_body = {0};
    for (sx_val b = body; sx_is_pair(b); b = SX_CDR(b))
        nl_add(&loop_body, comp(&inner, SX_CAR(b)));
    nl_add(&loop_body, mkcall(step.n, step.v));
    sx_node *done = comp_seq(&inner, SX_CDR(exit));
    sx_code *code = sx_alloc(sizeof *code);
    code->h.type = SX_T_CODE;
    code->name = SX_NIL;
    code->nreq = nvars;
    code->body = mkif(comp(&inner, SX_CAR(exit)), done, nl_seq(&loop_body));
    code->frame_size = inner.nslots;
    sx_node *lam = mknode(N_LAMBDA);
    lam->code = code;
    lam->simple = 1;
    init.v[0] = mklref(0, loop_slot);
    nodelist l = {0};
    nl_add(&l, mklinit(loop_slot, lam));
    nl_add(&l, mkcall(init.n, init.v));
    return nl_seq(&l);
}

static sx_node *comp_set(cscope *sc, sx_val x)
{
    if (sx_list_length(x) != 3 || !sx_is(nth(x, 1), SX_T_SYMBOL))
        syntax_error(sc->cx, "set!: expected (set! name expr)", x);
    sx_val sym = nth(x, 1);
    int d;
    cvar *v = lookup(sc, sym, &d);
    sx_node *n = mknode(v ? N_LSET : N_GSET);
    n->x = comp(sc, nth(x, 2));
    if (v) {
        n->a = d;
        n->b = v->slot;
    } else {
        n->v = sym;
    }
    return n;
}

static sx_node *comp_guard(cscope *sc, sx_val x)
{
    need_list(sc->cx, x, 3, "guard: bad syntax");
    sx_val spec = nth(x, 1);
    if (!sx_is_pair(spec) || !sx_is(SX_CAR(spec), SX_T_SYMBOL) || sx_list_length(spec) < 1)
        syntax_error(sc->cx, "guard: expected (guard (var clause...) body...)", x);
    sx_node *g = mknode(N_GUARD);
    g->x = comp_body(sc, SX_CDR(SX_CDR(x)), x);
    cvar *saved = sc->vars;
    cvar *v = bind(sc, SX_CAR(spec), false);
    g->b = v->slot;
    /* no clause matching re-raises the same object */
    sx_val clauses = SX_CDR(spec);
    bool has_else = false;
    for (sx_val c = clauses; sx_is_pair(c); c = SX_CDR(c))
        if (sx_is_pair(SX_CAR(c)) && SX_CAR(SX_CAR(c)) == sym_else) has_else = true;
    if (!has_else)
        clauses = sx_reverse(
            sx_cons(sx_list(2, sym_else, sx_list(2, p_raise, SX_CAR(spec))), sx_reverse(clauses)));
    g->y = comp_cond_clauses(sc, clauses, x);
    sc->vars = saved;
    return g;
}

static sx_node *comp_pair(cscope *sc, sx_val x)
{
    sx_val head = SX_CAR(x);
    if (sx_list_length(x) < 0) syntax_error(sc->cx, "improper form", x);
    switch (special_of(sc, head)) {
    case SF_QUOTE:
        if (sx_list_length(x) != 2) syntax_error(sc->cx, "quote: expected (quote datum)", x);
        return mkconst(nth(x, 1));
    case SF_QUASIQUOTE:
        if (sx_list_length(x) != 2) syntax_error(sc->cx, "quasiquote: bad syntax", x);
        return comp_qq(sc, nth(x, 1), 1);
    case SF_UNQUOTE:
    case SF_UNQUOTE_SPLICING: syntax_error(sc->cx, "unquote outside quasiquote", x);
    case SF_LAMBDA:
        need_list(sc->cx, x, 3, "lambda: expected (lambda params body...)");
        return comp_lambda_node(sc, nth(x, 1), SX_CDR(SX_CDR(x)), SX_NIL, x);
    case SF_DEFINE: syntax_error(sc->cx, "define in expression position", x);
    case SF_DEFINE_MACRO: syntax_error(sc->cx, "define-macro is allowed only at top level", x);
    case SF_IF: return comp_if(sc, x);
    case SF_WHEN:
    case SF_UNLESS: {
        need_list(sc->cx, x, 2, "when: bad syntax");
        sx_node *body = comp_seq(sc, SX_CDR(SX_CDR(x)));
        sx_node *test = comp(sc, nth(x, 1));
        return special_of(sc, head) == SF_WHEN ? mkif(test, body, mkconst(SX_NIL))
                                               : mkif(test, mkconst(SX_NIL), body);
    }
    case SF_COND: return comp_cond_clauses(sc, SX_CDR(x), x);
    case SF_CASE: return comp_case(sc, x);
    case SF_AND: return comp_andor(sc, x, N_AND);
    case SF_OR: return comp_andor(sc, x, N_OR);
    case SF_BEGIN: return comp_seq(sc, SX_CDR(x));
    case SF_LET:
    case SF_LETSTAR:
    case SF_LETREC: return comp_let(sc, x, special_of(sc, head));
    case SF_DO: return comp_do(sc, x);
    case SF_SET: return comp_set(sc, x);
    case SF_GUARD: return comp_guard(sc, x);
    case SF_PERFORM:
        need_list(sc->cx, x, 2, "perform: expected (perform op arg...)");
        return comp_args_call(sc, mkconst(p_perform), SX_CDR(x), x);
    default: break;
    }
    return comp_args_call(sc, comp(sc, head), SX_CDR(x), x);
}

static sx_node *comp(cscope *sc, sx_val x)
{
    if (sx_is(x, SX_T_SYMBOL)) return comp_ref(sc, x);
    if (sx_is_pair(x)) {
        if (is_macro_call(sc, x)) return comp(sc, expand(sc, x));
        return comp_pair(sc, x);
    }
    if (sx_is(x, SX_T_VECTOR) && sx_vec(x)->h.aux == SX_VEC_DICT_FORM) {
        nodelist l = {0};
        for (uint32_t i = 0; i < sx_vec(x)->len; i++)
            nl_add(&l, comp(sc, sx_vec(x)->items[i]));
        sx_node *n = mknode(N_DICT);
        n->n = l.n;
        n->kids = l.v;
        return n;
    }
    return mkconst(x);
}

static bool is_define(cscope *sc, sx_val x)
{
    return sx_is_pair(x) && special_of(sc, SX_CAR(x)) == SF_DEFINE;
}

/* Flattens begin forms at body level and expands macros at the head, so
 * defines produced either way are seen. */
static void collect_body(cscope *sc, sx_val forms, nodelist *out_forms, int depth)
{
    for (; sx_is_pair(forms); forms = SX_CDR(forms)) {
        sx_val f = expand(sc, SX_CAR(forms));
        if (sx_is_pair(f) && special_of(sc, SX_CAR(f)) == SF_BEGIN && depth < 100) {
            collect_body(sc, SX_CDR(f), out_forms, depth + 1);
            continue;
        }
        nl_add(out_forms, (sx_node *)f); /* forms, not nodes, in this list */
    }
}

static sx_node *comp_body(cscope *sc, sx_val body, sx_val whole)
{
    if (body == SX_NIL) syntax_error(sc->cx, "empty body", whole);
    if (sx_list_length(body) < 0) syntax_error(sc->cx, "improper body", whole);
    nodelist forms = {0};
    collect_body(sc, body, &forms, 0);
    cvar **vars = sx_alloc(sizeof(cvar *) * (size_t)(forms.n + 1));
    for (int i = 0; i < forms.n; i++) {
        sx_val f = (sx_val)forms.v[i];
        if (!is_define(sc, f)) continue;
        sx_val target = nth(f, 1);
        sx_val name = sx_is_pair(target) ? SX_CAR(target) : target;
        if (!sx_is(name, SX_T_SYMBOL)) syntax_error(sc->cx, "define: bad name", f);
        vars[i] = bind(sc, name, true);
    }
    nodelist l = {0};
    for (int i = 0; i < forms.n; i++) {
        sx_val f = (sx_val)forms.v[i];
        if (is_define(sc, f)) {
            sx_val name;
            sx_node *val = comp_define_value(sc, f, &name);
            nl_add(&l, mklinit(vars[i]->slot, val));
            if (i == forms.n - 1) nl_add(&l, mkconst(SX_NIL));
        } else {
            nl_add(&l, comp(sc, f));
        }
    }
    return nl_seq(&l);
}

static sx_code *comp_lambda(cscope *sc, sx_val params, sx_val body, sx_val name, sx_val whole)
{
    cscope inner = {sc, NULL, 0, sc->cx};
    sx_code *code = sx_alloc(sizeof *code);
    code->h.type = SX_T_CODE;
    code->name = name;
    sx_val p = params;
    for (; sx_is_pair(p); p = SX_CDR(p)) {
        sx_val s = SX_CAR(p);
        int d;
        if (!sx_is(s, SX_T_SYMBOL))
            syntax_error(sc->cx, "lambda: parameter is not a symbol", whole);
        cvar *dup = lookup(&inner, s, &d);
        if (dup && d == 0) syntax_error(sc->cx, "lambda: duplicate parameter", whole);
        bind(&inner, s, false);
        code->nreq++;
    }
    if (p != SX_NIL) {
        if (!sx_is(p, SX_T_SYMBOL)) syntax_error(sc->cx, "lambda: bad parameter list", whole);
        bind(&inner, p, false);
        code->rest = 1;
    }
    code->body = comp_body(&inner, body, whole);
    code->frame_size = inner.nslots;
    return code;
}

/* ---- top level ------------------------------------------------------------ */

static sx_code *wrap(cscope *sc, sx_node *body)
{
    sx_code *code = sx_alloc(sizeof *code);
    code->h.type = SX_T_CODE;
    code->name = SX_NIL;
    code->body = body;
    code->frame_size = sc->nslots;
    return code;
}

sx_code *sx_compile_toplevel(sx_ctx *cx, sx_val form)
{
    cscope sc = {NULL, NULL, 0, cx};
    form = expand(&sc, form);
    if (sx_is_pair(form) && special_of(&sc, SX_CAR(form)) == SF_DEFINE_MACRO) {
        sx_val target = nth(form, 1);
        if (!sx_is_pair(target) || !sx_is(SX_CAR(target), SX_T_SYMBOL))
            syntax_error(cx, "define-macro: expected (define-macro (name . params) body...)", form);
        sx_code *mc = comp_lambda(&sc, SX_CDR(target), SX_CDR(SX_CDR(form)), SX_CAR(target), form);
        sx_sym(SX_CAR(target))->macro = sx_make_closure(mc, NULL);
        return wrap(&sc, mkconst(SX_NIL));
    }
    if (is_define(&sc, form)) {
        sx_val name;
        sx_node *val = comp_define_value(&sc, form, &name);
        sx_node *n = mknode(N_GDEF);
        n->v = name;
        n->x = val;
        return wrap(&sc, n);
    }
    return wrap(&sc, comp(&sc, form));
}

bool sx__is_toplevel_begin(sx_val form)
{
    cscope sc = {0};
    return sx_is_pair(form) && special_of(&sc, SX_CAR(form)) == SF_BEGIN;
}

sx_val sx__expand_toplevel(sx_ctx *cx, sx_val form)
{
    cscope sc = {NULL, NULL, 0, cx};
    return expand(&sc, form);
}
