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

/*
 * Fills `order` with every node reachable from `root`, each after all its operands
 * (so the root comes last). On success the nodes are still marked visited; the caller
 * unmarks them. On failure (out of memory) every mark is cleared and `order` freed.
 */
static int topological_order(Value *root, NodeList *order)
{
    FrameStack stack = {0};
    *order = (NodeList){0};
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
            operand->flags |= MC_FLAG_VISITED;
            /* A leaf has nothing to visit: place it at once instead of stacking it. */
            int placed = operand->n_prevs == 0 ? list_push(order, operand)
                                               : stack_push(&stack, operand);
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
    int status = topological_order(root, &list);
    if (status != MICROCRAD_OK)
        return status;
    unmark(&list);
    *order = list.items;
    *len = list.len;
    return MICROCRAD_OK;
}

void mc_backpropagate(Value *const *order, size_t len)
{
    /* Interior gradients are recomputed from scratch each time; leaves accumulate. */
    for (size_t i = 0; i < len; i++)
        if (order[i]->n_prevs > 0)
            order[i]->grad = 0.0;
    order[len - 1]->grad += 1.0; /* the root comes last */
    for (size_t i = len; i-- > 0;) {
        Value *node = order[i];
        const OpRule *rule = mc_op_rule(node->op);
        if (rule->backward)
            rule->backward(node);
    }
}

int value_backward(Value *root)
{
    int status = mc_check_value(root, "value_backward", 1);
    if (status != MICROCRAD_OK)
        return status;
    Value **order;
    size_t len;
    if (mc_graph_order(root, &order, &len) != MICROCRAD_OK)
        return mc_error(MICROCRAD_ERR_NOMEM, "value_backward: out of memory ordering the graph");
    mc_backpropagate(order, len);
    mc_free(order);
    return MICROCRAD_OK;
}

int value_zero_grad(Value *root)
{
    int status = mc_check_value(root, "value_zero_grad", 1);
    if (status != MICROCRAD_OK)
        return status;
    Value **order;
    size_t len;
    if (mc_graph_order(root, &order, &len) != MICROCRAD_OK)
        return mc_error(MICROCRAD_ERR_NOMEM, "value_zero_grad: out of memory walking the graph");
    for (size_t i = 0; i < len; i++)
        order[i]->grad = 0.0;
    mc_free(order);
    return MICROCRAD_OK;
}
