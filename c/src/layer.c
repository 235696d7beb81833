/*
 * layer.c - micrograd's Layer: n_out neurons reading the same n_in inputs.
 */
#include "internal.h"

struct microcrad_layer {
    McHandle handle;              /* the canary, MC_MAGIC_LAYER while alive (see check.c) */
    int32_t n_in, n_out;
    int64_t n_params;             /* n_out * (n_in + 1) */
    microcrad_neuron **neurons;   /* n_out neurons, owned: an array of its own, so the
                                     struct stays a small block (see mc_alloc_handle) */
};

#define CHECK_LAYER(layer, fn) mc_check((layer), MC_KIND_LAYER, (fn), 1)

microcrad_layer *microcrad_layer_create(int32_t n_in, int32_t n_out, microcrad_activation act,
                                        uint64_t *rng)
{
    const char *fn = "microcrad_layer_create";
    if (n_in < 0 || n_out < 1) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "%s: need n_in >= 0 and n_out >= 1, got %ld and %ld", fn,
                 (long)n_in, (long)n_out);
        return NULL;
    }
    if (mc_check_activation(act, fn, 3) != MICROCRAD_OK || mc_check_rng(rng, fn, 4) != MICROCRAD_OK)
        return NULL;
    microcrad_layer *layer = mc_alloc_handle(fn, sizeof *layer);
    if (!layer)
        return NULL;
    layer->neurons = mc_alloc_array(fn, (size_t)n_out, sizeof layer->neurons[0]);
    if (!layer->neurons) {
        mc_free(layer);
        return NULL;
    }
    /* Draw from a copy, so that a failure leaves the caller's generator untouched. */
    uint64_t state = *rng;
    for (int32_t j = 0; j < n_out; j++) {
        layer->neurons[j] = microcrad_neuron_create(n_in, act, &state);
        if (!layer->neurons[j]) {
            while (j-- > 0)
                microcrad_neuron_free(layer->neurons[j]);
            mc_free(layer->neurons);
            mc_free(layer);
            return NULL;
        }
    }
    layer->n_in = n_in;
    layer->n_out = n_out;
    layer->n_params = (int64_t)n_out * ((int64_t)n_in + 1);
    layer->handle = (McHandle){.magic = MC_MAGIC_LAYER}; /* the unused bytes zeroed too */
    *rng = state;
    return layer;
}

/* Sets out[0..n-1] to NULL, after releasing the first `made` of them. */
static void discard_outputs(Value **out, int32_t made, int32_t n)
{
    for (int32_t j = 0; j < made; j++)
        value_release(out[j]);
    for (int32_t j = 0; j < n; j++)
        out[j] = NULL;
}

int mc_layer_outputs(const microcrad_layer *layer, Value *const *x, Value **out, const char *fn)
{
    for (int32_t j = 0; j < layer->n_out; j++) {
        out[j] = mc_neuron_output(layer->neurons[j], x, fn);
        if (!out[j]) {
            discard_outputs(out, j, layer->n_out);
            /* The inputs were checked, so memory ran out (or, in theory, a reference
             * count reached its limit: the recorded message says which). */
            return MICROCRAD_ERR_NOMEM;
        }
    }
    return MICROCRAD_OK;
}

int mc_check_no_overlap(Value *const *x, int32_t n_in, Value *const *out, int32_t n_out,
                        const char *fn)
{
    if (n_in <= 0 || n_out <= 0)
        return MICROCRAD_OK;
    /* Compared as integers: relational operators on pointers into different arrays are
     * undefined in C. */
    uintptr_t x_begin = (uintptr_t)x, x_end = (uintptr_t)(x + n_in);
    uintptr_t out_begin = (uintptr_t)out, out_end = (uintptr_t)(out + n_out);
    if (x_begin < out_end && out_begin < x_end)
        return mc_error(MICROCRAD_ERR_ARGUMENT,
                        "%s: out (argument 3) overlaps x (argument 2): the outputs would "
                        "overwrite inputs still to be read; use separate arrays",
                        fn);
    return MICROCRAD_OK;
}

int microcrad_layer_forward(const microcrad_layer *layer, Value *const *x, Value **out)
{
    const char *fn = "microcrad_layer_forward";
    int status = CHECK_LAYER(layer, fn);
    if (status == MICROCRAD_OK)
        status = mc_check_inputs(layer->n_in, x, fn, 2);
    if (status == MICROCRAD_OK && !out)
        status = mc_error(MICROCRAD_ERR_NULL, "%s: argument 3 is NULL", fn);
    /* Overlapping: out is left as it is, since clearing it would clear inputs too. */
    if (status == MICROCRAD_OK &&
        mc_check_no_overlap(x, layer->n_in, out, layer->n_out, fn) != MICROCRAD_OK)
        return MICROCRAD_ERR_ARGUMENT;
    if (status == MICROCRAD_OK)
        status = mc_results_reserve((size_t)layer->n_out, fn);
    if (status == MICROCRAD_OK)
        status = mc_layer_outputs(layer, x, out, fn);
    if (status != MICROCRAD_OK) {
        if (out && mc_is_live(layer, MC_MAGIC_LAYER))
            discard_outputs(out, 0, layer->n_out);
        return status;
    }
    for (int32_t j = 0; j < layer->n_out; j++)
        mc_result(out[j]);
    return MICROCRAD_OK;
}

int64_t microcrad_layer_parameters(const microcrad_layer *layer, Value **out, int64_t capacity)
{
    const char *fn = "microcrad_layer_parameters";
    int status = CHECK_LAYER(layer, fn);
    if (status != MICROCRAD_OK)
        return status;
    status = mc_check_capacity(fn, out, capacity, layer->n_params);
    if (status != MICROCRAD_OK)
        return status;
    if (out) {
        int64_t written = 0;
        for (int32_t j = 0; j < layer->n_out; j++)
            written += microcrad_neuron_parameters(layer->neurons[j], out + written,
                                                   capacity - written);
    }
    return layer->n_params;
}

int64_t microcrad_layer_n_parameters(const microcrad_layer *layer)
{
    int status = CHECK_LAYER(layer, "microcrad_layer_n_parameters");
    return status == MICROCRAD_OK ? layer->n_params : status;
}

void microcrad_layer_free(microcrad_layer *layer)
{
    if (!layer || CHECK_LAYER(layer, "microcrad_layer_free") != MICROCRAD_OK)
        return;
    for (int32_t j = 0; j < layer->n_out; j++)
        microcrad_neuron_free(layer->neurons[j]);
    layer->handle.magic = MC_MAGIC_DEAD(MC_MAGIC_LAYER);
    mc_free(layer->neurons);
    mc_free(layer);
}
