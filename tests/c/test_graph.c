/*
 * test_graph.c - value_backward and value_zero_grad on whole graphs.
 *
 * Graphs where a node is reached along several paths (diamonds), repeated backward
 * passes (leaf gradients accumulate, interior ones are recomputed), zeroing, a leaf as
 * the root, custom nodes that pass no gradient, and micrograd's README example. Every
 * expected gradient below is derived by hand in the comment next to it.
 */
#include "check.h"

#include <microcrad.h>

#include <math.h>

#define TOL 1e-14

/* Handles a test holds, released together at its end. */
typedef struct handles {
    Value *v[64];
    int n;
} handles;

/* Remembers v for release_all and returns it, so graphs read like formulas. */
static Value *keep(handles *h, Value *v)
{
    CHECK(v != NULL);
    if (CHECK(h->n < 64)) /* a full list would leak the node */
        h->v[h->n++] = v;
    return v;
}

static void release_all(handles *h)
{
    while (h->n > 0)
        CHECK_INT(value_release(h->v[--h->n]), MICROCRAD_OK);
}

/* ------------------------------------------------------------------------------ */

/*
 * d = (a * k) * (a + m): a reaches d along two paths.
 *   d = k a^2 + k m a
 *   dd/da = 2 k a + k m    dd/dk = a (a + m)    dd/dm = k a
 *   dd/db = c = a + m      dd/dc = b = k a      (b = a * k, c = a + m)
 */
static void test_diamond(void)
{
    printf("diamond\n");
    handles h = {0};
    const double x = 1.5, kx = 2.0, mx = 3.0;
    Value *a = keep(&h, value_create_leaf(x));
    Value *k = keep(&h, value_create_leaf(kx));
    Value *m = keep(&h, value_create_leaf(mx));
    Value *b = keep(&h, value_mul(a, k));
    Value *c = keep(&h, value_add(a, m));
    Value *d = keep(&h, value_mul(b, c));

    CHECK_SAME(d->data, (x * kx) * (x + mx));
    CHECK_INT(value_backward(d), MICROCRAD_OK);
    CHECK_SAME(d->grad, 1.0);
    CHECK_NEAR(b->grad, x + mx, TOL);
    CHECK_NEAR(c->grad, kx * x, TOL);
    CHECK_NEAR(a->grad, 2.0 * kx * x + kx * mx, TOL);
    CHECK_NEAR(k->grad, x * (x + mx), TOL);
    CHECK_NEAR(m->grad, kx * x, TOL);
    release_all(&h);
}

/*
 * u = tanh(a) feeds v = u*u (twice), w = u + v and z = w * u, so u is reached along
 * four edges of different depths; its gradient is only complete if every consumer ran
 * before it (a wrong topological order shows up here).
 *   z = u^2 + u^3      dz/du = 2u + 3u^2      dz/da = (2u + 3u^2)(1 - u^2)
 *   dz/dw = u          dz/dv = dz/dw = u
 */
static void test_shared_interior(void)
{
    printf("shared interior node\n");
    handles h = {0};
    const double x = 0.6;
    Value *a = keep(&h, value_create_leaf(x));
    Value *u = keep(&h, value_tanh(a));
    Value *v = keep(&h, value_mul(u, u));
    Value *w = keep(&h, value_add(u, v));
    Value *z = keep(&h, value_mul(w, u));

    const double t = tanh(x);
    CHECK_NEAR(z->data, t * t + t * t * t, TOL);
    CHECK_INT(value_backward(z), MICROCRAD_OK);
    CHECK_NEAR(w->grad, t, TOL);
    CHECK_NEAR(v->grad, t, TOL);
    CHECK_NEAR(u->grad, 2.0 * t + 3.0 * t * t, TOL);
    CHECK_NEAR(a->grad, (2.0 * t + 3.0 * t * t) * (1.0 - t * t), TOL);
    release_all(&h);
}

/*
 * A second backward pass on the same graph: leaf gradients add up (they double), the
 * interior ones are recomputed from scratch (unchanged), the root's stays 1. Then
 * value_zero_grad clears every reachable gradient and one more pass gives single
 * gradients again.
 */
static void test_repeat_and_zero(void)
{
    printf("backward twice, zero_grad\n");
    handles h = {0};
    const double x = -0.8, y = 2.5;
    Value *a = keep(&h, value_create_leaf(x));
    Value *b = keep(&h, value_create_leaf(y));
    Value *p = keep(&h, value_mul(a, b));   /* p = a b */
    Value *q = keep(&h, value_exp(p));      /* q = e^(a b) */
    Value *r = keep(&h, value_add(q, a));   /* r = e^(a b) + a */
    /* dr/dq = 1, dr/dp = e^(ab), dr/da = b e^(ab) + 1, dr/db = a e^(ab) */
    const double e = exp(x * y);
    const double ga = y * e + 1.0, gb = x * e;

    CHECK_INT(value_backward(r), MICROCRAD_OK);
    CHECK_SAME(r->grad, 1.0);
    CHECK_NEAR(q->grad, 1.0, TOL);
    CHECK_NEAR(p->grad, e, TOL);
    CHECK_NEAR(a->grad, ga, TOL);
    CHECK_NEAR(b->grad, gb, TOL);

    CHECK_INT(value_backward(r), MICROCRAD_OK);
    CHECK_SAME(r->grad, 1.0);
    CHECK_NEAR(q->grad, 1.0, TOL);
    CHECK_NEAR(p->grad, e, TOL);
    CHECK_NEAR(a->grad, 2.0 * ga, TOL);
    CHECK_NEAR(b->grad, 2.0 * gb, TOL);

    /* Interior gradients are reset before each pass, whatever they held. */
    value_set_grad(p, 42.0);
    value_set_grad(r, -7.0);
    CHECK_INT(value_backward(r), MICROCRAD_OK);
    CHECK_SAME(r->grad, 1.0);
    CHECK_NEAR(p->grad, e, TOL);
    CHECK_NEAR(a->grad, 3.0 * ga, TOL);

    /* zero_grad reaches the root, interior nodes and leaves... */
    Value *outside = keep(&h, value_create_leaf(1.0));
    value_set_grad(outside, 5.0);
    CHECK_INT(value_zero_grad(r), MICROCRAD_OK);
    CHECK_SAME(r->grad, 0.0);
    CHECK_SAME(q->grad, 0.0);
    CHECK_SAME(p->grad, 0.0);
    CHECK_SAME(a->grad, 0.0);
    CHECK_SAME(b->grad, 0.0);
    /* ...and nothing that is not reachable from the root. */
    CHECK_SAME(outside->grad, 5.0);
    /* Data is untouched by either. */
    CHECK_SAME(a->data, x);
    CHECK_NEAR(r->data, e + x, TOL);

    CHECK_INT(value_backward(r), MICROCRAD_OK);
    CHECK_NEAR(a->grad, ga, TOL);
    CHECK_NEAR(b->grad, gb, TOL);

    /* zero_grad from an interior node leaves the nodes above it alone. */
    CHECK_INT(value_zero_grad(p), MICROCRAD_OK);
    CHECK_SAME(p->grad, 0.0);
    CHECK_SAME(a->grad, 0.0);
    CHECK_NEAR(q->grad, 1.0, TOL);
    CHECK_SAME(r->grad, 1.0);
    release_all(&h);
}

/*
 * Backward from an interior node touches only what that node depends on:
 * with b = a * k inside d = b * (a + m), backward(b) adds k to a and a to k, and
 * leaves m alone.
 */
static void test_sub_root(void)
{
    printf("backward from an interior node\n");
    handles h = {0};
    Value *a = keep(&h, value_create_leaf(1.5));
    Value *k = keep(&h, value_create_leaf(2.0));
    Value *m = keep(&h, value_create_leaf(3.0));
    Value *b = keep(&h, value_mul(a, k));
    Value *c = keep(&h, value_add(a, m));
    Value *d = keep(&h, value_mul(b, c));
    CHECK(d != NULL);
    value_set_grad(c, 9.0);
    CHECK_INT(value_backward(b), MICROCRAD_OK);
    CHECK_SAME(b->grad, 1.0);
    CHECK_SAME(a->grad, 2.0);
    CHECK_SAME(k->grad, 1.5);
    CHECK_SAME(m->grad, 0.0);
    CHECK_SAME(c->grad, 9.0);
    release_all(&h);
}

/* A leaf as the root accumulates like any leaf: 1, then 2, on top of what it held. */
static void test_leaf_root(void)
{
    printf("leaf root\n");
    Value *a = value_create_leaf(3.0);
    CHECK_INT(value_backward(a), MICROCRAD_OK);
    CHECK_SAME(a->grad, 1.0);
    CHECK_INT(value_backward(a), MICROCRAD_OK);
    CHECK_SAME(a->grad, 2.0);
    value_set_grad(a, 0.5);
    CHECK_INT(value_backward(a), MICROCRAD_OK);
    CHECK_SAME(a->grad, 1.5);
    CHECK_INT(value_zero_grad(a), MICROCRAD_OK);
    CHECK_SAME(a->grad, 0.0);
    CHECK_SAME(a->data, 3.0);

    /* value_create with no operands is a leaf too. */
    Value *l = value_create(4.0, 0, NULL);
    if (CHECK(l != NULL)) {
        CHECK_INT(value_op(l), MICROCRAD_OP_LEAF);
        CHECK_INT(value_n_prevs(l), 0);
        CHECK_SAME(l->data, 4.0);
        CHECK_INT(value_backward(l), MICROCRAD_OK);
        CHECK_INT(value_backward(l), MICROCRAD_OK);
        CHECK_SAME(l->grad, 2.0);
        value_release(l);
    }
    value_release(a);
}

/*
 * A node made with value_create over operands is a CUSTOM op: it keeps its operands
 * alive but is opaque to gradients. In root = p * a with p = custom(a, b):
 *   droot/dp = a, droot/da = p (through the multiplication only), droot/db = 0.
 */
static void test_custom(void)
{
    printf("custom op\n");
    handles h = {0};
    const double x = 1.25, y = -2.0, pv = 5.0;
    Value *a = keep(&h, value_create_leaf(x));
    Value *b = keep(&h, value_create_leaf(y));
    Value *ops[2] = {a, b};
    Value *p = keep(&h, value_create(pv, 2, ops));
    ops[0] = ops[1] = NULL; /* value_create copied the array */
    CHECK_INT(value_op(p), MICROCRAD_OP_CUSTOM);
    CHECK_INT(value_n_prevs(p), 2);
    CHECK(value_prev(p, 0) == a);
    CHECK(value_prev(p, 1) == b);
    CHECK_SAME(p->data, pv);

    Value *root = keep(&h, value_mul(p, a));
    CHECK_INT(value_backward(root), MICROCRAD_OK);
    CHECK_SAME(root->data, pv * x);
    CHECK_SAME(p->grad, x);
    CHECK_SAME(a->grad, pv);
    CHECK_SAME(b->grad, 0.0);

    /* A second pass: p is interior, so its gradient is recomputed, not doubled. */
    CHECK_INT(value_backward(root), MICROCRAD_OK);
    CHECK_SAME(p->grad, x);
    CHECK_SAME(a->grad, 2.0 * pv);
    CHECK_SAME(b->grad, 0.0);

    /* Backward from the custom node itself reaches no operand. */
    CHECK_INT(value_zero_grad(root), MICROCRAD_OK);
    CHECK_INT(value_backward(p), MICROCRAD_OK);
    CHECK_SAME(p->grad, 1.0);
    CHECK_SAME(a->grad, 0.0);
    CHECK_SAME(b->grad, 0.0);
    release_all(&h);
}

/*
 * micrograd's README example. Its published results (from PyTorch) are
 * g = 24.7041, dg/da = 138.8338, dg/db = 645.5773; the closed forms follow.
 * With a = -4, b = 2:
 *   c = 3a + 4b + 3 = -1                    (dc/da = 3, dc/db = 4)
 *   d = 12(ab + b^3) + 4 relu(a + b) + relu(b - a) = 6
 *                                           (dd/da = 12b - 1 = 23, dd/db = 12(a + 3b^2) + 1 = 97;
 *                                            relu(a + b) = relu(-2) passes nothing)
 *   e = c - d = -7,  f = e^2 = 49,  g = f/2 + 10/f
 *   dg/df = 1/2 - 10/f^2,  dg/de = 2e dg/df
 *   dg/da = (3 - 23) dg/de,  dg/db = (4 - 97) dg/de
 */
static void test_micrograd_readme(void)
{
    printf("micrograd README example\n");
    handles h = {0};
    Value *one = keep(&h, value_create_leaf(1.0));
    Value *two = keep(&h, value_create_leaf(2.0));
    Value *three = keep(&h, value_create_leaf(3.0));
    Value *ten = keep(&h, value_create_leaf(10.0));

    Value *a = keep(&h, value_create_leaf(-4.0));
    Value *b = keep(&h, value_create_leaf(2.0));
    /* c = a + b;  d = a * b + b**3 */
    Value *c = keep(&h, value_add(a, b));
    Value *ab = keep(&h, value_mul(a, b));
    Value *b3 = keep(&h, value_pow_const(b, 3.0));
    Value *d = keep(&h, value_add(ab, b3));
    /* c += c + 1 */
    Value *c1 = keep(&h, value_add(c, one));
    c = keep(&h, value_add(c, c1));
    /* c += 1 + c + (-a) */
    Value *c2 = keep(&h, value_add(one, c));
    Value *c3 = keep(&h, value_add(c2, keep(&h, value_neg(a))));
    c = keep(&h, value_add(c, c3));
    /* d += d * 2 + (b + a).relu() */
    Value *d1 = keep(&h, value_mul(d, two));
    Value *r1 = keep(&h, value_relu(keep(&h, value_add(b, a))));
    d = keep(&h, value_add(d, keep(&h, value_add(d1, r1))));
    /* d += 3 * d + (b - a).relu() */
    Value *d2 = keep(&h, value_mul(three, d));
    Value *r2 = keep(&h, value_relu(keep(&h, value_sub(b, a))));
    d = keep(&h, value_add(d, keep(&h, value_add(d2, r2))));
    Value *e = keep(&h, value_sub(c, d));
    Value *f = keep(&h, value_pow_const(e, 2.0));
    Value *g = keep(&h, value_div(f, two));
    g = keep(&h, value_add(g, keep(&h, value_div(ten, f))));

    CHECK_SAME(c->data, -1.0);
    CHECK_SAME(d->data, 6.0);
    CHECK_SAME(f->data, 49.0);
    CHECK_NEAR(g->data, 49.0 / 2.0 + 10.0 / 49.0, TOL);
    CHECK_NEAR(g->data, 24.7041, 5e-5);

    CHECK_INT(value_backward(g), MICROCRAD_OK);
    const double dg_df = 0.5 - 10.0 / (49.0 * 49.0);
    const double dg_de = 2.0 * -7.0 * dg_df;
    CHECK_NEAR(a->grad, (3.0 - 23.0) * dg_de, 1e-13);
    CHECK_NEAR(b->grad, (4.0 - 97.0) * dg_de, 1e-13);
    CHECK_NEAR(a->grad, 138.8338, 5e-5);
    CHECK_NEAR(b->grad, 645.5773, 5e-5);
    release_all(&h);
}

/* A wide graph: sum_i x_i^2 over 1000 leaves; each gradient is 2 x_i. */
static void test_wide(void)
{
    printf("wide sum of squares\n");
    enum { N = 1000 };
    static Value *x[N], *sq[N];
    for (int i = 0; i < N; i++) {
        x[i] = value_create_leaf(0.01 * (i - 500));
        sq[i] = value_mul(x[i], x[i]);
    }
    Value *s = value_sum(N, sq);
    CHECK(s != NULL);
    CHECK_INT(value_backward(s), MICROCRAD_OK);
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += !check_near_double(x[i]->grad, 2.0 * (0.01 * (i - 500)), TOL);
    CHECK_INT(wrong, 0);
    value_release(s);
    for (int i = 0; i < N; i++) {
        value_release(sq[i]);
        value_release(x[i]);
    }
}

/* A custom op's step for test_saturated_root: passes the grad to its one operand. */
static int pass_grad(Value *node, void *context)
{
    (void)context;
    value_prev(node, 0)->grad += node->grad;
    return 0;
}

/*
 * A root whose count is at its maximum cannot be retained for the pass (the caller's
 * references are then many, so the pass does without): value_backward and
 * value_backward_step still succeed, and record no error, however many callbacks run.
 * The first lazy version retried the retain at every callback and recorded (and
 * printed) "value_retain: reference count is at its maximum" each time.
 */
static void test_saturated_root(void)
{
    printf("saturated root with callbacks\n");
    Value *a = value_create_leaf(1.5);
    Value *top = a;
    CHECK_INT(value_retain(a), MICROCRAD_OK);
    for (int i = 0; i < 3; i++) {
        Value *ops[1] = {top};
        Value *node = value_create(top->data, 1, ops);
        CHECK_INT(value_set_backward(node, pass_grad, NULL, NULL), MICROCRAD_OK);
        value_release(top);
        top = node;
    }
    __atomic_store_n(&top->ref_count, UINT32_MAX, __ATOMIC_RELAXED);
    microcrad_clear_error();
    CHECK_INT(value_backward(top), MICROCRAD_OK);
    CHECK_SAME(a->grad, 1.0);
    CHECK_INT(microcrad_last_status(), MICROCRAD_OK);
    CHECK_INT(value_backward_step(top), MICROCRAD_OK);
    CHECK_INT(microcrad_last_status(), MICROCRAD_OK);
    CHECK_INT(value_ref_count(top), UINT32_MAX);
    __atomic_store_n(&top->ref_count, 1, __ATOMIC_RELAXED);
    value_release(top);
    value_release(a);
}

int main(void)
{
    int64_t live_at_start = microcrad_live_values();
    test_diamond();
    test_shared_interior();
    test_repeat_and_zero();
    test_sub_root();
    test_leaf_root();
    test_custom();
    test_micrograd_readme();
    test_wide();
    test_saturated_root();
    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
