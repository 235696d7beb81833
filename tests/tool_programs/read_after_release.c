/*
 * read_after_release.c - a program with one bug: it reads a node after releasing it.
 *
 * tests/test_tools_see_nodes.py links it against the normal (release) library and
 * expects Valgrind to report an invalid read, and AddressSanitizer a
 * heap-use-after-free, at the line marked READ, with the release at the line marked
 * RELEASED in the stack of the free.
 */
#include <microcrad.h>

#include <stdio.h>

int main(void)
{
    Value *x = value_create_leaf(3.0);
    Value *y = value_mul(x, x);
    value_release(x);
    value_release(y); /* RELEASED: frees y and then x */
    printf("%g\n", y->data); /* READ: y is gone */
    return 0;
}
