/*
 * Lab 11 - an array of Value pointers of the wrong size.
 *
 * A layer of four tanh neurons over three inputs. microcrad_layer_forward writes the
 * layer's outputs, one `Value *` per neuron, into an array the caller provides; the
 * program then adds them up and back-propagates. Run it under AddressSanitizer: the
 * bad write happens inside the library, but the report's stacks say whose mistake
 * it is.
 *
 * Caught by: AddressSanitizer (heap-buffer-overflow) and Valgrind (invalid write). A
 * normal build may print the right numbers, print wrong ones, or be stopped by the C
 * library's own heap checks: it depends on what lies after the block. See README.md,
 * lab 11.
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
    Value **outputs = malloc(INPUTS * sizeof *outputs);
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
    return status;
}
