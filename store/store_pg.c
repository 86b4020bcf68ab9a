#include "store/store_int.h"
#include <errno.h>
int store__pg_open(const char *url, int migrate, store **out)
{
    (void)url, (void)migrate, (void)out;
    return -ENOTSUP;
}
