/*
 * Lab 3, fixed: read what is needed from the loss before giving the loss up. See
 * lab3_use_after_release.c and README.md.
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

    double reported = value_data(loss); /* FIX: read it while the node is alive */
    release_all(2, (Value *[]){loss, error});
    printf("d loss/d prediction = %.6f\n", value_grad(prediction));
    printf("loss = %.6f\n", reported);

    release_all(2, (Value *[]){target, prediction});
    return isnan(reported) || microcrad_live_values() != 0 ? 1 : 0;
}
