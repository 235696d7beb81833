/*
 * test_ops_nn.c - the fused neuron op (c/src/ops_nn.c): value_neuron, and
 * value_neuron_activation (at the end of this file).
 *
 * Its promise is to be indistinguishable from micrograd's unfused expression, the
 * chain acc = b; acc = acc + w[i]*x[i] built here from value_mul and value_add. So:
 *   - the forward value is compared bit for bit with that chain, on random inputs,
 *     also when one Value fills several slots (an input used twice, b reused as a
 *     weight, w[i] == x[i]);
 *   - the gradients are compared bit for bit with the chain's, with the analytic
 *     derivatives (d/db = 1, d/dw = x, d/dx = w) and with finite differences;
 *   - bad arguments give NULL and an error, and a failed allocation at any point
 *     gives NULL with nothing allocated and no reference count moved.
 */
#include "check.h"

#include <microcrad.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Central differences with h ~ 1e-5 are good to about 1e-10; leave a margin. */
#define TOL_FD 1e-7

/* Sizes covering no terms, a few, and both sides of the switch from the stack buffer
 * to a heap array inside value_neuron (at 32 terms). */
static const int32_t SIZES[] = {0, 1, 2, 3, 7, 32, 33, 50};
#define N_SIZES ((int)(sizeof SIZES / sizeof SIZES[0]))
enum { MAX_TERMS = 50, POOL = 2 * MAX_TERMS + 1 };

/* micrograd's own expression, sum((wi*xi for wi, xi in zip(w, x)), b), node by node. */
static Value *chain_neuron(int32_t n, Value *const *w, Value *const *x, Value *b)
{
    Value *acc = b;
    value_retain(b);
    for (int32_t i = 0; i < n; i++) {
        Value *product = value_mul(w[i], x[i]);
        Value *sum = value_add(acc, product);
        value_release(product);
        value_release(acc);
        acc = sum;
    }
    return acc;
}

/*
 * A neuron's operands drawn from a pool of leaves. With `shared` the pool is small, so
 * the same leaf lands in several slots; otherwise every slot has its own leaf.
 * leaves[0..n_leaves-1] are the distinct leaves, owned by the set.
 */
typedef struct operand_set {
    int32_t n;
    Value *w[MAX_TERMS], *x[MAX_TERMS], *b;
    Value *leaves[POOL];
    int n_leaves;
} operand_set;

static void make_operands(operand_set *s, int32_t n, int shared, uint64_t *rng)
{
    memset(s, 0, sizeof *s);
    s->n = n;
    s->n_leaves = shared ? 3 : 2 * n + 1;
    for (int i = 0; i < s->n_leaves; i++)
        s->leaves[i] = value_create_leaf(microcrad_random_uniform(rng, -2.0, 2.0));
    if (shared) {
        /* Fixed patterns over three leaves: b is also w[0], x[1] == w[1], ... */
        s->b = s->leaves[0];
        for (int32_t i = 0; i < n; i++) {
            s->w[i] = s->leaves[i % 3];
            s->x[i] = s->leaves[(i * 2 + 1) % 3];
        }
    } else {
        s->b = s->leaves[0];
        for (int32_t i = 0; i < n; i++) {
            s->w[i] = s->leaves[2 * i + 1];
            s->x[i] = s->leaves[2 * i + 2];
        }
    }
}

static void free_operands(operand_set *s)
{
    for (int i = 0; i < s->n_leaves; i++)
        value_release(s->leaves[i]);
}

static void zero_leaf_grads(const operand_set *s)
{
    for (int i = 0; i < s->n_leaves; i++)
        value_set_grad(s->leaves[i], 0.0);
}

/* ------------------------------------------------------------------------------ */

static void test_identity(void)
{
    printf("identity\n");
    Value *b = value_create_leaf(0.5), *w = value_create_leaf(2.0), *x = value_create_leaf(-3.0);
    Value *y = value_neuron(1, &w, &x, b);
    if (!CHECK(y != NULL))
        return;
    CHECK_INT(value_op(y), MICROCRAD_OP_NEURON);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_NEURON), "neuron") == 0);
    CHECK_INT(value_n_prevs(y), 3);
    CHECK(value_prev(y, 0) == b);
    CHECK(value_prev(y, 1) == w);
    CHECK(value_prev(y, 2) == x);
    CHECK_SAME(y->data, 0.5 + 2.0 * -3.0);
    CHECK_INT(value_ref_count(w), 2);
    value_release(y);
    CHECK_INT(value_ref_count(w), 1);

    /* No terms: the bias alone, still a node of its own. */
    Value *z = value_neuron(0, NULL, NULL, b);
    if (CHECK(z != NULL)) {
        CHECK_INT(value_n_prevs(z), 1);
        CHECK_SAME(z->data, 0.5);
        CHECK_INT(value_backward(z), MICROCRAD_OK);
        CHECK_SAME(b->grad, 1.0);
        value_release(z);
    }
    value_release(b);
    value_release(w);
    value_release(x);
}

/* Forward and gradients against the unfused chain, bit for bit. */
static void test_matches_chain(void)
{
    printf("matches micrograd's chain bit for bit\n");
    uint64_t rng = 12345;
    for (int shared = 0; shared <= 1; shared++) {
        for (int k = 0; k < N_SIZES; k++) {
            for (int trial = 0; trial < 5; trial++) {
                operand_set s;
                make_operands(&s, SIZES[k], shared, &rng);
                Value *fused = value_neuron(s.n, s.w, s.x, s.b);
                Value *chain = chain_neuron(s.n, s.w, s.x, s.b);
                if (CHECK(fused && chain)) {
                    CHECK_SAME(fused->data, chain->data);

                    double chain_grads[POOL];
                    zero_leaf_grads(&s);
                    CHECK_INT(value_backward(chain), MICROCRAD_OK);
                    for (int i = 0; i < s.n_leaves; i++)
                        chain_grads[i] = s.leaves[i]->grad;
                    zero_leaf_grads(&s);
                    CHECK_INT(value_backward(fused), MICROCRAD_OK);
                    for (int i = 0; i < s.n_leaves; i++)
                        if (!CHECK_SAME(s.leaves[i]->grad, chain_grads[i]))
                            fprintf(stderr, "    n=%ld shared=%d leaf %d\n", (long)s.n, shared, i);
                }
                value_release(fused);
                value_release(chain);
                free_operands(&s);
            }
        }
    }
}

/* Distinct operands: d/db = 1, d/dw[i] = x[i], d/dx[i] = w[i] exactly; scaled by the
 * gradient arriving from above. */
static void test_analytic_gradients(void)
{
    printf("analytic gradients\n");
    uint64_t rng = 777;
    for (int k = 0; k < N_SIZES; k++) {
        operand_set s;
        make_operands(&s, SIZES[k], 0, &rng);
        Value *y = value_neuron(s.n, s.w, s.x, s.b);
        Value *scale = value_create_leaf(-1.75);
        Value *root = value_mul(y, scale);
        CHECK_INT(value_backward(root), MICROCRAD_OK);
        CHECK_SAME(s.b->grad, -1.75);
        for (int32_t i = 0; i < s.n; i++) {
            CHECK_SAME(s.w[i]->grad, s.x[i]->data * -1.75);
            CHECK_SAME(s.x[i]->grad, s.w[i]->data * -1.75);
        }
        CHECK_SAME(scale->grad, y->data);
        value_release(root);
        value_release(scale);
        value_release(y);
        free_operands(&s);
    }
}

/* tanh(neuron) evaluated afresh from the leaves' current data. */
static double eval_tanh_neuron(const operand_set *s)
{
    Value *y = value_neuron(s->n, s->w, s->x, s->b);
    Value *t = value_tanh(y);
    double r = t ? t->data : NAN;
    value_release(t);
    value_release(y);
    return r;
}

/* Gradients against central differences of the forward pass, through a tanh so the
 * gradient arriving at the neuron is not 1, with shared and distinct operands. */
static void test_finite_differences(void)
{
    printf("finite differences\n");
    uint64_t rng = 4242;
    for (int shared = 0; shared <= 1; shared++) {
        for (int k = 0; k < N_SIZES; k++) {
            operand_set s;
            make_operands(&s, SIZES[k], shared, &rng);
            /* Keep tanh away from saturation, where differences say little. */
            for (int i = 0; i < s.n_leaves; i++)
                value_set_data(s.leaves[i], s.leaves[i]->data * 0.3);
            Value *y = value_neuron(s.n, s.w, s.x, s.b);
            Value *t = value_tanh(y);
            CHECK_INT(value_backward(t), MICROCRAD_OK);
            for (int i = 0; i < s.n_leaves; i++) {
                Value *leaf = s.leaves[i];
                double x0 = leaf->data, h = 1e-5 * (1.0 + fabs(x0));
                value_set_data(leaf, x0 + h);
                double up = eval_tanh_neuron(&s);
                value_set_data(leaf, x0 - h);
                double down = eval_tanh_neuron(&s);
                value_set_data(leaf, x0);
                CHECK_NEAR(leaf->grad, (up - down) / (2.0 * h), TOL_FD);
            }
            value_release(t);
            value_release(y);
            free_operands(&s);
        }
    }
}

/* ------------------------------------------------------------------------------ */

static void test_bad_arguments(void)
{
    printf("bad arguments\n");
    int64_t live0 = microcrad_live_values();
    Value *b = value_create_leaf(1.0), *w[2], *x[2];
    for (int i = 0; i < 2; i++) {
        w[i] = value_create_leaf(i + 2.0);
        x[i] = value_create_leaf(i + 4.0);
    }

    microcrad_clear_error();
    CHECK(value_neuron(-1, w, x, b) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron");
    CHECK_CONTAINS(microcrad_last_error(), ">= 0");
    CHECK(value_neuron(2, NULL, x, b) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "w is NULL");
    CHECK(value_neuron(2, w, NULL, b) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "x is NULL");
    CHECK(value_neuron(2, w, x, NULL) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "argument 4 is NULL");

    Value *with_null[2] = {w[0], NULL};
    CHECK(value_neuron(2, w, with_null, b) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "x[1]");

    /* Memory that never was a Value: its canary is garbage. */
    Value fake;
    memset(&fake, 0xAB, sizeof fake);
    Value *with_fake[2] = {&fake, w[1]};
    CHECK(value_neuron(2, with_fake, x, b) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "w[0]");
    CHECK_CONTAINS(microcrad_last_error(), "not a microcrad Value");
    CHECK(value_neuron(1, w, x, &fake) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "not a microcrad Value");

    /* A released Value: readable only with the node pool (see test_check_canary.c). */
    if (!(microcrad_build_features() & (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND))) {
        Value *dead = value_create_leaf(9.0);
        value_release(dead);
        Value *with_dead[2] = {x[0], dead};
        CHECK(value_neuron(2, w, with_dead, b) == NULL);
        CHECK_CONTAINS(microcrad_last_error(), "released");
    }

    /* Nothing was retained or allocated by the failed calls. */
    CHECK_INT(value_ref_count(b), 1);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(value_ref_count(w[i]), 1);
        CHECK_INT(value_ref_count(x[i]), 1);
    }
    CHECK_INT(microcrad_live_values(), live0 + 5);
    value_release(b);
    for (int i = 0; i < 2; i++) {
        value_release(w[i]);
        value_release(x[i]);
    }
    CHECK_INT(microcrad_live_values(), live0);
}

/* Fails each allocation of value_neuron in turn: NULL, an error mentioning memory,
 * nothing allocated and no reference count moved; then it works again. */
static void walk_allocations(int32_t n)
{
    uint64_t rng = 99;
    operand_set s;
    make_operands(&s, n, 1, &rng);
    int64_t live0 = microcrad_live_values();
    uint32_t counts0[POOL];
    for (int i = 0; i < s.n_leaves; i++)
        counts0[i] = value_ref_count(s.leaves[i]);

    int64_t start = microcrad_allocation_count();
    Value *y = value_neuron(s.n, s.w, s.x, s.b);
    int64_t k = microcrad_allocation_count() - start;
    printf("allocation failures, n=%ld: %lld allocation(s)\n", (long)n, (long long)k);
    CHECK(k >= 1);
    double data = y ? y->data : NAN;
    value_release(y);

    for (int64_t fail = 1; fail <= k; fail++) {
        CHECK_INT(microcrad_fail_allocation(fail), MICROCRAD_OK);
        microcrad_clear_error();
        Value *v = value_neuron(s.n, s.w, s.x, s.b);
        microcrad_fail_allocation(0);
        if (!CHECK(v == NULL)) {
            value_release(v);
            continue;
        }
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        CHECK_INT(microcrad_live_values(), live0);
        for (int i = 0; i < s.n_leaves; i++)
            CHECK_INT(value_ref_count(s.leaves[i]), counts0[i]);
    }
    y = value_neuron(s.n, s.w, s.x, s.b);
    if (CHECK(y != NULL))
        CHECK_SAME(y->data, data);
    value_release(y);
    free_operands(&s);
}

/* ------------------------------------------------------------------------------ */
/* value_neuron_activation: the neuron node and its activation in one call          */
/* ------------------------------------------------------------------------------ */
/* value_neuron_activation must build exactly what
 * value_neuron followed by value_relu (tanh, sigmoid, or nothing) builds, hold the
 * neuron node through the activation node only, and keep the error promise: on a bad
 * argument or a failed allocation, NULL and nothing left allocated.
 */

enum { N = 5 };

static const struct {
    microcrad_activation act;
    int op; /* the activation node's op; MICROCRAD_OP_NEURON when there is none */
    Value *(*apply)(Value *);
} acts[] = {
    {MICROCRAD_ACT_LINEAR, MICROCRAD_OP_NEURON, NULL},
    {MICROCRAD_ACT_RELU, MICROCRAD_OP_RELU, value_relu},
    {MICROCRAD_ACT_TANH, MICROCRAD_OP_TANH, value_tanh},
    {MICROCRAD_ACT_SIGMOID, MICROCRAD_OP_SIGMOID, value_sigmoid},
};
enum { N_ACTS = sizeof acts / sizeof acts[0] };

typedef struct Net {
    Value *w[N], *x[N], *b;
} Net;

static void make(Net *net, double scale)
{
    for (int i = 0; i < N; i++) {
        net->w[i] = value_create_leaf(scale * (0.25 * i - 0.5));
        net->x[i] = value_create_leaf(0.1 * i + 0.3);
    }
    net->b = value_create_leaf(0.125);
}

static void release(Net *net)
{
    for (int i = 0; i < N; i++) {
        value_release(net->w[i]);
        value_release(net->x[i]);
    }
    value_release(net->b);
}

/* Both ways, at a positive and a negative pre-activation (relu's two sides). */
static void test_activation_same_as_two_calls(void)
{
    const int64_t live0 = microcrad_live_values();
    for (int k = 0; k < N_ACTS; k++) {
        for (int sign = -1; sign <= 1; sign += 2) {
            Net one, two;
            make(&one, sign);
            make(&two, sign);
            Value *fused = value_neuron_activation(N, one.w, one.x, one.b, acts[k].act);
            Value *z = value_neuron(N, two.w, two.x, two.b);
            Value *plain = z;
            if (acts[k].apply) {
                plain = acts[k].apply(z);
                value_release(z);
            }
            if (!CHECK(fused && plain))
                continue;
            CHECK_INT(value_op(fused), acts[k].op);
            CHECK_SAME(fused->data, plain->data);
            if (acts[k].apply) {
                Value *inner = value_prev(fused, 0);
                CHECK_INT(value_op(inner), MICROCRAD_OP_NEURON);
                CHECK_INT(value_ref_count(inner), 1); /* held by the activation only */
                CHECK_SAME(inner->data, value_prev(plain, 0)->data);
            }
            CHECK_INT(value_ref_count(fused), 1);
            CHECK_INT(value_backward(fused), MICROCRAD_OK);
            CHECK_INT(value_backward(plain), MICROCRAD_OK);
            for (int i = 0; i < N; i++) {
                CHECK_SAME(one.w[i]->grad, two.w[i]->grad);
                CHECK_SAME(one.x[i]->grad, two.x[i]->grad);
            }
            CHECK_SAME(one.b->grad, two.b->grad);
            value_release(fused);
            value_release(plain);
            release(&one);
            release(&two);
        }
    }
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_activation_bad_arguments(void)
{
    Net net;
    make(&net, 1.0);
    const int64_t live0 = microcrad_live_values();
    microcrad_clear_error();
    CHECK(value_neuron_activation(N, net.w, net.x, net.b, (microcrad_activation)7) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron_activation");
    microcrad_clear_error();
    CHECK(value_neuron_activation(N, net.w, net.x, NULL, MICROCRAD_ACT_RELU) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron_activation: argument 4");
    Value *x_bad[N] = {net.x[0], net.x[1], NULL, net.x[3], net.x[4]};
    microcrad_clear_error();
    CHECK(value_neuron_activation(N, net.w, x_bad, net.b, MICROCRAD_ACT_TANH) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_neuron_activation (x[2])");
    microcrad_clear_error();
    CHECK(value_neuron_activation(-1, net.w, net.x, net.b, MICROCRAD_ACT_RELU) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(value_ref_count(net.b), 1);
    release(&net);
}

/* Each allocation the call makes, failed in turn. */
static void test_activation_allocation_failures(void)
{
    Net net;
    make(&net, 1.0);
    const int64_t live0 = microcrad_live_values();
    for (int k = 0; k < N_ACTS; k++) {
        int64_t start = microcrad_allocation_count();
        Value *v = value_neuron_activation(N, net.w, net.x, net.b, acts[k].act);
        int64_t count = microcrad_allocation_count() - start;
        CHECK(v != NULL);
        CHECK_INT(count, acts[k].apply ? 2 : 1);
        value_release(v);
        for (int64_t n = 1; n <= count; n++) {
            CHECK_INT(microcrad_fail_allocation(n), MICROCRAD_OK);
            microcrad_clear_error();
            Value *r = value_neuron_activation(N, net.w, net.x, net.b, acts[k].act);
            microcrad_fail_allocation(0);
            CHECK(r == NULL);
            CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NOMEM);
            CHECK_CONTAINS(microcrad_last_error(), "value_neuron_activation");
            CHECK_INT(microcrad_live_values(), live0);
            CHECK_INT(value_ref_count(net.b), 1);
        }
    }
    release(&net);
}

int main(void)
{
    microcrad_set_quiet(1);
    int64_t live0 = microcrad_live_values();
    test_identity();
    test_matches_chain();
    test_analytic_gradients();
    test_finite_differences();
    test_bad_arguments();
    walk_allocations(0);
    walk_allocations(3);  /* operands gathered on the stack: one allocation */
    walk_allocations(40); /* operands gathered in a heap array: two */
    test_activation_same_as_two_calls();
    test_activation_bad_arguments();
    test_activation_allocation_failures();
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
