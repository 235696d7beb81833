/*
 * test_tape.c - replaying a recorded graph must give exactly what rebuilding it gives.
 */
#include "check.h"
#include "microcrad.h"

enum { N_LEAVES = 3 };

/* A graph with sharing, a diamond and every kind of op: f(a, b, c). The same leaves
 * are used several times so their gradients accumulate over several paths. */
static Value *build(Value *const leaf[N_LEAVES], Value **scratch, int *n_scratch)
{
    Value *a = leaf[0], *b = leaf[1], *c = leaf[2];
    int n = 0;
#define KEEP(expr) (scratch[n++] = (expr))
    Value *ab = KEEP(value_mul(a, b));
    Value *s = KEEP(value_add(ab, c));
    Value *r = KEEP(value_relu(s));
    Value *t = KEEP(value_tanh(ab));
    Value *q = KEEP(value_div(c, b));
    Value *nq = KEEP(value_neg(q));
    Value *e = KEEP(value_exp(nq));
    Value *p = KEEP(value_pow_const(s, 2.0));
    Value *sg = KEEP(value_sigmoid(a));
    Value *l = KEEP(value_log(sg));
    Value *terms[] = {r, t, e, p, l, ab};
    Value *root = value_sum(6, terms);
#undef KEEP
    *n_scratch = n;
    return root;
}

static void release_all(Value **nodes, int n)
{
    for (int i = 0; i < n; i++)
        value_release(nodes[i]);
}

int main(void)
{
    int64_t live_at_start = microcrad_live_values();
    const double first[N_LEAVES] = {0.7, -1.3, 0.4};
    const double second[N_LEAVES] = {-0.2, 2.5, 1.1};

    /* Record with the first data, then replay with the second. */
    Value *leaf[N_LEAVES], *scratch[32];
    for (int i = 0; i < N_LEAVES; i++)
        leaf[i] = value_create_leaf(first[i]);
    int n_scratch;
    Value *root = build(leaf, scratch, &n_scratch);
    microcrad_tape *tape = microcrad_tape_create(root);
    CHECK(tape != NULL);
    CHECK_INT(value_ref_count(root), 2); /* the caller's reference and the tape's */
    value_release(root);
    release_all(scratch, n_scratch); /* the tape alone keeps the graph alive now */
    CHECK(microcrad_tape_size(tape) > N_LEAVES);

    CHECK_INT(value_set_data_many(N_LEAVES, leaf, second), MICROCRAD_OK);
    int64_t allocations_before = microcrad_allocation_count();
    CHECK_INT(microcrad_tape_forward(tape), MICROCRAD_OK);
    CHECK_INT(microcrad_tape_backward(tape), MICROCRAD_OK);
    CHECK_INT(microcrad_allocation_count(), allocations_before); /* replay never allocates */

    /* The same graph built afresh from the second data. */
    Value *fresh_leaf[N_LEAVES];
    for (int i = 0; i < N_LEAVES; i++)
        fresh_leaf[i] = value_create_leaf(second[i]);
    Value *fresh_scratch[32];
    Value *fresh_root = build(fresh_leaf, fresh_scratch, &n_scratch);
    value_backward(fresh_root);

    CHECK_SAME(microcrad_tape_data(tape), fresh_root->data);
    double replay_grad[N_LEAVES], fresh_grad[N_LEAVES];
    value_get_grad_many(N_LEAVES, leaf, replay_grad);
    value_get_grad_many(N_LEAVES, fresh_leaf, fresh_grad);
    for (int i = 0; i < N_LEAVES; i++)
        CHECK_SAME(replay_grad[i], fresh_grad[i]);

    /* A second replay recomputes interior gradients and accumulates leaf ones, as
     * value_backward does; zero_grad resets them. */
    CHECK_INT(microcrad_tape_backward(tape), MICROCRAD_OK);
    for (int i = 0; i < N_LEAVES; i++)
        CHECK_SAME(leaf[i]->grad, 2.0 * fresh_grad[i]);
    CHECK_INT(microcrad_tape_zero_grad(tape), MICROCRAD_OK);
    for (int i = 0; i < N_LEAVES; i++)
        CHECK_SAME(leaf[i]->grad, 0.0);

    /* Bad handles are reported, not followed. */
    microcrad_set_quiet(1);
    CHECK_INT(microcrad_tape_forward(NULL), MICROCRAD_ERR_NULL);
    CHECK(microcrad_tape_create(NULL) == NULL);
    CHECK_CONTAINS(microcrad_last_error(), "microcrad_tape_create");
    double garbage[8] = {0};
    CHECK_INT(microcrad_tape_backward((microcrad_tape *)(void *)garbage), MICROCRAD_ERR_FOREIGN);
    CHECK_INT(value_set_data_many(-1, leaf, second), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(value_get_data_many(1, NULL, replay_grad), MICROCRAD_ERR_NULL);
    microcrad_tape_free(NULL); /* ignored, like free(NULL) */
    microcrad_set_quiet(0);

    /* Allocation failure while recording leaves nothing behind. */
    int64_t live_before = microcrad_live_values();
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    CHECK(microcrad_tape_create(fresh_root) == NULL);
    CHECK_INT(microcrad_fail_allocation(2), MICROCRAD_OK);
    CHECK(microcrad_tape_create(fresh_root) == NULL);
    CHECK_INT(microcrad_fail_allocation(0), MICROCRAD_OK);
    CHECK_INT(value_ref_count(fresh_root), 1);
    CHECK_INT(microcrad_live_values(), live_before);

    microcrad_tape_free(tape);
    value_release(fresh_root);
    release_all(fresh_scratch, n_scratch);
    release_all(leaf, N_LEAVES);
    release_all(fresh_leaf, N_LEAVES);
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
