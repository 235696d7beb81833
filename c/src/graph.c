/*
 * graph.c - walking a graph: topological order, back-propagation, zeroing gradients.
 *
 * The walk is an explicit-stack depth-first search, so a graph of any depth is
 * handled without recursion. Nodes seen by the walk carry MC_FLAG_VISITED until the
 * walk's caller clears it; this is why two walks over graphs that share nodes must not
 * run at the same time.
 */
#include "internal.h"

#include <stdint.h>

/* A growable array of node pointers. */
typedef struct NodeList {
    Value **items;
    size_t len, cap;
} NodeList;

/* One level of the explicit DFS stack: a node and the next operand to visit. */
typedef struct Frame {
    Value *node;
    uint32_t next;
} Frame;

typedef struct FrameStack {
    Frame *items;
    size_t len, cap;
} FrameStack;

/* Reallocates an array of `size`-byte elements to twice `*cap` (64 at first) and
 * updates `*cap`. Returns the new array, or NULL (the old one untouched) on failure. */
static void *grow(void *items, size_t *cap, size_t size)
{
    size_t new_cap = *cap ? *cap * 2 : 64;
    if (new_cap > SIZE_MAX / size)
        return NULL;
    void *bigger = mc_realloc(items, new_cap * size);
    if (bigger)
        *cap = new_cap;
    return bigger;
}

static int list_push(NodeList *list, Value *v)
{
    if (list->len == list->cap) {
        Value **bigger = grow(list->items, &list->cap, sizeof *list->items);
        if (!bigger)
            return 0;
        list->items = bigger;
    }
    list->items[list->len++] = v;
    return 1;
}

static int stack_push(FrameStack *stack, Value *v)
{
    if (stack->len == stack->cap) {
        Frame *bigger = grow(stack->items, &stack->cap, sizeof *stack->items);
        if (!bigger)
            return 0;
        stack->items = bigger;
    }
    stack->items[stack->len++] = (Frame){v, 0};
    return 1;
}

/* Clears the visited mark of every node in `list`. */
static void unmark(const NodeList *list)
{
    for (size_t i = 0; i < list->len; i++)
        list->items[i]->flags &= (uint16_t)~MC_FLAG_VISITED;
}

/* Whether every operand of `v` is a leaf or already visited: then the walk can place
 * `v` at once (after its unvisited leaves) instead of stacking a frame for it. */
static int operands_done(const Value *v)
{
    for (uint32_t i = 0; i < v->n_prevs; i++) {
        const Value *operand = v->prev[i];
        if (operand->n_prevs > 0 && !(operand->flags & MC_FLAG_VISITED))
            return 0;
    }
    return 1;
}

/* Places `v`, whose operands are all leaves or visited, as the walk would after
 * visiting them: its unvisited leaves in operand order (when the walk lists leaves),
 * then `v`. Returns 0 when memory runs out (the marks set so far stay, for the
 * caller's clean-up; the order records them). */
static int place_done(NodeList *order, Value *v, int with_leaves)
{
    if (with_leaves) {
        for (uint32_t i = 0; i < v->n_prevs; i++) {
            Value *operand = v->prev[i];
            if (operand->flags & MC_FLAG_VISITED)
                continue;
            if (!list_push(order, operand))
                return 0;
            operand->flags |= MC_FLAG_VISITED;
        }
    }
    return list_push(order, v);
}

/*
 * Fills `order` with every node reachable from `root`, each after all its operands
 * (so the root comes last). With `with_leaves` zero, leaves other than the root are
 * left out and left unmarked: back-propagation has nothing to do at a leaf but add to
 * its grad, which its consumers do. On success the listed nodes are still marked visited; the caller
 * unmarks them. On failure (out of memory) every mark is cleared and `order` freed.
 *
 * The order is the one a recursive depth-first walk produces, operands visited in
 * order; it decides the order in which gradients are summed, so it must not change.
 */
static int topological_order(Value *root, NodeList *order, int with_leaves)
{
    FrameStack stack = {0};
    *order = (NodeList){0};
    /* The root is listed (and so marked) even when it is a leaf: every walk makes its
     * arrays the same way, whatever the graph. */
    root->flags |= MC_FLAG_VISITED;
    if (!stack_push(&stack, root))
        goto out_of_memory;
    while (stack.len > 0) {
        Frame *top = &stack.items[stack.len - 1];
        Value *node = top->node;
        if (top->next < node->n_prevs) {
            Value *operand = node->prev[top->next++];
            if (operand->flags & MC_FLAG_VISITED)
                continue;
            int placed;
            if (operand->n_prevs == 0) {
                /* A leaf has nothing to visit: placed at once, or skipped. */
                if (!with_leaves)
                    continue;
                operand->flags |= MC_FLAG_VISITED;
                placed = list_push(order, operand);
            } else {
                operand->flags |= MC_FLAG_VISITED;
                placed = operands_done(operand) ? place_done(order, operand, with_leaves)
                                                : stack_push(&stack, operand);
            }
            if (!placed) {
                operand->flags &= (uint16_t)~MC_FLAG_VISITED;
                goto out_of_memory;
            }
        } else {
            if (!list_push(order, node))
                goto out_of_memory;
            stack.len--;
        }
    }
    mc_free(stack.items);
    return MICROCRAD_OK;

out_of_memory:
    root->flags &= (uint16_t)~MC_FLAG_VISITED; /* marked before its frame was pushed */
    unmark(order);
    for (size_t i = 0; i < stack.len; i++)
        stack.items[i].node->flags &= (uint16_t)~MC_FLAG_VISITED;
    mc_free(stack.items);
    mc_free(order->items);
    *order = (NodeList){0};
    return MICROCRAD_ERR_NOMEM;
}

int mc_graph_order(Value *root, Value ***order, size_t *len)
{
    NodeList list;
    int status = topological_order(root, &list, 1);
    if (status != MICROCRAD_OK)
        return status;
    unmark(&list);
    *order = list.items;
    *len = list.len;
    return MICROCRAD_OK;
}

/* Applies the backward rule of `v`, if its op has one. */
static inline void apply_backward(Value *v)
{
    void (*backward)(Value *) = mc_rule(v->op)->backward;
    if (backward)
        backward(v);
}

/* Whether interior node `v` runs a callback (a custom node with one) instead of a
 * built-in rule. The flag test keeps built-in ops off the callback path. */
static inline int has_callback(const Value *v)
{
    return (v->flags & MC_FLAG_SIDE_RECORD) && v->op == MICROCRAD_OP_CUSTOM;
}

/* Applies the backward step of interior node `v`: its op's rule, or the callback of a
 * custom node. Returns MICROCRAD_OK, or MICROCRAD_ERR_CALLBACK (error recorded, naming
 * `fn`) when a callback fails. */
static inline int backward_step(Value *v, const char *fn)
{
    if (has_callback(v))
        return mc_run_backward_callback(v, fn);
    apply_backward(v);
    return MICROCRAD_OK;
}

int mc_backpropagate(Value *root, Value *const *interior, size_t n, const char *fn)
{
    /* Interior gradients are recomputed from scratch each time; leaves accumulate. */
    for (size_t i = 0; i < n; i++)
        interior[i]->grad = 0.0;
    root->grad += 1.0; /* the root comes last, if it is interior */
    for (size_t i = n; i-- > 0;) {
        int status = backward_step(interior[i], fn);
        if (status != MICROCRAD_OK)
            return status;
    }
    return MICROCRAD_OK;
}

/*
 * value_backward's work over `order` (the interior nodes and the root, as
 * topological_order leaves them: still marked). One pass instead of three (unmark, zero, back-propagate): a
 * node's consumers all come after it in the order, so the reverse pass reaches every
 * consumer of a node before the node itself, and the first consumer to be reached
 * finds the node still marked. It zeroes the node's grad and unmarks it just before
 * adding the first contribution. Leaves were never marked, and keep accumulating.
 * When a callback fails, the pass stops there and clears the marks it has not reached,
 * so that nothing of this walk is left on the graph; the status is returned.
 *
 * A callback may drop the caller's references: before the first one runs, the pass
 * takes a reference to the root (*root_held 1 when it did, -1 when the count was
 * saturated), which keeps every node of the order alive until the caller gives it
 * back after the pass. Taking it there
 * rather than after a search of the order for callbacks spares a graph without any
 * (nearly all) a second pass over its nodes: on W1's 65k tree that pass was a fifth of
 * the backward time (perf: its loads of each node's op missed the cache).
 */
static int backpropagate_marked(Value *root, Value *const *order, size_t n, int *root_held)
{
    /* The root is listed and marked even when it is a leaf (whose grad accumulates). */
    if (root->n_prevs > 0)
        root->grad = 0.0;
    root->flags &= (uint16_t)~MC_FLAG_VISITED;
    root->grad += 1.0;
    for (size_t i = n; i-- > 0;) {
        Value *v = order[i];
        for (uint32_t j = 0; j < v->n_prevs; j++) {
            Value *operand = v->prev[j];
            if (operand->flags & MC_FLAG_VISITED) {
                operand->grad = 0.0;
                operand->flags &= (uint16_t)~MC_FLAG_VISITED;
            }
        }
        int status = MICROCRAD_OK;
        if (!has_callback(v)) {
            apply_backward(v);
        } else {
            /* Tried once: a saturated count fails the retain (the caller's references
             * are then many, and the pass does without), which is no error. */
            if (!*root_held)
                *root_held = mc_retain_quietly(root) ? 1 : -1;
            status = mc_run_backward_callback(v, "value_backward");
        }
        if (status != MICROCRAD_OK) {
            for (size_t k = 0; k < i; k++)
                order[k]->flags &= (uint16_t)~MC_FLAG_VISITED;
            return status;
        }
    }
    return MICROCRAD_OK;
}

/* The error of a graph walk started from inside a backward callback. */
static int walk_in_callback(const char *fn)
{
    return mc_error(MICROCRAD_ERR_ARGUMENT,
                    "%s: cannot walk a graph from inside a backward callback", fn);
}

int value_backward(Value *root)
{
    int status = mc_check(root, MC_KIND_VALUE, "value_backward", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (mc_in_backward_callback())
        return walk_in_callback("value_backward");
    NodeList order;
    if (topological_order(root, &order, 0) != MICROCRAD_OK)
        return mc_error(MICROCRAD_ERR_NOMEM, "value_backward: out of memory ordering the graph");
    int root_held = 0;
    status = backpropagate_marked(root, order.items, order.len, &root_held);
    mc_free(order.items);
    if (root_held > 0)
        value_release(root);
    return status;
}

int value_backward_step(Value *v)
{
    int status = mc_check(v, MC_KIND_VALUE, "value_backward_step", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (v->n_prevs == 0)
        return MICROCRAD_OK; /* a leaf passes gradient nowhere */
    if (!has_callback(v)) {
        apply_backward(v);
        return MICROCRAD_OK;
    }
    if (!mc_retain_quietly(v)) /* saturated: the caller's references are many */
        return mc_run_backward_callback(v, "value_backward_step");
    status = mc_run_backward_callback(v, "value_backward_step");
    value_release(v);
    return status;
}

int value_zero_grad(Value *root)
{
    int status = mc_check(root, MC_KIND_VALUE, "value_zero_grad", 1);
    if (status != MICROCRAD_OK)
        return status;
    if (mc_in_backward_callback())
        return walk_in_callback("value_zero_grad");
    NodeList order;
    if (topological_order(root, &order, 1) != MICROCRAD_OK)
        return mc_error(MICROCRAD_ERR_NOMEM, "value_zero_grad: out of memory walking the graph");
    for (size_t i = 0; i < order.len; i++) {
        order.items[i]->grad = 0.0;
        order.items[i]->flags &= (uint16_t)~MC_FLAG_VISITED;
    }
    mc_free(order.items);
    return MICROCRAD_OK;
}
