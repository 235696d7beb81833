/*
 * test_optim_step_zero_grad.c - microcrad_optimizer_step_zero_grad must be exactly
 * microcrad_optimizer_step followed by microcrad_optimizer_zero_grad.
 *
 * Two identical parameter sets are trained side by side for a few steps, one with the
 * fused call and one with the pair, from the same gradients; data, gradients and the
 * optimizer state (seen through later steps) must agree bit for bit, over more
 * parameters than fit in a level-1 cache. Errors follow the plain step's, and a step
 * that meets a released parameter halfway puts back what it had already changed.
 */
#include "check.h"

#include <microcrad.h>

#include <stdlib.h>

enum { N = 1500, STEPS = 4 };

typedef microcrad_optimizer *(*make_fn)(int32_t n, Value **params);
static microcrad_optimizer *make_sgd(int32_t n, Value **p)
{
    return microcrad_sgd_create(n, p, 0.1, 0.0, 0.0);
}
static microcrad_optimizer *make_sgd_momentum_decay(int32_t n, Value **p)
{
    return microcrad_sgd_create(n, p, 0.05, 0.9, 0.01);
}
static microcrad_optimizer *make_adam(int32_t n, Value **p)
{
    return microcrad_adam_create(n, p, 0.01, 0.9, 0.999, 1e-8, 0.001);
}

/* A gradient that differs per parameter and per step, with both signs. */
static double gradient(int i, int step) { return ((i * 7 + step * 3) % 11 - 5) * 0.125; }

static void check_same_as_pair(const char *name, make_fn make)
{
    printf("%s\n", name);
    Value **fused = malloc(N * sizeof *fused), **pair = malloc(N * sizeof *pair);
    if (!CHECK(fused && pair))
        return;
    for (int i = 0; i < N; i++) {
        fused[i] = value_create_leaf(0.001 * i - 0.5);
        pair[i] = value_create_leaf(0.001 * i - 0.5);
    }
    microcrad_optimizer *a = make(N, fused), *b = make(N, pair);
    CHECK(a && b);
    for (int step = 0; step < STEPS; step++) {
        for (int i = 0; i < N; i++) {
            value_set_grad(fused[i], gradient(i, step));
            value_set_grad(pair[i], gradient(i, step));
        }
        CHECK_INT(microcrad_optimizer_step_zero_grad(a), MICROCRAD_OK);
        CHECK_INT(microcrad_optimizer_step(b), MICROCRAD_OK);
        CHECK_INT(microcrad_optimizer_zero_grad(b), MICROCRAD_OK);
        int same = 1;
        for (int i = 0; i < N; i++)
            same &= fused[i]->data == pair[i]->data && fused[i]->grad == 0.0;
        CHECK(same);
    }
    microcrad_optimizer_free(a);
    microcrad_optimizer_free(b);
    for (int i = 0; i < N; i++) {
        value_release(fused[i]);
        value_release(pair[i]);
    }
    free(fused);
    free(pair);
}

static void test_errors(void)
{
    microcrad_clear_error();
    CHECK_INT(microcrad_optimizer_step_zero_grad(NULL), MICROCRAD_ERR_NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_optimizer_step_zero_grad");
    if (microcrad_build_features() & (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND)) {
        printf("released parameter: skipped (the sanitizer or Valgrind build reports it)\n");
        return;
    }
    /* A parameter released behind the optimizer's back: reported, nothing changed. */
    Value *a = value_create_leaf(1.0), *b = value_create_leaf(2.0);
    Value *params[2] = {a, b};
    microcrad_optimizer *opt = microcrad_sgd_create(2, params, 0.1, 0.0, 0.0);
    value_set_grad(a, 1.0);
    value_release(b);
    value_release(b); /* one release too many: the optimizer's reference is gone */
    CHECK_INT(microcrad_optimizer_step_zero_grad(opt), MICROCRAD_ERR_RELEASED);
    CHECK_CONTAINS(microcrad_last_error(), "parameter 1");
    CHECK_SAME(a->data, 1.0);
    CHECK_SAME(a->grad, 1.0);
    microcrad_optimizer_free(opt);
    value_release(a);
}

/*
 * A released parameter met in the middle of a step: the parameters already updated
 * are put back, data, grad and optimizer state. The state is seen through later
 * steps: the freed parameter's memory is taken by a new leaf (the pool hands back the
 * block freed last), which revives its canary, so that the optimizer steps again and
 * must agree with a twin that never saw the failed step.
 */
static void test_rollback(const char *name, make_fn make)
{
    if (microcrad_build_features() & MICROCRAD_BUILD_VALGRIND) {
        printf("rollback, %s: skipped (no pool in this build)\n", name);
        return;
    }
    printf("rollback, %s\n", name);
    Value *mine[3], *twin[3];
    for (int i = 0; i < 3; i++) {
        mine[i] = value_create_leaf(0.5 - 0.25 * i);
        twin[i] = value_create_leaf(0.5 - 0.25 * i);
    }
    microcrad_optimizer *a = make(3, mine), *b = make(3, twin);
    for (int step = 0; step < 2; step++) {
        for (int i = 0; i < 3; i++) {
            value_set_grad(mine[i], gradient(i, step));
            value_set_grad(twin[i], gradient(i, step));
        }
        CHECK_INT(microcrad_optimizer_step(a), MICROCRAD_OK);
        CHECK_INT(microcrad_optimizer_step(b), MICROCRAD_OK);
    }
    /* Parameter 0 is visited last: parameters 2 and 1 are updated before it is met. */
    for (int i = 0; i < 3; i++)
        value_set_grad(mine[i], gradient(i, 9));
    double data0 = mine[0]->data;
    Value *gone = mine[0];
    value_release(gone);
    value_release(gone); /* one release too many: the optimizer's reference is gone */
    for (int zero = 0; zero <= 1; zero++) {
        microcrad_clear_error();
        int status = zero ? microcrad_optimizer_step_zero_grad(a) : microcrad_optimizer_step(a);
        CHECK_INT(status, MICROCRAD_ERR_RELEASED);
        CHECK_CONTAINS(microcrad_last_error(), "parameter 0");
        for (int i = 1; i < 3; i++) {
            CHECK_SAME(mine[i]->data, twin[i]->data);
            CHECK_SAME(mine[i]->grad, gradient(i, 9));
        }
    }
    /* Revive the block as a leaf with parameter 0's data, then carry on side by side. */
    Value *revived = value_create_leaf(data0);
    CHECK(revived == gone);
    value_retain(revived); /* the optimizer's reference again, which free will give back */
    mine[0] = revived;
    for (int step = 2; step < 5; step++) {
        for (int i = 0; i < 3; i++) {
            value_set_grad(mine[i], gradient(i, step));
            value_set_grad(twin[i], gradient(i, step));
        }
        CHECK_INT(microcrad_optimizer_step(a), MICROCRAD_OK);
        CHECK_INT(microcrad_optimizer_step(b), MICROCRAD_OK);
        for (int i = 0; i < 3; i++)
            CHECK_SAME(mine[i]->data, twin[i]->data);
    }
    microcrad_optimizer_free(a);
    microcrad_optimizer_free(b);
    for (int i = 0; i < 3; i++) {
        value_release(mine[i]);
        value_release(twin[i]);
    }
}

int main(void)
{
    microcrad_set_quiet(1);
    const int64_t live0 = microcrad_live_values();
    check_same_as_pair("SGD", make_sgd);
    check_same_as_pair("SGD with momentum and weight decay", make_sgd_momentum_decay);
    check_same_as_pair("Adam", make_adam);
    test_errors();
    test_rollback("SGD", make_sgd);
    test_rollback("SGD with momentum and weight decay", make_sgd_momentum_decay);
    test_rollback("Adam", make_adam);
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
