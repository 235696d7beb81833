/*
 * Lab 10 - a leak on an error path.
 *
 * Fits y = w * x on four measurements. One measurement is missing (NaN), so the
 * function that builds a sample's loss gives up on it and returns NULL, and the
 * caller skips that sample. The program prints the right loss and gradient, but
 * not every node is given back: run it under LeakSanitizer or Valgrind and find out
 * which path forgets what.
 *
 * Caught by: LeakSanitizer (ASan build) and Valgrind. See README.md, lab 10.
 */
#include <microcrad.h>

#include <math.h>
#include <stdio.h>

/* The squared error (w*x - y)^2 of one sample, as a new reference, or NULL when y is
 * not a number (a missing measurement) or memory runs out. */
static Value *squared_error(Value *w, double x, double y)
{
    Value *input = NULL, *prediction = NULL, *error = NULL, *loss = NULL;

    input = value_create_leaf(x);
    if (!input)
        goto cleanup;
    prediction = value_mul(w, input);
    if (!prediction || isnan(y))
        goto cleanup;
    error = value_sub_scalar(prediction, y);
    if (!error)
        goto cleanup;
    loss = value_mul(error, error);

    value_release(error);
    value_release(prediction);
    value_release(input);
cleanup:
    return loss;
}

int main(void)
{
    const double xs[] = {1.0, 2.0, 3.0, 4.0};
    const double ys[] = {2.0, NAN, 6.5, 7.5};
    const int n = (int)(sizeof xs / sizeof xs[0]);

    Value *w = value_create_leaf(1.5);
    if (!w)
        return 1;

    double total = 0.0;
    int skipped = 0;
    for (int i = 0; i < n; i++) {
        Value *loss = squared_error(w, xs[i], ys[i]);
        if (!loss) {
            skipped++;
            continue;
        }
        total += loss->data;
        value_backward(loss); /* leaf gradients accumulate over the samples */
        value_release(loss);
    }

    printf("skipped %d sample(s)\n", skipped);
    printf("loss = %.4f, d loss/d w = %.4f\n", total, w->grad);
    value_release(w);
    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return 0;
}
