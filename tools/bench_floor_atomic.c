/*
 * bench_floor_atomic.c - THE FLOOR WITH THREAD-SAFE REFERENCE COUNTS: a measuring stick
 * for tools/bench_nodes.c only, like the floor it extends (bench_floor.c). It is not part
 * of microcrad, is not built into the library, and must not be used for anything but
 * measuring.
 *
 * It answers one question: how much of W1 (build a graph, back-propagate from its root,
 * release it) do thread-safe reference counts alone cost? It is the floor, with its
 * arena, its 40-byte node, its ops' rules and its backward pass unchanged, and one thing
 * added: the count every FloorNode has room for is kept, with the atomic operations
 * microcrad's c/src/node.c uses (GCC/Clang __atomic builtins):
 *
 *   - a new node's count is 1, its creator's reference (set with a plain store: no other
 *     thread can know the node yet);
 *   - an op retains each of its two operands before making the node: a relaxed load and
 *     a compare-and-swap loop that refuses to take a count past UINT32_MAX (node.c's
 *     try_retain; the floor has no error reporting, so a saturated count aborts);
 *   - giving a reference back loads the count (acquire); when it reads 1 the reference
 *     is the last one, no other thread can take another, and the node dies without a
 *     locked instruction; otherwise an acq_rel fetch-and-subtract drops it (node.c's
 *     drop_reference);
 *   - a node that dies gives back its references to its operands, and those that die
 *     give back theirs, through a list of pending nodes threaded through their dead data
 *     fields, in the order microcrad's value_release frees them (node.c's
 *     free_unreferenced). Dead nodes stay in the arena until floor_release_all forgets
 *     the whole arena at once, as the floor's release does.
 *
 * bench_nodes.c's engine floor-atomic gives back each handle to an intermediate result
 * where its microcrad engine calls value_release. Per node of W1 that is three locked
 * read-modify-writes while building (each operand retained, the intermediate handle
 * given back from 2 to 1) and, on release, one locked decrement per reference to a leaf
 * (the leaves outlive the graph); the intermediate nodes die from count 1, lock-free.
 *
 * Nothing else is added: no checks, no error reporting, no per-node free. The cost above
 * the floor is the cost of thread-safe counts, which microcrad keeps.
 *
 * bench_nodes.c includes this file after bench_floor.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Adds a reference to `node` (node.c's try_retain; a saturated count aborts). */
static inline void floor_atomic_retain(FloorNode *node)
{
    uint32_t count = __atomic_load_n(&node->count, __ATOMIC_RELAXED);
    do {
        if (count == UINT32_MAX)
            abort();
    } while (!__atomic_compare_exchange_n(&node->count, &count, count + 1, 1, __ATOMIC_RELAXED,
                                          __ATOMIC_RELAXED));
}

/* Drops a reference to `node`; returns whether it was the last (node.c's
 * drop_reference: a count that reads 1 is the caller's only, so it needs no locked
 * instruction). */
static inline int floor_atomic_drop(FloorNode *node)
{
    if (__atomic_load_n(&node->count, __ATOMIC_ACQUIRE) == 1)
        return 1;
    return __atomic_fetch_sub(&node->count, 1, __ATOMIC_ACQ_REL) == 1;
}

/* The floor's node, holding its creator's reference. No other thread can know it yet:
 * a plain store. */
static inline FloorNode *floor_atomic_new(FloorArena *arena, int op, double data,
                                          FloorNode *a, FloorNode *b)
{
    FloorNode *node = floor_new(arena, op, data, a, b);
    node->count = 1;
    return node;
}

FLOOR_API FloorNode *floor_atomic_leaf(FloorArena *arena, double x)
{
    return floor_atomic_new(arena, FLOOR_LEAF, x, NULL, NULL);
}
FLOOR_API FloorNode *floor_atomic_add(FloorArena *arena, FloorNode *a, FloorNode *b)
{
    floor_atomic_retain(a);
    floor_atomic_retain(b);
    return floor_atomic_new(arena, FLOOR_ADD, a->data + b->data, a, b);
}
FLOOR_API FloorNode *floor_atomic_mul(FloorArena *arena, FloorNode *a, FloorNode *b)
{
    floor_atomic_retain(a);
    floor_atomic_retain(b);
    return floor_atomic_new(arena, FLOOR_MUL, a->data * b->data, a, b);
}

/* A dead node's data is no longer needed, so it links the list of pending nodes. */
static inline void floor_atomic_set_next(FloorNode *node, FloorNode *next)
{
    memcpy(&node->data, &next, sizeof next);
}
static inline FloorNode *floor_atomic_next(const FloorNode *node)
{
    FloorNode *next;
    memcpy(&next, &node->data, sizeof next);
    return next;
}

/*
 * Gives back one reference to `node`. When it was the last, the node dies and gives back
 * its operands' references, transitively, without recursion. Returns how many nodes died
 * (0 when `node` lives on). Their memory stays in the arena until floor_release_all.
 */
FLOOR_API size_t floor_atomic_release(FloorNode *node)
{
    if (!floor_atomic_drop(node))
        return 0;
    size_t died = 0;
    floor_atomic_set_next(node, NULL);
    for (FloorNode *pending = node; pending;) {
        FloorNode *dead = pending;
        pending = floor_atomic_next(dead);
        died++;
        if (dead->op == FLOOR_LEAF)
            continue;
        FloorNode *operands[2] = {dead->a, dead->b};
        for (int i = 0; i < 2; i++)
            if (floor_atomic_drop(operands[i])) {
                floor_atomic_set_next(operands[i], pending);
                pending = operands[i];
            }
    }
    return died;
}
