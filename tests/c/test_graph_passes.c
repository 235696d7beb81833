/*
 * test_graph_passes.c - value_backward's single reverse pass (which zeroes each
 * interior gradient and clears its traversal mark just before the node's first
 * contribution) against the tape's plain passes (zero everything, then apply the rules
 * in reverse), which must agree bit for bit; and the marks left behind by a failed
 * walk, which must not leak into the next one.
 */
#include "check.h"

#include <microcrad.h>

enum { MAX_NODES = 64 };

typedef struct Graph {
    Value *node[MAX_NODES];
    int n;
} Graph;

static Value *keep(Graph *g, Value *v)
{
    CHECK(v != NULL);
    g->node[g->n++] = v;
    return v;
}

static void release_all(Graph *g)
{
    while (g->n > 0)
        value_release(g->node[--g->n]);
}

/* A graph with shared interior nodes, a node used twice by one op, a custom node (no
 * gradient flows through it, but its operands are interior and must be zeroed) and a
 * constant leaf shared by many nodes. Built over leaves a, b (node[0], node[1]). */
static Value *build(Graph *g, double a_data, double b_data)
{
    Value *a = keep(g, value_create_leaf(a_data));
    Value *b = keep(g, value_create_leaf(b_data));
    Value *c = keep(g, value_create_leaf(0.5));
    Value *ab = keep(g, value_mul(a, b));
    Value *sq = keep(g, value_mul(ab, ab));
    Value *t = keep(g, value_tanh(ab));
    Value *s = keep(g, value_add(sq, t));
    Value *u = keep(g, value_mul(s, c));
    Value *ops[2] = {u, t};
    Value *custom = keep(g, value_create(2.0, 2, ops));
    Value *v = keep(g, value_sub(u, c));
    Value *e = keep(g, value_exp(value_prev(v, 0)));
    Value *terms[5] = {v, e, custom, t, ab};
    return keep(g, value_sum(5, terms));
}

static void test_matches_tape(void)
{
    const int64_t live0 = microcrad_live_values();
    Graph one = {.n = 0}, two = {.n = 0};
    Value *r1 = build(&one, 0.7, -1.3), *r2 = build(&two, 0.7, -1.3);
    microcrad_tape *tape = microcrad_tape_create(r2);
    CHECK(tape != NULL);
    /* Twice: interior gradients are recomputed, leaf gradients accumulate. */
    for (int round = 0; round < 2; round++) {
        CHECK_INT(value_backward(r1), MICROCRAD_OK);
        CHECK_INT(microcrad_tape_backward(tape), MICROCRAD_OK);
        for (int i = 0; i < one.n; i++)
            CHECK_SAME(one.node[i]->grad, two.node[i]->grad);
    }
    /* No mark is left behind: a third pass gives the same interior gradients again. */
    for (int i = 0; i < one.n; i++)
        CHECK_INT(one.node[i]->flags, 0);
    microcrad_tape_free(tape);
    release_all(&one);
    release_all(&two);
    CHECK_INT(microcrad_live_values(), live0);
}

/* A leaf root accumulates 1 per backward, also after a walk that failed on its very
 * first allocation (which once left the root marked). */
static void test_leaf_root_after_failed_walk(void)
{
    Value *x = value_create_leaf(3.0);
    CHECK_INT(value_backward(x), MICROCRAD_OK);
    CHECK_SAME(x->grad, 1.0);
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    CHECK_INT(value_zero_grad(x), MICROCRAD_ERR_NOMEM);
    microcrad_fail_allocation(0);
    CHECK_SAME(x->grad, 1.0);
    CHECK_INT(x->flags, 0);
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    CHECK_INT(value_backward(x), MICROCRAD_ERR_NOMEM);
    microcrad_fail_allocation(0);
    CHECK_INT(x->flags, 0);
    CHECK_INT(value_backward(x), MICROCRAD_OK);
    CHECK_SAME(x->grad, 2.0);

    /* The same for an interior root. */
    Value *y = value_mul(x, x);
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    CHECK_INT(value_backward(y), MICROCRAD_ERR_NOMEM);
    microcrad_fail_allocation(0);
    CHECK_INT(y->flags, 0);
    CHECK_INT(x->flags, 0);
    CHECK_SAME(x->grad, 2.0);
    CHECK_INT(value_backward(y), MICROCRAD_OK);
    CHECK_SAME(x->grad, 2.0 + 6.0);
    value_release(y);
    value_release(x);
}

int main(void)
{
    microcrad_set_quiet(1);
    test_matches_tape();
    test_leaf_root_after_failed_walk();
    return check_summary();
}
