/*
 * Lab 2 - a double release.
 *
 * A helper "prints and disposes of" a result: it releases the reference it was
 * given. Its caller, unaware, releases the same reference again when cleaning up.
 * The second value_release hits a node that has already been freed.
 *
 * Caught by: the magic canary in a normal build (the freed node reads DEAD, so
 * value_release refuses it with MICROCRAD_ERR_RELEASED and says so on stderr), and by
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
    Value *x = value_create_leaf(0.5);
    Value *y = value_sigmoid(x);
    if (!x || !y)
        return 1;
    value_backward(y);

    print_and_dispose("y", y);

    /* Clean-up. BUG: y was handed over to print_and_dispose, which released it. */
    int status = value_release(y);
    if (status != MICROCRAD_OK) {
        fprintf(stderr, "lab2: value_release(y) failed: %s\n", microcrad_status_string(status));
        value_release(x);
        return 1;
    }
    value_release(x);
    return 0;
}
