/* store.c: the public API of store/ (store.h), dispatched to the backend
 * a store was opened with (store_int.h: LMDB in store_lmdb.c, PostgreSQL
 * in store_pg.c), and what both share: error strings, the clock, the
 * little-endian helpers. No state of its own; each call runs in the
 * caller's process and thread.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

const char *store_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case STORE_ECONFLICT: return "conflict: a value read by the transaction changed";
    case STORE_ENOTFOUND: return "not found";
    case STORE_ETOOBIG: return "key or value too big";
    case STORE_ELMDB: return "LMDB failure";
    case STORE_EBADTXN: return "transaction already failed";
    case STORE_EDONE: return "the request already committed a response";
    case STORE_EUNSAFE: return "directory not private to this user";
    case STORE_EFULL:
        return "store full: no room left in its map (--store-size); writes succeed again once "
               "old response records are pruned or data is deleted";
    case STORE_EPG: return "PostgreSQL failure";
    case STORE_ECONN: return "the connection to PostgreSQL is lost";
    case STORE_ESCHEMA:
        return "the database's schema is missing or of another version (run sxpool store "
               "migrate)";
    default: break;
    }
    if (err < 0 && err > -4096) return strerror(-err);
    return "unknown error";
}

int store_is_url(const char *location)
{
    return location != NULL && (strncmp(location, "postgresql://", 13) == 0 ||
                                strncmp(location, "postgres://", 11) == 0);
}

int store_open(const char *location, size_t map_size, store **out)
{
    if (location == NULL || out == NULL) return -EINVAL;
    if (store_is_url(location)) return store__pg_open(location, 0, out);
    return store__lmdb_open(location, map_size, out);
}

int store_migrate(const char *location)
{
    store *s;
    int rc;

    if (location == NULL) return -EINVAL;
    if (store_is_url(location))
        rc = store__pg_open(location, 1, &s);
    else
        rc = store__lmdb_open(location, 0, &s);
    if (rc == 0) store_close(s);
    return rc;
}

const char *store_backend(const store *s)
{
    return s ? s->ops->name : "none";
}

int store_check(store *s)
{
    if (s == NULL) return -EINVAL;
    return s->ops->check ? s->ops->check(s) : 0;
}

int store_broken(const store *s)
{
    return s ? s->broken : 0;
}

void store_close(store *s)
{
    if (s != NULL) s->ops->close(s);
}

int store_reader_check(store *s)
{
    return s ? s->ops->reader_check(s) : -EINVAL;
}

int store_release_pages(store *s)
{
    return s ? s->ops->release_pages(s) : -EINVAL;
}

int store_usage(store *s, size_t *used, size_t *size)
{
    if (s == NULL || used == NULL || size == NULL) return -EINVAL;
    return s->ops->usage(s, used, size);
}

int store_response_get(store *s, const char *req_id, char **resp, size_t *len)
{
    if (s == NULL || req_id == NULL || resp == NULL || len == NULL) return -EINVAL;
    return s->ops->response_get(s, req_id, resp, len);
}

int store_response_prune(store *s, int64_t before_ms, size_t max)
{
    if (s == NULL) return -EINVAL;
    return s->ops->response_prune(s, before_ms, max, 0);
}

int store_response_shed(store *s, int64_t floor_ms, size_t max)
{
    size_t used, size;
    int rc;

    if (s == NULL) return -EINVAL;
    if ((rc = s->ops->usage(s, &used, &size)) != 0) return rc;
    if (size == 0 || used * 100 <= size * STORE_SHED_WATER) return 0;
    return s->ops->response_prune(s, floor_ms, max, STORE_LOW_WATER);
}

int store_bl_add(store *s, const char *function, const char *code_hash, const char *abi_hash,
                 const char *reason)
{
    if (s == NULL) return -EINVAL;
    return s->ops->bl_add(s, function, code_hash, abi_hash, reason);
}

int store_bl_remove(store *s, const char *function, const char *code_hash, const char *abi_hash)
{
    if (s == NULL) return -EINVAL;
    return s->ops->bl_remove(s, function, code_hash, abi_hash);
}

int store_bl_each(store *s, const char *abi_hash, store_bl_cb cb, void *arg)
{
    if (s == NULL || cb == NULL) return -EINVAL;
    return s->ops->bl_each(s, abi_hash, cb, arg);
}

int store_bl_clear(store *s, const char *glob)
{
    if (s == NULL) return -EINVAL;
    return s->ops->bl_clear(s, glob);
}

int store_bl_listen(store *s, int *fd)
{
    if (s == NULL || fd == NULL) return -EINVAL;
    return s->ops->bl_listen ? s->ops->bl_listen(s, fd) : -ENOTSUP;
}

int store_bl_notified(store *s, store_bl_cb cb, void *arg)
{
    if (s == NULL || cb == NULL) return -EINVAL;
    return s->ops->bl_notified ? s->ops->bl_notified(s, cb, arg) : -ENOTSUP;
}

int64_t store__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store__put_i64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;

    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(u >> (8 * i));
}

int64_t store__get_i64(const unsigned char *p)
{
    uint64_t u = 0;

    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return (int64_t)u;
}
