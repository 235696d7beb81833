/*
 * Lab 4 - a borrowed pointer released as if it were owned.
 *
 * value_prev() (like v->prev[i]) lends out an operand: no reference comes with it,
 * and the pointer stays valid only while the node holding it is alive. The program
 * lists a node's operands, then back-propagates through it, and the backward pass
 * walks into freed memory.
 *
 * Caught by: AddressSanitizer (heap-use-after-free in value_backward, reading a freed
 * operand) and Valgrind (invalid read). A normal build does not notice: the canary is
 * checked on the nodes passed to the API, not on every operand a traversal reaches,
 * and the freed block may already hold a new node. See README.md, lab 4.
 */
#include <microcrad.h>

#include <stdio.h>

/* Prints the operands of v. */
static void print_operands(const Value *v)
{
    for (uint32_t i = 0; i < v->n_prevs; i++) {
        Value *operand = value_prev(v, i);
        printf("  operand %u = %.6f\n", (unsigned)i, value_data(operand));
        value_release(operand);
    }
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
    return status == MICROCRAD_OK ? 0 : 1;
}
