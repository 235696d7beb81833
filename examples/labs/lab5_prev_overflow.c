/*
 * Lab 5 - reading past the end of a node's operand array.
 *
 * A node's operands are v->prev[0] .. v->prev[v->n_prevs - 1]. A loop written with
 * `<=` reads one slot more. The operand pointers live in the same allocation as the
 * node, right after it, so the extra slot is the first word after the node's memory.
 *
 * Caught by: AddressSanitizer (heap-buffer-overflow: in sanitizer builds every node is
 * its own malloc block, 48 bytes plus 8 per operand, and ASan guards its end). In a
 * normal build the node sits in a 64-byte pool block and the slot after it belongs to
 * the neighbouring block: the loop reads whatever is there, and dereferencing it may
 * print garbage or crash. See README.md, lab 5.
 */
#include <microcrad.h>

#include <stdio.h>

/* The sum of the data of v's operands. */
static double operand_total(const Value *v)
{
    double total = 0.0;
    /* BUG: `<=` visits v->prev[v->n_prevs], one past the last operand. */
    for (uint32_t i = 0; i <= v->n_prevs; i++)
        total += v->prev[i]->data;
    return total;
}

int main(void)
{
    Value *a = value_create_leaf(1.5);
    Value *b = value_create_leaf(2.5);
    Value *sum = value_add(a, b);
    if (!a || !b || !sum)
        return 1;

    printf("operands of a + b add up to %.6f\n", operand_total(sum));

    value_release(sum);
    value_release(b);
    value_release(a);
    return 0;
}
