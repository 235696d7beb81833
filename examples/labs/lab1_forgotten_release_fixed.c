/*
 * Lab 1, fixed: every reference the program receives is given back, the
 * intermediate product `wx` included. See lab1_forgotten_release.c and README.md.
 */
#include <microcrad.h>

#include <stdio.h>

int main(void)
{
    Value *x = value_create_leaf(2.0);
    Value *w = value_create_leaf(-3.0);
    Value *b = value_create_leaf(6.5);

    Value *wx = value_mul(w, x);
    Value *pre = value_add(wx, b);
    Value *out = value_tanh(pre);
    if (!x || !w || !b || !wx || !pre || !out)
        return 1;

    value_backward(out);
    printf("out = %.6f, d out/dw = %.6f, d out/dx = %.6f\n", out->data, w->grad, x->grad);

    value_release(out);
    value_release(pre);
    value_release(wx); /* FIX: the product was a reference of ours too */
    value_release(b);
    value_release(w);
    value_release(x);

    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return microcrad_live_values() == 0 ? 0 : 1;
}
