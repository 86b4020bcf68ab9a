/* sx_jitrt.c: the runtime side of the native tier: the link table native
 * code calls through, and code hashes.
 *
 * The helpers run on the evaluating thread, called from native code that
 * the interpreter entered; they may raise (longjmp) straight through the
 * native frames, which hold nothing that needs cleaning up. A code hash
 * covers everything the native code depends on: the bytecode, the frame
 * shape and the constants by value (printed), so two processes loading the
 * same source get the same hash and can share compiled code.
 */
#include <fnmatch.h>
#include <gc.h>
#include <stdlib.h>

#include "vm/sx_bc.h"

void (*sx_jit_hot_hook)(sx_ctx *cx, sx_proto *p);
uint32_t sx_jit_threshold = 1000;
sx_jit_counters sx_jit_stats;
void (*sx_jit_exclude_hook)(void);
void (*sx_jit_global_hook)(sx_symbol *s);

static char **excludes;
static int nexcludes;

void sx_jit_exclude_add(const char *glob)
{
    for (int i = 0; i < nexcludes; i++)
        if (!strcmp(excludes[i], glob)) return;
    char **n = realloc(excludes, sizeof(char *) * (size_t)(nexcludes + 1));
    char *copy = strdup(glob);
    if (!n || !copy) {
        free(copy);
        if (n) excludes = n;
        return;
    }
    excludes = n;
    excludes[nexcludes++] = copy;
    if (sx_jit_exclude_hook) sx_jit_exclude_hook();
}

bool sx_jit_excluded(const char *name)
{
    for (int i = 0; i < nexcludes; i++)
        if (fnmatch(excludes[i], name, 0) == 0) return true;
    return false;
}

static sx_val rt_call(sx_ctx *cx, sx_val *argv, int64_t n)
{
    sx_jit_stats.fallbacks++;
    sx_val fn = argv[0];
    if (sx_is(fn, SX_T_PRIM)) {
        sx_prim *p = SX_OBJ(sx_prim, fn);
        int argc = (int)n;
        if (p->fn == NULL || argc < p->min_args || (p->max_args >= 0 && argc > p->max_args))
            return sx_vm_apply(cx, fn, argc, argv + 1); /* raises the arity error */
        return p->fn(cx, argc, argv + 1);
    }
    return sx_vm_apply(cx, fn, (int)n, argv + 1);
}

static void rt_unbound(sx_ctx *cx, sx_val sym)
{
    sx_unbound(cx, sym);
}

/* Native code allocates closures inline from the free list of their size
 * (jit_lower.c's emit_closure) and calls this when it is empty. */
_Static_assert((sizeof(sx_vmclosure) + 16) >> 4 <= SX_FL_GRANULES, "closures have a free list");

static sx_val rt_closure(sx_ctx *cx, sx_val proto, sx_env *env)
{
    sx_jit_stats.runtime_allocs++;
    sx_vmclosure *c = sx_alloc(sizeof *c);
    c->h.type = SX_T_VMCLOSURE;
    c->proto = SX_OBJ(sx_proto, proto);
    c->env = env;
    return sx_from_ptr(c);
}

static sx_val rt_dict(sx_ctx *cx, sx_val *kv, int64_t n)
{
    sx_val d = sx_mkdict((size_t)n / 2);
    for (int64_t i = 0; i + 1 < n; i += 2)
        sx_dict_put(d, kv[i], kv[i + 1]);
    return d;
}

static sx_env *rt_new_env(sx_ctx *cx, sx_env *up, int64_t size)
{
    sx_jit_stats.runtime_allocs++;
    sx_env *e = sx_alloc(sizeof(sx_env) + (size_t)size * sizeof(sx_val));
    e->h.type = SX_T_ENV;
    e->h.aux = (uint32_t)size;
    e->up = up;
    for (int64_t i = 0; i < size; i++)
        e->slots[i] = SX_UNDEF;
    return e;
}

/* Native code stored into a watched global (the store itself is inline). */
static void rt_global_written(sx_ctx *cx, sx_val sym)
{
    (void)cx;
    sx_jit_global_hook(sx_sym(sym));
}

static sx_env *rt_frame_env(sx_ctx *cx, sx_val pv, sx_val *base, sx_env *up)
{
    sx_jit_stats.runtime_allocs++;
    sx_proto *p = SX_OBJ(sx_proto, pv);
    int32_t n = p->env_size;
    sx_env *e = sx_alloc(sizeof(sx_env) + (size_t)n * sizeof(sx_val));
    e->h.type = SX_T_ENV;
    e->h.aux = (uint32_t)n;
    e->up = up;
    const int32_t *from = p->env_from;
    /* most frames capture a few slots: no loop for them */
    switch (n) {
    case 4: e->slots[3] = base[from[3]]; /* fall through */
    case 3: e->slots[2] = base[from[2]]; /* fall through */
    case 2: e->slots[1] = base[from[1]]; /* fall through */
    case 1: e->slots[0] = base[from[0]]; break;
    default:
        for (int32_t j = 0; j < n; j++)
            e->slots[j] = base[from[j]];
    }
    return e;
}

static sx_val rt_finish_tail(sx_ctx *cx, sx_val *base)
{
    return sx_vm_jit_call(cx, base - 1, cx->jit_tail_n);
}

const sx_jit_link sx_jit_link_table = {
    SX_JIT_LINK_VERSION,
    sizeof(sx_jit_link),
    sx_vm_jit_call,
    rt_unbound,
    rt_closure,
    rt_dict,
    rt_new_env,
    sx_timeout,
    rt_call,
    rt_finish_tail,
    rt_frame_env,
    sx_vm_jit_guard,
    &sx__fl_pair,
    sx__fl,
    rt_global_written,
};

/* ---- code hashes ---------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

static uint64_t hash_proto(sx_proto *p, int depth);

static uint64_t hash_const(uint64_t h, sx_val v, int depth)
{
    if (sx_is(v, SX_T_PROTO)) {
        uint64_t inner = depth < 64 ? hash_proto(SX_OBJ(sx_proto, v), depth + 1) : 0;
        return fnv(h, &inner, sizeof inner);
    }
    sx_buf b;
    sx_buf_init(&b);
    sx_buf_adds(&b, sx_type_name(v));
    sx_buf_addc(&b, ':');
    sx_print(&b, v, true);
    h = fnv(h, b.p ? b.p : "", b.len);
    sx_buf_free(&b);
    return h;
}

static uint64_t hash_proto(sx_proto *p, int depth)
{
    uint64_t h = 14695981039346656037ull;
    int32_t shape[6] = {p->nreq, p->rest, p->nslots, p->maxstack, p->env_size, p->env_lazy};
    h = fnv(h, shape, sizeof shape);
    h = fnv(h, p->slot_env, sizeof(int32_t) * (size_t)p->nslots);
    h = fnv(h, p->code, sizeof(int32_t) * (size_t)p->ncode);
    for (int i = 0; i < p->nk; i++)
        h = hash_const(h, p->k[i], depth);
    if (p->name != SX_NIL) h = fnv(h, sx_sym_name(p->name), strlen(sx_sym_name(p->name)));
    return h;
}

const char *sx_proto_hash(sx_proto *p)
{
    if (!p->hash[0])
        snprintf(p->hash, sizeof p->hash, "%016llx", (unsigned long long)hash_proto(p, 0));
    return p->hash;
}
