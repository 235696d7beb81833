/*
 * Lab 10, fixed: every path out of squared_error, the early ones included, passes
 * through the releases. The `cleanup:` label sits before them, and each release is
 * guarded, so that a path which never created a node releases nothing. See
 * lab10_error_path_leak.c and README.md.
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

cleanup: /* FIX: every path gives back what it made; the result keeps what it needs */
    if (error)
        value_release(error);
    if (prediction)
        value_release(prediction);
    if (input)
        value_release(input);
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
    return microcrad_live_values() == 0 ? 0 : 1;
}
