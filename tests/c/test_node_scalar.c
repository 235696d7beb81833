/*
 * test_node_scalar.c - value_mul_scalar, value_scalar_sub and the rest: the one-call
 * forms of "a leaf for a number, then a binary op over it".
 *
 * It must build exactly the graph of the two-call form: same data, same gradients, the
 * constant a leaf operand in the right slot, held only by the new node. And it must keep
 * the library's error promise: a bad argument or a failed allocation leaves nothing
 * allocated and no count changed.
 */
#include "check.h"

#include <microcrad.h>

#include <math.h>

typedef Value *(*binary_fn)(Value *, Value *);

/* Each one-call form, its two-call twin, and which operand slot the constant takes. */
static const struct {
    const char *name;
    Value *(*value_first)(Value *, double);  /* a op c, or NULL */
    Value *(*constant_first)(double, Value *); /* c op a, or NULL */
    int op;
    binary_fn two_call;
} ops[] = {
    {"value_add_scalar", value_add_scalar, NULL, MICROCRAD_OP_ADD, value_add},
    {"value_sub_scalar", value_sub_scalar, NULL, MICROCRAD_OP_SUB, value_sub},
    {"value_mul_scalar", value_mul_scalar, NULL, MICROCRAD_OP_MUL, value_mul},
    {"value_div_scalar", value_div_scalar, NULL, MICROCRAD_OP_DIV, value_div},
    {"value_scalar_add", NULL, value_scalar_add, MICROCRAD_OP_ADD, value_add},
    {"value_scalar_sub", NULL, value_scalar_sub, MICROCRAD_OP_SUB, value_sub},
    {"value_scalar_mul", NULL, value_scalar_mul, MICROCRAD_OP_MUL, value_mul},
    {"value_scalar_div", NULL, value_scalar_div, MICROCRAD_OP_DIV, value_div},
    {"value_scalar_pow", NULL, value_scalar_pow, MICROCRAD_OP_POW, value_pow},
};
enum { N_OPS = sizeof ops / sizeof ops[0] };

static Value *call(int which, Value *a, double c)
{
    return ops[which].value_first ? ops[which].value_first(a, c)
                                  : ops[which].constant_first(c, a);
}

/* Builds op(a, c) (or op(c, a)) both ways over fresh leaves and compares everything. */
static void check_same_as_two_calls(int which, double a_data, double c)
{
    const int constant_first = ops[which].constant_first != NULL;
    const int64_t live0 = microcrad_live_values();
    Value *a1 = value_create_leaf(a_data), *a2 = value_create_leaf(a_data);
    Value *leaf = value_create_leaf(c);
    Value *fast = call(which, a1, c);
    Value *slow = constant_first ? ops[which].two_call(leaf, a2) : ops[which].two_call(a2, leaf);
    if (!CHECK(fast && slow))
        return;

    CHECK_INT(value_op(fast), ops[which].op);
    CHECK_INT(value_n_prevs(fast), 2);
    Value *constant = value_prev(fast, constant_first ? 0 : 1);
    CHECK(value_prev(fast, constant_first ? 1 : 0) == a1);
    CHECK_INT(value_op(constant), MICROCRAD_OP_LEAF);
    CHECK_SAME(constant->data, c);
    /* The new node holds the leaf's only reference: it goes when the node goes. */
    CHECK_INT(value_ref_count(constant), 1);
    CHECK_INT(value_ref_count(a1), 2);
    CHECK_SAME(fast->data, slow->data);

    CHECK_INT(value_backward(fast), MICROCRAD_OK);
    CHECK_INT(value_backward(slow), MICROCRAD_OK);
    CHECK_SAME(a1->grad, a2->grad);
    CHECK_SAME(constant->grad, leaf->grad);

    value_release(fast);
    value_release(slow);
    value_release(leaf);
    CHECK_INT(value_ref_count(a1), 1);
    value_release(a1);
    value_release(a2);
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_matches_two_calls(void)
{
    const double inputs[][2] = {{1.5, 2.0}, {-0.75, 3.0}, {2.0, -0.5}, {0.0, 0.0}, {4.0, 0.0}};
    for (int which = 0; which < N_OPS; which++)
        for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
            check_same_as_two_calls(which, inputs[i][0], inputs[i][1]);
}

/* A NULL or released operand: NULL, the function's name and the right argument
 * number in the message, nothing allocated. */
static void test_bad_arguments(void)
{
    const int64_t live0 = microcrad_live_values();
    Value *gone = value_create_leaf(3.0);
    value_release(gone);
    /* The pool keeps a freed node's canary readable; plain-malloc builds are for
     * sanitizers and Valgrind, which would rightly report that read, so they skip it. */
    const int pooled = !(microcrad_build_features() & MICROCRAD_BUILD_VALGRIND);
    for (int which = 0; which < N_OPS; which++) {
        char where[64];
        snprintf(where, sizeof where, "%s: argument %d", ops[which].name,
                 ops[which].constant_first ? 2 : 1);
        microcrad_clear_error();
        CHECK(call(which, NULL, 2.0) == NULL);
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
        CHECK_CONTAINS(microcrad_last_error(), where);
        if (pooled) {
            microcrad_clear_error();
            CHECK(call(which, gone, 2.0) == NULL);
            CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_RELEASED);
            CHECK_CONTAINS(microcrad_last_error(), where);
        }
    }
    CHECK_INT(microcrad_live_values(), live0);
}

/* Each allocation the call makes is failed in turn: NULL, "memory" in the message,
 * nothing left allocated and a's count unchanged. */
static void test_allocation_failures(void)
{
    Value *a = value_create_leaf(0.5);
    const int64_t live0 = microcrad_live_values();
    for (int which = 0; which < N_OPS; which++) {
        int64_t start = microcrad_allocation_count();
        Value *v = call(which, a, 4.0);
        int64_t k = microcrad_allocation_count() - start;
        CHECK(v != NULL);
        CHECK_INT(k, 2); /* the leaf and the node */
        value_release(v);
        for (int64_t n = 1; n <= k; n++) {
            CHECK_INT(microcrad_fail_allocation(n), MICROCRAD_OK);
            microcrad_clear_error();
            Value *r = call(which, a, 4.0);
            microcrad_fail_allocation(0);
            CHECK(r == NULL);
            CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NOMEM);
            CHECK_CONTAINS(microcrad_last_error(), "memory");
            CHECK_CONTAINS(microcrad_last_error(), ops[which].name);
            CHECK_INT(microcrad_live_values(), live0);
            CHECK_INT(value_ref_count(a), 1);
        }
    }
    value_release(a);
}

int main(void)
{
    microcrad_set_quiet(1);
    test_matches_two_calls();
    test_bad_arguments();
    test_allocation_failures();
    return check_summary();
}
