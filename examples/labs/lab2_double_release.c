/*
 * Lab 2 - a double release.
 *
 * A helper prints a result and disposes of it; the program then cleans up. The
 * clean-up fails, and the report says why.
 *
 * Caught by: the magic canary in a normal build (value_release refuses a node whose
 * canary reads DEAD with MICROCRAD_ERR_RELEASED and says so on stderr), and by
 * AddressSanitizer in an ASan build (heap-use-after-free: the canary check itself
 * reads freed memory, and ASan reports it first). See README.md, lab 2.
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
    status = 0;

cleanup:
    if (y && value_release(y) != MICROCRAD_OK) {
        fprintf(stderr, "lab2: value_release(y) failed: %s\n",
                microcrad_status_string(microcrad_last_status()));
        status = 1;
    }
    if (x)
        value_release(x);
    return status;
}
