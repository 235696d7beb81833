/*
 * accessors.c - checked reads and writes of a node's fields, one node or many at a
 * time, for callers (such as Python through ctypes) that should not touch the struct
 * directly.
 */
#include "internal.h"

#include <math.h>

double value_data(const Value *v)
{
    return mc_check(v, MC_KIND_VALUE, "value_data", 1) == MICROCRAD_OK ? v->data : NAN;
}

double value_grad(const Value *v)
{
    return mc_check(v, MC_KIND_VALUE, "value_grad", 1) == MICROCRAD_OK ? v->grad : NAN;
}

int value_set_data(Value *v, double data)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_set_data", 1);
    if (status == MICROCRAD_OK)
        v->data = data;
    return status;
}

int value_set_grad(Value *v, double grad)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_set_grad", 1);
    if (status == MICROCRAD_OK)
        v->grad = grad;
    return status;
}

int value_op(const Value *v)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_op", 1);
    return status == MICROCRAD_OK ? v->op : status;
}

double value_param(const Value *v)
{
    return mc_check(v, MC_KIND_VALUE, "value_param", 1) == MICROCRAD_OK ? v->param : NAN;
}

int64_t value_n_prevs(const Value *v)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_n_prevs", 1);
    return status == MICROCRAD_OK ? (int64_t)v->n_prevs : status;
}

Value *value_prev(const Value *v, uint32_t i)
{
    if (mc_check(v, MC_KIND_VALUE, "value_prev", 1) != MICROCRAD_OK)
        return NULL;
    if (i >= v->n_prevs) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "value_prev: index %u out of range (node has %u operands)",
                 (unsigned)i, (unsigned)v->n_prevs);
        return NULL;
    }
    return v->prev[i];
}

/* Validates the arguments of the *_many functions: every node live before any is touched. */
static int check_many(const char *fn, int32_t n, Value *const *values, const double *array)
{
    if (n < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: n must be >= 0, got %ld", fn, (long)n);
    if (n > 0 && (!values || !array))
        return mc_error(MICROCRAD_ERR_NULL, "%s: NULL array with n = %ld", fn, (long)n);
    for (int32_t i = 0; i < n; i++) {
        int status = mc_check(values[i], MC_KIND_VALUE, fn, 2);
        if (status != MICROCRAD_OK)
            return status;
    }
    return MICROCRAD_OK;
}

int value_set_data_many(int32_t n, Value *const *values, const double *data)
{
    int status = check_many("value_set_data_many", n, values, data);
    for (int32_t i = 0; status == MICROCRAD_OK && i < n; i++)
        values[i]->data = data[i];
    return status;
}

int value_get_data_many(int32_t n, Value *const *values, double *out)
{
    int status = check_many("value_get_data_many", n, values, out);
    for (int32_t i = 0; status == MICROCRAD_OK && i < n; i++)
        out[i] = values[i]->data;
    return status;
}

int value_get_grad_many(int32_t n, Value *const *values, double *out)
{
    int status = check_many("value_get_grad_many", n, values, out);
    for (int32_t i = 0; status == MICROCRAD_OK && i < n; i++)
        out[i] = values[i]->grad;
    return status;
}
