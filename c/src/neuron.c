/*
 * neuron.c - micrograd's Neuron: n_in weights and a bias, and act(b + w.x) built by
 * the fused op of ops_nn.c (one neuron node and one activation node).
 */
#include "internal.h"


struct microcrad_neuron {
    McHandle handle;          /* the canary, MC_MAGIC_NEURON while alive (see check.c) */
    Value *b;                 /* one reference held */
    int32_t n_in;
    microcrad_activation act;
    Value **w;                /* n_in weights, one reference held to each: an array of its
                                 own, so the struct stays a small block (see mc_alloc_handle) */
};

#define CHECK_NEURON(neuron, fn) mc_check((neuron), MC_KIND_NEURON, (fn), 1)

int mc_check_inputs(int32_t n, Value *const *x, const char *fn, int arg)
{
    if (n > 0 && !x)
        return mc_error(MICROCRAD_ERR_NULL, "%s: argument %d is NULL but %ld inputs are needed",
                        fn, arg, (long)n);
    for (int32_t i = 0; i < n; i++) {
        int status = mc_check_slot(x[i], fn, arg, "x", i);
        if (status != MICROCRAD_OK)
            return status;
    }
    return MICROCRAD_OK;
}

int mc_check_rng(const uint64_t *rng, const char *fn, int arg)
{
    return rng ? MICROCRAD_OK : mc_error(MICROCRAD_ERR_NULL, "%s: argument %d is NULL", fn, arg);
}

microcrad_neuron *microcrad_neuron_create(int32_t n_in, microcrad_activation act, uint64_t *rng)
{
    const char *fn = "microcrad_neuron_create";
    if (n_in < 0) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "%s: n_in must be >= 0, got %ld", fn, (long)n_in);
        return NULL;
    }
    if (mc_check_activation(act, fn, 2) != MICROCRAD_OK || mc_check_rng(rng, fn, 3) != MICROCRAD_OK)
        return NULL;
    microcrad_neuron *neuron = mc_alloc_handle(fn, sizeof *neuron);
    if (!neuron)
        return NULL;
    neuron->w = mc_alloc_array(fn, (size_t)n_in, sizeof neuron->w[0]);
    if (!neuron->w) {
        mc_free(neuron);
        return NULL;
    }
    /* Draw from a copy, so that a failure leaves the caller's generator untouched. */
    uint64_t state = *rng;
    int32_t made = 0;
    for (; made < n_in; made++) {
        double weight = microcrad_random_uniform(&state, -1.0, 1.0);
        neuron->w[made] = mc_node_make(fn, MICROCRAD_OP_LEAF, weight, 0.0, 0, NULL);
        if (!neuron->w[made])
            goto fail;
    }
    neuron->b = mc_node_make(fn, MICROCRAD_OP_LEAF, 0.0, 0.0, 0, NULL);
    if (!neuron->b)
        goto fail;
    neuron->n_in = n_in;
    neuron->act = act;
    neuron->handle = (McHandle){.magic = MC_MAGIC_NEURON}; /* the unused bytes zeroed too */
    *rng = state;
    return neuron;

fail:
    while (made-- > 0)
        value_release(neuron->w[made]);
    mc_free(neuron->w);
    mc_free(neuron);
    return NULL;
}

Value *mc_neuron_output(const microcrad_neuron *neuron, Value *const *x, const char *fn)
{
    return mc_neuron_make(fn, neuron->n_in, neuron->w, x, neuron->b, neuron->act);
}

Value *microcrad_neuron_forward(const microcrad_neuron *neuron, Value *const *x)
{
    const char *fn = "microcrad_neuron_forward";
    if (CHECK_NEURON(neuron, fn) != MICROCRAD_OK ||
        mc_check_inputs(neuron->n_in, x, fn, 2) != MICROCRAD_OK ||
        mc_results_reserve(1, fn) != MICROCRAD_OK)
        return NULL;
    return mc_result(mc_neuron_output(neuron, x, fn));
}

int64_t microcrad_neuron_parameters(const microcrad_neuron *neuron, Value **out, int64_t capacity)
{
    const char *fn = "microcrad_neuron_parameters";
    int status = CHECK_NEURON(neuron, fn);
    if (status != MICROCRAD_OK)
        return status;
    int64_t count = (int64_t)neuron->n_in + 1;
    status = mc_check_capacity(fn, out, capacity, count);
    if (status != MICROCRAD_OK)
        return status;
    if (out) {
        for (int32_t i = 0; i < neuron->n_in; i++)
            out[i] = neuron->w[i];
        out[neuron->n_in] = neuron->b;
    }
    return count;
}

int64_t microcrad_neuron_n_parameters(const microcrad_neuron *neuron)
{
    int status = CHECK_NEURON(neuron, "microcrad_neuron_n_parameters");
    return status == MICROCRAD_OK ? (int64_t)neuron->n_in + 1 : status;
}

void microcrad_neuron_free(microcrad_neuron *neuron)
{
    if (!neuron || CHECK_NEURON(neuron, "microcrad_neuron_free") != MICROCRAD_OK)
        return;
    for (int32_t i = 0; i < neuron->n_in; i++)
        value_release(neuron->w[i]);
    value_release(neuron->b);
    neuron->handle.magic = MC_MAGIC_DEAD(MC_MAGIC_NEURON);
    mc_free(neuron->w);
    mc_free(neuron);
}
