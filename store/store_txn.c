/* store_txn.c: request transactions over the "kv" data: optimistic ones,
 * and locked ones for requests that keep conflicting. Everything here is
 * above the backend (store_int.h, store__ops): LMDB and PostgreSQL give a
 * request the same semantics because the read, write and scan sets, the
 * merge of a scan with the txn's own writes and the validation at commit
 * are the same code for both.
 *
 * A store_txn holds:
 *  - snap: the backend transaction all reads come from: a snapshot of the
 *    newest commit or, in a locked txn, one that holds the backend's write
 *    lock. It stays open until commit or abort, so every store__val it
 *    returned stays valid; the read set points into it instead of copying
 *    values. Nothing is written into it before the commit.
 *  - the write set: writes buffered in an array sorted by key (byte
 *    order: memcmp, then shorter first), each a value or a tombstone.
 *  - the read set: for each key read from the snapshot (store_get, and
 *    store_del, which reports whether the key existed), whether it was
 *    there and the value seen. Keys answered by the write set are not
 *    recorded: they do not depend on other transactions.
 *  - the scan set: for each store_scan, its prefix, how far it went (up to
 *    and including the last key it delivered, or the whole prefix range
 *    when it ran out of keys) and every snapshot entry it consumed in that
 *    range, shadowed or not.
 *
 * store_txn_commit() begins the backend's write transaction (.wbegin)
 * while the snapshot's values are still valid, checks that no response is
 * committed under the request id yet (STORE_EDONE: the request ran
 * before), then byte for byte that every recorded read and every recorded
 * scan range reads the same in the write transaction, and only then
 * applies the writes and the response record; any difference is
 * STORE_ECONFLICT and nothing is applied. (LMDB's write transaction holds
 * its one write lock; PostgreSQL's is SERIALIZABLE, so two commits that
 * validate and write concurrently cannot both succeed: the loser's
 * serialization failure is STORE_ECONFLICT too.) A transaction that wrote
 * nothing and stores no response commits without a write transaction: its
 * reads came from one consistent snapshot.
 *
 * Before the backend commits, .room measures what the write transaction
 * leaves in use (LMDB's map; PostgreSQL has no such limit): one that would
 * pass the high-water mark (STORE_HIGH_WATER when it puts anything, else
 * STORE_DELETE_WATER) is aborted with STORE_EFULL, so the pages above stay
 * free for the prune, which always needs some (store.h, "Room").
 *
 * A locked txn reads from a transaction that holds the write lock, which
 * nobody else can change: it records no reads and its commit validates
 * nothing, it checks the response record and applies the writes into that
 * same transaction.
 *
 * A store_txn is used by one thread at a time. A scan callback may call
 * store_get/put/del/scan on the same txn (the scan re-seeks its position in
 * the write set when it changes) but must not commit or abort it.
 * Any backend or allocation failure marks the txn failed: later calls return
 * STORE_EBADTXN and its commit applies nothing.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TXN_OPEN, TXN_FAILED };

typedef struct wentry {
    char *key; /* one allocation: key bytes, then value bytes */
    size_t klen;
    char *val;
    size_t vlen;
    int del;
} wentry;

/* Read entries come from blocks owned by the transaction and freed with it
 * (a page renders from tens of reads: no malloc and free each). */
typedef struct ablock {
    struct ablock *next;
    size_t used, cap;
    char data[]; /* 8-aligned: it follows three words */
} ablock;

#define ABLOCK_SIZE 4096

typedef struct rentry {
    char *key;
    size_t klen;
    int found;
    store__val val; /* points into the snapshot when found */
} rentry;

typedef struct sitem {
    store__val key, val; /* both point into the snapshot */
} sitem;

typedef struct srec {
    char prefix[STORE_MAX_KEY];
    size_t plen;
    int bounded; /* 1: the scan stopped at end[0..elen) inclusive */
    char end[STORE_MAX_KEY];
    size_t elen;
    sitem *items;
    size_t n, cap;
} srec;

struct store_txn {
    store *s;
    store__tx *snap; /* begun at the first read (snap_open), at once when locked */
    int locked;      /* snap is the write transaction */
    int state;
    wentry **w;
    size_t nw, capw;
    unsigned long wgen; /* bumped whenever w changes shape or contents */
    rentry **r;
    size_t nr, capr;
    srec **scans;
    size_t ns, caps;
    struct store_pins *pins; /* store_txn_pin: the snapshot of another run */
    ablock *arena;           /* where r's entries live */
};

typedef struct store_pins store_pins;
typedef struct pin {
    const char *key, *val;
    uint32_t klen, vlen;
    int found;
} pin;

struct store_pins {
    char *buf; /* a copy of the snapshot */
    pin *p;
    size_t n;
    const char *scans; /* the scan section within buf */
    size_t scans_len;
    char stray[STORE_MAX_KEY + 1]; /* the first key read that the snapshot lacks */
    size_t stray_len;
    int strayed;
};
typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;
static int pinned_get(store_txn *t, const char *key, size_t klen, store__val *v, int *rc);

/* ---- helpers ---------------------------------------------------------- */

/* LMDB's default key order, which PostgreSQL's bytea shares. */
static int key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;

    if (c != 0) return c;
    return alen < blen ? -1 : alen > blen;
}

static int has_prefix(const void *k, size_t klen, const char *p, size_t plen)
{
    return klen >= plen && (plen == 0 || memcmp(k, p, plen) == 0);
}

static int val_eq(const store__val *a, const store__val *b)
{
    return a->size == b->size && (a->size == 0 || memcmp(a->data, b->data, a->size) == 0);
}

/* Grows *arr (of element size sz) so that it holds at least need elements. */
static int grow(void *arr, size_t *cap, size_t need, size_t sz)
{
    void **p = arr;
    size_t ncap = *cap ? *cap : 8;
    void *n;

    if (need <= *cap) return 0;
    while (ncap < need)
        ncap *= 2;
    n = realloc(*p, ncap * sz);
    if (n == NULL) return -ENOMEM;
    *p = n;
    *cap = ncap;
    return 0;
}

/* Marks t failed and returns rc (a backend failure is logged already). */
static int txn_fail(store_txn *t, int rc)
{
    t->state = TXN_FAILED;
    return rc;
}

static int check_key(store_txn *t, const char *key, size_t klen)
{
    if (t == NULL || (key == NULL && klen > 0)) return -EINVAL;
    if (t->state != TXN_OPEN) return STORE_EBADTXN;
    if (klen == 0) return -EINVAL;
    if (klen > STORE_MAX_KEY) return STORE_ETOOBIG;
    return 0;
}

/* Index of the first entry of t->w whose key is >= key (> key if after). */
static size_t w_lower(const store_txn *t, const char *key, size_t klen, int after)
{
    size_t lo = 0, hi = t->nw;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(t->w[mid]->key, t->w[mid]->klen, key, klen);

        if (c < 0 || (after && c == 0))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static wentry *w_find(const store_txn *t, const char *key, size_t klen)
{
    size_t i = w_lower(t, key, klen, 0);

    if (i < t->nw && key_cmp(t->w[i]->key, t->w[i]->klen, key, klen) == 0) return t->w[i];
    return NULL;
}

static size_t r_lower(const store_txn *t, const char *key, size_t klen)
{
    size_t lo = 0, hi = t->nr;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (key_cmp(t->r[mid]->key, t->r[mid]->klen, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Inserts or replaces the buffered write of key (val NULL: a tombstone). */
static int w_set(store_txn *t, const char *key, size_t klen, const char *val, size_t vlen, int del)
{
    size_t i = w_lower(t, key, klen, 0);
    int exists = i < t->nw && key_cmp(t->w[i]->key, t->w[i]->klen, key, klen) == 0;
    wentry *e = malloc(sizeof(*e) + klen + (del ? 0 : vlen) + 1);

    if (e == NULL) return -ENOMEM;
    e->key = (char *)(e + 1);
    e->klen = klen;
    memcpy(e->key, key, klen);
    e->val = e->key + klen;
    e->vlen = del ? 0 : vlen;
    if (e->vlen > 0) memcpy(e->val, val, vlen);
    e->val[e->vlen] = '\0';
    e->del = del;
    if (exists) {
        free(t->w[i]);
        t->w[i] = e;
    } else {
        if (grow(&t->w, &t->capw, t->nw + 1, sizeof(*t->w)) != 0) {
            free(e);
            return -ENOMEM;
        }
        memmove(t->w + i + 1, t->w + i, (t->nw - i) * sizeof(*t->w));
        t->w[i] = e;
        t->nw++;
    }
    t->wgen++;
    return 0;
}

static void *arena_alloc(store_txn *t, size_t n)
{
    ablock *b = t->arena;
    n = (n + 7) & ~(size_t)7;
    if (b == NULL || b->cap - b->used < n) {
        size_t cap = n > ABLOCK_SIZE - sizeof(*b) ? n : ABLOCK_SIZE - sizeof(*b);
        if ((b = malloc(sizeof(*b) + cap)) == NULL) return NULL;
        b->next = t->arena;
        b->used = 0;
        b->cap = cap;
        t->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

/* Records that key was read from the snapshot (found or not). */
static int r_note(store_txn *t, const char *key, size_t klen, int found, const store__val *val)
{
    size_t i = r_lower(t, key, klen);
    rentry *e;

    if (i < t->nr && key_cmp(t->r[i]->key, t->r[i]->klen, key, klen) == 0)
        return 0; /* the snapshot answers the same every time */
    if (grow(&t->r, &t->capr, t->nr + 1, sizeof(*t->r)) != 0) return -ENOMEM;
    e = arena_alloc(t, sizeof(*e) + klen);
    if (e == NULL) return -ENOMEM;
    e->key = (char *)(e + 1);
    memcpy(e->key, key, klen);
    e->klen = klen;
    e->found = found;
    if (found)
        e->val = *val;
    else
        e->val.data = NULL, e->val.size = 0;
    memmove(t->r + i + 1, t->r + i, (t->nr - i) * sizeof(*t->r));
    t->r[i] = e;
    t->nr++;
    return 0;
}

/* The snapshot a transaction reads from is taken when it first reads, not
 * when it begins: a request that never touches the store costs nothing
 * there (on PostgreSQL, no round trip). Its reads are validated at commit
 * all the same, wherever the snapshot was taken. */
static int snap_open(store_txn *t)
{
    return t->snap != NULL ? 0 : t->s->ops->begin(t->s, t->locked, &t->snap);
}

/* Reads key from the snapshot and records the read.
 * @return 0 (found, *v set), STORE_ENOTFOUND or a failure */
static int snap_get(store_txn *t, const char *key, size_t klen, store__val *v)
{
    int rc;

    if (t->pins != NULL && pinned_get(t, key, klen, v, &rc)) return rc;
    if ((rc = snap_open(t)) != 0) return txn_fail(t, rc);
    rc = t->s->ops->get(t->snap, key, klen, v);
    if (rc != 0 && rc != STORE_ENOTFOUND) return txn_fail(t, rc);
    if (!t->locked && r_note(t, key, klen, rc == 0, v) != 0) return txn_fail(t, -ENOMEM);
    return rc == 0 ? 0 : STORE_ENOTFOUND;
}

/* ---- begin, get, put, del --------------------------------------------- */

static int txn_begin(store *s, int locked, store_txn **out)
{
    store_txn *t;
    int rc;

    if (s == NULL || out == NULL) return -EINVAL;
    t = calloc(1, sizeof(*t));
    if (t == NULL) return -ENOMEM;
    t->s = s;
    t->locked = locked;
    if (locked && (rc = snap_open(t)) != 0) { /* takes the write lock now */
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int store_txn_begin(store *s, store_txn **out)
{
    return txn_begin(s, 0, out);
}

int store_txn_begin_locked(store *s, store_txn **out)
{
    return txn_begin(s, 1, out);
}

int store_get(store_txn *t, const char *key, size_t klen, const char **val, size_t *vlen)
{
    wentry *w;
    store__val v;
    int rc;

    if ((rc = check_key(t, key, klen)) != 0) return rc;
    if (val == NULL || vlen == NULL) return -EINVAL;
    if ((w = w_find(t, key, klen)) != NULL) {
        if (w->del) return STORE_ENOTFOUND;
        *val = w->val;
        *vlen = w->vlen;
        return 0;
    }
    if ((rc = snap_get(t, key, klen, &v)) != 0) return rc;
    *val = v.data;
    *vlen = v.size;
    return 0;
}

int store_put(store_txn *t, const char *key, size_t klen, const char *val, size_t vlen)
{
    int rc;

    if ((rc = check_key(t, key, klen)) != 0) return rc;
    if (val == NULL && vlen > 0) return -EINVAL;
    if (vlen > STORE_MAX_VALUE) return STORE_ETOOBIG;
    if (w_set(t, key, klen, val, vlen, 0) != 0) return txn_fail(t, -ENOMEM);
    return 0;
}

int store_del(store_txn *t, const char *key, size_t klen)
{
    wentry *w;
    store__val v;
    int rc;

    if ((rc = check_key(t, key, klen)) != 0) return rc;
    if ((w = w_find(t, key, klen)) != NULL) {
        if (w->del) return STORE_ENOTFOUND;
    } else if ((rc = snap_get(t, key, klen, &v)) != 0) {
        return rc; /* absent: nothing to delete, the read is recorded */
    }
    if (w_set(t, key, klen, NULL, 0, 1) != 0) return txn_fail(t, -ENOMEM);
    return 0;
}

/* ---- scan --------------------------------------------------------------- */

static int srec_add(store_txn *t, const char *prefix, size_t plen, size_t *idx)
{
    srec *r;

    if (grow(&t->scans, &t->caps, t->ns + 1, sizeof(*t->scans)) != 0) return -ENOMEM;
    r = calloc(1, sizeof(*r));
    if (r == NULL) return -ENOMEM;
    if (plen > 0) memcpy(r->prefix, prefix, plen);
    r->plen = plen;
    t->scans[t->ns] = r;
    *idx = t->ns++;
    return 0;
}

static int srec_item(srec *r, const store__val *k, const store__val *v)
{
    if (grow(&r->items, &r->cap, r->n + 1, sizeof(*r->items)) != 0) return -ENOMEM;
    r->items[r->n].key = *k;
    r->items[r->n].val = *v;
    r->n++;
    return 0;
}

/* Moves the cursor (to the first key >= prefix when first, else to the
 * next key) and tells whether it is on a key with the prefix.
 * @return 1, 0 or an error */
static int cursor_step(const store *s, store__cur *cur, int first, const char *prefix, size_t plen,
                       store__val *k, store__val *v)
{
    int rc = first ? s->ops->cur_first(cur, prefix, plen, k, v) : s->ops->cur_next(cur, k, v);

    if (rc <= 0) return rc;
    return has_prefix(k->data, k->size, prefix, plen);
}

/* State of one merge of the snapshot with the write set. */
typedef struct scan_state {
    store__cur *cur;
    int s_ok; /* the cursor is on a key with the prefix */
    store__val sk, sv;
    size_t wi; /* next write entry */
    unsigned long wgen;
    char last[STORE_MAX_KEY]; /* last key delivered */
    size_t llen;
    size_t delivered;
} scan_state;

static int w_ok(const store_txn *t, const scan_state *st, const char *prefix, size_t plen)
{
    return st->wi < t->nw && has_prefix(t->w[st->wi]->key, t->w[st->wi]->klen, prefix, plen);
}

/* Delivers one entry; @return 1 when the scan must stop there. */
static int deliver(store_txn *t, scan_state *st, const char *k, size_t kl, const char *v, size_t vl,
                   size_t limit, store_scan_cb cb, void *arg)
{
    int stop;

    memcpy(st->last, k, kl);
    st->llen = kl;
    st->delivered++;
    stop = cb(arg, k, kl, v, vl) != 0;
    if (st->wgen != t->wgen) { /* the callback wrote: find our place again */
        st->wi = w_lower(t, st->last, st->llen, 1);
        st->wgen = t->wgen;
    }
    return stop || st->delivered == limit || t->state != TXN_OPEN;
}

static int scan_merge(store_txn *t, size_t ri, scan_state *st, size_t limit, store_scan_cb cb,
                      void *arg)
{
    const char *prefix = t->scans[ri]->prefix;
    size_t plen = t->scans[ri]->plen;

    for (;;) {
        int wk = w_ok(t, st, prefix, plen), c, stop = 0;
        wentry *w = wk ? t->w[st->wi] : NULL;

        if (!st->s_ok && !wk) return 0; /* the whole prefix range was read */
        if (!st->s_ok)
            c = 1;
        else if (!wk)
            c = -1;
        else
            c = key_cmp(st->sk.data, st->sk.size, w->key, w->klen);
        if (c <= 0 && srec_item(t->scans[ri], &st->sk, &st->sv) != 0) return txn_fail(t, -ENOMEM);
        if (c < 0) {
            store__val k = st->sk, v = st->sv;

            st->s_ok = cursor_step(t->s, st->cur, 0, prefix, plen, &st->sk, &st->sv);
            stop = deliver(t, st, k.data, k.size, v.data, v.size, limit, cb, arg);
        } else {
            if (c == 0) st->s_ok = cursor_step(t->s, st->cur, 0, prefix, plen, &st->sk, &st->sv);
            st->wi++;
            if (!w->del) stop = deliver(t, st, w->key, w->klen, w->val, w->vlen, limit, cb, arg);
        }
        if (st->s_ok < 0) return txn_fail(t, st->s_ok);
        if (stop) {
            srec *r = t->scans[ri];

            r->bounded = 1;
            memcpy(r->end, st->last, st->llen);
            r->elen = st->llen;
            return t->state == TXN_OPEN ? 0 : STORE_EBADTXN;
        }
    }
}

int store_scan(store_txn *t, const char *prefix, size_t plen, size_t limit, store_scan_cb cb,
               void *arg)
{
    scan_state st;
    size_t ri;
    int rc;

    if (t == NULL || cb == NULL || (prefix == NULL && plen > 0)) return -EINVAL;
    if (t->state != TXN_OPEN) return STORE_EBADTXN;
    if (plen > STORE_MAX_KEY) return STORE_ETOOBIG;
    if (limit == 0) return 0;
    memset(&st, 0, sizeof(st));
    if ((rc = snap_open(t)) != 0 || (rc = t->s->ops->cur_open(t->snap, &st.cur)) != 0)
        return txn_fail(t, rc);
    if (srec_add(t, prefix, plen, &ri) != 0) {
        t->s->ops->cur_close(st.cur);
        return txn_fail(t, -ENOMEM);
    }
    st.s_ok = cursor_step(t->s, st.cur, 1, prefix, plen, &st.sk, &st.sv);
    if (st.s_ok < 0) {
        rc = txn_fail(t, st.s_ok);
    } else {
        st.wi = w_lower(t, prefix, plen, 0);
        st.wgen = t->wgen;
        rc = scan_merge(t, ri, &st, limit, cb, arg);
    }
    t->s->ops->cur_close(st.cur);
    return rc;
}

/* ---- commit and abort ------------------------------------------------- */

static void txn_free(store_txn *t)
{
    for (size_t i = 0; i < t->nw; i++)
        free(t->w[i]);
    while (t->arena != NULL) { /* the entries of r */
        ablock *next = t->arena->next;
        free(t->arena);
        t->arena = next;
    }
    for (size_t i = 0; i < t->ns; i++) {
        free(t->scans[i]->items);
        free(t->scans[i]);
    }
    free(t->w);
    free(t->r);
    free(t->scans);
    if (t->pins != NULL) {
        free(t->pins->p);
        free(t->pins->buf);
        free(t->pins);
    }
    if (t->snap != NULL) t->s->ops->end(t->snap);
    free(t);
}

/* Re-runs one recorded scan in wtxn. @return 0, STORE_ECONFLICT or an error */
static int validate_scan(store_txn *t, store__tx *wtxn, const srec *r)
{
    store__cur *cur;
    store__val k, v;
    size_t i = 0;
    int ok, rc = 0;

    if ((rc = t->s->ops->cur_open(wtxn, &cur)) != 0) return rc;
    ok = cursor_step(t->s, cur, 1, r->prefix, r->plen, &k, &v);
    for (;;) {
        if (ok < 0) {
            rc = ok;
            break;
        }
        if (ok && r->bounded && key_cmp(k.data, k.size, r->end, r->elen) > 0) ok = 0;
        if (!ok || i == r->n) {
            rc = (!ok && i == r->n) ? 0 : STORE_ECONFLICT;
            break;
        }
        if (!val_eq(&k, &r->items[i].key) || !val_eq(&v, &r->items[i].val)) {
            rc = STORE_ECONFLICT;
            break;
        }
        i++;
        ok = cursor_step(t->s, cur, 0, r->prefix, r->plen, &k, &v);
    }
    t->s->ops->cur_close(cur);
    return rc;
}

/* @return 0, STORE_ECONFLICT or an error */
static int validate(store_txn *t, store__tx *wtxn)
{
    for (size_t i = 0; i < t->nr; i++) {
        const rentry *e = t->r[i];
        store__val v;
        int rc = t->s->ops->get(wtxn, e->key, e->klen, &v);

        if (rc != 0 && rc != STORE_ENOTFOUND) return rc;
        if ((rc == 0) != e->found || (e->found && !val_eq(&v, &e->val))) return STORE_ECONFLICT;
    }
    for (size_t i = 0; i < t->ns; i++) {
        int rc = validate_scan(t, wtxn, t->scans[i]);

        if (rc != 0) return rc;
    }
    return 0;
}

/* Writes the buffered writes and the response record into wtxn.
 * @return 0 or an error */
static int apply(store_txn *t, store__tx *wtxn, const char *req_id, const char *resp,
                 size_t resp_len)
{
    const store__ops *ops = t->s->ops;
    int rc;

    for (size_t i = 0; i < t->nw; i++) {
        wentry *e = t->w[i];

        if (e->del)
            rc = ops->del(wtxn, e->key, e->klen);
        else
            rc = ops->put(wtxn, e->key, e->klen, e->val, e->vlen);
        if (rc != 0) return rc;
    }
    if (req_id != NULL) return ops->resp_put(wtxn, req_id, resp, resp_len);
    return 0;
}

/* The high-water mark t's commit must stay under: a txn that only
 * deletes (plus its response record) may go higher, so that a full map
 * can always be emptied by the application too. */
static unsigned water_of(const store_txn *t)
{
    for (size_t i = 0; i < t->nw; i++)
        if (!t->w[i]->del) return STORE_HIGH_WATER;
    return STORE_DELETE_WATER;
}

static int check_commit_args(const char *req_id, const char *resp, size_t resp_len)
{
    size_t n;

    if (req_id == NULL) return 0;
    n = strlen(req_id);
    if (n == 0 || (resp == NULL && resp_len > 0)) return -EINVAL;
    if (n > STORE_MAX_KEY || resp_len > STORE_MAX_RECORD) return STORE_ETOOBIG;
    return 0;
}

int store_txn_commit(store_txn *t, const char *req_id, const char *resp, size_t resp_len)
{
    const store__ops *ops;
    store__tx *wtxn = NULL;
    int rc;

    if (t == NULL) return -EINVAL;
    ops = t->s->ops;
    if (t->state != TXN_OPEN) {
        rc = STORE_EBADTXN;
        goto out;
    }
    if ((rc = check_commit_args(req_id, resp, resp_len)) != 0) goto out;
    if (t->nw == 0 && req_id == NULL) goto out; /* read-only: serializable at its snapshot */
    if ((rc = snap_open(t)) != 0 || (rc = ops->wbegin(t->snap, t->locked, &wtxn)) != 0) goto out;
    if (wtxn == t->snap) t->snap = NULL; /* ended with wtxn */
    /* The response record is checked before the reads: a request that
     * ran before (its first worker died after committing) must not apply
     * its effects a second time, and is answered from the record instead.
     * Not a conflict: running it again could never commit. A locked txn's
     * reads are the write transaction's: nothing to validate. */
    if ((req_id != NULL && (rc = ops->resp_absent(wtxn, req_id)) != 0) ||
        (!t->locked && (rc = validate(t, wtxn)) != 0) ||
        (rc = apply(t, wtxn, req_id, resp, resp_len)) != 0 ||
        (rc = ops->room(wtxn, water_of(t))) != 0) {
        ops->end(wtxn);
        goto out;
    }
    rc = ops->commit(wtxn);
out:
    txn_free(t);
    return rc;
}

size_t store_txn_nwrites(const store_txn *t)
{
    return t ? t->nw : 0;
}

void store_txn_abort(store_txn *t)
{
    if (t != NULL) txn_free(t);
}

/* ---- shadow runs: the snapshot a run saw, and a run pinned to it ------- *
 *
 * store_txn_snapshot encodes what a transaction read from its snapshot:
 * its read set (sorted by key) and its scan set (in call order), each
 * integer a little-endian u32:
 *   'g' klen key found vlen val            one per key read
 *   's' plen prefix bounded elen end n     one per scan, followed by its n
 *       (klen key vlen val)...             snapshot entries
 * A transaction pinned to such a snapshot (store_txn_pin) answers a read
 * of a key it lists with the value listed there, and records that read in
 * its read set with that value, so its commit validates the value the run
 * used against the store as it is then (a key changed since is a
 * conflict, never a silent mix). A key not listed is read from the store
 * and noted: the two runs took different paths. Scans are not served from
 * the snapshot; store_txn_pin_check compares the scan set's encoding with
 * the pinned one instead (different entries: the inputs differed). */

static int sb_put(sbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        char *nb = realloc(b->p, ncap);
        if (nb == NULL) return -ENOMEM;
        b->p = nb;
        b->cap = ncap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

static int sb_u32(sbuf *b, size_t v)
{
    unsigned char x[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    return sb_put(b, x, 4);
}

static int sb_bytes(sbuf *b, const void *p, size_t n)
{
    return sb_u32(b, n) || sb_put(b, p, n) ? -ENOMEM : 0;
}

static int encode_scans(const store_txn *t, sbuf *b)
{
    for (size_t i = 0; i < t->ns; i++) {
        const srec *r = t->scans[i];
        if (sb_put(b, "s", 1) || sb_bytes(b, r->prefix, r->plen) || sb_u32(b, (size_t)r->bounded) ||
            sb_bytes(b, r->end, r->bounded ? r->elen : 0) || sb_u32(b, r->n))
            return -ENOMEM;
        for (size_t j = 0; j < r->n; j++)
            if (sb_bytes(b, r->items[j].key.data, r->items[j].key.size) ||
                sb_bytes(b, r->items[j].val.data, r->items[j].val.size))
                return -ENOMEM;
    }
    return 0;
}

int store_txn_snapshot(const store_txn *t, char **out, size_t *len)
{
    sbuf b = {0};
    if (t == NULL || t->state != TXN_OPEN || t->locked) return STORE_EBADTXN;
    for (size_t i = 0; i < t->nr; i++) {
        const rentry *e = t->r[i];
        if (sb_put(&b, "g", 1) || sb_bytes(&b, e->key, e->klen) || sb_u32(&b, (size_t)e->found) ||
            sb_bytes(&b, e->val.data, e->val.size))
            goto nomem;
    }
    if (encode_scans(t, &b) != 0 || sb_put(&b, "", 0) != 0) goto nomem;
    if (b.p == NULL && (b.p = malloc(1)) == NULL) return -ENOMEM;
    *out = b.p;
    *len = b.len;
    return 0;
nomem:
    free(b.p);
    return -ENOMEM;
}

/* FNV-1a, 64 bits, from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 1099511628211ull;
    return h;
}

void store_txn_write_digest(const store_txn *t, char out[STORE_DIGEST_HEX])
{
    /* two independent 64-bit hashes of the sorted write set: a digest to
     * compare two runs of one request, not a defence against an attacker */
    uint64_t h[2] = {14695981039346656037ull, 0x9e3779b97f4a7c15ull};
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; t && i < t->nw; i++) {
            const wentry *e = t->w[i];
            uint64_t n[2] = {e->klen, e->del ? UINT64_MAX : e->vlen};
            h[k] = fnv(h[k], n, sizeof n);
            h[k] = fnv(h[k], e->key, e->klen);
            h[k] = fnv(h[k], e->val, e->del ? 0 : e->vlen);
        }
    snprintf(out, STORE_DIGEST_HEX, "%016llx%016llx", (unsigned long long)h[0],
             (unsigned long long)h[1]);
}

static int rd_u32(const char **p, const char *end, uint32_t *v)
{
    if (end - *p < 4) return -EINVAL;
    const unsigned char *c = (const unsigned char *)*p;
    *v = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | (uint32_t)c[3] << 24;
    *p += 4;
    return 0;
}

static int rd_bytes(const char **p, const char *end, const char **b, uint32_t *n)
{
    if (rd_u32(p, end, n) != 0 || (size_t)(end - *p) < *n) return -EINVAL;
    *b = *p;
    *p += *n;
    return 0;
}

/* Checks the scan section [p, end) is well formed. */
static int check_scans(const char *p, const char *end)
{
    while (p < end) {
        const char *b;
        uint32_t n, x, items;
        if (*p++ != 's' || rd_bytes(&p, end, &b, &n) || rd_u32(&p, end, &x) ||
            rd_bytes(&p, end, &b, &n) || rd_u32(&p, end, &items))
            return -EINVAL;
        for (uint32_t i = 0; i < items; i++)
            if (rd_bytes(&p, end, &b, &n) || rd_bytes(&p, end, &b, &n)) return -EINVAL;
    }
    return 0;
}

int store_txn_pin(store_txn *t, const char *snap, size_t len)
{
    if (t == NULL || t->locked || t->pins != NULL || (snap == NULL && len > 0)) return -EINVAL;
    store_pins *ps = calloc(1, sizeof *ps);
    if (ps == NULL || (ps->buf = malloc(len ? len : 1)) == NULL) {
        free(ps);
        return -ENOMEM;
    }
    if (len) memcpy(ps->buf, snap, len);
    const char *p = ps->buf, *end = ps->buf + len;
    size_t cap = 0;
    while (p < end && *p == 'g') {
        pin e;
        uint32_t found;
        p++;
        if (rd_bytes(&p, end, &e.key, &e.klen) || rd_u32(&p, end, &found) ||
            rd_bytes(&p, end, &e.val, &e.vlen) || e.klen == 0 || e.klen > STORE_MAX_KEY ||
            (ps->n > 0 && key_cmp(ps->p[ps->n - 1].key, ps->p[ps->n - 1].klen, e.key, e.klen) >= 0))
            goto bad;
        e.found = found != 0;
        if (grow(&ps->p, &cap, ps->n + 1, sizeof *ps->p) != 0) goto nomem;
        ps->p[ps->n++] = e;
    }
    if (check_scans(p, end) != 0) goto bad;
    ps->scans = p;
    ps->scans_len = (size_t)(end - p);
    t->pins = ps;
    return 0;
bad:
    free(ps->p);
    free(ps->buf);
    free(ps);
    return -EINVAL;
nomem:
    free(ps->p);
    free(ps->buf);
    free(ps);
    return -ENOMEM;
}

/* A read of key that no write answered, in a pinned txn: served from the
 * snapshot when it lists the key (recorded with the listed value, which
 * the commit validates), else noted as a stray and read from the store.
 * @return 1 served (*v set; 0 found / STORE_ENOTFOUND in *rc), 0 not */
static int pinned_get(store_txn *t, const char *key, size_t klen, store__val *v, int *rc)
{
    store_pins *ps = t->pins;
    size_t lo = 0, hi = ps->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = key_cmp(ps->p[mid].key, ps->p[mid].klen, key, klen);
        if (c == 0) {
            const pin *e = &ps->p[mid];
            v->data = (void *)e->val;
            v->size = e->vlen;
            *rc = r_note(t, key, klen, e->found, v) != 0 ? txn_fail(t, -ENOMEM)
                  : e->found                             ? 0
                                                         : STORE_ENOTFOUND;
            return 1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!ps->strayed) {
        ps->strayed = 1;
        memcpy(ps->stray, key, klen);
        ps->stray_len = klen;
    }
    return 0;
}

int store_txn_pin_check(const store_txn *t, char *detail, size_t cap)
{
    const store_pins *ps = t ? t->pins : NULL;
    if (ps == NULL) return 0;
    if (ps->strayed) {
        snprintf(detail, cap, "the CEK run read a key the native run did not: %.*s",
                 (int)(ps->stray_len > 200 ? 200 : ps->stray_len), ps->stray);
        return 1;
    }
    sbuf b = {0};
    int rc = encode_scans(t, &b);
    if (rc == 0 && (b.len != ps->scans_len || (b.len && memcmp(b.p, ps->scans, b.len) != 0))) {
        snprintf(detail, cap, "the runs' scans saw different entries");
        rc = 2;
    }
    free(b.p);
    return rc < 0 ? 0 : rc;
}
