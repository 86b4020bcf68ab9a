/* sx_equal.c: eqv?, equal? and the hash that agrees with equal?.
 *
 * eqv? is identity, except that floats compare by value and sign of zero
 * (every NaN is eqv? to every NaN); integers are fixnums, so identity
 * already compares them by value. equal? is structural over pairs, vectors,
 * strings (bytes) and dicts (same keys with equal? values, in any order);
 * everything else falls back to eqv?.
 *
 * sx_hash(a) == sx_hash(b) whenever (equal? a b). It walks only a bounded
 * prefix of a structure (a fixed number of elements per level and a fixed
 * depth), chosen from the structure alone, so equal values stop at the same
 * place. Dict hashes combine their entries commutatively.
 *
 * equal? iterates along list tails and recurses only into cars, vector
 * items and dict values, checking the C stack as it goes. Cyclic data is
 * unspecified (SX.md 9).
 */
#include <math.h>

#include "vm/sx_core.h"

/* ---- eqv? ------------------------------------------------------------- */

static bool float_eqv(double x, double y)
{
    if (isnan(x) || isnan(y)) return isnan(x) && isnan(y);
    return x == y && signbit(x) == signbit(y);
}

bool sx_eqv(sx_val a, sx_val b)
{
    if (a == b) return true;
    if (sx_is_float(a) && sx_is_float(b)) return float_eqv(sx_float(a), sx_float(b));
    return false;
}

/* ---- equal? ----------------------------------------------------------- */

static bool string_equal(sx_val a, sx_val b)
{
    sx_string *x = sx_str(a), *y = sx_str(b);
    return x->len == y->len && memcmp(x->data, y->data, x->len) == 0;
}

static bool vector_equal(sx_val a, sx_val b)
{
    sx_vector *x = sx_vec(a), *y = sx_vec(b);
    if (x->len != y->len) return false;
    for (uint32_t i = 0; i < x->len; i++)
        if (!sx_equal(x->items[i], y->items[i])) return false;
    return true;
}

static bool dict_equal(sx_val a, sx_val b)
{
    sx_dict *x = sx_dictp(a);
    if (x->count != sx_dictp(b)->count) return false;
    for (uint32_t i = 0; i < x->used; i++) {
        sx_dict_entry *e = &x->entries[i];
        sx_val other;
        if (e->key == SX_UNDEF) continue;
        if (!sx_dict_lookup(b, e->key, &other) || !sx_equal(e->val, other)) return false;
    }
    return true;
}

static void check_stack(void)
{
    if (sx_cur) sx_check_cstack(sx_cur);
}

/* Compares two values that are not both pairs. */
static bool atom_equal(sx_val a, sx_val b)
{
    if (sx_eqv(a, b)) return true;
    if (!sx_is_obj(a) || !sx_is_obj(b)) return false;
    uint32_t t = sx_type_of_obj(a);
    if (t != sx_type_of_obj(b)) return false;
    switch (t) {
    case SX_T_STRING: return string_equal(a, b);
    case SX_T_VECTOR: check_stack(); return vector_equal(a, b);
    case SX_T_DICT: check_stack(); return dict_equal(a, b);
    default: return false;
    }
}

bool sx_equal(sx_val a, sx_val b)
{
    while (sx_is_pair(a) && sx_is_pair(b)) {
        if (a == b) return true;
        if (sx_is_pair(SX_CAR(a)) || sx_is_obj(SX_CAR(a))) check_stack();
        if (!sx_equal(SX_CAR(a), SX_CAR(b))) return false;
        a = SX_CDR(a);
        b = SX_CDR(b);
    }
    if (sx_is_pair(a) || sx_is_pair(b)) return false;
    return atom_equal(a, b);
}

/* ---- hashing ---------------------------------------------------------- */

#define HASH_DEPTH 6  /* levels of nesting looked at */
#define HASH_ITEMS 16 /* elements looked at per list or vector */

static uint64_t combine(uint64_t h, uint64_t x)
{
    return sx__hash_mix(h ^ (x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2)));
}

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return sx__hash_mix(h);
}

static uint64_t hash_float(double d)
{
    uint64_t bits;
    if (isnan(d)) return 0x7ff8000000000000ull;
    memcpy(&bits, &d, sizeof bits);
    return sx__hash_mix(bits ^ 0x5851f42d4c957f2dull);
}

static uint64_t hash_at(sx_val v, int depth);

static uint64_t hash_list(sx_val v, int depth)
{
    uint64_t h = 0x1f2e3d4c5b6a7988ull;
    int n = 0;
    for (; sx_is_pair(v) && n < HASH_ITEMS; v = SX_CDR(v), n++)
        h = combine(h, hash_at(SX_CAR(v), depth + 1));
    if (!sx_is_pair(v)) h = combine(h, hash_at(v, depth + 1));
    return h;
}

static uint64_t hash_vector(sx_val v, int depth)
{
    sx_vector *vec = sx_vec(v);
    uint64_t h = combine(0x2b7e151628aed2a6ull, vec->len);
    for (uint32_t i = 0; i < vec->len && i < HASH_ITEMS; i++)
        h = combine(h, hash_at(vec->items[i], depth + 1));
    return h;
}

/* Order-independent: a sum of per-entry hashes. */
static uint64_t hash_dict(sx_val v, int depth)
{
    sx_dict *d = sx_dictp(v);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < d->used; i++) {
        sx_dict_entry *e = &d->entries[i];
        if (e->key == SX_UNDEF) continue;
        sum += sx__hash_mix(combine(e->hash, hash_at(e->val, depth + 1)));
    }
    return combine(0x3c6ef372fe94f82bull + d->count, sum);
}

static uint64_t hash_obj(sx_val v, int depth)
{
    switch (sx_type_of_obj(v)) {
    case SX_T_FLOAT: return hash_float(sx_float(v));
    case SX_T_STRING: return hash_bytes(sx_str(v)->data, sx_str(v)->len);
    case SX_T_VECTOR: return hash_vector(v, depth);
    case SX_T_DICT: return hash_dict(v, depth);
    default: return sx__hash_mix((uint64_t)v); /* identity: objects never move */
    }
}

static uint64_t hash_at(sx_val v, int depth)
{
    if (depth >= HASH_DEPTH) return 0x6a09e667f3bcc908ull;
    if (sx_is_pair(v)) return hash_list(v, depth);
    if (sx_is_obj(v)) return hash_obj(v, depth);
    return sx__hash_mix((uint64_t)v); /* fixnums, chars, booleans, nil */
}

uint64_t sx__hash_heap(sx_val v)
{
    return hash_at(v, 0);
}
