/* sx_dict.c: insertion-ordered hash maps with equal? keys.
 *
 * entries[] holds the entries in insertion order; index[] is an
 * open-addressing table (linear probing) of entry numbers + 1, 0 meaning
 * an empty slot. Deleting an entry sets its key to SX_UNDEF and leaves its
 * index slot in place as a tombstone, so probe chains stay intact; a key
 * re-added after a delete is appended at the end.
 *
 * Invariants: used <= cap; the index has at least 2 * cap slots, so it is
 * never more than half full (tombstones included) and probing terminates.
 * When entries[] is full it is compacted in place if at least a quarter of
 * it is deleted, and doubled otherwise; either way the index is rebuilt.
 * A dict made without a size hint allocates nothing until its first insert.
 *
 * Key comparison (sx_equal) may raise stack-overflow on very deep keys;
 * lookups happen before any change, so a dict is never left half-updated.
 */
#include "vm/sx_core.h"

#define MIN_CAP 4
#define MAX_CAP ((uint32_t)1 << 30)

/* An immediate (fixnum, character, boolean, nil) is equal? only to itself
 * (deleted entries' key, SX_UNDEF, is never looked up). */
static inline bool immediate_key(sx_val key)
{
    return !sx_is_obj(key) && !sx_is_pair(key) && key != SX_UNDEF;
}

/* find_slot for a key that is not an immediate: compared with equal?. */
static uint32_t __attribute__((noinline))
find_slot_equal(sx_dict *d, sx_val key, uint64_t hash, bool *found)
{
    for (uint32_t i = (uint32_t)hash & d->mask;; i = (i + 1) & d->mask) {
        uint32_t n = d->index[i];
        if (n == 0) {
            *found = false;
            return i;
        }
        sx_dict_entry *e = &d->entries[n - 1];
        if (e->hash == hash && e->key != SX_UNDEF && sx_equal(e->key, key)) {
            *found = true;
            return i;
        }
    }
}

/* Index slot holding key, or the empty slot where it would go. The
 * immediate keys' probe loop is inline, the rest a call. */
static inline uint32_t find_slot(sx_dict *d, sx_val key, uint64_t hash, bool *found)
{
    if (!immediate_key(key)) return find_slot_equal(d, key, hash, found);
    for (uint32_t i = (uint32_t)hash & d->mask;; i = (i + 1) & d->mask) {
        uint32_t n = d->index[i];
        if (n == 0 || d->entries[n - 1].key == key) {
            *found = n != 0;
            return i;
        }
    }
}

/* Points the first free slot of entry n's probe chain at it. */
static void index_insert(sx_dict *d, uint32_t n)
{
    uint32_t i = (uint32_t)d->entries[n].hash & d->mask;
    while (d->index[i])
        i = (i + 1) & d->mask;
    d->index[i] = n + 1;
}

static void rebuild_index(sx_dict *d)
{
    uint32_t size = 8;
    while (size < 2 * d->cap)
        size *= 2;
    d->index = sx_alloc_atomic(size * sizeof(uint32_t));
    memset(d->index, 0, size * sizeof(uint32_t));
    d->mask = size - 1;
    for (uint32_t n = 0; n < d->used; n++)
        index_insert(d, n);
}

/* Drops deleted entries, keeping the order of the live ones. */
static void compact(sx_dict *d)
{
    uint32_t j = 0;
    for (uint32_t i = 0; i < d->used; i++)
        if (d->entries[i].key != SX_UNDEF) d->entries[j++] = d->entries[i];
    for (uint32_t i = j; i < d->used; i++)
        d->entries[i] = (sx_dict_entry){SX_UNDEF, SX_NIL, 0};
    d->used = j;
}

static void resize(sx_dict *d, uint32_t cap)
{
    if (cap > MAX_CAP) sx_error(sx_cur, "memory-limit", "dict: too many entries");
    sx_dict_entry *e = sx_alloc(cap * sizeof *e);
    uint32_t j = 0;
    for (uint32_t i = 0; i < d->used; i++)
        if (d->entries[i].key != SX_UNDEF) e[j++] = d->entries[i];
    d->entries = e;
    d->used = j;
    d->cap = cap;
    rebuild_index(d);
}

sx_val sx_mkdict(size_t hint)
{
    sx_dict *d = sx_alloc(sizeof *d);
    d->h.type = SX_T_DICT;
    if (hint > 0) {
        uint32_t cap = MIN_CAP;
        while (cap < hint && cap < MAX_CAP)
            cap *= 2;
        resize(d, cap);
    }
    return sx_from_ptr(d);
}

/* Makes room for one more entry at entries[used]. */
static void make_room(sx_dict *d)
{
    if (d->used < d->cap) return;
    if (d->cap >= MIN_CAP && d->used - d->count >= d->cap / 4) {
        compact(d);
        rebuild_index(d);
        return;
    }
    resize(d, d->cap < MIN_CAP ? MIN_CAP : d->cap * 2);
}

/* Appends a key known to be absent. */
static void append(sx_dict *d, sx_val key, sx_val val, uint64_t hash)
{
    make_room(d);
    uint32_t n = d->used++;
    d->entries[n] = (sx_dict_entry){key, val, hash};
    index_insert(d, n);
    d->count++;
}

bool sx_dict_lookup(sx_val dv, sx_val key, sx_val *out)
{
    sx_dict *d = sx_dictp(dv);
    bool found;
    if (d->count == 0) return false;
    uint32_t i = find_slot(d, key, sx_hash(key), &found);
    if (found) *out = d->entries[d->index[i] - 1].val;
    return found;
}

void sx_dict_put(sx_val dv, sx_val key, sx_val val)
{
    sx_dict *d = sx_dictp(dv);
    uint64_t hash = sx_hash(key);
    bool found = false;
    uint32_t i = d->index ? find_slot(d, key, hash, &found) : 0;
    if (found)
        d->entries[d->index[i] - 1].val = val;
    else
        append(d, key, val, hash);
}

bool sx_dict_remove(sx_val dv, sx_val key)
{
    sx_dict *d = sx_dictp(dv);
    bool found;
    if (d->count == 0) return false;
    uint32_t i = find_slot(d, key, sx_hash(key), &found);
    if (!found) return false;
    sx_dict_entry *e = &d->entries[d->index[i] - 1];
    e->key = SX_UNDEF;
    e->val = SX_NIL;
    if (--d->count == 0) { /* nothing live: start over cheaply */
        d->used = 0;
        memset(d->index, 0, ((size_t)d->mask + 1) * sizeof(uint32_t));
    }
    return true;
}

sx_val sx_dict_copy(sx_val dv)
{
    sx_dict *src = sx_dictp(dv);
    sx_val cv = sx_mkdict(src->count);
    sx_dict *d = sx_dictp(cv);
    if (src->count == 0) return cv;
    for (uint32_t i = 0; i < src->used; i++) {
        if (src->entries[i].key == SX_UNDEF) continue;
        d->entries[d->used] = src->entries[i];
        index_insert(d, d->used++);
    }
    d->count = d->used;
    return cv;
}
