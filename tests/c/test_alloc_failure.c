/*
 * test_alloc_failure.c - running out of memory at every allocation site.
 *
 * For each constructor and op, and for value_backward and value_zero_grad, the test
 * first counts the allocations one successful call makes (K), then repeats the call K
 * times, making allocation 1, 2, ..., K fail in turn. Every failing call must report
 * "out of memory" the documented way and leave no trace: no node leaked or freed, no
 * reference count moved, no gradient touched. A normal call must work right after.
 *
 * Every constructor makes a node, so K >= 1 for each: a constructor that reports no
 * allocation would be bypassing the counting gate, and its failure path would go
 * untested.
 */
#include "check.h"

#include <microcrad.h>

#include <string.h>

/* The operands the constructors are given; all leaves, one reference each. `big`
 * feeds a neuron large enough to need a temporary operand array. */
enum { N_BIG = 40 };
typedef struct fixture {
    Value *a, *b;
    Value *t[5];
    Value *big[2 * N_BIG];
} fixture;

enum { N_FIXTURE = 7 + 2 * N_BIG };

static Value *fixture_node(const fixture *f, int i)
{
    return i == 0 ? f->a : i == 1 ? f->b : i < 7 ? f->t[i - 2] : f->big[i - 7];
}

typedef Value *(*make_fn)(const fixture *f);

static Value *make_leaf(const fixture *f) { (void)f; return value_create_leaf(1.5); }
static Value *make_create0(const fixture *f) { (void)f; return value_create(2.0, 0, NULL); }
static Value *make_create2(const fixture *f)
{
    Value *prev[2] = {f->a, f->b};
    return value_create(2.0, 2, prev);
}
static Value *make_create5(const fixture *f)
{
    Value *prev[5] = {f->a, f->b, f->a, f->t[0], f->t[1]};
    return value_create(2.0, 5, prev);
}
static Value *make_neg(const fixture *f) { return value_neg(f->a); }
static Value *make_exp(const fixture *f) { return value_exp(f->a); }
static Value *make_log(const fixture *f) { return value_log(f->a); }
static Value *make_relu(const fixture *f) { return value_relu(f->a); }
static Value *make_tanh(const fixture *f) { return value_tanh(f->a); }
static Value *make_sigmoid(const fixture *f) { return value_sigmoid(f->a); }
static Value *make_add(const fixture *f) { return value_add(f->a, f->b); }
static Value *make_sub(const fixture *f) { return value_sub(f->a, f->b); }
static Value *make_mul(const fixture *f) { return value_mul(f->a, f->b); }
static Value *make_mul_same(const fixture *f) { return value_mul(f->a, f->a); }
static Value *make_div(const fixture *f) { return value_div(f->a, f->b); }
static Value *make_pow(const fixture *f) { return value_pow(f->a, f->b); }
static Value *make_pow_const(const fixture *f) { return value_pow_const(f->a, 3.0); }
static Value *make_sum0(const fixture *f) { (void)f; return value_sum(0, NULL); }
static Value *make_sum1(const fixture *f) { return value_sum(1, f->t); }
static Value *make_sum5(const fixture *f) { return value_sum(5, f->t); }
static Value *make_neuron0(const fixture *f) { return value_neuron(0, NULL, NULL, f->a); }
static Value *make_neuron1(const fixture *f) { return value_neuron(1, &f->t[0], &f->t[1], f->a); }
static Value *make_neuron2(const fixture *f) { return value_neuron(2, &f->t[0], &f->t[2], f->b); }
static Value *make_neuron_big(const fixture *f)
{
    return value_neuron(N_BIG, &f->big[0], &f->big[N_BIG], f->a);
}

static const struct {
    const char *name;
    make_fn make;
} constructors[] = {
    {"value_create_leaf", make_leaf},
    {"value_create n=0", make_create0},
    {"value_create n=2", make_create2},
    {"value_create n=5", make_create5},
    {"value_neg", make_neg},
    {"value_exp", make_exp},
    {"value_log", make_log},
    {"value_relu", make_relu},
    {"value_tanh", make_tanh},
    {"value_sigmoid", make_sigmoid},
    {"value_add", make_add},
    {"value_sub", make_sub},
    {"value_mul", make_mul},
    {"value_mul a*a", make_mul_same},
    {"value_div", make_div},
    {"value_pow", make_pow},
    {"value_pow_const", make_pow_const},
    {"value_sum n=0", make_sum0},
    {"value_sum n=1", make_sum1},
    {"value_sum n=5", make_sum5},
    {"value_neuron n=0", make_neuron0},
    {"value_neuron n=1", make_neuron1},
    {"value_neuron n=2", make_neuron2},
    {"value_neuron n=40", make_neuron_big},
};

static void snapshot_counts(const fixture *f, uint32_t counts[N_FIXTURE])
{
    for (int i = 0; i < N_FIXTURE; i++)
        counts[i] = value_ref_count(fixture_node(f, i));
}

static int counts_unchanged(const fixture *f, const uint32_t before[N_FIXTURE])
{
    uint32_t now[N_FIXTURE];
    snapshot_counts(f, now);
    return memcmp(before, now, sizeof now) == 0;
}

static void walk_constructor(const char *name, make_fn make, const fixture *f)
{
    int64_t live0 = microcrad_live_values();
    uint32_t counts0[N_FIXTURE];
    snapshot_counts(f, counts0);

    int64_t start = microcrad_allocation_count();
    Value *v = make(f);
    int64_t k = microcrad_allocation_count() - start;
    printf("%-24s %lld allocation(s)\n", name, (long long)k);
    if (!CHECK(v != NULL))
        return;
    const double data = v->data;
    CHECK(k >= 1);
    value_release(v);
    CHECK_INT(microcrad_live_values(), live0);

    for (int64_t n = 1; n <= k; n++) {
        CHECK_INT(microcrad_fail_allocation(n), MICROCRAD_OK);
        microcrad_clear_error();
        int64_t before = microcrad_allocation_count();
        v = make(f);
        int64_t attempted = microcrad_allocation_count() - before;
        microcrad_fail_allocation(0); /* cancel, in case the call did not get that far */
        if (!CHECK(v == NULL)) {
            fprintf(stderr, "    %s succeeded although allocation %lld failed\n", name,
                    (long long)n);
            value_release(v);
            continue;
        }
        CHECK(attempted >= n); /* the failing attempt itself is counted */
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NOMEM);
        CHECK_INT(microcrad_live_values(), live0);
        if (!CHECK(counts_unchanged(f, counts0)))
            fprintf(stderr, "    %s moved a reference count when allocation %lld failed\n",
                    name, (long long)n);
    }

    /* Everything works again, with the same result. */
    v = make(f);
    if (CHECK(v != NULL)) {
        CHECK_SAME(v->data, data);
        value_release(v);
    }
    CHECK_INT(microcrad_live_values(), live0);
    CHECK(counts_unchanged(f, counts0));
}

/* Every op of the op table, through value_create_op over as many of the fixture's
 * nodes as it takes: walked like the constructors above, so a new op is covered
 * without editing this test. */
static int walked_op;
static Value *make_by_number(const fixture *f)
{
    int arity = microcrad_op_arity(walked_op);
    int32_t n = arity >= 0 ? arity : 5; /* 5 suits every n-ary op */
    return value_create_op(walked_op, 2.0, n, f->t);
}

static void walk_every_op(const fixture *f)
{
    for (walked_op = 0; walked_op < microcrad_op_count(); walked_op++) {
        char name[64];
        snprintf(name, sizeof name, "value_create_op %s", microcrad_op_name(walked_op));
        walk_constructor(name, make_by_number, f);
    }
}

/* ------------------------------------------------------------------------------ */
/* value_backward and value_zero_grad                                               */
/* ------------------------------------------------------------------------------ */

/* A graph under test: its nodes, the root last. */
enum { MAX_NODES = 256 };
typedef struct graph {
    Value *node[MAX_NODES];
    int n;
} graph;

static Value *add_node(graph *g, Value *v)
{
    CHECK(v != NULL);
    g->node[g->n++] = v;
    return v;
}

static void release_graph(graph *g)
{
    while (g->n > 0)
        value_release(g->node[--g->n]);
}

/* Distinct values in every gradient, so any write shows. */
static void set_sentinels(const graph *g)
{
    for (int i = 0; i < g->n; i++)
        value_set_grad(g->node[i], 100.0 + i);
}

static int sentinels_intact(const graph *g)
{
    int ok = 1;
    for (int i = 0; i < g->n; i++)
        ok &= g->node[i]->grad == 100.0 + i;
    return ok;
}

typedef int (*grad_fn)(Value *root);

static void walk_gradient_pass(const char *name, grad_fn pass, const graph *g)
{
    Value *root = g->node[g->n - 1];
    int64_t live0 = microcrad_live_values();
    uint32_t counts0[MAX_NODES];
    for (int i = 0; i < g->n; i++)
        counts0[i] = value_ref_count(g->node[i]);

    int64_t start = microcrad_allocation_count();
    CHECK_INT(pass(root), MICROCRAD_OK);
    int64_t k = microcrad_allocation_count() - start;
    printf("%-24s %lld allocation(s), %d nodes\n", name, (long long)k, g->n);
    /* Both walk the graph with heap arrays (no recursion), so each allocates. */
    CHECK(k >= 1);

    for (int64_t n = 1; n <= k; n++) {
        set_sentinels(g);
        CHECK_INT(microcrad_fail_allocation(n), MICROCRAD_OK);
        microcrad_clear_error();
        int status = pass(root);
        microcrad_fail_allocation(0);
        CHECK_INT(status, MICROCRAD_ERR_NOMEM);
        CHECK_CONTAINS(microcrad_last_error(), "memory");
        if (!CHECK(sentinels_intact(g)))
            fprintf(stderr, "    %s changed a gradient when allocation %lld failed\n", name,
                    (long long)n);
        CHECK_INT(microcrad_live_values(), live0);
        int moved = 0;
        for (int i = 0; i < g->n; i++)
            moved += value_ref_count(g->node[i]) != counts0[i];
        CHECK_INT(moved, 0);
    }
}

/*
 * A small graph with shared nodes: s = (e^(ab) + a) + ab + b over the leaves a, b:
 *   ds/da = b e^(ab) + 1 + b,   ds/db = a e^(ab) + a + 1.
 */
static void test_gradient_passes_small(void)
{
    const double x = 0.7, y = -1.3;
    const double e = exp(x * y);
    graph g = {.n = 0};
    Value *a = add_node(&g, value_create_leaf(x));
    Value *b = add_node(&g, value_create_leaf(y));
    Value *p = add_node(&g, value_mul(a, b));
    Value *q = add_node(&g, value_exp(p));
    Value *r = add_node(&g, value_add(q, a));
    Value *terms[3] = {r, p, b};
    Value *s = add_node(&g, value_sum(3, terms));

    walk_gradient_pass("value_backward", value_backward, &g);
    /* Afterwards a pass works and gives the right answer: the failed ones left no
     * traversal marks behind. */
    CHECK_INT(value_zero_grad(s), MICROCRAD_OK);
    CHECK_INT(value_backward(s), MICROCRAD_OK);
    CHECK_NEAR(a->grad, y * e + 1.0 + y, 1e-14);
    CHECK_NEAR(b->grad, x * e + x + 1.0, 1e-14);

    walk_gradient_pass("value_zero_grad", value_zero_grad, &g);
    set_sentinels(&g);
    CHECK_INT(value_zero_grad(s), MICROCRAD_OK);
    for (int i = 0; i < g.n; i++)
        CHECK_SAME(g.node[i]->grad, 0.0);
    release_graph(&g);
}

/*
 * A chain long enough that the walk's arrays must grow several times, so the failure
 * of each reallocation is visited too: x_{k+1} = x_k * c, 200 links, where
 *   dx_200/dx_0 = c^200,   dx_200/dc = 200 x_0 c^199.
 */
static void test_gradient_passes_growing(void)
{
    enum { LINKS = 200 };
    const double x0 = 0.9, cv = 1.01;
    graph g = {.n = 0};
    Value *leaf = add_node(&g, value_create_leaf(x0));
    Value *c = add_node(&g, value_create_leaf(cv));
    Value *x = leaf;
    for (int k = 0; k < LINKS; k++)
        x = add_node(&g, value_mul(x, c));

    walk_gradient_pass("value_backward, chain", value_backward, &g);
    CHECK_INT(value_zero_grad(x), MICROCRAD_OK);
    CHECK_INT(value_backward(x), MICROCRAD_OK);
    CHECK_NEAR(leaf->grad, pow(cv, LINKS), 1e-13);
    CHECK_NEAR(c->grad, LINKS * x0 * pow(cv, LINKS - 1), 1e-12);

    walk_gradient_pass("value_zero_grad, chain", value_zero_grad, &g);
    set_sentinels(&g);
    CHECK_INT(value_zero_grad(x), MICROCRAD_OK);
    for (int i = 0; i < g.n; i++)
        CHECK_SAME(g.node[i]->grad, 0.0);
    release_graph(&g);
}

/* ------------------------------------------------------------------------------ */
/* Inside a scope                                                                   */
/* ------------------------------------------------------------------------------ */

/* The forms that build more than one node, or return more than one result, inside a
 * scope: the scalar forms (a leaf and the op), the fused neuron with its activation
 * and the networks' forward passes. Each returns its first result. */
static microcrad_neuron *scoped_neuron;
static microcrad_layer *scoped_layer;
static microcrad_mlp *scoped_mlp;
static Value *make_mul_scalar(const fixture *f) { return value_mul_scalar(f->a, 2.0); }
static Value *make_scalar_pow(const fixture *f) { return value_scalar_pow(2.0, f->a); }
static Value *make_neuron_act(const fixture *f)
{
    return value_neuron_activation(2, &f->t[0], &f->t[2], f->b, MICROCRAD_ACT_SIGMOID);
}
static Value *make_neuron_forward(const fixture *f)
{
    return microcrad_neuron_forward(scoped_neuron, f->t);
}
static Value *make_layer_forward(const fixture *f)
{
    Value *out[3] = {f->a, f->a, f->a}; /* set to NULL on failure */
    int status = microcrad_layer_forward(scoped_layer, f->t, out);
    CHECK(status == MICROCRAD_OK ? out[2] != NULL : out[0] == NULL && out[2] == NULL);
    return out[0];
}
static Value *make_mlp_forward(const fixture *f)
{
    Value *out[2] = {f->a, f->a};
    int status = microcrad_mlp_forward(scoped_mlp, f->t, out);
    CHECK(status == MICROCRAD_OK ? out[1] != NULL : out[0] == NULL && out[1] == NULL);
    return out[0];
}

/* Fills `scope` with `n` leaves. */
static void fill_scope(microcrad_scope *scope, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        CHECK(value_create_leaf(0.0) != NULL);
    CHECK_INT(microcrad_scope_size(scope), n);
}

/* How many results a scope holds when its first chunk is full: the result after it is
 * the first whose recording costs an allocation of its own. */
static int64_t first_chunk_size(void)
{
    microcrad_scope *scope = microcrad_scope_begin();
    CHECK(value_create_leaf(0.0) != NULL); /* the first chunk */
    int64_t n = 1;
    for (; n < 1000000; n++) {
        int64_t before = microcrad_allocation_count();
        CHECK(value_create_leaf(0.0) != NULL);
        if (microcrad_allocation_count() - before > 1)
            break;
    }
    microcrad_scope_end(scope);
    return n;
}

/*
 * walk_constructor inside a scope that already holds `prefill` results: every
 * allocation of the call fails in turn, the scope's chunks included; a failure leaves
 * the scope holding exactly what it held, and nothing else changed. `results` is how
 * many references a successful call hands out.
 */
static void walk_in_scope(const char *name, make_fn make, const fixture *f, int64_t prefill,
                          int64_t results)
{
    int64_t live0 = microcrad_live_values();
    uint32_t counts0[N_FIXTURE];
    snapshot_counts(f, counts0);

    microcrad_scope *scope = microcrad_scope_begin();
    fill_scope(scope, prefill);
    int64_t start = microcrad_allocation_count();
    Value *v = make(f);
    int64_t k = microcrad_allocation_count() - start;
    printf("%-24s in a scope of %lld: %lld allocation(s)\n", name, (long long)prefill,
           (long long)k);
    CHECK(v != NULL);
    CHECK_INT(microcrad_scope_size(scope), prefill + results);
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);

    for (int64_t n = 1; n <= k; n++) {
        scope = microcrad_scope_begin();
        fill_scope(scope, prefill);
        int64_t live1 = microcrad_live_values();
        CHECK_INT(microcrad_fail_allocation(n), MICROCRAD_OK);
        microcrad_clear_error();
        v = make(f);
        microcrad_fail_allocation(0);
        if (!CHECK(v == NULL))
            fprintf(stderr, "    %s succeeded in a scope although allocation %lld failed\n",
                    name, (long long)n);
        CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NOMEM);
        CHECK_INT(microcrad_scope_size(scope), prefill);
        CHECK_INT(microcrad_live_values(), live1);
        if (!CHECK(counts_unchanged(f, counts0)))
            fprintf(stderr, "    %s moved a reference count when allocation %lld failed\n",
                    name, (long long)n);
        CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
        CHECK_INT(microcrad_live_values(), live0);
    }
}

static void test_scopes(const fixture *f)
{
    printf("scopes\n");
    int64_t live0 = microcrad_live_values();

    /* Opening a scope allocates; when that fails, no scope is opened. */
    int64_t start = microcrad_allocation_count();
    microcrad_scope *scope = microcrad_scope_begin();
    CHECK(microcrad_allocation_count() - start >= 1);
    CHECK_INT(microcrad_scope_end(scope), MICROCRAD_OK);
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    microcrad_clear_error();
    CHECK(microcrad_scope_begin() == NULL);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_NOMEM);
    Value *v = value_create_leaf(1.0); /* no scope open: the caller's */
    CHECK_INT(value_release(v), MICROCRAD_OK);

    uint64_t rng = 3;
    const int32_t sizes[2] = {3, 2};
    scoped_neuron = microcrad_neuron_create(5, MICROCRAD_ACT_RELU, &rng);
    scoped_layer = microcrad_layer_create(5, 3, MICROCRAD_ACT_TANH, &rng);
    scoped_mlp = microcrad_mlp_create(5, 2, sizes, MICROCRAD_ACT_RELU, MICROCRAD_ACT_LINEAR, &rng);
    CHECK(scoped_neuron && scoped_layer && scoped_mlp);
    int64_t live_nets = microcrad_live_values();

    /* Once in a new scope (its first chunk), once in a scope whose chunk is full. */
    const int64_t full = first_chunk_size();
    const int64_t prefills[2] = {0, full};
    for (int p = 0; p < 2; p++) {
        for (size_t i = 0; i < sizeof constructors / sizeof constructors[0]; i++)
            walk_in_scope(constructors[i].name, constructors[i].make, f, prefills[p], 1);
        walk_in_scope("value_mul_scalar", make_mul_scalar, f, prefills[p], 1);
        walk_in_scope("value_scalar_pow", make_scalar_pow, f, prefills[p], 1);
        walk_in_scope("value_neuron_activation", make_neuron_act, f, prefills[p], 1);
        walk_in_scope("microcrad_neuron_forward", make_neuron_forward, f, prefills[p], 1);
        walk_in_scope("microcrad_layer_forward", make_layer_forward, f, prefills[p], 3);
        walk_in_scope("microcrad_mlp_forward", make_mlp_forward, f, prefills[p], 2);
    }
    /* A layer whose outputs do not fit the room left in the chunk. */
    walk_in_scope("microcrad_layer_forward", make_layer_forward, f, full - 1, 3);

    CHECK_INT(microcrad_live_values(), live_nets);
    microcrad_neuron_free(scoped_neuron);
    microcrad_layer_free(scoped_layer);
    microcrad_mlp_free(scoped_mlp);
    CHECK_INT(microcrad_live_values(), live0);
}

/* ------------------------------------------------------------------------------ */
/* The hook itself, and what must not allocate at all                               */
/* ------------------------------------------------------------------------------ */

static void test_hook(void)
{
    printf("the failure hook\n");
    int64_t live0 = microcrad_live_values();
    CHECK_INT(microcrad_fail_allocation(-1), MICROCRAD_ERR_ARGUMENT);

    /* The n-th allocation fails, once; the ones before and after succeed. */
    CHECK_INT(microcrad_fail_allocation(2), MICROCRAD_OK);
    Value *first = value_create_leaf(1.0);
    Value *second = value_create_leaf(2.0);
    Value *third = value_create_leaf(3.0);
    CHECK(first != NULL);
    CHECK(second == NULL);
    CHECK(third != NULL);
    value_release(first);
    value_release(third);

    /* n == 0 cancels a pending failure. */
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    CHECK_INT(microcrad_fail_allocation(0), MICROCRAD_OK);
    Value *v = value_create_leaf(1.0);
    CHECK(v != NULL);
    value_release(v);
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_no_allocation(void)
{
    printf("calls that allocate nothing\n");
    int64_t live0 = microcrad_live_values();
    Value *a = value_create_leaf(2.0);
    Value *b = value_create_leaf(3.0);
    Value *c = value_mul(a, b);

    int64_t start = microcrad_allocation_count();
    value_retain(c);
    value_release(c);
    (void)value_ref_count(c);
    (void)value_data(c);
    (void)value_grad(c);
    value_set_data(a, 2.0);
    value_set_grad(a, 0.0);
    (void)value_op(c);
    (void)value_param(c);
    (void)value_n_prevs(c);
    (void)value_prev(c, 1);
    (void)microcrad_op_name(MICROCRAD_OP_MUL);
    CHECK_INT(microcrad_allocation_count(), start);

    /* Releasing frees a whole graph without allocating, so it works with memory
     * exhausted: with the next allocation set to fail, a 1000-link chain goes away and
     * the failure is still pending afterwards. */
    Value *x = c;
    for (int i = 0; i < 1000; i++) {
        Value *next = value_add(x, b);
        if (x != c)
            value_release(x);
        x = next;
    }
    value_release(c);
    value_release(a);
    value_release(b);
    CHECK_INT(microcrad_live_values(), live0 + 1003);
    start = microcrad_allocation_count();
    CHECK_INT(microcrad_fail_allocation(1), MICROCRAD_OK);
    CHECK_INT(value_release(x), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(microcrad_allocation_count(), start);
    Value *v = value_create_leaf(0.0); /* consumes the pending failure */
    CHECK(v == NULL);
    microcrad_fail_allocation(0);
    CHECK_INT(microcrad_live_values(), live0);
}

int main(void)
{
    microcrad_set_quiet(1); /* hundreds of expected "out of memory" messages */
    int64_t live_at_start = microcrad_live_values();

    test_hook();
    test_no_allocation();

    fixture f;
    f.a = value_create_leaf(1.25);
    f.b = value_create_leaf(-0.5);
    for (int i = 0; i < 5; i++)
        f.t[i] = value_create_leaf(0.5 * i - 1.0);
    for (int i = 0; i < 2 * N_BIG; i++)
        f.big[i] = value_create_leaf(0.01 * i);
    for (size_t i = 0; i < sizeof constructors / sizeof constructors[0]; i++)
        walk_constructor(constructors[i].name, constructors[i].make, &f);
    walk_every_op(&f);
    test_scopes(&f);
    for (int i = 0; i < N_FIXTURE; i++)
        value_release(fixture_node(&f, i));

    test_gradient_passes_small();
    test_gradient_passes_growing();

    CHECK_INT(microcrad_live_values(), live_at_start);
    return check_summary();
}
