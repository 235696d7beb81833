/*
 * Lab 1, fixed: every reference the program receives is given back, the
 * intermediate product `wx` included, on the error path too. See
 * lab1_forgotten_release.c and README.md.
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
    if (wx) /* FIX: the product was a reference of ours too */
        value_release(wx);
    if (b)
        value_release(b);
    if (w)
        value_release(w);
    if (x)
        value_release(x);
    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return status == 0 && microcrad_live_values() == 0 ? 0 : 1;
}
