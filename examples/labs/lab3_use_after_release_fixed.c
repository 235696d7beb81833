/*
 * Lab 3, fixed: read what is needed from the loss before giving the loss up. See
 * lab3_use_after_release.c and README.md.
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
    double reported = value_data(loss); /* FIX: read it while the node is alive */
    value_release(loss);
    value_release(error);

    printf("d loss/d prediction = %.6f\n", value_grad(prediction));
    printf("loss = %.6f\n", reported);

    value_release(target);
    value_release(prediction);
    return isnan(reported) || microcrad_live_values() != 0 ? 1 : 0;
}
