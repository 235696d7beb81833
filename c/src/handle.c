/*
 * handle.c - what the opaque handles share besides their canary check (check.c): the
 * output-array check of the networks' *_parameters functions, and their allocation.
 */
#include "internal.h"

#include <stdio.h>

int mc_check_capacity(const char *fn, const void *out, int64_t capacity, int64_t count)
{
    if (capacity < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: capacity must be >= 0, got %lld", fn,
                        (long long)capacity);
    if (!out)
        return capacity == 0 ? MICROCRAD_OK
                             : mc_error(MICROCRAD_ERR_NULL,
                                        "%s: out is NULL but capacity is %lld", fn,
                                        (long long)capacity);
    if (capacity < count)
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "%s: out has room for %lld parameters but %lld are needed", fn,
                        (long long)capacity, (long long)count);
    return MICROCRAD_OK;
}

void *mc_alloc_handle(const char *fn, size_t bytes)
{
    void *p = mc_alloc(bytes);
    if (!p)
        mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    return p;
}

void *mc_alloc_array(const char *fn, size_t count, size_t item)
{
    /* At least one byte: a NULL from malloc(0) would read as a failure. */
    void *p = NULL;
    if (count <= SIZE_MAX / item)
        p = mc_alloc(count ? count * item : 1);
    if (!p)
        mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    return p;
}

void *mc_alloc_flexible(const char *fn, size_t header, size_t count, size_t item)
{
    void *p = NULL;
    if (count <= (SIZE_MAX - header) / item)
        p = mc_alloc(header + count * item);
    if (!p)
        mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
    return p;
}
