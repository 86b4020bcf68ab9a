/* store_bl.c: the pool-wide blacklist of native functions in LMDB ("blacklist").
 *
 * Key:   function "\0" code_hash "\0" abi_hash  (no terminating NUL)
 * Value: time_ms (8 bytes, little-endian), count (4 bytes, little-endian),
 *        then the reason's bytes (at most 127, no NUL)
 *
 * Each call is its own short LMDB transaction, so it can run on the
 * supervisor's loop thread or in the CLI. The sizes of the strings are
 * bounded by the fields of store_bl_entry; longer names are STORE_ETOOBIG and
 * a longer reason is cut to fit. Records that do not parse (not written by
 * this file) are skipped by store_bl_each and store_bl_clear, with a log line.
 */
#include "store/store_lmdb.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#define BL_HDR 12 /* time_ms + count */
#define BL_KEY_MAX (sizeof(((store_bl_entry *)0)->function) + 2 * 40)

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Builds the key in buf (BL_KEY_MAX bytes). @return its length or an error */
static int bl_key(char *buf, const char *function, const char *code_hash, const char *abi_hash)
{
    size_t f, c, a;
    store_bl_entry *e = NULL;

    if (function == NULL || code_hash == NULL || abi_hash == NULL) return -EINVAL;
    f = strlen(function);
    c = strlen(code_hash);
    a = strlen(abi_hash);
    if (f == 0) return -EINVAL;
    if (f >= sizeof(e->function) || c >= sizeof(e->code_hash) || a >= sizeof(e->abi_hash))
        return STORE_ETOOBIG;
    memcpy(buf, function, f);
    buf[f] = '\0';
    memcpy(buf + f + 1, code_hash, c);
    buf[f + 1 + c] = '\0';
    memcpy(buf + f + 2 + c, abi_hash, a);
    return (int)(f + c + a + 2);
}

/* Splits a key into e's three names. @return 0, or -1 if it does not parse */
static int bl_parse_key(const MDB_val *k, store_bl_entry *e)
{
    const char *p = k->mv_data, *end = p + k->mv_size;
    const char *z1 = memchr(p, '\0', k->mv_size), *z2;

    if (z1 == NULL) return -1;
    z2 = memchr(z1 + 1, '\0', (size_t)(end - z1 - 1));
    if (z2 == NULL || (size_t)(z1 - p) >= sizeof(e->function) ||
        (size_t)(z2 - z1 - 1) >= sizeof(e->code_hash) ||
        (size_t)(end - z2 - 1) >= sizeof(e->abi_hash) ||
        memchr(z2 + 1, '\0', (size_t)(end - z2 - 1)) != NULL)
        return -1;
    memcpy(e->function, p, (size_t)(z1 - p));
    e->function[z1 - p] = '\0';
    memcpy(e->code_hash, z1 + 1, (size_t)(z2 - z1 - 1));
    e->code_hash[z2 - z1 - 1] = '\0';
    memcpy(e->abi_hash, z2 + 1, (size_t)(end - z2 - 1));
    e->abi_hash[end - z2 - 1] = '\0';
    return 0;
}

/* Fills e's reason, time and count from a value. @return 0 or -1 */
static int bl_parse_val(const MDB_val *v, store_bl_entry *e)
{
    size_t n;

    if (v->mv_size < BL_HDR || v->mv_size - BL_HDR >= sizeof(e->reason)) return -1;
    e->time_ms = store__get_i64(v->mv_data);
    e->count = get_u32((const unsigned char *)v->mv_data + 8);
    n = v->mv_size - BL_HDR;
    memcpy(e->reason, (const char *)v->mv_data + BL_HDR, n);
    e->reason[n] = '\0';
    return 0;
}

int store__lmdb_bl_add(store *base, const char *function, const char *code_hash,
                       const char *abi_hash, const char *reason)
{
    store_lmdb *s = store__lmdb(base);
    char kbuf[BL_KEY_MAX];
    unsigned char vbuf[BL_HDR + sizeof(((store_bl_entry *)0)->reason)];
    size_t rlen = reason ? strlen(reason) : 0;
    uint32_t count = 1;
    MDB_txn *txn;
    MDB_val k, v;
    int klen, rc;

    if ((klen = bl_key(kbuf, function, code_hash, abi_hash)) < 0) return klen;
    if (rlen > sizeof(vbuf) - BL_HDR - 1) rlen = sizeof(vbuf) - BL_HDR - 1;
    k.mv_data = kbuf;
    k.mv_size = (size_t)klen;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return store__fail("add to the blacklist", rc);
    rc = mdb_get(txn, s->blacklist, &k, &v);
    if (rc == 0 && v.mv_size >= BL_HDR) {
        count = get_u32((const unsigned char *)v.mv_data + 8);
        count = count == UINT32_MAX ? count : count + 1;
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        goto fail;
    }
    store__put_i64(vbuf, store__now_ms());
    put_u32(vbuf + 8, count);
    if (rlen > 0) memcpy(vbuf + BL_HDR, reason, rlen);
    v.mv_data = vbuf;
    v.mv_size = BL_HDR + rlen;
    if ((rc = mdb_put(txn, s->blacklist, &k, &v, 0)) != 0) goto fail;
    if ((rc = mdb_txn_commit(txn)) != 0) return store__fail("add to the blacklist", rc);
    return 0;

fail:
    mdb_txn_abort(txn);
    return store__fail("add to the blacklist", rc);
}

int store__lmdb_bl_remove(store *base, const char *function, const char *code_hash,
                          const char *abi_hash)
{
    store_lmdb *s = store__lmdb(base);
    char kbuf[BL_KEY_MAX];
    MDB_txn *txn;
    MDB_val k;
    int klen, rc;

    if ((klen = bl_key(kbuf, function, code_hash, abi_hash)) < 0) return klen;
    k.mv_data = kbuf;
    k.mv_size = (size_t)klen;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return store__fail("remove from the blacklist", rc);
    rc = mdb_del(txn, s->blacklist, &k, NULL);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return STORE_ENOTFOUND;
    }
    if (rc != 0) {
        mdb_txn_abort(txn);
        return store__fail("remove from the blacklist", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return store__fail("remove from the blacklist", rc);
    return 0;
}

int store__lmdb_bl_each(store *base, const char *abi_hash, store_bl_cb cb, void *arg)
{
    store_lmdb *s = store__lmdb(base);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rc;

    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn)) != 0)
        return store__fail("read the blacklist", rc);
    if ((rc = mdb_cursor_open(txn, s->blacklist, &cur)) != 0) {
        mdb_txn_abort(txn);
        return store__fail("read the blacklist", rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        store_bl_entry e;

        if (bl_parse_key(&k, &e) != 0 || bl_parse_val(&v, &e) != 0) {
            fprintf(stderr, "store: skipping a malformed blacklist record\n");
            continue;
        }
        if (abi_hash != NULL && strcmp(abi_hash, e.abi_hash) != 0) continue;
        if (cb(arg, &e) != 0) break;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND) return store__fail("read the blacklist", rc);
    return 0;
}

static int glob_matches(const char *glob, const char *function)
{
    return glob == NULL || strcmp(glob, "*") == 0 || fnmatch(glob, function, 0) == 0;
}

int store__lmdb_bl_clear(store *base, const char *glob)
{
    store_lmdb *s = store__lmdb(base);
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int n = 0, rc;

    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return store__fail("clear the blacklist", rc);
    if ((rc = mdb_cursor_open(txn, s->blacklist, &cur)) != 0) {
        mdb_txn_abort(txn);
        return store__fail("clear the blacklist", rc);
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        store_bl_entry e;

        if (bl_parse_key(&k, &e) != 0) {
            fprintf(stderr, "store: skipping a malformed blacklist record\n");
            continue;
        }
        if (!glob_matches(glob, e.function)) continue;
        /* After a delete the cursor rests on the next record, and
         * MDB_NEXT returns that record rather than skipping it. */
        if ((rc = mdb_cursor_del(cur, 0)) != 0) break;
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return store__fail("clear the blacklist", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) return store__fail("clear the blacklist", rc);
    return n;
}
