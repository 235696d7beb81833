/*
 * test_node_release_many.c - value_release_many (c/src/node.c): many releases in one
 * call, as value_release would make them one by one.
 *
 * microcrad_live_values() is the witness: every scenario returns it to where it began.
 * Checked: releases in order (an operand outlives its user until the user goes),
 * repeated entries (one reference each), NULL entries and n == 0, the refusals (n < 0
 * and a NULL array release nothing; an entry that is not a live Value is left alone
 * and reported by its slot while the others are released), a long chain freed without
 * recursion, release callbacks that release more nodes with value_release_many from
 * inside the call, and threads giving back, in batches, nodes that other threads made.
 */
#define _POSIX_C_SOURCE 200809L

#include "check.h"

#include <microcrad.h>

#include <pthread.h>
#include <stdlib.h>

static void test_releases_in_order(void)
{
    printf("releases in order\n");
    int64_t live0 = microcrad_live_values();
    Value *a = value_create_leaf(2.0);
    Value *b = value_create_leaf(3.0);
    Value *c = value_mul(a, b);
    CHECK_INT(microcrad_live_values(), live0 + 3);

    /* a and b first: c still holds them, so nothing is freed until c goes. */
    Value *first[2] = {a, b};
    CHECK_INT(value_release_many(2, first), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0 + 3);
    CHECK_INT(value_ref_count(a), 1);
    CHECK_SAME(value_data(c), 6.0);
    Value *last[1] = {c};
    CHECK_INT(value_release_many(1, last), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);

    /* The same node several times: one reference each. */
    Value *d = value_create_leaf(1.0);
    CHECK_INT(value_retain(d), MICROCRAD_OK);
    CHECK_INT(value_retain(d), MICROCRAD_OK);
    Value *two[2] = {d, d};
    CHECK_INT(value_release_many(2, two), MICROCRAD_OK);
    CHECK_INT(value_ref_count(d), 1);
    Value *one[1] = {d};
    CHECK_INT(value_release_many(1, one), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
}

static void test_null_entries_and_empty_calls(void)
{
    printf("NULL entries and empty calls\n");
    int64_t live0 = microcrad_live_values();
    Value *a = value_create_leaf(1.0);
    Value *nodes[4] = {NULL, a, NULL, NULL};
    CHECK_INT(value_release_many(4, nodes), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
    Value *none[2] = {NULL, NULL};
    CHECK_INT(value_release_many(2, none), MICROCRAD_OK);
    CHECK_INT(value_release_many(0, NULL), MICROCRAD_OK);
    CHECK_INT(value_release_many(0, nodes), MICROCRAD_OK);
}

static void test_bad_entries_cost_only_themselves(void)
{
    printf("bad entries cost only themselves\n");
    int64_t live0 = microcrad_live_values();
    Value *nodes[3] = {NULL, NULL, NULL};

    microcrad_clear_error();
    CHECK_INT(value_release_many(-1, nodes), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_ARGUMENT);
    CHECK_CONTAINS(microcrad_last_error(), "value_release_many");
    CHECK_INT(value_release_many(2, NULL), MICROCRAD_ERR_NULL);
    CHECK_CONTAINS(microcrad_last_error(), "value_release_many");

    /* n < 0 releases nothing, even with live entries. */
    nodes[0] = value_create_leaf(1.0);
    CHECK_INT(value_release_many(-3, nodes), MICROCRAD_ERR_ARGUMENT);
    CHECK_INT(value_ref_count(nodes[0]), 1);

    /* A foreign object (no canary) between two live nodes: it is left alone, reported
     * by its slot, and both live nodes are still released. */
    Value fake = {0};
    nodes[1] = &fake;
    nodes[2] = value_create_leaf(2.0);
    CHECK_INT(microcrad_live_values(), live0 + 2);
    microcrad_clear_error();
    CHECK_INT(value_release_many(3, nodes), MICROCRAD_ERR_FOREIGN);
    CHECK_INT(microcrad_last_status(), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "value_release_many (nodes[1])");
    CHECK_INT(microcrad_live_values(), live0);
    CHECK_INT(fake.ref_count, 0); /* not touched */

    /* A misaligned pointer into a live node is foreign too; the first bad entry is the
     * one reported. */
    Value *a = value_create_leaf(3.0);
    Value *bad[3] = {(Value *)((char *)a + 1), &fake, a};
    CHECK_INT(value_release_many(3, bad), MICROCRAD_ERR_FOREIGN);
    CHECK_CONTAINS(microcrad_last_error(), "nodes[0]");
    CHECK_INT(microcrad_live_values(), live0);

    /* A released node, and a node that an earlier entry's release frees (the array
     * holds two references to it and the caller owned one): reported, the others
     * released. Only where reading freed memory is not itself the finding (outside
     * ASan and Valgrind, as in test_check.c). */
    if (!(microcrad_build_features() & (MICROCRAD_BUILD_ASAN | MICROCRAD_BUILD_VALGRIND))) {
        Value *gone = value_create_leaf(5.0);
        Value *b = value_create_leaf(6.0); /* made first: it must not reuse gone's block */
        CHECK_INT(value_release(gone), MICROCRAD_OK);
        Value *with_gone[2] = {gone, b};
        CHECK_INT(value_release_many(2, with_gone), MICROCRAD_ERR_RELEASED);
        CHECK_CONTAINS(microcrad_last_error(), "nodes[0]");
        CHECK_INT(microcrad_live_values(), live0);

        Value *once = value_create_leaf(7.0);
        Value *c = value_create_leaf(8.0);
        Value *twice[3] = {once, once, c};
        CHECK_INT(value_release_many(3, twice), MICROCRAD_ERR_RELEASED);
        CHECK_CONTAINS(microcrad_last_error(), "nodes[1]");
        CHECK_INT(microcrad_live_values(), live0);
    }
}

static void test_long_chain(void)
{
    printf("a long chain, released in one batch\n");
    enum { LENGTH = 1000000 };
    int64_t live0 = microcrad_live_values();
    Value *x = value_create_leaf(1.0);
    Value *root = x;
    CHECK_INT(value_retain(x), MICROCRAD_OK);
    for (int i = 0; i < LENGTH; i++) {
        Value *next = value_add_scalar(root, 1.0);
        value_release(root); /* next holds it */
        root = next;
    }
    Value *both[2] = {root, x};
    CHECK_INT(value_release_many(2, both), MICROCRAD_OK);
    CHECK_INT(microcrad_live_values(), live0);
}

/*
 * A custom op whose context holds nodes that its release function gives back with
 * value_release_many: releases inside a release (as the Python package does when a
 * freed node's Python closure drops the Values it held).
 */
typedef struct held {
    int32_t n;
    Value *nodes[3];
} held;

static int released_contexts;

static int no_backward(Value *node, void *context)
{
    (void)node;
    (void)context;
    return 0;
}

static void release_held(void *context)
{
    held *h = context;
    CHECK_INT(value_release_many(h->n, h->nodes), MICROCRAD_OK);
    free(h);
    released_contexts++;
}

static void test_releases_inside_release_callbacks(void)
{
    printf("release callbacks that release nodes in batches\n");
    int64_t live0 = microcrad_live_values();
    released_contexts = 0;
    enum { OPS = 50 };
    Value *roots[OPS];
    for (int i = 0; i < OPS; i++) {
        Value *a = value_create_leaf(i);
        Value *op = value_create(2.0 * i, 1, &a);
        held *h = malloc(sizeof *h);
        CHECK(h != NULL);
        /* The context holds the operand, a node of its own, and the previous op (so a
         * release frees a chain of custom ops, each from the previous one's callback). */
        h->n = 3;
        h->nodes[0] = a;
        h->nodes[1] = value_create_leaf(-1.0);
        h->nodes[2] = i > 0 ? roots[i - 1] : NULL;
        CHECK_INT(value_set_backward(op, no_backward, h, release_held), MICROCRAD_OK);
        roots[i] = op;
    }
    CHECK_INT(microcrad_live_values(), live0 + 3 * OPS);
    /* Only the last op is still the caller's: each earlier one went into the next
     * one's context. */
    Value *last[1] = {roots[OPS - 1]};
    CHECK_INT(value_release_many(1, last), MICROCRAD_OK);
    CHECK_INT(released_contexts, OPS);
    CHECK_INT(microcrad_live_values(), live0);
}

/* Threads give back, in batches, nodes that other threads made. */
enum { THREADS = 4, PER_THREAD = 20000, BATCH = 256 };
static Value *made[THREADS][PER_THREAD];

static void *make_nodes(void *arg)
{
    Value **out = arg;
    Value *shared = value_create_leaf(0.5);
    for (int i = 0; i < PER_THREAD; i++)
        out[i] = i % 2 ? value_mul_scalar(shared, i) : value_add(shared, shared);
    value_release(shared);
    return NULL;
}

static int failed_batches[THREADS];

static void *release_nodes(void *arg)
{
    int t = (int)(intptr_t)arg;
    Value **in = made[(t + 1) % THREADS];
    for (int i = 0; i < PER_THREAD; i += BATCH) {
        int32_t n = PER_THREAD - i < BATCH ? PER_THREAD - i : BATCH;
        if (value_release_many(n, in + i) != MICROCRAD_OK)
            failed_batches[t]++; /* counted here, checked on the main thread */
    }
    return NULL;
}

static void test_threads(void)
{
    printf("threads releasing other threads' nodes in batches\n");
    int64_t live0 = microcrad_live_values();
    pthread_t threads[THREADS];
    for (int t = 0; t < THREADS; t++)
        CHECK_INT(pthread_create(&threads[t], NULL, make_nodes, made[t]), 0);
    for (int t = 0; t < THREADS; t++)
        CHECK_INT(pthread_join(threads[t], NULL), 0);
    /* Thread t releases what thread t + 1 made. */
    for (int t = 0; t < THREADS; t++)
        CHECK_INT(pthread_create(&threads[t], NULL, release_nodes, (void *)(intptr_t)t), 0);
    for (int t = 0; t < THREADS; t++) {
        CHECK_INT(pthread_join(threads[t], NULL), 0);
        CHECK_INT(failed_batches[t], 0);
    }
    CHECK_INT(microcrad_live_values(), live0);
}

int main(void)
{
    test_releases_in_order();
    test_null_entries_and_empty_calls();
    test_bad_entries_cost_only_themselves();
    test_long_chain();
    test_releases_inside_release_callbacks();
    test_threads();
    return check_summary();
}
