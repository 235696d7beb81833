/*
 * Lab 2, fixed: ownership of y passes to print_and_dispose, so the caller does not
 * release it again. See lab2_double_release.c and README.md.
 */
#include <microcrad.h>

#include <stdio.h>

/* Prints v and takes ownership of it: the caller's reference ends here. */
static void print_and_dispose(const char *name, Value *v)
{
    printf("%s = %.6f (grad %.6f)\n", name, value_data(v), value_grad(v));
    value_release(v);
}

int main(void)
{
    Value *x = value_create_leaf(0.5);
    Value *y = value_sigmoid(x);
    if (!x || !y)
        return 1;
    value_backward(y);

    print_and_dispose("y", y);
    y = NULL; /* FIX: the reference is gone; forget the pointer with it */

    int status = value_release(x);
    if (status != MICROCRAD_OK) {
        fprintf(stderr, "lab2: value_release(x) failed: %s\n", microcrad_status_string(status));
        return 1;
    }
    return microcrad_live_values() == 0 ? 0 : 1;
}
