/*
 * A program that uses microcrad the way an outside project would: through the
 * installed header and library only. check_install.sh builds it against an
 * installed copy, once with CMake's find_package and once with pkg-config.
 *
 * It computes c = a * b, back-propagates, checks the gradients, releases
 * everything and checks that no node is left alive. Prints "microcrad <version>"
 * first so that the script can compare the library's version with the package's.
 */
#include <microcrad.h>

#include <inttypes.h>
#include <stdio.h>

int main(void)
{
    printf("microcrad %s\n", microcrad_version());

    Value *a = value_create_leaf(2.0);
    Value *b = value_create_leaf(-3.0);
    Value *c = (a != NULL && b != NULL) ? value_mul(a, b) : NULL;
    if (c == NULL) {
        fprintf(stderr, "building a * b failed: %s\n", microcrad_last_error());
        return 1;
    }
    if (value_backward(c) != MICROCRAD_OK) {
        fprintf(stderr, "value_backward failed: %s\n", microcrad_last_error());
        return 1;
    }

    double data = value_data(c);
    double grad_a = value_grad(a);
    double grad_b = value_grad(b);
    printf("c = a * b = %g, dc/da = %g, dc/db = %g\n", data, grad_a, grad_b);
    int ok = data == -6.0 && grad_a == -3.0 && grad_b == 2.0;
    if (!ok) {
        fprintf(stderr, "expected c = -6, dc/da = -3, dc/db = 2\n");
    }

    /* Release in any order: c holds its own references to a and b. */
    if (value_release(a) != MICROCRAD_OK || value_release(b) != MICROCRAD_OK
        || value_release(c) != MICROCRAD_OK) {
        fprintf(stderr, "value_release failed: %s\n", microcrad_last_error());
        return 1;
    }
    int64_t live = microcrad_live_values();
    if (live != 0) {
        fprintf(stderr, "%" PRId64 " values still alive after releasing everything\n", live);
        return 1;
    }
    return ok ? 0 : 1;
}
