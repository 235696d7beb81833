/*
 * leaked_node.c - a program with one bug: a node it never releases.
 *
 * tests/test_tools_see_nodes.py links it against the normal (release) library and
 * expects Valgrind and LeakSanitizer to report the leak at the line marked LEAKED.
 */
#include <microcrad.h>

#include <stdio.h>

int main(void)
{
    Value *kept = value_create_leaf(1.0);
    Value *forgotten = value_create_leaf(2.0); /* LEAKED: never released */
    Value *sum = value_add(kept, forgotten);
    printf("%g\n", sum->data);
    value_release(sum);
    value_release(kept);
    forgotten = NULL; /* the last pointer to it is gone */
    return 0;
}
