/* wrk_internal.h: shared between the worker module's files. */
#ifndef SXPOOL_WRK_INTERNAL_H
#define SXPOOL_WRK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* Checks a --tier value: 0 for cek; prints why and returns < 0 otherwise. */
int wrk_parse_tier(const char *prog, const char *value);

/* Parses a byte size with an optional K, M or G suffix. */
bool wrk_parse_size(const char *s, size_t *out);

#endif
