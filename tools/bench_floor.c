/*
 * bench_floor.c - THE FLOOR: a measuring stick for tools/bench_nodes.c only. It is not
 * part of microcrad, is not built into the library, and must not be used for anything
 * but measuring.
 *
 * The least work a scalar reverse-mode engine can do for workload W1 (build a graph,
 * back-propagate from its root, release it): nodes are bump-allocated from an arena of
 * chunks, there are no reference counts, no checks of any kind (a bad pointer crashes),
 * no error reporting, no thread safety, and releasing forgets the whole arena at once
 * (its chunks are kept for the next graph). It has the ops W1 uses, leaf, + and *, with
 * microcrad's forward and backward rules written the same way, so both compute the
 * same bits. It back-propagates in reverse creation order, which for W1's graphs adds
 * every gradient in the order microcrad's depth-first walk does (tools/bench.py checks
 * that the engines agree on the root and on every leaf gradient).
 *
 * bench_nodes.c includes this file. The entry points are kept out of line (FLOOR_API),
 * so that each op is a real function call, as each of microcrad's is.
 *
 * Each node has room for a reference count (in what would otherwise be padding), which
 * the floor neither sets nor reads: bench_floor_atomic.c, the floor with thread-safe
 * reference counts, uses it, on these same nodes and rules.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#if defined(__clang__)
#define FLOOR_API static __attribute__((noinline))
#elif defined(__GNUC__)
#define FLOOR_API static __attribute__((noipa)) /* no inlining, cloning or IPA shortcuts */
#else
#define FLOOR_API static
#endif

enum { FLOOR_LEAF, FLOOR_ADD, FLOOR_MUL, FLOOR_CHUNK_NODES = 32768 };

typedef struct FloorNode FloorNode;
struct FloorNode {
    double data, grad;
    FloorNode *a, *b;
    int op;
    uint32_t count; /* references to the node: only bench_floor_atomic.c counts them */
};
/* The count takes the padding after op: the node is as small as without it (40 bytes
 * on a 64-bit machine). */
static_assert(sizeof(FloorNode) == 2 * sizeof(double) + 2 * sizeof(FloorNode *) + 8,
              "FloorNode's count must fit in the padding after op");

typedef struct FloorChunk FloorChunk;
struct FloorChunk {
    FloorChunk *prev, *next;
    size_t used;
    FloorNode nodes[FLOOR_CHUNK_NODES];
};

/* An arena; zero-initialise it. */
typedef struct FloorArena {
    FloorChunk *first, *current;
} FloorArena;

static inline FloorNode *floor_new(FloorArena *arena, int op, double data, FloorNode *a,
                                   FloorNode *b)
{
    FloorChunk *chunk = arena->current;
    if (!chunk || chunk->used == FLOOR_CHUNK_NODES) {
        FloorChunk *next = chunk ? chunk->next : arena->first;
        if (!next) {
            if (!(next = malloc(sizeof *next)))
                abort();
            next->prev = chunk; /* the nodes are left untouched until used */
            next->next = NULL;
            *(chunk ? &chunk->next : &arena->first) = next;
        }
        next->used = 0;
        arena->current = chunk = next;
    }
    FloorNode *node = &chunk->nodes[chunk->used++];
    /* Field by field: the count is left alone (the floor never reads it), so the floor
     * does exactly the work it did before nodes had one. */
    node->data = data;
    node->grad = 0.0;
    node->a = a;
    node->b = b;
    node->op = op;
    return node;
}

FLOOR_API FloorNode *floor_leaf(FloorArena *arena, double x)
{
    return floor_new(arena, FLOOR_LEAF, x, NULL, NULL);
}
FLOOR_API FloorNode *floor_add(FloorArena *arena, FloorNode *a, FloorNode *b)
{
    return floor_new(arena, FLOOR_ADD, a->data + b->data, a, b);
}
FLOOR_API FloorNode *floor_mul(FloorArena *arena, FloorNode *a, FloorNode *b)
{
    return floor_new(arena, FLOOR_MUL, a->data * b->data, a, b);
}

/* Back-propagates from `root`, which must be the last node made in `arena`. */
FLOOR_API void floor_backward(FloorArena *arena, FloorNode *root)
{
    root->grad = 1.0;
    for (FloorChunk *chunk = arena->current; chunk; chunk = chunk->prev)
        for (size_t i = chunk->used; i-- > 0;) {
            FloorNode *n = &chunk->nodes[i];
            if (n->op == FLOOR_ADD) {
                n->a->grad += n->grad;
                n->b->grad += n->grad;
            } else if (n->op == FLOOR_MUL) {
                n->a->grad += n->b->data * n->grad;
                n->b->grad += n->a->data * n->grad;
            }
        }
}

/* Releases every node of `arena` at once, keeping its memory for the next graph. */
FLOOR_API void floor_release_all(FloorArena *arena)
{
    if (arena->first)
        arena->first->used = 0;
    arena->current = arena->first;
}

/* Gives the arena's memory back. */
static void floor_free(FloorArena *arena)
{
    for (FloorChunk *chunk = arena->first, *next; chunk; chunk = next) {
        next = chunk->next;
        free(chunk);
    }
    *arena = (FloorArena){0};
}
