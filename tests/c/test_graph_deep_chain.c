/*
 * test_graph_deep_chain.c - a graph as deep as it is long.
 *
 * x_0 is a leaf and x_{k+1} = x_k * c, N times. Only the chain holds the intermediate
 * nodes (each handle is released as soon as the next node exists), so backward,
 * zero_grad and the final release all have to walk N levels. Anything recursive would
 * overflow the stack here; the library must do it with loops and heap arrays.
 *
 * Closed forms, with c = 1 + 1/N so that c^N stays near e:
 *   x_N = x_0 c^N,   dx_N/dx_0 = c^N,   dx_N/dc = N x_0 c^(N-1).
 * Dropping or repeating one link would move each by a factor c, i.e. by 1/N relative,
 * while the N roundings of the products and sums stay well below that.
 *
 * Usage: test_graph_deep_chain [N]. N defaults to 10,000,000, or to 1,000,000 when the
 * library is built for a sanitizer or Valgrind (see default_length). The ns/node
 * figures are information only; nothing is asserted about time.
 */
#include "check.h"

#include <microcrad.h>

#include <stdlib.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*
 * Under ThreadSanitizer a node costs about 600 bytes of shadow memory and under
 * Valgrind about 40 times the time, so ten million would need gigabytes and minutes.
 * Those builds announce themselves (microcrad_build_features); they get a million,
 * which is still far deeper than any recursive walk could go on a normal stack.
 */
static long long default_length(void)
{
    unsigned tools = MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_TSAN | MICROCRAD_BUILD_VALGRIND;
    return (microcrad_build_features() & tools) ? 1000000 : 10000000;
}

static void report(const char *what, double seconds, long long n)
{
    printf("%-10s %8.3f s  %7.1f ns/node\n", what, seconds, 1e9 * seconds / (double)n);
}

int main(int argc, char **argv)
{
    long long n = default_length();
    if (argc > 1) {
        n = strtoll(argv[1], NULL, 10);
        if (n < 1 || n > INT32_MAX) {
            fprintf(stderr, "usage: %s [number of nodes, 1 .. 2^31-1]\n", argv[0]);
            return 2;
        }
    }
    printf("chain of %lld nodes\n", n);
    const int64_t live0 = microcrad_live_values();
    const double x0 = 1.0 + 1.0 / 3.0;
    const double cv = 1.0 + 1.0 / (double)n;

    double t = now_seconds();
    Value *leaf = value_create_leaf(x0);
    Value *c = value_create_leaf(cv);
    if (!CHECK(leaf && c))
        return check_summary();
    Value *x = leaf;
    value_retain(x); /* the loop gives back one handle per step, this one included */
    for (long long k = 0; k < n; k++) {
        Value *next = value_mul(x, c);
        if (next == NULL) {
            CHECK(!"value_mul failed while building the chain");
            break;
        }
        value_release(x);
        x = next;
    }
    report("build", now_seconds() - t, n);
    CHECK_INT(microcrad_live_values(), live0 + n + 2);
    CHECK_INT(value_ref_count(x), 1);
    CHECK_INT(value_ref_count(c), n + 1);
    CHECK_INT(value_ref_count(leaf), 2);

    /* Roundings: at most about one per link in each direction; 8 N eps is generous
     * and still far below the 1/N a missing link would cause. */
    const double eps = 2.220446049250313e-16;
    const double rel = 8.0 * (double)n * eps;
    const double cn = pow(cv, (double)n);
    CHECK_NEAR(x->data / (x0 * cn), 1.0, rel);

    t = now_seconds();
    CHECK_INT(value_backward(x), MICROCRAD_OK);
    report("backward", now_seconds() - t, n);
    CHECK_SAME(x->grad, 1.0);
    CHECK_NEAR(leaf->grad / cn, 1.0, rel);
    CHECK_NEAR(c->grad / ((double)n * x0 * pow(cv, (double)(n - 1))), 1.0, rel);

    t = now_seconds();
    CHECK_INT(value_zero_grad(x), MICROCRAD_OK);
    report("zero_grad", now_seconds() - t, n);
    CHECK_SAME(x->grad, 0.0);
    CHECK_SAME(leaf->grad, 0.0);
    CHECK_SAME(c->grad, 0.0);

    /* The last handle to the end of the chain frees every link, iteratively. */
    t = now_seconds();
    CHECK_INT(value_release(x), MICROCRAD_OK);
    report("release", now_seconds() - t, n);
    CHECK_INT(microcrad_live_values(), live0 + 2);
    CHECK_INT(value_ref_count(c), 1);
    CHECK_INT(value_ref_count(leaf), 1);
    value_release(c);
    value_release(leaf);
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
