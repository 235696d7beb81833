/*
 * test_alloc_rebuild.c - a graph that is released and built again lands in the same
 * memory in the same order.
 *
 * A training loop builds its graph, back-propagates and releases it, step after step.
 * If the pool hands blocks back in the order they were freed (a plain free list), the
 * rebuilt graph is scattered over memory and a large graph gets slower per node with
 * every rebuild. The pool instead starts a chunk whose nodes are all freed over from
 * its first block, allocates from the oldest chunk with room, and puts a reused
 * chunk's free list in address order, so the rebuilt graph is laid out exactly like
 * the first one.
 *
 * The check records the address of every node as it is made (leaves, products and
 * sums of a balanced tree over several chunks), releases the graph, builds it again
 * and compares the addresses one by one; then once more after a different graph (a
 * chain) has used and released the same memory in between; then around a node that
 * stays alive, made before the graph, or after it and before a second graph.
 * Plain-malloc builds (sanitizers, Valgrind) have no pool and skip the check.
 */
#include "check.h"

#include <microcrad.h>

#include <stdlib.h>

enum {
    PRODUCTS = 20000,          /* 80,000 nodes: about five 1 MiB chunks */
    NODES = 4 * PRODUCTS - 1,  /* 2P leaves, P products, P - 1 sums */
};

static const Value *order[NODES];

/* Records the address of a node just made. */
static Value *noted(Value *v, int *made)
{
    CHECK(v != NULL);
    if (*made < NODES)
        order[*made] = v;
    ++*made;
    return v;
}

/* Builds a product-sum tree, noting each node's address in order; returns the root. */
static Value *build_tree(Value **level)
{
    int made = 0;
    for (int i = 0; i < PRODUCTS; i++) {
        Value *a = noted(value_create_leaf(i % 5 - 2.0), &made);
        Value *b = noted(value_create_leaf(i % 3 + 0.5), &made);
        level[i] = noted(value_mul(a, b), &made);
        value_release(a);
        value_release(b);
    }
    for (int width = PRODUCTS; width > 1;) {
        int half = width / 2;
        for (int i = 0; i < half; i++) {
            Value *sum = noted(value_add(level[2 * i], level[2 * i + 1]), &made);
            value_release(level[2 * i]);
            value_release(level[2 * i + 1]);
            level[i] = sum;
        }
        if (width % 2)
            level[half++] = level[width - 1];
        width = half;
    }
    CHECK_INT(made, NODES);
    return level[0];
}

/* How many nodes of a rebuilt tree are not where the first build put them. */
static int moved_nodes(const Value *const *first, Value **level)
{
    Value *root = build_tree(level);
    CHECK_INT(value_backward(root), MICROCRAD_OK);
    int moved = 0;
    for (int i = 0; i < NODES; i++)
        moved += order[i] != first[i];
    value_release(root);
    return moved;
}

int main(void)
{
    if (microcrad_build_features() & MICROCRAD_BUILD_VALGRIND) {
        printf("plain-malloc build: there is no pool to lay out; nothing to check\n");
        return check_summary();
    }
    const int64_t live0 = microcrad_live_values();
    Value **level = malloc(PRODUCTS * sizeof *level);
    const Value **first = malloc(NODES * sizeof *first);
    CHECK(level != NULL && first != NULL);
    if (!level || !first)
        return check_summary();

    Value *root = build_tree(level);
    memcpy(first, order, sizeof order);
    value_release(root);
    CHECK_INT(microcrad_live_values(), live0);

    /* Built again, twice: every node where it was. */
    for (int round = 0; round < 2; round++)
        CHECK_INT(moved_nodes(first, level), 0);

    /* A chain in between uses the same memory in another pattern (each link freed as
     * the next is made) and releases it all. */
    Value *x = value_create_leaf(0.5);
    for (int i = 0; i < 3 * NODES; i++) {
        Value *next = value_mul_scalar(x, 1.0001);
        CHECK(next != NULL);
        value_release(x);
        x = next;
    }
    value_release(x);
    CHECK_INT(moved_nodes(first, level), 0);

    /* Around a node that stays alive (a parameter made before the graph): the chunk it
     * shares with the graph keeps it, and its holes are refilled in address order. */
    Value *kept = value_create_leaf(1.0);
    root = build_tree(level);
    memcpy(first, order, sizeof order);
    value_release(root);
    for (int round = 0; round < 2; round++)
        CHECK_INT(moved_nodes(first, level), 0);
    value_release(kept);

    /* A node that stays alive made right after the graph, in the chunk of its last
     * sums, and a second graph after it; both graphs are freed. The rebuilt first graph
     * takes the oldest chunks first and that chunk's holes in address order. */
    root = build_tree(level);
    memcpy(first, order, sizeof order);
    kept = value_create_leaf(2.0);
    Value *second = build_tree(level);
    value_release(root);
    value_release(second);
    for (int round = 0; round < 2; round++)
        CHECK_INT(moved_nodes(first, level), 0);
    value_release(kept);

    CHECK_INT(microcrad_live_values(), live0);
    free(first);
    free(level);
    return check_summary();
}
