/*
 * Lab 1 - a forgotten release (memory leak).
 *
 * One neuron, tanh(w*x + b), built step by step. Every function that returns a
 * Value * hands the caller one reference, and the intermediate product `wx` is such
 * a reference too. The program releases everything it created except `wx`.
 *
 * Caught by: LeakSanitizer (ASan build) and Valgrind (valgrind build). In a normal
 * build the leaked nodes sit in the node pool, where no tool sees them; the live
 * count printed at the end (microcrad_live_values) shows them.
 * See README.md, lab 1.
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
    /* BUG: `wx` is never released. It keeps its operands w and x alive as well, so
     * three nodes leak: wx directly, w and x indirectly. */
    value_release(b);
    value_release(w);
    value_release(x);

    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return 0;
}
