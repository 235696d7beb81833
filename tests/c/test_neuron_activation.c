/*
 * test_neuron_activation.c - value_neuron_activation must build exactly what
 * value_neuron followed by value_relu (tanh, sigmoid, or nothing) builds, hold the
 * neuron node through the activation node only, and keep the error promise: on a bad
 * argument or a failed allocation, NULL and nothing left allocated.
 */
#include "check.h"

#include <microcrad.h>

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
static void test_same_as_two_calls(void)
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

static void test_bad_arguments(void)
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
static void test_allocation_failures(void)
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
    test_same_as_two_calls();
    test_bad_arguments();
    test_allocation_failures();
    return check_summary();
}
