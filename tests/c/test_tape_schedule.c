/*
 * test_tape_schedule.c - a tape's forward pass computes independent neurons of the same
 * size together (interleaved sums) in an order sorted by level; the results must be
 * bit for bit those of building the graph again, for every group size, for neurons of
 * different sizes side by side, and across layers that depend on each other.
 *
 * The weights come from a fixed generator and have many significant bits, so any
 * change in the order of one neuron's additions would show in the last bits. Building
 * the schedule allocates; each of those allocations may fail without leaving anything
 * behind.
 */
#include "check.h"

#include <microcrad.h>

#include <stdlib.h>

enum { MAX_IN = 9, MAX_OUT = 7, LAYERS = 3 };

/* Layer sizes: inputs, then three layers. The first layer's 7 neurons make groups of
 * 4 and 3, the second's 5 of 4 and 1, the third's 2 one group of 2. */
static const int sizes[LAYERS + 1] = {9, 7, 5, 2};

typedef struct Net {
    Value *w[LAYERS][MAX_OUT][MAX_IN], *b[LAYERS][MAX_OUT];
} Net;

static void make_net(Net *net, uint64_t seed)
{
    for (int l = 0; l < LAYERS; l++)
        for (int j = 0; j < sizes[l + 1]; j++) {
            for (int i = 0; i < sizes[l]; i++)
                net->w[l][j][i] = value_create_leaf(microcrad_random_uniform(&seed, -1.0, 1.0));
            net->b[l][j] = value_create_leaf(microcrad_random_uniform(&seed, -0.5, 0.5));
        }
}

static void free_net(Net *net)
{
    for (int l = 0; l < LAYERS; l++)
        for (int j = 0; j < sizes[l + 1]; j++) {
            for (int i = 0; i < sizes[l]; i++)
                value_release(net->w[l][j][i]);
            value_release(net->b[l][j]);
        }
}

/* The network over inputs x, plus one extra neuron of another size (3 inputs) at the
 * first level, which must not be grouped with the others. Returns the sum of all
 * outputs, one node. */
static Value *forward(Net *net, Value **x, Value *extra_w[3])
{
    Value *in[MAX_OUT > MAX_IN ? MAX_OUT : MAX_IN], *out[MAX_OUT];
    for (int i = 0; i < sizes[0]; i++)
        in[i] = x[i];
    int own_inputs = 0; /* in[] holds borrowed inputs for the first layer */
    for (int l = 0; l < LAYERS; l++) {
        for (int j = 0; j < sizes[l + 1]; j++) {
            microcrad_activation act = l + 1 < LAYERS ? MICROCRAD_ACT_TANH : MICROCRAD_ACT_LINEAR;
            out[j] = value_neuron_activation(sizes[l], net->w[l][j], in, net->b[l][j], act);
            CHECK(out[j] != NULL);
        }
        if (own_inputs)
            for (int i = 0; i < sizes[l]; i++)
                value_release(in[i]);
        for (int j = 0; j < sizes[l + 1]; j++)
            in[j] = out[j];
        own_inputs = 1;
    }
    Value *odd = value_neuron(3, extra_w, x, net->b[0][0]);
    Value *terms[MAX_OUT + 1];
    int n = 0;
    for (int j = 0; j < sizes[LAYERS]; j++)
        terms[n++] = in[j];
    terms[n++] = odd;
    Value *root = value_sum(n, terms);
    for (int j = 0; j < n; j++)
        value_release(terms[j]);
    return root;
}

/* Every allocation microcrad_tape_create makes (the order, the leaves, the schedule
 * and its scratch tables), failed in turn: NULL, "memory" in the message, no count
 * changed, and no traversal mark left behind. */
static void test_allocation_failures(Value *root, Net *net)
{
    const int64_t live0 = microcrad_live_values();
    const uint32_t count0 = value_ref_count(root);
    int64_t start = microcrad_allocation_count();
    microcrad_tape *tape = microcrad_tape_create(root);
    int64_t k = microcrad_allocation_count() - start;
    CHECK(tape != NULL);
    CHECK(k >= 5);
    microcrad_tape_free(tape);
    for (int64_t n = 1; n <= k; n++) {
        CHECK_INT(microcrad_fail_allocation(n), MICROCRAD_OK);
        microcrad_clear_error();
        microcrad_tape *failed = microcrad_tape_create(root);
        microcrad_fail_allocation(0);
        CHECK(failed == NULL);
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NOMEM);
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        CHECK_INT(microcrad_live_values(), live0);
        CHECK_INT(value_ref_count(root), count0);
        CHECK_INT(root->flags, 0);
        CHECK_INT(net->w[0][0][0]->flags, 0);
    }
}

int main(void)
{
    microcrad_set_quiet(1);
    const int64_t live0 = microcrad_live_values();
    Net recorded, rebuilt;
    make_net(&recorded, 7);
    make_net(&rebuilt, 7);
    Value *x1[MAX_IN], *x2[MAX_IN], *extra1[3], *extra2[3];
    uint64_t seed = 99;
    for (int i = 0; i < sizes[0]; i++) {
        double v = microcrad_random_uniform(&seed, -2.0, 2.0);
        x1[i] = value_create_leaf(v);
        x2[i] = value_create_leaf(v);
    }
    for (int i = 0; i < 3; i++) {
        extra1[i] = value_create_leaf(0.3 + i);
        extra2[i] = value_create_leaf(0.3 + i);
    }

    Value *root = forward(&recorded, x1, extra1);
    test_allocation_failures(root, &recorded);
    microcrad_tape *tape = microcrad_tape_create(root);
    CHECK(tape != NULL);
    for (int round = 0; round < 4; round++) {
        /* New inputs for both; the tape replays, the other graph is built anew. */
        for (int i = 0; i < sizes[0]; i++) {
            double v = microcrad_random_uniform(&seed, -2.0, 2.0);
            value_set_data(x1[i], v);
            value_set_data(x2[i], v);
        }
        CHECK_INT(microcrad_tape_forward(tape), MICROCRAD_OK);
        Value *again = forward(&rebuilt, x2, extra2);
        CHECK_SAME(root->data, again->data);
        CHECK_SAME(microcrad_tape_data(tape), again->data);
        /* Every neuron of the recorded graph agrees with its rebuilt twin: compare
         * the gradients after backward, which depend on every intermediate value. */
        CHECK_INT(microcrad_tape_zero_grad(tape), MICROCRAD_OK);
        CHECK_INT(microcrad_tape_backward(tape), MICROCRAD_OK);
        for (int l = 0; l < LAYERS; l++)
            for (int j = 0; j < sizes[l + 1]; j++) {
                value_set_grad(rebuilt.b[l][j], 0.0);
                for (int i = 0; i < sizes[l]; i++)
                    value_set_grad(rebuilt.w[l][j][i], 0.0);
            }
        for (int i = 0; i < sizes[0]; i++)
            value_set_grad(x2[i], 0.0);
        CHECK_INT(value_backward(again), MICROCRAD_OK);
        int same = 1;
        for (int l = 0; l < LAYERS; l++)
            for (int j = 0; j < sizes[l + 1]; j++) {
                same &= recorded.b[l][j]->grad == rebuilt.b[l][j]->grad;
                for (int i = 0; i < sizes[l]; i++)
                    same &= recorded.w[l][j][i]->grad == rebuilt.w[l][j][i]->grad;
            }
        for (int i = 0; i < sizes[0]; i++)
            same &= x1[i]->grad == x2[i]->grad;
        CHECK(same);
        value_release(again);
    }
    microcrad_tape_free(tape);
    value_release(root);
    for (int i = 0; i < sizes[0]; i++) {
        value_release(x1[i]);
        value_release(x2[i]);
    }
    for (int i = 0; i < 3; i++) {
        value_release(extra1[i]);
        value_release(extra2[i]);
    }
    free_net(&recorded);
    free_net(&rebuilt);
    CHECK_INT(microcrad_live_values(), live0);
    return check_summary();
}
