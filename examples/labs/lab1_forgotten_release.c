/*
 * Lab 1 - a leak.
 *
 * One neuron, tanh(w*x + b), built step by step. Every function that returns a
 * Value * hands the caller one reference, which the caller must give back with
 * value_release. The program prints the neuron's output and gradients, then the
 * number of nodes still alive at exit, which should be 0.
 *
 * Caught by: LeakSanitizer (ASan build) and Valgrind (valgrind build). In a normal
 * build the nodes sit in the node pool, where no tool sees them; only the live count
 * shows them. See README.md, lab 1.
 */
#include <microcrad.h>

#include <stdio.h>

int main(void)
{
    int status = 1;
    Value *x = value_create_leaf(2.0);
    Value *w = value_create_leaf(-3.0);
    Value *b = value_create_leaf(6.5);
    Value *wx = NULL, *pre = NULL, *out = NULL;
    if (!x || !w || !b)
        goto cleanup;

    wx = value_mul(w, x);
    pre = wx ? value_add(wx, b) : NULL;
    out = pre ? value_tanh(pre) : NULL;
    if (!out || value_backward(out) != MICROCRAD_OK)
        goto cleanup;
    printf("out = %.6f, d out/dw = %.6f, d out/dx = %.6f\n", out->data, w->grad, x->grad);
    status = 0;

cleanup:
    if (out)
        value_release(out);
    if (pre)
        value_release(pre);
    if (b)
        value_release(b);
    if (w)
        value_release(w);
    if (x)
        value_release(x);
    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return status;
}
