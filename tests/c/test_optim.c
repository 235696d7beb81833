/*
 * test_optim.c - the optimizers: SGD (plain, momentum, weight decay) and Adam.
 *
 * Each optimizer runs several steps on a few parameters whose gradients are set by
 * hand before every step, and the parameters are compared after each step with the
 * same update computed here, independently, from torch.optim's formulas as the header
 * states them. The first steps are also checked against closed forms (Adam's first
 * step moves every parameter by about lr, for example), so the reference itself is
 * checked too. Then the contract around the numbers: bad arguments, freed handles,
 * the references the optimizer holds, and failed allocations.
 */
#include "check.h"

#include <microcrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 4, STEPS = 6 };

/* The updates are a few roundings each; the reference repeats them, so the results
 * agree to the last bit or nearly. */
#define TOL 1e-15

static const double START[N] = {0.5, -1.25, 3.0, 0.0};

/* The gradient of parameter i at step t, a made-up but varied function. */
static double grad_at(int i, int t, double data) { return 0.3 * data - 0.7 * (i + 1) + 0.1 * t; }

static void make_params(Value *params[N])
{
    for (int i = 0; i < N; i++)
        params[i] = value_create_leaf(START[i]);
}

static void release_params(Value *params[N])
{
    for (int i = 0; i < N; i++)
        value_release(params[i]);
}

/* Gives every parameter its hand-made gradient for step t. */
static void set_grads(Value *params[N], int t)
{
    for (int i = 0; i < N; i++)
        value_set_grad(params[i], grad_at(i, t, params[i]->data));
}

/* ------------------------------------------------------------------------------ */
/* The numbers                                                                     */
/* ------------------------------------------------------------------------------ */

static void run_sgd(double lr, double momentum, double weight_decay)
{
    printf("sgd lr=%g momentum=%g weight_decay=%g\n", lr, momentum, weight_decay);
    Value *params[N];
    make_params(params);
    microcrad_optimizer *opt = microcrad_sgd_create(N, params, lr, momentum, weight_decay);
    if (!CHECK(opt != NULL)) {
        release_params(params);
        return;
    }
    double data[N], buf[N];
    memcpy(data, START, sizeof data);
    for (int t = 1; t <= STEPS; t++) {
        set_grads(params, t);
        double grads[N];
        for (int i = 0; i < N; i++)
            grads[i] = params[i]->grad;
        CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
        for (int i = 0; i < N; i++) {
            CHECK_SAME(params[i]->grad, grads[i]); /* gradients are the caller's business */
            double g = grad_at(i, t, data[i]) + weight_decay * data[i];
            if (momentum != 0.0) {
                buf[i] = t == 1 ? g : momentum * buf[i] + g;
                g = buf[i];
            }
            data[i] -= lr * g;
            CHECK_NEAR(params[i]->data, data[i], TOL);
        }
        if (t == 1) /* the first step is plain SGD whatever the momentum */
            for (int i = 0; i < N; i++) {
                double g = grad_at(i, 1, START[i]) + weight_decay * START[i];
                CHECK_NEAR(params[i]->data, START[i] - lr * g, TOL);
            }
    }
    CHECK_INT(microcrad_optimizer_zero_grad(opt), MICROCRAD_OK);
    for (int i = 0; i < N; i++)
        CHECK_SAME(params[i]->grad, 0.0);
    microcrad_optimizer_free(opt);
    release_params(params);
}

/* Momentum with a constant gradient g: after t steps the buffer is
 * g (1 + m + ... + m^(t-1)), so the parameter moved by lr g sum_k (1 - m^k) / (1 - m). */
static void test_sgd_momentum_closed_form(void)
{
    printf("sgd momentum, closed form\n");
    Value *p = value_create_leaf(1.0);
    microcrad_optimizer *opt = microcrad_sgd_create(1, &p, 0.1, 0.5, 0.0);
    double expected = 1.0;
    for (int t = 1; t <= 5; t++) {
        value_set_grad(p, 2.0);
        CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
        expected -= 0.1 * 2.0 * (1.0 - pow(0.5, t)) / 0.5;
        CHECK_NEAR(p->data, expected, 1e-14);
    }
    microcrad_optimizer_free(opt);
    value_release(p);
}

static void run_adam(double lr, double beta1, double beta2, double eps, double weight_decay)
{
    printf("adam lr=%g betas=(%g, %g) eps=%g weight_decay=%g\n", lr, beta1, beta2, eps,
           weight_decay);
    Value *params[N];
    make_params(params);
    microcrad_optimizer *opt = microcrad_adam_create(N, params, lr, beta1, beta2, eps, weight_decay);
    if (!CHECK(opt != NULL)) {
        release_params(params);
        return;
    }
    double data[N], m[N] = {0}, v[N] = {0};
    memcpy(data, START, sizeof data);
    for (int t = 1; t <= STEPS; t++) {
        set_grads(params, t);
        CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
        for (int i = 0; i < N; i++) {
            double g = grad_at(i, t, data[i]) + weight_decay * data[i];
            m[i] = beta1 * m[i] + (1.0 - beta1) * g;
            v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
            double m_hat = m[i] / (1.0 - pow(beta1, t));
            double v_hat = v[i] / (1.0 - pow(beta2, t));
            data[i] -= lr * m_hat / (sqrt(v_hat) + eps);
            /* Bias correction written another way: a few roundings apart at most. */
            CHECK_NEAR(params[i]->data, data[i], 1e-13);
            data[i] = params[i]->data; /* follow the library, so differences do not grow */
        }
        if (t == 1) /* m_hat = g, v_hat = g^2: each parameter moves by lr g / (|g| + eps) */
            for (int i = 0; i < N; i++) {
                double g = grad_at(i, 1, START[i]) + weight_decay * START[i];
                CHECK_NEAR(params[i]->data, START[i] - lr * g / (fabs(g) + eps), 1e-12);
            }
    }
    microcrad_optimizer_free(opt);
    release_params(params);
}

static void test_learning_rate(void)
{
    printf("learning rate\n");
    Value *p = value_create_leaf(1.0);
    microcrad_optimizer *opt = microcrad_sgd_create(1, &p, 0.5, 0.0, 0.0);
    CHECK_SAME(microcrad_optimizer_lr(opt), 0.5);
    CHECK_INT(microcrad_optimizer_set_lr(opt, 0.25), MICROCRAD_OK);
    CHECK_SAME(microcrad_optimizer_lr(opt), 0.25);
    value_set_grad(p, 2.0);
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
    CHECK_SAME(p->data, 0.5);
    CHECK_INT(microcrad_optimizer_set_lr(opt, -1.0), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_optimizer_set_lr(opt, NAN), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_optimizer_set_lr(opt, INFINITY), MICROCRAD_ERR_ARGUMENT);
    CHECK_SAME(microcrad_optimizer_lr(opt), 0.25);
    CHECK_INT(microcrad_optimizer_set_lr(opt, 0.0), MICROCRAD_OK); /* lr 0: a valid no-op */
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
    CHECK_SAME(p->data, 0.5);
    microcrad_optimizer_free(opt);
    value_release(p);
}

/* ------------------------------------------------------------------------------ */
/* The contract                                                                    */
/* ------------------------------------------------------------------------------ */

static void test_references(void)
{
    printf("references\n");
    int64_t live0 = microcrad_live_values();
    Value *params[N];
    make_params(params);
    microcrad_optimizer *opt = microcrad_adam_create(N, params, 0.1, 0.9, 0.999, 1e-8, 0.0);
    for (int i = 0; i < N; i++)
        CHECK_INT(value_ref_count(params[i]), 2);
    /* The caller may let go: the optimizer keeps the parameters alive. */
    release_params(params);
    CHECK_INT(microcrad_live_values(), live0 + N);
    for (int i = 0; i < N; i++)
        CHECK_INT(value_ref_count(params[i]), 1);
    set_grads(params, 1);
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
    CHECK(params[0]->data != START[0]);
    microcrad_optimizer_free(opt);
    CHECK_INT(microcrad_live_values(), live0);

    /* The same parameter listed twice is retained (and updated) twice. */
    Value *p = value_create_leaf(1.0);
    Value *twice[2] = {p, p};
    opt = microcrad_sgd_create(2, twice, 0.5, 0.0, 0.0);
    CHECK_INT(value_ref_count(p), 3);
    value_set_grad(p, 1.0);
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
    CHECK_SAME(p->data, 0.0);
    microcrad_optimizer_free(opt);
    CHECK_INT(value_ref_count(p), 1);
    value_release(p);

    /* No parameters at all is a valid, idle optimizer. */
    opt = microcrad_sgd_create(0, NULL, 0.1, 0.9, 0.0);
    CHECK(opt != NULL);
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
    CHECK_INT(microcrad_optimizer_zero_grad(opt), MICROCRAD_OK);
    microcrad_optimizer_free(opt);
    opt = microcrad_adam_create(0, NULL, 0.1, 0.9, 0.999, 1e-8, 0.0);
    CHECK(opt != NULL);
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_OK);
    microcrad_optimizer_free(opt);
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_bad_arguments(void)
{
    printf("bad arguments\n");
    int64_t live0 = microcrad_live_values();
    Value *params[N];
    make_params(params);

    microcrad_clear_error();
    CHECK(microcrad_sgd_create(-1, params, 0.1, 0.0, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_sgd_create");
    CHECK(microcrad_sgd_create(N, NULL, 0.1, 0.0, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "params is NULL");
    CHECK(microcrad_sgd_create(N, params, -0.1, 0.0, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "lr");
    CHECK(microcrad_sgd_create(N, params, NAN, 0.0, 0.0) == NULL);
    CHECK(microcrad_sgd_create(N, params, INFINITY, 0.0, 0.0) == NULL);
    CHECK(microcrad_sgd_create(N, params, 0.1, -0.5, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "momentum");
    CHECK(microcrad_sgd_create(N, params, 0.1, 0.0, -1e-4) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "weight_decay");

    CHECK(microcrad_adam_create(N, params, 0.1, 1.0, 0.999, 1e-8, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "beta1");
    CHECK(microcrad_adam_create(N, params, 0.1, 0.9, -0.1, 1e-8, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "beta2");
    CHECK(microcrad_adam_create(N, params, 0.1, NAN, 0.999, 1e-8, 0.0) == NULL);
    CHECK(microcrad_adam_create(N, params, 0.1, 0.9, 0.999, -1e-8, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "eps");
    CHECK(microcrad_adam_create(N, params, -1.0, 0.9, 0.999, 1e-8, 0.0) == NULL);
    CHECK(microcrad_adam_create(N, params, 0.1, 0.9, 0.999, 1e-8, NAN) == NULL);

    /* A NULL or foreign entry in the list names its slot. */
    Value *with_null[N] = {params[0], params[1], NULL, params[3]};
    CHECK(microcrad_sgd_create(N, with_null, 0.1, 0.0, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "params[2]");
    Value fake;
    memset(&fake, 0x5A, sizeof fake);
    Value *with_fake[N] = {params[0], &fake, params[2], params[3]};
    CHECK(microcrad_adam_create(N, with_fake, 0.1, 0.9, 0.999, 1e-8, 0.0) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "params[1]");
    CHECK_CONTAINS(microcrad_last_error(), "not a microcrad Value");

    /* None of that retained anything. */
    for (int i = 0; i < N; i++)
        CHECK_INT(value_ref_count(params[i]), 1);

    /* Handles that are not optimizers. */
    CHECK_INT(microcrad_optimizer_step(NULL), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_optimizer_zero_grad(NULL), MICROCRAD_ERR_NULL);
    CHECK_INT(microcrad_optimizer_set_lr(NULL, 0.1), MICROCRAD_ERR_NULL);
    CHECK_SAME(microcrad_optimizer_lr(NULL), NAN);
    microcrad_optimizer_free(NULL); /* ignored, like free(NULL) */
    unsigned char *junk = malloc(256);
    if (CHECK(junk != NULL)) {
        memset(junk, 0xA5, 256);
        microcrad_optimizer *bogus = (microcrad_optimizer *)(void *)junk;
        CHECK_INT(microcrad_optimizer_step(bogus), MICROCRAD_ERR_FOREIGN);
        CHECK_CONTAINS(microcrad_last_error(), "not a microcrad optimizer");
        CHECK_INT(microcrad_optimizer_zero_grad(bogus), MICROCRAD_ERR_FOREIGN);
        CHECK_INT(microcrad_optimizer_set_lr(bogus, 0.1), MICROCRAD_ERR_FOREIGN);
        CHECK_SAME(microcrad_optimizer_lr(bogus), NAN);
        microcrad_clear_error();
        microcrad_optimizer_free(bogus); /* reported, and nothing freed */
        CHECK_CONTAINS(microcrad_last_error(), "microcrad_optimizer_free");
        free(junk);
    }
    /* A Value is not an optimizer either. */
    CHECK(microcrad_optimizer_step((microcrad_optimizer *)(void *)params[0]) < 0);

    release_params(params);
    CHECK_INT(microcrad_live_values(), live0);
}

/* A freed optimizer's canary reads DEAD while its memory is not reused. Reading freed
 * memory is exactly what AddressSanitizer and Valgrind (and ThreadSanitizer, for malloc
 * memory) report, so as with released Values (test_check_canary.c) this runs only in builds
 * without them. */
static void test_freed_handle(void)
{
    if (microcrad_build_features() &
        (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_TSAN | MICROCRAD_BUILD_VALGRIND)) {
        printf("freed optimizer: skipped (the sanitizer or Valgrind build reports it)\n");
        return;
    }
    printf("freed optimizer\n");
    Value *p = value_create_leaf(1.0);
    microcrad_optimizer *opt = microcrad_sgd_create(1, &p, 0.1, 0.0, 0.0);
    microcrad_optimizer_free(opt);
    CHECK_INT(value_ref_count(p), 1);
    /* malloc may have scribbled on the block, so only "an error" is certain. */
    int status = microcrad_optimizer_step(opt);
    CHECK(status == MICROCRAD_ERR_RELEASED || status == MICROCRAD_ERR_FOREIGN);
    CHECK(isnan(microcrad_optimizer_lr(opt)));
    CHECK_SAME(p->data, 1.0);
    value_release(p);
}

/* A parameter released behind the optimizer's back is found, and nothing is updated. */
static void test_released_parameter(void)
{
    if (microcrad_build_features() & (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND)) {
        printf("released parameter: skipped (the sanitizer or Valgrind build reports it)\n");
        return;
    }
    printf("released parameter\n");
    Value *a = value_create_leaf(1.0), *b = value_create_leaf(2.0);
    Value *params[2] = {a, b};
    microcrad_optimizer *opt = microcrad_sgd_create(2, params, 0.1, 0.0, 0.0);
    value_set_grad(a, 1.0);
    value_release(b);
    value_release(b); /* one release too many: the optimizer's reference is gone */
    CHECK_INT(microcrad_optimizer_step(opt), MICROCRAD_ERR_RELEASED);
    CHECK_CONTAINS(microcrad_last_error(), "parameter 1");
    CHECK_SAME(a->data, 1.0);
    CHECK_INT(microcrad_optimizer_zero_grad(opt), MICROCRAD_ERR_RELEASED);
    CHECK_SAME(a->grad, 1.0);
    /* Freeing still releases a; b's release is refused with an error, not a crash. */
    microcrad_optimizer_free(opt);
    CHECK_INT(value_ref_count(a), 1);
    value_release(a);
}

typedef microcrad_optimizer *(*make_fn)(Value **params);
static microcrad_optimizer *make_sgd(Value **p) { return microcrad_sgd_create(N, p, 0.1, 0.0, 0.0); }
static microcrad_optimizer *make_sgd_momentum(Value **p)
{
    return microcrad_sgd_create(N, p, 0.1, 0.9, 0.0);
}
static microcrad_optimizer *make_adam(Value **p)
{
    return microcrad_adam_create(N, p, 0.1, 0.9, 0.999, 1e-8, 0.0);
}

/* Fails each allocation of a constructor in turn: NULL, an error about memory, and no
 * parameter retained; Valgrind and ASan runs check that nothing leaks. */
static void walk_allocations(const char *name, make_fn make)
{
    Value *params[N];
    make_params(params);
    int64_t start = microcrad_allocation_count();
    microcrad_optimizer *opt = make(params);
    int64_t k = microcrad_allocation_count() - start;
    printf("allocation failures, %s: %lld allocation(s)\n", name, (long long)k);
    CHECK(opt != NULL);
    CHECK(k >= 2);
    microcrad_optimizer_free(opt);
    for (int64_t fail = 1; fail <= k; fail++) {
        CHECK_INT(microcrad_fail_allocation(fail), MICROCRAD_OK);
        microcrad_clear_error();
        opt = make(params);
        microcrad_fail_allocation(0);
        if (!CHECK(opt == NULL)) {
            microcrad_optimizer_free(opt);
            continue;
        }
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        for (int i = 0; i < N; i++)
            CHECK_INT(value_ref_count(params[i]), 1);
    }
    release_params(params);
}

int main(void)
{
    microcrad_set_quiet(1);
    int64_t live0 = microcrad_live_values();
    run_sgd(0.1, 0.0, 0.0);
    run_sgd(0.05, 0.9, 0.0);
    run_sgd(0.1, 0.0, 0.01);
    run_sgd(0.02, 0.5, 0.1);
    test_sgd_momentum_closed_form();
    run_adam(0.01, 0.9, 0.999, 1e-8, 0.0);
    run_adam(0.1, 0.5, 0.9, 1e-3, 0.05);
    run_adam(0.05, 0.0, 0.0, 0.0, 0.0);
    test_learning_rate();
    test_references();
    test_bad_arguments();
    test_freed_handle();
    test_released_parameter();
    walk_allocations("sgd", make_sgd);
    walk_allocations("sgd with momentum", make_sgd_momentum);
    walk_allocations("adam", make_adam);
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
