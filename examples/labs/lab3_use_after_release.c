/*
 * Lab 3 - a use after release.
 *
 * A squared error, its gradient, and a log line with the loss. The loss it logs is
 * NaN, and the library complains on stderr.
 *
 * Caught by: AddressSanitizer (heap-use-after-free), Valgrind (invalid read) and, in a
 * normal build, the magic canary: value_data refuses a released node, returns NaN
 * and reports it on stderr. A direct field read (loss->data) would bypass the canary;
 * only ASan and Valgrind see that one. See README.md, lab 3.
 */
#include <microcrad.h>

#include <math.h>
#include <stdio.h>

/* Gives back each reference in vs[0..n-1] that is not NULL. */
static void release_all(int n, Value **vs)
{
    for (int i = 0; i < n; i++)
        if (vs[i])
            value_release(vs[i]);
}

int main(void)
{
    Value *prediction = value_create_leaf(0.8);
    Value *target = value_create_leaf(1.0);
    Value *error = prediction && target ? value_sub(prediction, target) : NULL;
    Value *loss = error ? value_pow_const(error, 2.0) : NULL;
    if (!loss || value_backward(loss) != MICROCRAD_OK) {
        release_all(4, (Value *[]){loss, error, target, prediction});
        return 1;
    }

    release_all(2, (Value *[]){loss, error});
    printf("d loss/d prediction = %.6f\n", value_grad(prediction));
    double reported = value_data(loss);
    printf("loss = %.6f\n", reported);

    release_all(2, (Value *[]){target, prediction});
    return isnan(reported) ? 1 : 0;
}
