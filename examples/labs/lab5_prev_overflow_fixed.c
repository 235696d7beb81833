/*
 * Lab 5, fixed: the loop stops before n_prevs. See lab5_prev_overflow.c and README.md.
 */
#include <microcrad.h>

#include <stdio.h>

/* The sum of the data of v's operands. */
static double operand_total(const Value *v)
{
    double total = 0.0;
    for (uint32_t i = 0; i < v->n_prevs; i++) /* FIX: `<`, not `<=` */
        total += v->prev[i]->data;
    return total;
}

int main(void)
{
    Value *a = value_create_leaf(1.5);
    Value *b = value_create_leaf(2.5);
    Value *sum = a && b ? value_add(a, b) : NULL;
    int status = 1;
    if (sum) {
        printf("operands of a + b add up to %.6f\n", operand_total(sum));
        status = 0;
        value_release(sum);
    }
    if (b)
        value_release(b);
    if (a)
        value_release(a);
    return status == 0 && microcrad_live_values() == 0 ? 0 : 1;
}
