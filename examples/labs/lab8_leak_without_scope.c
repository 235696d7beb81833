/*
 * Lab 8 - a leak in a training loop.
 *
 * A weight w is fitted to y = 3x by gradient descent. Every step builds the squared
 * error (w*x - y)^2 of each sample, sums them, back-propagates, updates w and gives
 * its nodes back with value_release. The fit converges; the program prints the
 * weight, the last loss, and the number of nodes still alive at exit, which should
 * be 0.
 *
 * Caught by: LeakSanitizer (ASan build) and Valgrind (valgrind build). In a normal
 * build the nodes sit in the node pool, where no tool sees them; only the live count
 * shows them. See README.md, lab 8.
 */
#include <microcrad.h>

#include <stdio.h>

enum { SAMPLES = 4, STEPS = 8 };

/* (w*x - y)^2 for one sample: a new reference, which the caller gives back, or NULL
 * when memory runs out. An op given NULL (a failed op before it) returns NULL too,
 * and value_release(NULL) does nothing, so one check of the result covers all. */
static Value *squared_error(Value *w, double x, double y)
{
    Value *xv = value_create_leaf(x);
    Value *wx = value_mul(w, xv);
    Value *diff = value_sub_scalar(wx, y);
    Value *term = value_pow_const(diff, 2.0);
    value_release(xv);
    value_release(wx);
    return term;
}

int main(void)
{
    static const double xs[SAMPLES] = {1.0, 2.0, -1.0, 0.5};
    Value *w = value_create_leaf(0.0);
    if (!w)
        return 1;
    int status = 0;
    double loss_data = 0.0;
    for (int step = 0; step < STEPS && status == 0; step++) {
        Value *terms[SAMPLES];
        for (int i = 0; i < SAMPLES; i++)
            terms[i] = squared_error(w, xs[i], 3.0 * xs[i]);
        Value *loss = value_sum(SAMPLES, terms);
        for (int i = 0; i < SAMPLES; i++)
            value_release(terms[i]);
        if (loss && value_set_grad(w, 0.0) == MICROCRAD_OK &&
            value_backward(loss) == MICROCRAD_OK) {
            value_set_data(w, w->data - 0.05 * w->grad);
            loss_data = loss->data;
        } else {
            status = 1;
        }
        value_release(loss);
    }
    if (status == 0)
        printf("w = %.6f (target 3), last loss %.6f\n", w->data, loss_data);
    value_release(w);

    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return status;
}
