/*
 * Lab 9, fixed: the helper takes its own reference to the loss with value_retain
 * before the scope ends, so the loss survives the scope (and keeps its graph alive),
 * and the caller releases it when done. See lab9_use_after_scope.c and README.md.
 */
#include <microcrad.h>

#include <math.h>
#include <stdio.h>

/* The squared error of prediction w*x against y, evaluated in a scope of its own.
 * Returns a reference the caller owns (release it), or NULL. */
static Value *evaluate(Value *w, double x, double y)
{
    microcrad_scope *scope = microcrad_scope_begin();
    if (!scope)
        return NULL;
    Value *loss = value_pow_const(value_sub_scalar(value_mul_scalar(w, x), y), 2.0);
    /* FIX: a reference of our own, which outlives the scope. */
    if (loss && (value_backward(loss) != MICROCRAD_OK || value_retain(loss) != MICROCRAD_OK))
        loss = NULL;
    microcrad_scope_end(scope);
    return loss;
}

int main(void)
{
    Value *w = value_create_leaf(1.5);
    if (!w)
        return 1;
    Value *loss = evaluate(w, 2.0, 4.0);
    printf("d loss/dw = %.6f\n", value_grad(w));
    double reported = value_data(loss);
    printf("loss = %.6f\n", reported);
    value_release(loss); /* NULL is fine: value_release(NULL) does nothing */
    value_release(w);
    return isnan(reported) || microcrad_live_values() != 0 ? 1 : 0;
}
