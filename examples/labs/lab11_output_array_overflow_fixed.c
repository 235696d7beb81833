/*
 * Lab 11, fixed: the output array has one slot per neuron (OUTPUTS), not one per
 * input. See lab11_output_array_overflow.c and README.md.
 */
#include <microcrad.h>

#include <stdio.h>
#include <stdlib.h>

enum { INPUTS = 3, OUTPUTS = 4 };

int main(void)
{
    const double inputs[INPUTS] = {1.0, -2.0, 0.5};
    uint64_t rng = 42;
    int status = 1;

    Value *x[INPUTS] = {NULL};
    Value *total = NULL;
    Value **outputs = malloc(OUTPUTS * sizeof *outputs); /* FIX: a slot per neuron */
    microcrad_layer *layer = microcrad_layer_create(INPUTS, OUTPUTS, MICROCRAD_ACT_TANH, &rng);
    int have_outputs = 0;
    if (!outputs || !layer)
        goto cleanup;
    for (int i = 0; i < INPUTS; i++)
        if (!(x[i] = value_create_leaf(inputs[i])))
            goto cleanup;

    if (microcrad_layer_forward(layer, x, outputs) != MICROCRAD_OK)
        goto cleanup;
    have_outputs = 1;
    total = value_sum(OUTPUTS, outputs);
    if (!total || value_backward(total) != MICROCRAD_OK)
        goto cleanup;
    printf("sum of the outputs = %.6f, d sum/d x0 = %.6f\n", total->data, x[0]->grad);
    status = 0;

cleanup:
    if (total)
        value_release(total);
    for (int j = 0; have_outputs && j < OUTPUTS; j++)
        value_release(outputs[j]);
    for (int i = 0; i < INPUTS; i++)
        if (x[i])
            value_release(x[i]);
    microcrad_layer_free(layer);
    free(outputs);
    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return status == 0 && microcrad_live_values() == 0 ? 0 : 1;
}
