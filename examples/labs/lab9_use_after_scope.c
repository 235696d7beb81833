/*
 * Lab 9 - a node used after its scope ended.
 *
 * A helper evaluates a loss inside a scope and returns the loss node to its caller.
 * But the node belonged to the scope, and ending the scope gave back its only
 * reference: the caller receives a pointer to a freed node and reads it.
 *
 * Caught by: AddressSanitizer (heap-use-after-free; the asan preset allocates every
 * node with plain malloc, so the free is real) and, in a normal build, the magic
 * canary: value_data refuses the released node, returns NaN and reports it. See
 * README.md, lab 9.
 */
#include <microcrad.h>

#include <math.h>
#include <stdio.h>

/* The squared error of prediction w*x against y, evaluated in a scope of its own. */
static Value *evaluate(Value *w, double x, double y)
{
    microcrad_scope *scope = microcrad_scope_begin();
    Value *loss = value_pow_const(value_sub_scalar(value_mul_scalar(w, x), y), 2.0);
    if (loss)
        value_backward(loss);
    microcrad_scope_end(scope);
    /* BUG: loss belonged to the scope, which has just released it. */
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
    value_release(w);
    return isnan(reported) ? 1 : 0;
}
