/*
 * test_side_record.c - labels, op texts, one node's backward step, and custom ops
 * defined by a backward callback: what micrograd's lecture does by hand, in C.
 */
#include "check.h"

#include <math.h>
#include <microcrad.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a custom op: sin(x), whose context holds a reference to its operand ---------- */

static int contexts_alive;

typedef struct SinContext {
    Value *x;          /* one reference, given back by release_sin */
    int fail_on_call;  /* the call (1-based) that reports a failure; 0: none */
    int calls;
} SinContext;

static int sin_backward(Value *node, void *context)
{
    SinContext *c = context;
    c->calls++;
    if (c->fail_on_call && c->calls == c->fail_on_call)
        return 42;
    c->x->grad += cos(c->x->data) * node->grad;
    return 0;
}

static void release_sin(void *context)
{
    SinContext *c = context;
    value_release(c->x);
    free(c);
    contexts_alive--;
}

/* sin(x) as a custom op; the context retains x. NULL on failure. */
static Value *custom_sin(Value *x, SinContext **out_context)
{
    Value *node = value_create(sin(x->data), 1, &x);
    SinContext *c = calloc(1, sizeof *c);
    if (!node || !c || value_retain(x) != MICROCRAD_OK) {
        free(c);
        value_release(node);
        return NULL;
    }
    c->x = x;
    if (value_set_op_text(node, "sin") != MICROCRAD_OK ||
        value_set_backward(node, sin_backward, c, release_sin) != MICROCRAD_OK) {
        value_release(x);
        free(c);
        value_release(node);
        return NULL;
    }
    contexts_alive++;
    if (out_context)
        *out_context = c;
    return node;
}

static char *dot_text(Value *root)
{
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    if (!f)
        return NULL;
    int status = value_write_dot(root, f);
    fclose(f);
    if (status != MICROCRAD_OK) {
        free(text);
        return NULL;
    }
    return text;
}

static void test_labels_and_op_texts(void)
{
    Value *a = value_create_leaf(2.0);
    CHECK(strcmp(value_label(a), "") == 0);
    CHECK(value_op_text(a) == NULL);
    CHECK_INT(value_set_label(a, "a"), MICROCRAD_OK);
    CHECK(strcmp(value_label(a), "a") == 0);
    CHECK_INT(value_set_label(a, "renamed"), MICROCRAD_OK);
    CHECK(strcmp(value_label(a), "renamed") == 0);
    CHECK_INT(value_set_label(a, ""), MICROCRAD_OK);
    CHECK(strcmp(value_label(a), "") == 0);
    CHECK_INT(value_set_label(a, "a"), MICROCRAD_OK);
    CHECK_INT(value_set_label(a, NULL), MICROCRAD_OK);
    CHECK(strcmp(value_label(a), "") == 0);

    Value *sq = value_create(4.0, 1, &a);
    CHECK_INT(value_set_op_text(sq, "square"), MICROCRAD_OK);
    CHECK(value_op_text(sq) && strcmp(value_op_text(sq), "square") == 0);
    CHECK_INT(value_set_op_text(sq, ""), MICROCRAD_OK);
    CHECK(value_op_text(sq) && strcmp(value_op_text(sq), "") == 0);
    CHECK_INT(value_set_op_text(sq, NULL), MICROCRAD_OK);
    CHECK(value_op_text(sq) == NULL);
    CHECK_INT(value_set_label(sq, "sq"), MICROCRAD_OK);
    CHECK_INT(value_set_op_text(sq, "square"), MICROCRAD_OK);

    /* Errors: nothing is changed, the error names the function. */
    CHECK_INT(value_set_label(NULL, "x"), MICROCRAD_ERR_NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_set_label");
    CHECK(value_label(NULL) == NULL);
    CHECK_INT(value_set_op_text(NULL, "x"), MICROCRAD_ERR_NULL);
    Value fake = {0};
    CHECK_INT(value_set_label(&fake, "x"), MICROCRAD_ERR_FOREIGN);

    /* Many labelled nodes (the table grows), all freed with their nodes. */
    enum { N = 5000 };
    Value **many = malloc(N * sizeof *many);
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "v%d", i);
        many[i] = value_create_leaf(i);
        CHECK_INT(value_set_label(many[i], text), MICROCRAD_OK);
    }
    int labels_ok = 1;
    for (int i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof text, "v%d", i);
        labels_ok &= strcmp(value_label(many[i]), text) == 0;
    }
    CHECK(labels_ok);
    for (int i = 0; i < N; i++)
        value_release(many[i]);
    free(many);

    value_release(sq);
    value_release(a);
}

static void test_dot_shows_labels_and_op_texts(void)
{
    Value *a = value_create_leaf(2.0);
    Value *b = value_create_leaf(-3.0);
    value_set_label(a, "a");
    value_set_label(b, "b|<x>\"{}\\");
    Value *e = value_mul(a, b);
    value_set_label(e, "e");
    Value *s = value_create(1.0, 1, &e);
    value_set_op_text(s, "my \"op\"");
    char *text = dot_text(s);
    CHECK(text != NULL);
    if (text) {
        CHECK_CONTAINS(text, "label=\"{ a | data 2.0000 | grad 0.0000 }\"");
        CHECK_CONTAINS(text, "label=\"{ e | data -6.0000 | grad 0.0000 }\"");
        CHECK_CONTAINS(text, "{ b\\|\\<x\\>\\\"\\{\\}\\\\ | data -3.0000");
        CHECK_CONTAINS(text, "[label=\"my \\\"op\\\"\"]");
        CHECK_CONTAINS(text, "[label=\"*\"]");
        /* An unlabelled node keeps the two-field record. */
        CHECK_CONTAINS(text, "label=\"{ data 1.0000 | grad 0.0000 }\"");
    }
    free(text);
    value_release(s);
    value_release(e);
    value_release(a);
    value_release(b);
}

/* The lecture's first expression, L = (a*b + c) * f, back-propagated by hand, one
 * node's step at a time in reverse topological order, against value_backward. */
static void test_backward_step_by_hand(void)
{
    Value *leaves[2][4];
    Value *nodes[2][3];
    for (int run = 0; run < 2; run++) {
        Value *a = leaves[run][0] = value_create_leaf(2.0);
        Value *b = leaves[run][1] = value_create_leaf(-3.0);
        Value *c = leaves[run][2] = value_create_leaf(10.0);
        Value *f = leaves[run][3] = value_create_leaf(-2.0);
        Value *e = nodes[run][0] = value_mul(a, b);
        Value *d = nodes[run][1] = value_add(e, c);
        Value *L = nodes[run][2] = value_mul(d, f);
        if (run == 0) {
            CHECK_INT(value_backward(L), MICROCRAD_OK);
        } else {
            value_set_grad(L, 1.0);
            CHECK_INT(value_backward_step(L), MICROCRAD_OK);
            CHECK_INT(value_backward_step(d), MICROCRAD_OK);
            CHECK_INT(value_backward_step(e), MICROCRAD_OK);
            for (int i = 0; i < 4; i++) /* a leaf's step does nothing */
                CHECK_INT(value_backward_step(leaves[run][i]), MICROCRAD_OK);
        }
    }
    for (int i = 0; i < 4; i++)
        CHECK_SAME(leaves[1][i]->grad, leaves[0][i]->grad);
    for (int i = 0; i < 3; i++)
        CHECK_SAME(nodes[1][i]->grad, nodes[0][i]->grad);
    CHECK_SAME(leaves[0][0]->grad, 6.0); /* dL/da = b * f */
    CHECK_INT(value_backward_step(NULL), MICROCRAD_ERR_NULL);
    for (int run = 0; run < 2; run++) {
        for (int i = 0; i < 3; i++)
            value_release(nodes[run][i]);
        for (int i = 0; i < 4; i++)
            value_release(leaves[run][i]);
    }
}

static void test_custom_op_backward(void)
{
    int64_t base = microcrad_live_values();
    Value *x = value_create_leaf(0.5);
    Value *s = custom_sin(x, NULL);
    CHECK(s != NULL);
    Value *y = value_mul_scalar(s, 3.0); /* y = 3 sin(x) */
    CHECK_INT(value_backward(y), MICROCRAD_OK);
    CHECK_NEAR(x->grad, 3.0 * cos(0.5), 1e-15);
    CHECK_SAME(s->grad, 3.0);
    /* Twice: the interior grad is recomputed, the leaf's accumulates. */
    CHECK_INT(value_backward(y), MICROCRAD_OK);
    CHECK_SAME(s->grad, 3.0);
    CHECK_NEAR(x->grad, 6.0 * cos(0.5), 1e-15);
    /* The single step calls the callback too. */
    value_set_grad(x, 0.0);
    CHECK_INT(value_backward_step(s), MICROCRAD_OK);
    CHECK_NEAR(x->grad, 3.0 * cos(0.5), 1e-15);
    /* A tape replays the callback. */
    microcrad_tape *tape = microcrad_tape_create(y);
    value_set_grad(x, 0.0);
    CHECK_INT(microcrad_tape_backward(tape), MICROCRAD_OK);
    CHECK_NEAR(x->grad, 3.0 * cos(0.5), 1e-15);
    microcrad_tape_free(tape);
    /* Only custom nodes take a callback. */
    CHECK_INT(value_set_backward(x, sin_backward, NULL, NULL), MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "leaf");
    CHECK_INT(value_set_backward(y, sin_backward, NULL, NULL), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(value_set_backward(NULL, sin_backward, NULL, NULL), MICROCRAD_ERR_NULL);
    value_release(y);
    CHECK_INT(contexts_alive, 1);
    value_release(s);
    CHECK_INT(contexts_alive, 0); /* released with its node */
    value_release(x);
    CHECK_INT(microcrad_live_values(), base);
}

typedef struct Counts {
    int calls, released;
} Counts;

static int count_calls(Value *node, void *context)
{
    (void)node;
    ((Counts *)context)->calls++;
    return 0;
}

static void count_release(void *context) { ((Counts *)context)->released++; }

static void test_replacing_and_removing_a_callback(void)
{
    Value *x = value_create_leaf(1.0);
    Value *n = value_create(1.0, 1, &x);
    Counts a = {0, 0}, b = {0, 0};
    CHECK_INT(value_set_backward(n, count_calls, &a, count_release), MICROCRAD_OK);
    CHECK_INT(value_backward(n), MICROCRAD_OK);
    CHECK_INT(value_set_backward(n, count_calls, &b, count_release), MICROCRAD_OK);
    CHECK_INT(a.released, 1); /* the replaced context is given back */
    CHECK_INT(value_backward(n), MICROCRAD_OK);
    CHECK_INT(a.calls, 1);
    CHECK_INT(b.calls, 1);
    CHECK_INT(value_set_backward(n, NULL, NULL, NULL), MICROCRAD_OK); /* removes */
    CHECK_INT(b.released, 1);
    CHECK_INT(value_backward(n), MICROCRAD_OK);
    CHECK_INT(b.calls, 1);
    /* Released with the node, once. */
    Counts c = {0, 0};
    CHECK_INT(value_set_backward(n, count_calls, &c, count_release), MICROCRAD_OK);
    value_release(n);
    CHECK_INT(c.released, 1);
    CHECK_INT(a.released + b.released, 2);
    value_release(x);
}

/* A chain x -> sin -> sin -> ... of `depth` custom ops: back-propagates in order and
 * frees without recursion, each context's reference to its operand included. */
static void test_deep_chain_of_custom_ops(int depth)
{
    int64_t base = microcrad_live_values();
    Value *x = value_create_leaf(0.3);
    Value *top = x;
    value_retain(top);
    double expected = 1.0, data = 0.3;
    for (int i = 0; i < depth; i++) {
        Value *next = custom_sin(top, NULL);
        if (!CHECK(next != NULL))
            break;
        expected *= cos(data);
        data = sin(data);
        value_release(top);
        top = next;
    }
    CHECK_INT(value_backward(top), MICROCRAD_OK);
    CHECK_NEAR(x->grad, expected, 1e-12);
    CHECK_INT(value_backward(top), MICROCRAD_OK);
    CHECK_NEAR(x->grad, 2.0 * expected, 1e-12);
    value_release(top);
    CHECK_INT(contexts_alive, 0);
    value_release(x);
    CHECK_INT(microcrad_live_values(), base);
}

static Value *walk_root;
static int walk_status[4];

static int try_walks(Value *node, void *context)
{
    (void)node;
    (void)context;
    walk_status[0] = value_backward(walk_root);
    walk_status[1] = value_zero_grad(walk_root);
    FILE *sink = fopen("/dev/null", "w");
    walk_status[2] = sink ? value_write_dot(walk_root, sink) : MICROCRAD_ERR_ARGUMENT;
    if (sink)
        fclose(sink);
    microcrad_tape *tape = microcrad_tape_create(walk_root);
    walk_status[3] = tape ? MICROCRAD_OK : microcrad_last_status();
    microcrad_tape_free(tape);
    return 0;
}

static void test_failing_callback_and_walks_inside_callbacks(void)
{
    Value *x = value_create_leaf(0.5);
    SinContext *c = NULL;
    Value *s1 = custom_sin(x, &c);
    Value *y = value_mul(s1, s1);
    Value *z = value_add(y, s1);
    c->fail_on_call = 1;
    CHECK_INT(value_backward(z), MICROCRAD_ERR_CALLBACK);
    CHECK_CONTAINS(microcrad_last_error(), "returned 42");
    /* No mark is left: every node is found again by the next pass, whose interior
     * gradients are the right ones. */
    CHECK_INT(x->flags & 1u, 0);
    CHECK_INT(s1->flags & 1u, 0);
    CHECK_INT(y->flags & 1u, 0);
    CHECK_INT(z->flags & 1u, 0);
    value_set_grad(x, 0.0);
    CHECK_INT(value_backward(z), MICROCRAD_OK);
    CHECK_SAME(s1->grad, 2.0 * s1->data + 1.0);
    CHECK_NEAR(x->grad, (2.0 * s1->data + 1.0) * cos(0.5), 1e-15);
    CHECK_INT(value_backward_step(s1), MICROCRAD_OK);
    c->fail_on_call = c->calls + 1;
    CHECK_INT(value_backward_step(s1), MICROCRAD_ERR_CALLBACK);

    /* Graph walks refuse to start from inside a callback. */
    Value *n = value_create(1.0, 1, &x);
    value_set_backward(n, try_walks, NULL, NULL);
    walk_root = z;
    CHECK_INT(value_backward(n), MICROCRAD_OK);
    for (int i = 0; i < 4; i++)
        CHECK_INT(walk_status[i], MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "inside a backward callback");
    CHECK_INT(value_backward(z), MICROCRAD_OK); /* and work again outside */

    value_release(n);
    value_release(z);
    value_release(y);
    value_release(s1);
    value_release(x);
    CHECK_INT(contexts_alive, 0);
}

/* A callback that drops the last outside reference to the graph's root: the pass
 * keeps the graph alive until it ends. */
static Value *dropped_by_callback;
static int drop_root(Value *node, void *context)
{
    (void)node;
    (void)context;
    value_release(dropped_by_callback);
    dropped_by_callback = NULL;
    return 0;
}

static void test_callback_dropping_the_root(void)
{
    int64_t base = microcrad_live_values();
    Value *x = value_create_leaf(1.0);
    Value *n = value_create(2.0, 1, &x);
    value_set_backward(n, drop_root, NULL, NULL);
    Value *root = value_mul_scalar(n, 2.0);
    value_release(n);
    dropped_by_callback = root;
    CHECK_INT(value_backward(root), MICROCRAD_OK);
    CHECK(dropped_by_callback == NULL);
    value_release(x);
    CHECK_INT(microcrad_live_values(), base);
}

/* Threads each build labelled graphs with custom ops over a shared leaf (which only
 * gets retained and released), back-propagate and free them: the side table is
 * shared by all. */
static Value *shared_leaf;

static int no_op_backward(Value *node, void *context)
{
    (void)context;
    Value *operand = value_prev(node, 0);
    operand->grad += node->grad;
    return 0;
}

static void *thread_work(void *arg)
{
    (void)arg;
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        Value *x = value_create_leaf(i);
        Value *operands[2] = {x, shared_leaf};
        Value *n = value_create(1.0, 2, operands);
        ok &= value_set_label(x, "x") == MICROCRAD_OK;
        ok &= value_set_op_text(n, "pass") == MICROCRAD_OK;
        ok &= value_set_backward(n, no_op_backward, NULL, NULL) == MICROCRAD_OK;
        Value *y = value_mul(n, x);
        ok &= value_backward(y) == MICROCRAD_OK;
        ok &= x->grad == 1.0 + i;
        ok &= strcmp(value_label(x), "x") == 0;
        value_release(y);
        value_release(n);
        value_release(x);
    }
    return ok ? arg : NULL;
}

static void test_threads(void)
{
    shared_leaf = value_create_leaf(0.0);
    pthread_t threads[4];
    int marker = 1;
    for (int i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, thread_work, &marker);
    for (int i = 0; i < 4; i++) {
        void *result = NULL;
        pthread_join(threads[i], &result);
        CHECK(result == &marker);
    }
    value_release(shared_leaf);
}

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 100000;
    int64_t base = microcrad_live_values();
    microcrad_set_quiet(1);
    test_labels_and_op_texts();
    test_dot_shows_labels_and_op_texts();
    test_backward_step_by_hand();
    test_custom_op_backward();
    test_replacing_and_removing_a_callback();
    test_deep_chain_of_custom_ops(3000);
    test_deep_chain_of_custom_ops(depth);
    test_failing_callback_and_walks_inside_callbacks();
    test_callback_dropping_the_root();
    test_threads();
    CHECK_INT(microcrad_live_values(), base);
    return check_summary();
}
