/*
 * Lab 5 - reading past the end of a node's operand array.
 *
 * A node's operands are v->prev[0] .. v->prev[v->n_prevs - 1], stored in the same
 * allocation as the node, right after it. The program adds up the data of a sum's
 * operands.
 *
 * Caught by: AddressSanitizer (heap-buffer-overflow: in sanitizer builds every node is
 * its own malloc block, 48 bytes plus 8 per operand, and ASan guards its end). What a
 * normal build does depends on what happens to lie after the node (README.md, lab 5,
 * says why): that is what makes this kind of bug dangerous.
 */
#include <microcrad.h>

#include <stdio.h>

/* The sum of the data of v's operands. */
static double operand_total(const Value *v)
{
    double total = 0.0;
    for (uint32_t i = 0; i <= v->n_prevs; i++)
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
    return status;
}
