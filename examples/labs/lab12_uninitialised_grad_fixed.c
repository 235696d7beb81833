/*
 * Lab 12, fixed: every one of the PARAMS gradients is copied, the bias's included,
 * before the array is read. See lab12_uninitialised_grad.c and README.md.
 */
#include <microcrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { INPUTS = 3, PARAMS = INPUTS + 1 };

/* The largest |g| of the n gradients in g. */
static double largest_magnitude(const double *g, int n)
{
    double largest = 0.0;
    for (int i = 0; i < n; i++)
        if (fabs(g[i]) > largest)
            largest = fabs(g[i]);
    return largest;
}

int main(void)
{
    const double inputs[INPUTS] = {0.5, -0.25, 0.5};
    const double start[PARAMS] = {0.3, -0.2, 0.8, 4.0}; /* w0, w1, w2, then the bias */
    const double learning_rate = 0.1;
    int status = 1;

    Value *params[PARAMS] = {NULL}, *x[INPUTS] = {NULL};
    Value *out = NULL, *loss = NULL;
    double *grads = malloc(PARAMS * sizeof *grads);
    if (!grads)
        goto cleanup;
    for (int i = 0; i < PARAMS; i++)
        if (!(params[i] = value_create_leaf(start[i])))
            goto cleanup;
    for (int i = 0; i < INPUTS; i++)
        if (!(x[i] = value_create_leaf(inputs[i])))
            goto cleanup;

    /* out = b + w . x; loss = out^2 */
    out = value_neuron(INPUTS, params, x, params[INPUTS]);
    loss = out ? value_mul(out, out) : NULL;
    if (!loss || value_backward(loss) != MICROCRAD_OK)
        goto cleanup;

    if (value_get_grad_many(PARAMS, params, grads) != MICROCRAD_OK) /* FIX: the bias too */
        goto cleanup;
    double largest = largest_magnitude(grads, PARAMS);
    double scale = largest > 1.0 ? 1.0 / largest : 1.0;
    for (int i = 0; i < PARAMS; i++)
        params[i]->data -= learning_rate * scale * params[i]->grad;
    printf("largest |grad| = %.4f, step scaled by %.4f\n", largest, scale);
    printf("bias after the step = %.4f\n", params[INPUTS]->data);
    status = 0;

cleanup:
    if (loss)
        value_release(loss);
    if (out)
        value_release(out);
    for (int i = 0; i < INPUTS; i++)
        if (x[i])
            value_release(x[i]);
    for (int i = 0; i < PARAMS; i++)
        if (params[i])
            value_release(params[i]);
    free(grads);
    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return status == 0 && microcrad_live_values() == 0 ? 0 : 1;
}
