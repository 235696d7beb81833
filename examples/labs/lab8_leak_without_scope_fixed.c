/*
 * Lab 8, fixed: each step runs inside a scope. Every node a library function returns
 * during the step belongs to the scope, and microcrad_scope_end gives them all back:
 * there is no release to forget, on the normal path or an error path. (Releasing
 * `diff` in squared_error fixes the leak too; the scope removes the bookkeeping that
 * let it happen.) See lab8_leak_without_scope.c and README.md.
 */
#include <microcrad.h>

#include <stdio.h>

enum { SAMPLES = 4, STEPS = 8 };

/* (w*x - y)^2 for one sample; the node belongs to the scope open on this thread. */
static Value *squared_error(Value *w, double x, double y)
{
    /* FIX: no releases here at all. An op given NULL (a failed op before it) returns
     * NULL too, so one check at the end covers the whole expression. */
    return value_pow_const(value_sub_scalar(value_mul_scalar(w, x), y), 2.0);
}

int main(void)
{
    static const double xs[SAMPLES] = {1.0, 2.0, -1.0, 0.5};
    Value *w = value_create_leaf(0.0); /* before any scope: the program's to release */
    if (!w)
        return 1;
    int status = 0;
    double loss_data = 0.0;
    for (int step = 0; step < STEPS && status == 0; step++) {
        microcrad_scope *scope = microcrad_scope_begin();
        if (!scope) {
            status = 1;
            break;
        }
        Value *terms[SAMPLES];
        for (int i = 0; i < SAMPLES; i++)
            terms[i] = squared_error(w, xs[i], 3.0 * xs[i]);
        Value *loss = value_sum(SAMPLES, terms);
        if (loss && value_set_grad(w, 0.0) == MICROCRAD_OK &&
            value_backward(loss) == MICROCRAD_OK) {
            value_set_data(w, w->data - 0.05 * w->grad);
            loss_data = loss->data;
        } else {
            status = 1;
        }
        /* Every path ends the scope, so no path leaks. */
        if (microcrad_scope_end(scope) != MICROCRAD_OK)
            status = 1;
    }
    if (status == 0)
        printf("w = %.6f (target 3), last loss %.6f\n", w->data, loss_data);
    value_release(w);

    printf("live values at exit: %lld\n", (long long)microcrad_live_values());
    return status == 0 && microcrad_live_values() == 0 ? 0 : 1;
}
