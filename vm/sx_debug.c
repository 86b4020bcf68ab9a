/* sx_debug.c: the debugging built-ins of SX.md section 8 that look at
 * bytecode: bytecode-inspect, prim-check and vm-trace.
 *
 * They work in every tier: a function that has no bytecode yet (the CEK
 * tier) is compiled on demand from the same node tree the VM would use.
 * Their output is for people and may change between versions.
 */
#include "vm/sx_bc.h"
#include "vm/sx_read.h"

bool sx__is_toplevel_begin(sx_val form);
sx_val sx__expand_toplevel(sx_ctx *cx, sx_val form);

/* The global procedure named by a string or symbol argument. */
static sx_val named_function(sx_ctx *cx, const char *who, int argc, sx_val *argv)
{
    sx_val name = argv[0];
    if (sx_is_string(name)) name = sx_intern(sx_str(name)->data, sx_str(name)->len);
    if (!sx_is(name, SX_T_SYMBOL)) sx_type_error(cx, who, "string", argc, argv);
    sx_val f = sx_sym(name)->global;
    if (f == SX_UNDEF)
        sx_error(cx, "unbound-variable", "%s: no function named %s", who, sx_sym_name(name));
    if (!sx_is(f, SX_T_CLOSURE) && !sx_is(f, SX_T_VMCLOSURE))
        sx_error(cx, "type-error", "%s: %s is not a procedure defined in SX", who,
                 sx_sym_name(name));
    return f;
}

static sx_code *source_of(sx_val f)
{
    if (sx_is(f, SX_T_CLOSURE)) return SX_OBJ(sx_closure, f)->code;
    return SX_OBJ(sx_vmclosure, f)->proto->src;
}

static sx_val buf_string(sx_buf *b)
{
    sx_val s = sx_mkstring(b->p ? b->p : "", b->len);
    sx_buf_free(b);
    return s;
}

/* (bytecode-inspect "name") */
static sx_val p_bytecode_inspect(sx_ctx *cx, int argc, sx_val *argv)
{
    cx->nondet_calls++; /* tier-dependent: a shadow run could not repeat it */
    sx_val f = named_function(cx, "bytecode-inspect", argc, argv);
    sx_proto *p;
    if (sx_is(f, SX_T_VMCLOSURE))
        p = SX_OBJ(sx_vmclosure, f)->proto;
    else {
        sx_code *c = source_of(f);
        p = c->proto && c->proto->code ? c->proto : sx_bc_compile(cx, c);
    }
    sx_buf b;
    sx_buf_init(&b);
    sx_bc_disassemble(&b, p);
    return buf_string(&b);
}

/* ---- prim-check ------------------------------------------------------------ */

static void check_sites(sx_buf *b, sx_node *n, int *sites, int *bad)
{
    if (!n) return;
    if (n->op == N_LAMBDA) {
        check_sites(b, n->code->body, sites, bad);
        return;
    }
    if (n->op == N_CALL) {
        sx_node *op = n->kids[0];
        sx_val callee = SX_UNDEF;
        if (op->op == N_GREF)
            callee = sx_sym(op->v)->global;
        else if (op->op == N_CONST)
            callee = op->v;
        if (sx_is(callee, SX_T_PRIM)) {
            sx_prim *p = SX_OBJ(sx_prim, callee);
            int argc = n->n - 1;
            bool ok = argc >= p->min_args && (p->max_args < 0 || argc <= p->max_args);
            (*sites)++;
            if (!ok) (*bad)++;
            sx_buf_printf(b, "%s: %d argument%s, ", p->name, argc, argc == 1 ? "" : "s");
            if (ok)
                sx_buf_adds(b, "ok\n");
            else if (p->max_args < 0)
                sx_buf_printf(b, "MISMATCH: expects at least %d\n", p->min_args);
            else if (p->min_args == p->max_args)
                sx_buf_printf(b, "MISMATCH: expects %d\n", p->min_args);
            else
                sx_buf_printf(b, "MISMATCH: expects %d to %d\n", p->min_args, p->max_args);
        }
    }
    check_sites(b, n->x, sites, bad);
    check_sites(b, n->y, sites, bad);
    check_sites(b, n->z, sites, bad);
    if (n->op == N_SEQ || n->op == N_AND || n->op == N_OR || n->op == N_CALL || n->op == N_DICT)
        for (int i = 0; i < n->n; i++)
            check_sites(b, n->kids[i], sites, bad);
}

/* (prim-check "name") */
static sx_val p_prim_check(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val f = named_function(cx, "prim-check", argc, argv);
    sx_buf b;
    sx_buf_init(&b);
    int sites = 0, bad = 0;
    check_sites(&b, source_of(f)->body, &sites, &bad);
    sx_buf_printf(&b, "%d primitive call site%s, %d mismatched\n", sites, sites == 1 ? "" : "s",
                  bad);
    return buf_string(&b);
}

/* ---- vm-trace ---------------------------------------------------------------- */

static void run_traced(sx_ctx *cx, sx_val form)
{
    form = sx__expand_toplevel(cx, form);
    if (sx__is_toplevel_begin(form)) {
        for (sx_val l = SX_CDR(form); sx_is_pair(l); l = SX_CDR(l))
            run_traced(cx, SX_CAR(l));
        return;
    }
    sx_vm_run_proto(cx, sx_bc_compile(cx, sx_compile_toplevel(cx, form)));
}

/* (vm-trace "source"): runs source on the VM, returns the trace; an error
 * guard could catch ends the trace with a line naming it instead of
 * escaping. stack-overflow, memory-limit and timeout escape, as from guard.
 * The trace is an sx_buf, so it counts against the memory limit. */
static sx_val p_vm_trace(sx_ctx *cx, int argc, sx_val *argv)
{
    cx->nondet_calls++; /* tier-dependent: a shadow run could not repeat it */
    SX_CHECK(cx, sx_is_string(argv[0]), "vm-trace", "string", argc, argv);
    sx_vm_tier_init(cx);
    sx_buf b;
    sx_buf_init(&b);
    sx_jmp j;
    if (sx_try(cx, &j) == 0) {
        sx_val forms = sx_read_all(cx, sx_str(argv[0])->data, sx_str(argv[0])->len);
        sx_vm_set_trace(&b);
        for (; sx_is_pair(forms); forms = SX_CDR(forms))
            run_traced(cx, SX_CAR(forms));
        sx_vm_set_trace(NULL);
        sx_try_end(cx, &j);
    } else {
        sx_try_end(cx, &j);
        sx_vm_set_trace(NULL);
        /* the evaluation's limits end it here as anywhere else: guard
         * cannot catch them (SX.md 5), and neither can a debugging form */
        if (cx->raised == SX_UNDEF || !sx_catchable(cx->raised)) {
            sx_buf_free(&b);
            sx_rethrow(cx);
        }
        sx_buf_adds(&b, "raised: ");
        sx_print(&b, cx->raised, true);
        sx_buf_addc(&b, '\n');
    }
    return buf_string(&b);
}

/* (jit-exclude! "glob" ...) */
static sx_val p_jit_exclude(sx_ctx *cx, int argc, sx_val *argv)
{
    cx->nondet_calls++; /* tier-dependent: a shadow run could not repeat it */
    for (int i = 0; i < argc; i++)
        SX_CHECK(cx, sx_is_string(argv[i]), "jit-exclude!", "string …", argc, argv);
    for (int i = 0; i < argc; i++)
        sx_jit_exclude_add(sx_str(argv[i])->data);
    return SX_NIL;
}

static void put_count(sx_val d, const char *key, uint64_t n)
{
    sx_dict_put(d, sx_keyword(key, strlen(key)), sx_mkfix((int64_t)(n & SX_FIX_MAX)));
}

/* (jit-stats) */
static sx_val p_jit_stats(sx_ctx *cx, int argc, sx_val *argv)
{
    cx->nondet_calls++; /* tier-dependent: a shadow run could not repeat it */
    sx_val d = sx_mkdict(10);
    put_count(d, "compiled", sx_jit_stats.compiled);
    put_count(d, "failed", sx_jit_stats.failed);
    put_count(d, "blacklisted", sx_jit_stats.blacklisted);
    put_count(d, "excluded", sx_jit_stats.excluded);
    put_count(d, "redefined", sx_jit_stats.redefined);
    put_count(d, "unsupported", sx_jit_stats.unsupported);
    put_count(d, "cache-hits", sx_jit_stats.cache_hits);
    put_count(d, "native-calls", cx->jit_native_calls);
    put_count(d, "fallbacks", sx_jit_stats.fallbacks);
    put_count(d, "runtime-allocs", sx_jit_stats.runtime_allocs);
    return d;
}

void sx__init_prims_debug(void)
{
    sx_defprim("jit-exclude!", p_jit_exclude, 0, -1);
    sx_defprim("jit-stats", p_jit_stats, 0, 0);
    sx_defprim("bytecode-inspect", p_bytecode_inspect, 1, 1);
    sx_defprim("prim-check", p_prim_check, 1, 1);
    sx_defprim("vm-trace", p_vm_trace, 1, 1);
}
