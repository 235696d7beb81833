/*
 * Lab 2, fixed: ownership of y passes to print_and_dispose, so the caller forgets
 * the pointer and does not release it again. See lab2_double_release.c and
 * README.md.
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
    int status = 1;
    Value *x = value_create_leaf(0.5);
    Value *y = x ? value_sigmoid(x) : NULL;
    if (!y || value_backward(y) != MICROCRAD_OK)
        goto cleanup;

    print_and_dispose("y", y);
    y = NULL; /* FIX: the reference is gone; forget the pointer with it */
    status = 0;

cleanup:
    if (y && value_release(y) != MICROCRAD_OK) {
        fprintf(stderr, "lab2: value_release(y) failed: %s\n",
                microcrad_status_string(microcrad_last_status()));
        status = 1;
    }
    if (x)
        value_release(x);
    return status == 0 && microcrad_live_values() == 0 ? 0 : 1;
}
