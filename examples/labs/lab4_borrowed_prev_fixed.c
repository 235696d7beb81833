/*
 * Lab 4, fixed: a borrowed operand is only looked at, never released. (A caller that
 * wants to keep an operand beyond the life of its node takes its own reference with
 * value_retain, and then releases that.) See lab4_borrowed_prev.c and README.md.
 */
#include <microcrad.h>

#include <stdio.h>

/* Prints the operands of v. FIX: they are borrowed, so no release here. */
static void print_operands(const Value *v)
{
    for (uint32_t i = 0; i < v->n_prevs; i++)
        printf("  operand %u = %.6f\n", (unsigned)i, value_data(value_prev(v, i)));
}

int main(void)
{
    Value *x = value_create_leaf(0.5);
    Value *y = x ? value_tanh(x) : NULL;
    if (x)
        value_release(x); /* fine: y holds its own reference to x */
    if (!y)
        return 1;

    printf("y = tanh(x) = %.6f\n", y->data);
    print_operands(y);

    int status = value_backward(y);
    if (status == MICROCRAD_OK)
        printf("d y/d x = %.6f\n", y->prev[0]->grad);
    value_release(y);
    return status == MICROCRAD_OK && microcrad_live_values() == 0 ? 0 : 1;
}
