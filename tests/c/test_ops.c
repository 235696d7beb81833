/*
 * test_ops.c - the ops of ops_arith.c, ops_pow.c and ops_activation.c: each one's
 * forward value, its gradients and its identity (the neuron op: test_ops_nn.c; the op
 * table and value_create_op: test_op_table.c).
 *
 * Each op is checked three ways at several inputs:
 *   - the forward value against the same formula written with math.h;
 *   - the gradients after value_backward against the derivative worked out by hand;
 *   - the gradients against central finite differences of the library's own forward
 *     pass, which catches a backward rule that disagrees with its forward rule.
 * Then the IEEE corner cases, where the expected value follows PyTorch.
 */
#include "check.h"

#include <microcrad.h>

#include <math.h>
#include <string.h>

/* Forward values are a handful of roundings away from the math.h formula at most. */
#define TOL_FORWARD 1e-15
/* Analytic gradients are short formulas too; allow a little more rounding. */
#define TOL_GRAD 1e-13
/* Central differences with h ~ 1e-5 are good to about 1e-10; leave a margin. */
#define TOL_FD 1e-7
/* The gradient arriving from above in the per-op checks: not 1, so that a backward
 * rule that forgets to scale by its node's gradient shows. */
#define UPSTREAM (-1.5)

/* ------------------------------------------------------------------------------ */
/* Reference formulas                                                              */
/* ------------------------------------------------------------------------------ */

static double ref_neg(double x) { return -x; }
static double ref_neg_d(double x) { (void)x; return -1.0; }
static double ref_exp_d(double x) { return exp(x); }
static double ref_log_d(double x) { return 1.0 / x; }
static double ref_relu(double x) { return x > 0.0 ? x : 0.0; }
static double ref_relu_d(double x) { return x > 0.0 ? 1.0 : 0.0; }
static double ref_tanh_d(double x) { return 1.0 - tanh(x) * tanh(x); }
static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_sigmoid_d(double x) { return ref_sigmoid(x) * (1.0 - ref_sigmoid(x)); }

static double ref_add(double a, double b) { return a + b; }
static double ref_sub(double a, double b) { return a - b; }
static double ref_mul(double a, double b) { return a * b; }
static double ref_div(double a, double b) { return a / b; }

/* Partial derivatives of the binary ops with respect to their first and second operand. */
static double ref_add_da(double a, double b) { (void)a; (void)b; return 1.0; }
static double ref_add_db(double a, double b) { (void)a; (void)b; return 1.0; }
static double ref_sub_da(double a, double b) { (void)a; (void)b; return 1.0; }
static double ref_sub_db(double a, double b) { (void)a; (void)b; return -1.0; }
static double ref_mul_da(double a, double b) { (void)a; return b; }
static double ref_mul_db(double a, double b) { (void)b; return a; }
static double ref_div_da(double a, double b) { (void)a; return 1.0 / b; }
static double ref_div_db(double a, double b) { return -a / (b * b); }
static double ref_pow_da(double a, double b) { return b * pow(a, b - 1.0); }
static double ref_pow_db(double a, double b) { return pow(a, b) * log(a); }

typedef Value *(*unary_fn)(Value *);
typedef Value *(*binary_fn)(Value *, Value *);

/* ------------------------------------------------------------------------------ */
/* Helpers                                                                         */
/* ------------------------------------------------------------------------------ */

/* The library's forward value of op(x), with everything released again. */
static double eval_unary(unary_fn op, double x)
{
    Value *a = value_create_leaf(x);
    Value *y = op(a);
    double r = y ? y->data : NAN;
    CHECK(y != NULL);
    value_release(y);
    value_release(a);
    return r;
}

static double eval_binary(binary_fn op, double x, double y)
{
    Value *a = value_create_leaf(x);
    Value *b = value_create_leaf(y);
    Value *c = op(a, b);
    double r = c ? c->data : NAN;
    CHECK(c != NULL);
    value_release(c);
    value_release(b);
    value_release(a);
    return r;
}

static double eval_pow_const(double x, double p)
{
    Value *a = value_create_leaf(x);
    Value *y = value_pow_const(a, p);
    double r = y ? y->data : NAN;
    CHECK(y != NULL);
    value_release(y);
    value_release(a);
    return r;
}

/* A step for central differences that scales with the input. */
static double fd_step(double x) { return 1e-5 * (1.0 + fabs(x)); }

/* Back-propagates from root * UPSTREAM, so that root->grad is UPSTREAM; returns the
 * status of value_backward. */
static int backward_scaled(Value *root)
{
    Value *k = value_create_leaf(UPSTREAM);
    Value *top = value_mul(root, k);
    int status = value_backward(top);
    CHECK_SAME(root->grad, UPSTREAM);
    value_release(top);
    value_release(k);
    return status;
}

/* Checks the identity of a result node: op code and operand count. */
static void check_identity(const Value *y, int op, int64_t n_prevs)
{
    CHECK_INT(value_op(y), op);
    CHECK_INT(y->op, op);
    CHECK_INT(value_n_prevs(y), n_prevs);
    CHECK_INT(y->n_prevs, n_prevs);
}

/* ------------------------------------------------------------------------------ */
/* Unary ops                                                                       */
/* ------------------------------------------------------------------------------ */

typedef struct unary_case {
    const char *name;
    unary_fn make;
    int op;
    double (*f)(double);
    double (*df)(double);
    const double *inputs; /* six of them */
} unary_case;

static void test_unary(const unary_case *uc)
{
    printf("unary %s\n", uc->name);
    for (int i = 0; i < 6; i++) {
        double x = uc->inputs[i];
        Value *a = value_create_leaf(x);
        CHECK(a != NULL);
        CHECK_SAME(a->grad, 0.0);
        Value *y = uc->make(a);
        if (!CHECK(y != NULL)) {
            value_release(a);
            continue;
        }
        check_identity(y, uc->op, 1);
        CHECK(value_prev(y, 0) == a);
        CHECK(value_prev(y, 1) == NULL);
        CHECK_NEAR(y->data, uc->f(x), TOL_FORWARD);
        CHECK_SAME(value_data(y), y->data);

        CHECK_INT(backward_scaled(y), MICROCRAD_OK);
        CHECK_NEAR(a->grad, UPSTREAM * uc->df(x), TOL_GRAD);
        double h = fd_step(x);
        double fd = (eval_unary(uc->make, x + h) - eval_unary(uc->make, x - h)) / (2.0 * h);
        CHECK_NEAR(a->grad, UPSTREAM * fd, TOL_FD);
        CHECK_SAME(a->data, x); /* backward leaves the data alone */

        value_release(y);
        value_release(a);
    }
}

/* ------------------------------------------------------------------------------ */
/* Binary ops                                                                      */
/* ------------------------------------------------------------------------------ */

typedef struct binary_case {
    const char *name;
    binary_fn make;
    int op;
    double (*f)(double, double);
    double (*dfa)(double, double);
    double (*dfb)(double, double);
    double inputs[5][2];
} binary_case;

static void test_binary(const binary_case *bc)
{
    printf("binary %s\n", bc->name);
    for (int i = 0; i < 5; i++) {
        double x = bc->inputs[i][0], y = bc->inputs[i][1];
        Value *a = value_create_leaf(x);
        Value *b = value_create_leaf(y);
        Value *c = bc->make(a, b);
        if (!CHECK(c != NULL)) {
            value_release(a);
            value_release(b);
            continue;
        }
        check_identity(c, bc->op, 2);
        CHECK(value_prev(c, 0) == a);
        CHECK(value_prev(c, 1) == b);
        CHECK(value_prev(c, 2) == NULL);
        CHECK_NEAR(c->data, bc->f(x, y), TOL_FORWARD);

        CHECK_INT(backward_scaled(c), MICROCRAD_OK);
        CHECK_NEAR(a->grad, UPSTREAM * bc->dfa(x, y), TOL_GRAD);
        CHECK_NEAR(b->grad, UPSTREAM * bc->dfb(x, y), TOL_GRAD);
        /* One step for both: a rounding of the result, which has the size of the larger
         * input, must stay small next to the step. */
        double ha = fd_step(fmax(fabs(x), fabs(y))), hb = ha;
        double fda =
            (eval_binary(bc->make, x + ha, y) - eval_binary(bc->make, x - ha, y)) / (2.0 * ha);
        double fdb =
            (eval_binary(bc->make, x, y + hb) - eval_binary(bc->make, x, y - hb)) / (2.0 * hb);
        CHECK_NEAR(a->grad, UPSTREAM * fda, TOL_FD);
        CHECK_NEAR(b->grad, UPSTREAM * fdb, TOL_FD);

        value_release(c);
        value_release(b);
        value_release(a);
    }
}

/* ------------------------------------------------------------------------------ */
/* pow_const                                                                       */
/* ------------------------------------------------------------------------------ */

static void test_pow_const(void)
{
    printf("pow_const\n");
    static const double cases[][2] = {
        {1.5, 2.0}, {-1.3, 3.0}, {2.0, 0.5}, {0.8, -1.0}, {3.0, -2.5}, {-2.0, 2.0}, {4.0, 1.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double x = cases[i][0], p = cases[i][1];
        Value *a = value_create_leaf(x);
        Value *y = value_pow_const(a, p);
        if (!CHECK(y != NULL)) {
            value_release(a);
            continue;
        }
        check_identity(y, MICROCRAD_OP_POW_CONST, 1);
        CHECK(value_prev(y, 0) == a);
        CHECK_SAME(value_param(y), p);
        CHECK_SAME(y->param, p);
        CHECK_NEAR(y->data, pow(x, p), TOL_FORWARD);

        CHECK_INT(backward_scaled(y), MICROCRAD_OK);
        CHECK_NEAR(a->grad, UPSTREAM * p * pow(x, p - 1.0), TOL_GRAD);
        double h = fd_step(x);
        double fd = (eval_pow_const(x + h, p) - eval_pow_const(x - h, p)) / (2.0 * h);
        CHECK_NEAR(a->grad, UPSTREAM * fd, TOL_FD);

        value_release(y);
        value_release(a);
    }
}

/* ------------------------------------------------------------------------------ */
/* sum                                                                             */
/* ------------------------------------------------------------------------------ */

static void test_sum(void)
{
    printf("sum\n");
    double xs[5] = {0.25, -1.5, 3.75, 1e-3, -2.0};
    Value *t[6];
    for (int i = 0; i < 5; i++)
        t[i] = value_create_leaf(xs[i]);

    /* Five distinct terms: added left to right, so the result is exactly that sum. */
    Value *s = value_sum(5, t);
    if (CHECK(s != NULL)) {
        double want = 0.0;
        for (int i = 0; i < 5; i++)
            want += xs[i];
        check_identity(s, MICROCRAD_OP_SUM, 5);
        for (uint32_t i = 0; i < 5; i++)
            CHECK(value_prev(s, i) == t[i]);
        CHECK(value_prev(s, 5) == NULL);
        CHECK_SAME(s->data, want);
        CHECK_INT(backward_scaled(s), MICROCRAD_OK);
        for (int i = 0; i < 5; i++)
            CHECK_SAME(t[i]->grad, UPSTREAM);
        value_release(s);
    }
    for (int i = 0; i < 5; i++)
        value_set_grad(t[i], 0.0);

    /* Repeated terms: each occurrence contributes its own 1 to the gradient. */
    Value *rep[7] = {t[0], t[1], t[0], t[0], t[1], t[2], t[0]};
    s = value_sum(7, rep);
    if (CHECK(s != NULL)) {
        double want = (((((xs[0] + xs[1]) + xs[0]) + xs[0]) + xs[1]) + xs[2]) + xs[0];
        CHECK_SAME(s->data, want);
        CHECK_INT(value_n_prevs(s), 7);
        CHECK_INT(value_backward(s), MICROCRAD_OK);
        CHECK_SAME(t[0]->grad, 4.0);
        CHECK_SAME(t[1]->grad, 2.0);
        CHECK_SAME(t[2]->grad, 1.0);
        CHECK_SAME(t[3]->grad, 0.0);
        value_release(s);
    }

    /* Left to right is observable: 1e16 + 1 rounds back to 1e16 each time. */
    Value *big = value_create_leaf(1e16);
    Value *one = value_create_leaf(1.0);
    Value *order[3] = {big, one, one};
    s = value_sum(3, order);
    if (CHECK(s != NULL)) {
        volatile double step = 1e16 + 1.0; /* volatile: make each rounding happen */
        CHECK_SAME(s->data, step + 1.0);
        CHECK_SAME(s->data, 1e16);
        value_release(s);
    }
    value_release(big);
    value_release(one);

    /* One term: the sum is that term. */
    s = value_sum(1, t);
    if (CHECK(s != NULL)) {
        check_identity(s, MICROCRAD_OP_SUM, 1);
        CHECK_SAME(s->data, xs[0]);
        value_release(s);
    }

    /* No terms: a node holding 0 with no operands; terms may then be NULL. */
    s = value_sum(0, NULL);
    if (CHECK(s != NULL)) {
        check_identity(s, MICROCRAD_OP_SUM, 0);
        CHECK_SAME(s->data, 0.0);
        CHECK(value_prev(s, 0) == NULL);
        CHECK_INT(value_backward(s), MICROCRAD_OK);
        value_release(s);
    }
    s = value_sum(0, t);
    if (CHECK(s != NULL)) {
        CHECK_SAME(s->data, 0.0);
        CHECK_INT(value_ref_count(t[0]), 1); /* nothing retained */
        value_release(s);
    }

    for (int i = 0; i < 5; i++)
        value_release(t[i]);
}

/* ------------------------------------------------------------------------------ */
/* neuron                                                                          */
/* ------------------------------------------------------------------------------ */

/* The library's forward value of the neuron with x[which] (or b, for which == -1)
 * moved by dx, for finite differences. */
static double eval_neuron(int n, const double *w, const double *x, double b, int which_w,
                          int which_x, double dx)
{
    Value *wv[4], *xv[4];
    for (int i = 0; i < n; i++) {
        wv[i] = value_create_leaf(w[i] + (i == which_w ? dx : 0.0));
        xv[i] = value_create_leaf(x[i] + (i == which_x ? dx : 0.0));
    }
    Value *bv = value_create_leaf(b + (which_w < 0 && which_x < 0 ? dx : 0.0));
    Value *y = value_neuron(n, wv, xv, bv);
    double r = y ? y->data : NAN;
    CHECK(y != NULL);
    value_release(y);
    value_release(bv);
    for (int i = 0; i < n; i++) {
        value_release(wv[i]);
        value_release(xv[i]);
    }
    return r;
}

static void test_neuron(void)
{
    printf("neuron\n");
    enum { N = 4 };
    const double w[N] = {0.5, -1.25, 3.0e-3, 2.0};
    const double x[N] = {1.1, 0.3, -7.0, 1e8};
    const double b = 0.7;
    Value *wv[N], *xv[N];
    for (int i = 0; i < N; i++) {
        wv[i] = value_create_leaf(w[i]);
        xv[i] = value_create_leaf(x[i]);
    }
    Value *bv = value_create_leaf(b);

    Value *y = value_neuron(N, wv, xv, bv);
    if (CHECK(y != NULL)) {
        check_identity(y, MICROCRAD_OP_NEURON, 2 * N + 1);
        CHECK(value_prev(y, 0) == bv);
        for (uint32_t i = 0; i < N; i++) {
            CHECK(value_prev(y, 1 + 2 * i) == wv[i]);
            CHECK(value_prev(y, 2 + 2 * i) == xv[i]);
        }
        /* Each product rounded, then added left to right starting from b: the order of
         * micrograd's sum((wi*xi for ...), b), bit for bit. */
        double want = b;
        for (int i = 0; i < N; i++) {
            volatile double product = w[i] * x[i]; /* volatile: round it on its own */
            want = want + product;
        }
        CHECK_SAME(y->data, want);

        /* The same value as the graph of separate nodes micrograd would build. */
        Value *acc = bv;
        value_retain(acc);
        for (int i = 0; i < N; i++) {
            Value *p = value_mul(wv[i], xv[i]);
            Value *next = value_add(acc, p);
            value_release(p);
            value_release(acc);
            acc = next;
        }
        CHECK_SAME(y->data, acc->data);
        value_release(acc);

        CHECK_INT(backward_scaled(y), MICROCRAD_OK);
        CHECK_SAME(bv->grad, UPSTREAM);
        for (int i = 0; i < N; i++) {
            CHECK_SAME(wv[i]->grad, UPSTREAM * x[i]);
            CHECK_SAME(xv[i]->grad, UPSTREAM * w[i]);
        }
        /* Finite differences for a few operands. The neuron is linear in each, so a large
         * step is exact and keeps the rounding of the 2e8-sized result negligible. */
        double h = 0.5;
        CHECK_NEAR((eval_neuron(N, w, x, b, -1, -1, h) - eval_neuron(N, w, x, b, -1, -1, -h)) /
                       (2 * h),
                   bv->grad / UPSTREAM, 1e-6);
        CHECK_NEAR((eval_neuron(N, w, x, b, 1, -1, h) - eval_neuron(N, w, x, b, 1, -1, -h)) /
                       (2 * h),
                   wv[1]->grad / UPSTREAM, 1e-6);
        CHECK_NEAR((eval_neuron(N, w, x, b, -1, 0, h) - eval_neuron(N, w, x, b, -1, 0, -h)) /
                       (2 * h),
                   xv[0]->grad / UPSTREAM, 1e-6);
        value_release(y);
    }

    /* The order of the additions is visible when they cancel: left to right from b,
     * 1 + 1e16 rounds to 1e16, so do the two 1s after it, and -1e16 then leaves 0
     * (any other order, e.g. the bias added last, gives something else). */
    {
        const double ow[N] = {1e8, 1.0, 1.0, -1e8}, ox[N] = {1e8, 1.0, 1.0, 1e8};
        Value *owv[N], *oxv[N];
        for (int i = 0; i < N; i++) {
            owv[i] = value_create_leaf(ow[i]);
            oxv[i] = value_create_leaf(ox[i]);
        }
        Value *one = value_create_leaf(1.0);
        Value *o = value_neuron(N, owv, oxv, one);
        if (CHECK(o != NULL)) {
            CHECK_SAME(o->data, ((((1.0 + 1e16) + 1.0) + 1.0) + -1e16));
            CHECK_SAME(o->data, 0.0);
            value_release(o);
        }
        value_release(one);
        for (int i = 0; i < N; i++) {
            value_release(owv[i]);
            value_release(oxv[i]);
        }
    }

    /* No inputs: the neuron is its bias; w and x may then be NULL. */
    value_set_grad(bv, 0.0);
    y = value_neuron(0, NULL, NULL, bv);
    if (CHECK(y != NULL)) {
        check_identity(y, MICROCRAD_OP_NEURON, 1);
        CHECK_SAME(y->data, b);
        CHECK_INT(value_backward(y), MICROCRAD_OK);
        CHECK_SAME(bv->grad, 1.0);
        value_release(y);
    }

    /* The same node as weight and input, and as the bias: y = a + a*a, dy/da = 1 + 2a. */
    Value *a = wv[0];
    value_set_grad(a, 0.0);
    y = value_neuron(1, &a, &a, a);
    if (CHECK(y != NULL)) {
        CHECK_SAME(y->data, w[0] + w[0] * w[0]);
        CHECK_INT(value_backward(y), MICROCRAD_OK);
        CHECK_SAME(a->grad, 1.0 + 2.0 * w[0]);
        value_release(y);
    }

    value_release(bv);
    for (int i = 0; i < N; i++) {
        value_release(wv[i]);
        value_release(xv[i]);
    }
}

/* ------------------------------------------------------------------------------ */
/* The same node as several operands                                               */
/* ------------------------------------------------------------------------------ */

static void test_shared_operand(void)
{
    printf("shared operand\n");
    const double x = 1.75;
    Value *a = value_create_leaf(x);

    Value *sq = value_mul(a, a); /* d(a*a)/da = 2a: both operand slots receive a */
    CHECK_SAME(sq->data, x * x);
    CHECK_INT(value_backward(sq), MICROCRAD_OK);
    CHECK_SAME(a->grad, 2.0 * x);
    value_release(sq);

    value_set_grad(a, 0.0);
    Value *b = value_add(a, a); /* b = 2a */
    Value *c = value_mul(b, b); /* c = 4a^2, dc/da = 8a */
    CHECK_SAME(c->data, (2.0 * x) * (2.0 * x));
    CHECK_INT(value_backward(c), MICROCRAD_OK);
    CHECK_SAME(b->grad, 2.0 * (2.0 * x));
    CHECK_SAME(a->grad, 8.0 * x);
    value_release(c);
    value_release(b);

    value_set_grad(a, 0.0);
    Value *d = value_sub(a, a); /* 0, and the two contributions cancel */
    CHECK_SAME(d->data, 0.0);
    CHECK_INT(value_backward(d), MICROCRAD_OK);
    CHECK_SAME(a->grad, 0.0);
    value_release(d);

    value_set_grad(a, 0.0);
    Value *q = value_div(a, a); /* 1, d/da = 1/a - a/a^2 = 0 */
    CHECK_SAME(q->data, 1.0);
    CHECK_INT(value_backward(q), MICROCRAD_OK);
    CHECK_NEAR(a->grad, 0.0, TOL_GRAD);
    value_release(q);

    value_set_grad(a, 0.0);
    Value *p = value_pow(a, a); /* a^a, d/da = a^a (log a + 1) */
    CHECK_NEAR(p->data, pow(x, x), TOL_FORWARD);
    CHECK_INT(value_backward(p), MICROCRAD_OK);
    CHECK_NEAR(a->grad, pow(x, x) * (log(x) + 1.0), TOL_GRAD);
    value_release(p);

    value_release(a);
}

/* ------------------------------------------------------------------------------ */
/* IEEE corner cases, with PyTorch's answers                                       */
/* ------------------------------------------------------------------------------ */

/* Runs op(x) and backward; returns the result's data and the input's gradient. */
static void unary_at(unary_fn op, double x, double *data, double *grad)
{
    Value *a = value_create_leaf(x);
    Value *y = op(a);
    *data = NAN;
    *grad = NAN;
    if (CHECK(y != NULL)) {
        CHECK_INT(value_backward(y), MICROCRAD_OK);
        *data = y->data;
        *grad = a->grad;
        value_release(y);
    }
    value_release(a);
}

static void binary_at(binary_fn op, double x, double y, double *data, double *ga, double *gb)
{
    Value *a = value_create_leaf(x);
    Value *b = value_create_leaf(y);
    Value *c = op(a, b);
    *data = *ga = *gb = NAN;
    if (CHECK(c != NULL)) {
        CHECK_INT(value_backward(c), MICROCRAD_OK);
        *data = c->data;
        *ga = a->grad;
        *gb = b->grad;
        value_release(c);
    }
    value_release(b);
    value_release(a);
}

static void pow_const_at(double x, double p, double *data, double *grad)
{
    Value *a = value_create_leaf(x);
    Value *y = value_pow_const(a, p);
    *data = *grad = NAN;
    if (CHECK(y != NULL)) {
        CHECK_INT(value_backward(y), MICROCRAD_OK);
        *data = y->data;
        *grad = a->grad;
        value_release(y);
    }
    value_release(a);
}

static void test_ieee(void)
{
    printf("IEEE corner cases\n");
    double d, g, ga, gb;

    /* log: log(0) = -inf with d/dx = 1/0 = inf; log(-1) = nan, while its gradient is
     * still the formula 1/x = -1 (PyTorch computes grad / x). */
    unary_at(value_log, 0.0, &d, &g);
    CHECK_SAME(d, -INFINITY);
    CHECK_SAME(g, INFINITY);
    unary_at(value_log, -1.0, &d, &g);
    CHECK(isnan(d));
    CHECK_SAME(g, -1.0);

    /* div: 1/0 = inf (d/da = 1/b = inf, d/db = -a/b^2 = -inf), -1/0 = -inf, 0/0 = nan. */
    binary_at(value_div, 1.0, 0.0, &d, &ga, &gb);
    CHECK_SAME(d, INFINITY);
    CHECK_SAME(ga, INFINITY);
    CHECK_SAME(gb, -INFINITY);
    binary_at(value_div, -1.0, 0.0, &d, &ga, &gb);
    CHECK_SAME(d, -INFINITY);
    binary_at(value_div, 0.0, 0.0, &d, &ga, &gb);
    CHECK(isnan(d));

    /* relu: the gradient at exactly 0 is 0 (micrograd: out.data > 0). */
    unary_at(value_relu, 0.0, &d, &g);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(g, 0.0);
    unary_at(value_relu, -3.0, &d, &g);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(g, 0.0);
    unary_at(value_relu, 1e-300, &d, &g);
    CHECK_SAME(d, 1e-300);
    CHECK_SAME(g, 1.0);
    /* NaN passes through relu and so does its gradient, as in PyTorch (whose backward
     * zeroes the gradient only where the result is <= 0). */
    unary_at(value_relu, NAN, &d, &g);
    CHECK(isnan(d));
    CHECK_SAME(g, 1.0);

    /* exp: overflow to inf, gradient inf; deep underflow to 0, gradient 0. */
    unary_at(value_exp, 1000.0, &d, &g);
    CHECK_SAME(d, INFINITY);
    CHECK_SAME(g, INFINITY);
    unary_at(value_exp, -1000.0, &d, &g);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(g, 0.0);

    /* sigmoid saturates to exactly 1 and 0 with a finite (zero) gradient; an
     * exp(-x)/(1+exp(-x))^2 formula would give inf/inf = nan here. */
    unary_at(value_sigmoid, 1000.0, &d, &g);
    CHECK_SAME(d, 1.0);
    CHECK(isfinite(g));
    CHECK_SAME(g, 0.0);
    unary_at(value_sigmoid, -1000.0, &d, &g);
    CHECK_SAME(d, 0.0);
    CHECK(isfinite(g));
    CHECK_SAME(g, 0.0);
    /* Far in the left tail the value is tiny but must keep its relative accuracy:
     * sigmoid(-700) = e^-700 / (1 + e^-700), and its derivative is about the same. */
    unary_at(value_sigmoid, -700.0, &d, &g);
    CHECK(d > 0.0 && fabs(d - exp(-700.0)) <= 1e-13 * exp(-700.0));
    CHECK(g > 0.0 && fabs(g - exp(-700.0)) <= 1e-13 * exp(-700.0));

    /* tanh saturates to +-1 with gradient 0, never nan. */
    unary_at(value_tanh, 1000.0, &d, &g);
    CHECK_SAME(d, 1.0);
    CHECK_SAME(g, 0.0);
    unary_at(value_tanh, -1000.0, &d, &g);
    CHECK_SAME(d, -1.0);
    CHECK_SAME(g, 0.0);

    /* pow with a Value exponent. d/db = a^b log(a) is taken as 0 where a == 0 and
     * b >= 0 (PyTorch), instead of 0 * -inf = nan. */
    binary_at(value_pow, 0.0, 2.0, &d, &ga, &gb);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(ga, 0.0); /* 2 * 0^1 */
    CHECK_SAME(gb, 0.0);
    binary_at(value_pow, 0.0, 0.0, &d, &ga, &gb);
    CHECK_SAME(d, 1.0);
    CHECK_SAME(gb, 0.0);
    /* The base gradient with exponent 0 is 0 (PyTorch: where(exponent == 0, 0, ...)),
     * not 0 * 0^-1 = nan. */
    CHECK_SAME(ga, 0.0);
    binary_at(value_pow, 0.0, 0.5, &d, &ga, &gb);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(ga, INFINITY); /* 0.5 * 0^-0.5 */
    CHECK_SAME(gb, 0.0);
    /* A negative exponent is outside the rule: 0^-1 = inf, d/db = inf * log(0) = -inf. */
    binary_at(value_pow, 0.0, -1.0, &d, &ga, &gb);
    CHECK_SAME(d, INFINITY);
    CHECK_SAME(ga, -INFINITY); /* -1 * 0^-2 */
    CHECK_SAME(gb, -INFINITY);
    /* A negative base with an integer exponent has a value and a base gradient, but
     * log(base) is nan, and so is the exponent's gradient. */
    binary_at(value_pow, -2.0, 3.0, &d, &ga, &gb);
    CHECK_SAME(d, -8.0);
    CHECK_SAME(ga, 12.0);
    CHECK(isnan(gb));
    binary_at(value_pow, -8.0, 1.0 / 3.0, &d, &ga, &gb);
    CHECK(isnan(d));

    /* pow_const with exponent 0: the base gradient is 0 everywhere (PyTorch:
     * where(exponent == 0, 0, ...)), even at 0 where 0 * 0^-1 would be nan. */
    pow_const_at(0.0, 0.0, &d, &g);
    CHECK_SAME(d, 1.0);
    CHECK_SAME(g, 0.0);
    pow_const_at(5.0, 0.0, &d, &g);
    CHECK_SAME(d, 1.0);
    CHECK_SAME(g, 0.0);
    pow_const_at(0.0, 0.5, &d, &g);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(g, INFINITY);
    pow_const_at(0.0, 2.0, &d, &g);
    CHECK_SAME(d, 0.0);
    CHECK_SAME(g, 0.0);
    pow_const_at(0.0, -1.0, &d, &g);
    CHECK_SAME(d, INFINITY);
    CHECK_SAME(g, -INFINITY);

    /* NaN and inf inputs propagate through the plain arithmetic. */
    binary_at(value_add, INFINITY, -INFINITY, &d, &ga, &gb);
    CHECK(isnan(d));
    CHECK_SAME(ga, 1.0);
    CHECK_SAME(gb, 1.0);
    binary_at(value_mul, NAN, 2.0, &d, &ga, &gb);
    CHECK(isnan(d));
    CHECK_SAME(ga, 2.0);
    CHECK(isnan(gb));
}

/*
 * PyTorch's gradient formulas operation by operation, where a formula that is equal in
 * exact arithmetic gives other bits (tests/test_gradients_vs_pytorch.py checks every op
 * against PyTorch itself; these run without it).
 */

/* Back-propagates `upstream` into y (through y * upstream); releases y. */
static void backward_from(Value *y, double upstream)
{
    Value *scaled = value_mul_scalar(y, upstream);
    if (CHECK(scaled != NULL)) {
        CHECK_INT(value_backward(scaled), MICROCRAD_OK);
        value_release(scaled);
    }
    value_release(y);
}

static void test_pytorch_formulas(void)
{
    printf("PyTorch's formulas\n");
    double d, ga, gb;

    /* d(a/b)/db = -g * ((a/b)/b): finite where b*b overflows or underflows. */
    binary_at(value_div, 1e200, 1e200, &d, &ga, &gb);
    CHECK_SAME(d, 1.0);
    CHECK_SAME(ga, 1e-200);
    CHECK_SAME(gb, -1e-200);
    binary_at(value_div, 1e-200, 1e-200, &d, &ga, &gb);
    CHECK_SAME(ga, 1e200);
    CHECK_SAME(gb, -1e200);

    /* pow's masks with an inf or NaN incoming gradient g: the base's gradient is
     * where(p == 0, 0, g * ...) = 0; the exponent's is g * where(a == 0 && p >= 0, 0,
     * ...) = g * 0 = NaN. */
    const double incoming[3] = {INFINITY, -INFINITY, NAN};
    for (int i = 0; i < 3; i++) {
        Value *a = value_create_leaf(2.0), *p = value_create_leaf(0.0);
        backward_from(value_pow(a, p), incoming[i]);
        CHECK_SAME(a->grad, 0.0);
        Value *zero = value_create_leaf(0.0), *two = value_create_leaf(2.0);
        backward_from(value_pow(zero, two), incoming[i]);
        CHECK(isnan(two->grad));
        Value *c = value_create_leaf(3.0);
        backward_from(value_pow_const(c, 0.0), incoming[i]);
        CHECK_SAME(c->grad, 0.0);
        value_release(a);
        value_release(p);
        value_release(zero);
        value_release(two);
        value_release(c);
    }

    /* relu(-0.0) is -0.0, as micrograd's `0 if x < 0 else x` and PyTorch give. */
    Value *negative_zero = value_create_leaf(-0.0);
    Value *r = value_relu(negative_zero);
    CHECK(r != NULL && r->data == 0.0 && signbit(r->data));
    value_release(r);
    value_release(negative_zero);

    /* sigmoid is 1 / (1 + exp(-x)) (here e^x / (1 + e^x) would be one ulp higher), and
     * its gradient (g * (1 - y)) * y (here g * (y * (1 - y)) would differ). */
    double y, g;
    unary_at(value_sigmoid, -3.0, &y, &g);
    CHECK_SAME(y, 1.0 / (1.0 + exp(3.0)));
    const double x = 2.4054029505037366, upstream = -1.5471761413874225;
    Value *leaf = value_create_leaf(x);
    Value *s = value_sigmoid(leaf);
    y = s ? s->data : NAN;
    backward_from(s, upstream);
    CHECK_SAME(leaf->grad, (upstream * (1.0 - y)) * y);
    CHECK(leaf->grad != upstream * (y * (1.0 - y)));
    value_release(leaf);
}

/* ------------------------------------------------------------------------------ */
/* abs                                                                             */
/* ------------------------------------------------------------------------------ */

/* |x| and its gradient g * sign(x), with PyTorch's sign (0 at +-0 and at NaN), at the
 * IEEE corners, for an upstream gradient g of 1, -1.5 and inf; the expected gradients
 * are those torch.abs gives (tests/test_abs.py compares with PyTorch itself). */
static void test_abs(void)
{
    printf("abs\n");
    static const double upstream[3] = {1.0, -1.5, INFINITY};
    static const struct {
        double x, grad[3];
    } cases[] = {
        {-0.0, {0.0, 0.0, NAN}},   {0.0, {0.0, 0.0, NAN}},    {NAN, {0.0, 0.0, NAN}},
        {INFINITY, {1.0, -1.5, INFINITY}}, {-INFINITY, {-1.0, 1.5, -INFINITY}},
        {-2.5, {-1.0, 1.5, -INFINITY}},    {3.0, {1.0, -1.5, INFINITY}},
        {-1e-310, {-1.0, 1.5, -INFINITY}}, /* subnormal: still a sign */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int j = 0; j < 3; j++) {
            Value *x = value_create_leaf(cases[i].x), *g = value_create_leaf(upstream[j]);
            Value *y = value_abs(x);
            Value *root = value_mul(y, g); /* the gradient reaching y is g */
            if (CHECK(y && root)) {
                CHECK_INT(value_op(y), MICROCRAD_OP_ABS);
                CHECK_SAME(y->data, fabs(cases[i].x));
                CHECK(!signbit(y->data) || isnan(y->data)); /* |-0.0| is +0.0 */
                CHECK_INT(value_backward(root), MICROCRAD_OK);
                if (!CHECK_SAME(x->grad, cases[i].grad[j]))
                    fprintf(stderr, "    abs'(%g) * %g\n", cases[i].x, upstream[j]);
            }
            value_release(root);
            value_release(y);
            value_release(g);
            value_release(x);
        }
    }
    CHECK(strcmp(microcrad_op_name(MICROCRAD_OP_ABS), "abs") == 0);
    CHECK(value_abs(NULL) == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NULL);
}

int main(void)
{
    /* value_prev past the end records an error; keep the test output readable. */
    microcrad_set_quiet(1);
    int64_t live_at_start = microcrad_live_values();

    static const double any[6] = {-2.5, -0.7, -0.1, 0.3, 1.0, 2.2};
    static const double positive[6] = {0.05, 0.3, 1.0, 2.2, 7.5, 1e3};
    static const double wide[6] = {-30.0, -2.5, -0.1, 0.3, 1.0, 25.0};

    const unary_case unary[] = {
        {"neg", value_neg, MICROCRAD_OP_NEG, ref_neg, ref_neg_d, any},
        {"exp", value_exp, MICROCRAD_OP_EXP, exp, ref_exp_d, any},
        {"log", value_log, MICROCRAD_OP_LOG, log, ref_log_d, positive},
        {"relu", value_relu, MICROCRAD_OP_RELU, ref_relu, ref_relu_d, any},
        {"tanh", value_tanh, MICROCRAD_OP_TANH, tanh, ref_tanh_d, any},
        {"sigmoid", value_sigmoid, MICROCRAD_OP_SIGMOID, ref_sigmoid, ref_sigmoid_d, wide},
    };
    for (size_t i = 0; i < sizeof unary / sizeof unary[0]; i++)
        test_unary(&unary[i]);

    const binary_case binary[] = {
        {"add", value_add, MICROCRAD_OP_ADD, ref_add, ref_add_da, ref_add_db,
         {{1.5, 2.0}, {-0.7, 3.1}, {2.2, -0.4}, {0.0, 0.9}, {1e6, -3.0}}},
        {"sub", value_sub, MICROCRAD_OP_SUB, ref_sub, ref_sub_da, ref_sub_db,
         {{1.5, 2.0}, {-0.7, 3.1}, {2.2, -0.4}, {0.0, 0.9}, {1e6, -3.0}}},
        {"mul", value_mul, MICROCRAD_OP_MUL, ref_mul, ref_mul_da, ref_mul_db,
         {{1.5, 2.0}, {-0.7, 3.1}, {2.2, -0.4}, {0.0, 0.9}, {1e3, -3.0}}},
        {"div", value_div, MICROCRAD_OP_DIV, ref_div, ref_div_da, ref_div_db,
         {{1.5, 2.0}, {-0.7, 3.1}, {2.2, -0.4}, {0.0, 0.9}, {10.0, -3.0}}},
        {"pow", value_pow, MICROCRAD_OP_POW, pow, ref_pow_da, ref_pow_db,
         {{1.5, 2.0}, {0.7, 3.1}, {2.2, -0.4}, {0.3, 0.9}, {4.0, 0.5}}},
    };
    for (size_t i = 0; i < sizeof binary / sizeof binary[0]; i++)
        test_binary(&binary[i]);

    test_pow_const();
    test_sum();
    test_neuron();
    test_shared_operand();
    test_ieee();
    test_pytorch_formulas();
    test_abs();

    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
