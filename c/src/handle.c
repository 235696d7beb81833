/*
 * handle.c - argument checks shared by the opaque handles (optimizers, neurons,
 * layers, MLPs): the canary check, counterpart of mc_check_value for nodes, and the
 * output-array check of the networks' *_parameters functions.
 */
#include "internal.h"

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
