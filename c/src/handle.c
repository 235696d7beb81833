/*
 * handle.c - what the opaque handles (optimizers, neurons, layers, MLPs) share: the
 * canary check, counterpart of mc_check_value for nodes; the check of the node arrays
 * they are given (value_neuron's too); the output-array check of the networks'
 * *_parameters functions; and their allocation.
 */
#include "internal.h"

#include <stdio.h>

int mc_check_handle(const void *handle, uint32_t magic, uint32_t live, const char *type,
                    const char *fn, int arg)
{
    if (!handle)
        return mc_error(MICROCRAD_ERR_NULL, "%s: argument %d is NULL", fn, arg);
    if (magic == live)
        return MICROCRAD_OK;
    if (magic == MC_HANDLE_DEAD(live))
        return mc_error(MICROCRAD_ERR_RELEASED, "%s: argument %d is a freed %s", fn, arg, type);
    return mc_error(MICROCRAD_ERR_FOREIGN, "%s: argument %d is not a microcrad %s (canary 0x%08x)",
                    fn, arg, type, (unsigned)magic);
}

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

int mc_slot_error(const Value *v, const char *fn, int arg, const char *name, int32_t i)
{
    char where[96]; /* fn, followed by the slot */
    snprintf(where, sizeof where, "%s (%s[%ld])", fn, name, (long)i);
    return mc_check_value(v, where, arg);
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
