/*
 * Lab 3 - a use after release.
 *
 * The program releases the loss as soon as backward has run, then, a few lines
 * later, reads the loss for its log line. The node is gone by then.
 *
 * Caught by: AddressSanitizer (heap-use-after-free), Valgrind (invalid read) and, in a
 * normal build, the magic canary: value_data refuses the released node, returns NaN
 * and reports it on stderr. A direct field read (loss->data) would bypass the canary;
 * only ASan and Valgrind see that one. See README.md, lab 3.
 */
#include <microcrad.h>

#include <math.h>
#include <stdio.h>

int main(void)
{
    Value *prediction = value_create_leaf(0.8);
    Value *target = value_create_leaf(1.0);
    Value *error = value_sub(prediction, target);
    Value *loss = value_pow_const(error, 2.0);
    if (!prediction || !target || !error || !loss)
        return 1;

    value_backward(loss);
    value_release(loss);
    value_release(error);

    printf("d loss/d prediction = %.6f\n", value_grad(prediction));
    /* BUG: loss was released above; its node no longer exists. */
    double reported = value_data(loss);
    printf("loss = %.6f\n", reported);

    value_release(target);
    value_release(prediction);
    return isnan(reported) ? 1 : 0;
}
