/* sx_read.h: the reader's interface inside vm/. */
#ifndef SX_READ_H
#define SX_READ_H

#include "vm/sx_core.h"

/* Reads every form in buf; raises read-error "LINE:COL: ..." on bad input. */
sx_val sx_read_all(sx_ctx *cx, const char *buf, size_t len);

/* R7RS number syntax (prefixes #x #b #o #d #e #i) in the given radix.
 * Returns the number or SX_FALSE; *overflow is set when an exact integer
 * is out of the 62-bit range. */
sx_val sx_parse_number(sx_ctx *cx, const char *s, size_t len, int radix, bool *overflow);

#endif
