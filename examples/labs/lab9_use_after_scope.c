/*
 * Lab 9 - a node used after its scope ended.
 *
 * A helper evaluates a squared error in a scope of its own, back-propagates, and
 * returns the loss to its caller, which prints the gradient and the loss. The
 * gradient is right; the loss it prints is NaN, and the library complains on stderr.
 *
 * Caught by: AddressSanitizer (the asan preset allocates every node with plain
 * malloc, so each free is real) and, in a normal build, the magic canary: value_data
 * refuses a released node, returns NaN and reports it on stderr. See README.md,
 * lab 9.
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
    if (loss && value_backward(loss) != MICROCRAD_OK)
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
