/*
 * Lab 8 - a leak that a scope would have prevented.
 *
 * A weight w is fitted to y = 3x by gradient descent, with explicit releases: every
 * step builds (w*x - y)^2 over the samples and gives back each node it received. The
 * helper that builds one sample's term gives back everything but one intermediate
 * node, so every step leaks a few nodes, and a long run grows without bound.
 *
 * Caught by: LeakSanitizer (ASan build) and Valgrind (valgrind build). In a normal
 * build the leaked nodes sit in the node pool; the live count printed at the end
 * (microcrad_live_values) shows them. The fixed twin runs each step in a scope and
 * releases nothing by hand. See README.md, lab 8.
 */
#include <microcrad.h>

#include <stdio.h>

enum { SAMPLES = 4, STEPS = 20 };

/* (w*x - y)^2 for one sample; the caller owns the result. */
static Value *squared_error(Value *w, double x, double y)
{
    Value *xv = value_create_leaf(x);
    Value *wx = value_mul(w, xv);
    Value *diff = value_sub_scalar(wx, y);
    Value *term = value_pow_const(diff, 2.0);
    value_release(xv);
    value_release(wx);
    /* BUG: `diff` is a reference this function received and never gives back. The
     * term holds its own reference, so nothing breaks; the node just outlives the
     * step, keeping w*x and the leaf x alive too. */
    return term;
}

int main(void)
{
    static const double xs[SAMPLES] = {1.0, 2.0, -1.0, 0.5};
    Value *w = value_create_leaf(0.0);
    if (!w)
        return 1;
    double loss_data = 0.0;
    for (int step = 0; step < STEPS; step++) {
        Value *terms[SAMPLES];
        for (int i = 0; i < SAMPLES; i++)
            terms[i] = squared_error(w, xs[i], 3.0 * xs[i]);
        Value *loss = value_sum(SAMPLES, terms);
        for (int i = 0; i < SAMPLES; i++)
            value_release(terms[i]);
        if (!loss)
            return 1;
        value_set_grad(w, 0.0);
        value_backward(loss);
        value_set_data(w, w->data - 0.05 * w->grad);
        loss_data = loss->data;
        value_release(loss);
    }
    printf("w = %.6f (target 3), last loss %.6f\n", w->data, loss_data);
    value_release(w);

    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return 0;
}
