/* sx_prim_dict.c: the dict primitives of SX.md 4 and 9, the dual assoc
 * (dict first: a new dict with keys set; otherwise R7RS alist lookup), and
 * empty?, which accepts every kind of collection.
 *
 * The table itself lives in sx_dict.c; this file only checks arguments and
 * turns entries into lists. keys, vals and dict->list follow insertion
 * order; assoc and dissoc copy first and never touch their argument.
 */
#include "vm/sx_core.h"

static bool is_dict(sx_val v)
{
    return sx_is(v, SX_T_DICT);
}

static _Noreturn void odd_pairs(sx_ctx *cx, const char *name, int got)
{
    sx_error(cx, "arity-error", "%s: expected keys and values in pairs, got %d argument%s", name,
             got, got == 1 ? "" : "s");
}

static void put_pairs(sx_val d, int n, sx_val *kv)
{
    for (int i = 0; i + 1 < n; i += 2)
        sx_dict_put(d, kv[i], kv[i + 1]);
}

static sx_val p_dict(sx_ctx *cx, int argc, sx_val *argv)
{
    if (argc % 2 != 0) odd_pairs(cx, "dict", argc);
    sx_val d = sx_mkdict((size_t)argc / 2);
    put_pairs(d, argc, argv);
    return d;
}

static sx_val p_dictp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(is_dict(argv[0]));
}

/* (get d k [default]) */
static sx_val p_get(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, is_dict(argv[0]), "get", argc == 3 ? "dict any any" : "dict any", argc, argv);
    sx_val v;
    if (sx_dict_lookup(argv[0], argv[1], &v)) return v;
    return argc == 3 ? argv[2] : SX_NIL;
}

static sx_val p_dict_set(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, is_dict(argv[0]), "dict-set!", "dict any any", argc, argv);
    sx_dict_put(argv[0], argv[1], argv[2]);
    return SX_NIL;
}

static sx_val p_dict_delete(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, is_dict(argv[0]), "dict-delete!", "dict any", argc, argv);
    sx_dict_remove(argv[0], argv[1]);
    return SX_NIL;
}

static sx_val p_has_key(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val v;
    SX_CHECK(cx, is_dict(argv[0]), "has-key?", "dict any", argc, argv);
    return sx_bool(sx_dict_lookup(argv[0], argv[1], &v));
}

static sx_val p_dict_count(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, is_dict(argv[0]), "dict-count", "dict", argc, argv);
    return sx_mkfix(sx_dictp(argv[0])->count);
}

enum part { KEYS, VALS, PAIRS };

/* The live entries, in insertion order, as a list of keys, values or
 * (key . value) pairs. Built back to front so no reversal is needed. */
static sx_val entries_list(sx_ctx *cx, int argc, sx_val *argv, enum part part, const char *name)
{
    SX_CHECK(cx, is_dict(argv[0]), name, "dict", argc, argv);
    sx_dict *d = sx_dictp(argv[0]);
    sx_val l = SX_NIL;
    for (uint32_t i = d->used; i-- > 0;) {
        sx_dict_entry *e = &d->entries[i];
        if (e->key == SX_UNDEF) continue;
        sx_val item = part == KEYS ? e->key : part == VALS ? e->val : sx_cons(e->key, e->val);
        l = sx_cons(item, l);
    }
    return l;
}

static sx_val p_keys(sx_ctx *cx, int argc, sx_val *argv)
{
    return entries_list(cx, argc, argv, KEYS, "keys");
}

static sx_val p_vals(sx_ctx *cx, int argc, sx_val *argv)
{
    return entries_list(cx, argc, argv, VALS, "vals");
}

static sx_val p_dict_to_list(sx_ctx *cx, int argc, sx_val *argv)
{
    return entries_list(cx, argc, argv, PAIRS, "dict->list");
}

/* R7RS (assoc key alist [compare]). */
static sx_val alist_assoc(sx_ctx *cx, int argc, sx_val *argv)
{
    const char *expected = argc == 3 ? "any list fn" : "any list";
    if (argc > 3) sx_arity_error(cx, "assoc", 2, 3, argc);
    SX_CHECK(cx, (argv[1] == SX_NIL || sx_is_pair(argv[1])) && !sx_list_cyclic(argv[1]), "assoc",
             expected, argc, argv);
    SX_CHECK(cx, argc == 2 || sx_is_procedure(argv[2]), "assoc", expected, argc, argv);
    sx_val l = argv[1];
    for (; sx_is_pair(l); l = SX_CDR(l)) {
        sx_val entry = SX_CAR(l);
        SX_CHECK(cx, sx_is_pair(entry), "assoc", expected, argc, argv);
        sx_val args[2] = {argv[0], SX_CAR(entry)};
        bool hit =
            argc == 3 ? sx_truthy(cx->apply(cx, argv[2], 2, args)) : sx_equal(args[0], args[1]);
        if (hit) return entry;
    }
    SX_CHECK(cx, l == SX_NIL, "assoc", expected, argc, argv);
    return SX_FALSE;
}

/* (assoc d k v …) on a dict: a copy with the keys set. */
static sx_val p_assoc(sx_ctx *cx, int argc, sx_val *argv)
{
    if (!is_dict(argv[0])) return alist_assoc(cx, argc, argv);
    if ((argc - 1) % 2 != 0) odd_pairs(cx, "assoc", argc);
    sx_val d = sx_dict_copy(argv[0]);
    put_pairs(d, argc - 1, argv + 1);
    return d;
}

/* (dissoc d k …): a copy without the keys. */
static sx_val p_dissoc(sx_ctx *cx, int argc, sx_val *argv)
{
    SX_CHECK(cx, is_dict(argv[0]), "dissoc", "dict any …", argc, argv);
    sx_val d = sx_dict_copy(argv[0]);
    for (int i = 1; i < argc; i++)
        sx_dict_remove(d, argv[i]);
    return d;
}

static sx_val p_emptyp(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val v = argv[0];
    if (v == SX_NIL) return SX_TRUE;
    if (sx_is_pair(v)) return SX_FALSE;
    if (sx_is_string(v)) return sx_bool(sx_str(v)->len == 0);
    if (sx_is(v, SX_T_VECTOR)) return sx_bool(sx_vec(v)->len == 0);
    SX_CHECK(cx, is_dict(v), "empty?", "list-or-string-or-vector-or-dict", argc, argv);
    return sx_bool(sx_dictp(v)->count == 0);
}

void sx__init_prims_dict(void)
{
    sx_defprim("dict", p_dict, 0, -1);
    sx_defprim("dict?", p_dictp, 1, 1);
    sx_defprim("get", p_get, 2, 3);
    sx_defprim("dict-set!", p_dict_set, 3, 3);
    sx_defprim("dict-delete!", p_dict_delete, 2, 2);
    sx_defprim("has-key?", p_has_key, 2, 2);
    sx_defprim("keys", p_keys, 1, 1);
    sx_defprim("vals", p_vals, 1, 1);
    sx_defprim("dict-count", p_dict_count, 1, 1);
    sx_defprim("dict->list", p_dict_to_list, 1, 1);
    sx_defprim("assoc", p_assoc, 2, -1);
    sx_defprim("dissoc", p_dissoc, 1, -1);
    sx_defprim("empty?", p_emptyp, 1, 1);
}
