/*
 * test_op_table.c - the op table (c/src/op_table.c): op names, counts and arities,
 * and value_create_op, which builds a node of any op by number. Walks every op of the
 * table, so a new op is covered here without editing this file.
 */
#include "check.h"

#include <microcrad.h>

#include <dlfcn.h>
#include <math.h>
#include <string.h>

/* Central differences with h ~ 1e-6 of short formulas: good to about 1e-9. */
#define TOL_FD 1e-6

/* Names of ops. */
static void test_op_names(void)
{
    printf("op names\n");
    /* The symbols micrograd uses, as the header promises. */
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_LEAF), "") == 0);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_ADD), "+") == 0);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_MUL), "*") == 0);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_POW), "**") == 0);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_EXP), "exp") == 0);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_RELU), "ReLU") == 0);
    /* Every other op has some non-empty name of its own. */
    for (int op = MICROCRAD_OP_CUSTOM; op < MICROCRAD_OP_COUNT_; op++) {
        const char *name = microcrad_op_name(op);
        if (!CHECK(name != NULL && name[0] != '\0' && strcmp(name, "?") != 0))
            fprintf(stderr, "    op %d is named \"%s\"\n", op, name ? name : "(null)");
    }
    /* Numbers that are not ops. */
    CHECK(strcmp(microcrad_op_name(-1), "?") == 0);
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_COUNT_), "?") == 0);
    CHECK(strcmp(microcrad_op_name(1000), "?") == 0);
}


/* ------------------------------------------------------------------------------ */
/* Every op by number (value_create_op over the op table)                          */
/* ------------------------------------------------------------------------------ */

/* The data of op(param; operands) built afresh, for central differences. */
static double create_op_data(int op, double param, int32_t n, Value *const *operands)
{
    Value *v = value_create_op(op, param, n, operands);
    double data = v ? value_data(v) : NAN;
    value_release(v);
    return data;
}

/* Each op of the table, whatever it is, builds through value_create_op with as many
 * operands as it takes, has the op, operands and param asked for, and (for an op with
 * a forward rule) gradients that agree with central differences of its own forward
 * rule; a count it does not take, a NULL array and a dead operand are refused. A new
 * op is covered here without editing this test. */
static void test_every_op_by_number(void)
{
    printf("every op through value_create_op\n");
    CHECK_INT(microcrad_op_count(), MICROCRAD_OP_COUNT_);
    CHECK(value_create_op(-1, 0.0, 0, NULL) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    CHECK(value_create_op(microcrad_op_count(), 0.0, 0, NULL) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_op_arity(-1), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_op_arity(microcrad_op_count()), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_op_takes_param(microcrad_op_count()), MICROCRAD_ERR_ARGUMENT);

    static const double inputs[3] = {0.6, 1.3, 0.4}; /* positive, away from kinks */
    const double param = 2.5;
    for (int op = 0; op < microcrad_op_count(); op++) {
        int arity = microcrad_op_arity(op);
        CHECK(arity >= -1 && arity <= 3);
        int32_t n = arity >= 0 ? arity : 3; /* 3 suits every n-ary op: b, w0, x0 too */
        Value *leaves[3];
        for (int i = 0; i < 3; i++)
            leaves[i] = value_create_leaf(inputs[i]);
        Value *v = value_create_op(op, param, n, leaves);
        if (!CHECK(v != NULL)) {
            fprintf(stderr, "  op %d (%s): %s\n", op, microcrad_op_name(op), microcrad_last_error());
            continue;
        }
        CHECK_INT(value_op(v), op);
        CHECK_INT(value_n_prevs(v), n);
        for (int32_t i = 0; i < n; i++)
            CHECK(value_prev(v, (uint32_t)i) == leaves[i]);
        int takes_param = microcrad_op_takes_param(op);
        CHECK(takes_param == 0 || takes_param == 1);
        int has_forward = op != MICROCRAD_OP_LEAF && op != MICROCRAD_OP_CUSTOM;
        if (has_forward) {
            CHECK_SAME(value_param(v), takes_param ? param : 0.0);
            /* d/d operand i by central differences of the forward rule itself. */
            CHECK_INT(value_backward(v), MICROCRAD_OK);
            for (int32_t i = 0; i < n; i++) {
                const double h = 1e-6;
                double grad = value_grad(leaves[i]);
                value_set_data(leaves[i], inputs[i] + h);
                double up = create_op_data(op, param, n, leaves);
                value_set_data(leaves[i], inputs[i] - h);
                double down = create_op_data(op, param, n, leaves);
                value_set_data(leaves[i], inputs[i]);
                if (!CHECK_NEAR(grad, (up - down) / (2.0 * h), TOL_FD))
                    fprintf(stderr, "  op %d (%s), operand %ld\n", op, microcrad_op_name(op),
                            (long)i);
            }
        } else {
            CHECK_SAME(value_data(v), param); /* the data of a leaf or custom node */
            CHECK_SAME(value_param(v), 0.0);
        }
        value_release(v);

        /* Counts it does not take. */
        int32_t wrong = arity >= 0 ? arity + 1 : -1;
        CHECK(value_create_op(op, param, wrong, leaves) == NULL);
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
        if (n > 0) {
            CHECK(value_create_op(op, param, n, NULL) == NULL);
            CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
            Value *with_null[3] = {leaves[0], leaves[1], leaves[2]};
            with_null[n - 1] = NULL;
            CHECK(value_create_op(op, param, n, with_null) == NULL);
            CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
        }
        for (int i = 0; i < 3; i++)
            value_release(leaves[i]);
    }
    /* The same node as the op's own constructor builds. */
    Value *a = value_create_leaf(1.5), *b = value_create_leaf(-2.0);
    Value *pair[2] = {a, b};
    Value *by_number = value_create_op(MICROCRAD_OP_MUL, 0.0, 2, pair);
    Value *by_name = value_mul(a, b);
    CHECK_SAME(value_data(by_number), value_data(by_name));
    value_release(by_number);
    value_release(by_name);
    value_release(a);
    value_release(b);
}

/* Each op names its public constructor, and for an op of one or two operands that
 * function (found by name) builds what value_create_op builds. */
static void test_constructors(void)
{
    printf("each op's own constructor\n");
    CHECK(microcrad_op_constructor(-1) == NULL);
    CHECK(microcrad_op_constructor(microcrad_op_count()) == NULL);
    void *self = dlopen(NULL, RTLD_LAZY);
    if (!CHECK(self != NULL))
        return;
    Value *a = value_create_leaf(0.7), *b = value_create_leaf(1.9);
    Value *pair[2] = {a, b};
    for (int op = 0; op < microcrad_op_count(); op++) {
        const char *name = microcrad_op_constructor(op);
        if (!CHECK(name != NULL && strncmp(name, "value_", 6) == 0))
            continue;
        void *symbol = dlsym(self, name);
        if (!CHECK(symbol != NULL)) {
            fprintf(stderr, "    op %d: no function %s\n", op, name);
            continue;
        }
        int arity = microcrad_op_arity(op);
        if (arity < 1 || arity > 2)
            continue;
        Value *by_name;
        if (microcrad_op_takes_param(op)) {
            Value *(*make)(Value *, double);
            memcpy(&make, &symbol, sizeof make);
            by_name = make(a, 2.5);
        } else if (arity == 1) {
            Value *(*make)(Value *);
            memcpy(&make, &symbol, sizeof make);
            by_name = make(a);
        } else {
            Value *(*make)(Value *, Value *);
            memcpy(&make, &symbol, sizeof make);
            by_name = make(a, b);
        }
        Value *by_number = value_create_op(op, 2.5, arity, pair);
        if (CHECK(by_name && by_number)) {
            CHECK_INT(value_op(by_name), op);
            CHECK_SAME(value_data(by_name), value_data(by_number));
            CHECK_SAME(value_param(by_name), value_param(by_number));
        }
        value_release(by_name);
        value_release(by_number);
    }
    value_release(a);
    value_release(b);
}

int main(void)
{
    microcrad_set_quiet(1);
    int64_t live_at_start = microcrad_live_values();
    test_op_names();
    test_every_op_by_number();
    test_constructors();
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
