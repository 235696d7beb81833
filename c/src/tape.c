/*
 * tape.c - replay: a graph's topological order recorded once, then re-run forward and
 * backward as often as needed with no allocation and no graph walk.
 */
#include "internal.h"

#include <math.h>

/* Canary of a live tape ("tape") and of a freed one (every bit flipped). */
#define TAPE_LIVE 0x74617065u
#define TAPE_DEAD (~TAPE_LIVE & 0xFFFFFFFFu)

struct microcrad_tape {
    uint32_t magic;
    Value *root;   /* one reference: keeps the whole graph alive */
    Value **order; /* every node, operands before results, the root last */
    size_t len;
};

static int check_tape(const microcrad_tape *tape, const char *fn)
{
    if (!tape)
        return mc_error(MICROCRAD_ERR_NULL, "%s: tape is NULL", fn);
    if (tape->magic == TAPE_LIVE)
        return MICROCRAD_OK;
    if (tape->magic == TAPE_DEAD)
        return mc_error(MICROCRAD_ERR_RELEASED, "%s: tape was already freed", fn);
    return mc_error(MICROCRAD_ERR_FOREIGN, "%s: not a microcrad tape (canary 0x%08x)", fn,
                    (unsigned)tape->magic);
}

microcrad_tape *microcrad_tape_create(Value *root)
{
    if (mc_check_value(root, "microcrad_tape_create", 1) != MICROCRAD_OK)
        return NULL;
    microcrad_tape *tape = mc_alloc(sizeof *tape);
    if (!tape) {
        mc_error(MICROCRAD_ERR_NOMEM, "microcrad_tape_create: out of memory");
        return NULL;
    }
    if (mc_graph_order(root, &tape->order, &tape->len) != MICROCRAD_OK) {
        mc_free(tape);
        mc_error(MICROCRAD_ERR_NOMEM, "microcrad_tape_create: out of memory ordering the graph");
        return NULL;
    }
    int status = value_retain(root);
    if (status != MICROCRAD_OK) {
        mc_free(tape->order);
        mc_free(tape);
        return NULL;
    }
    tape->root = root;
    tape->magic = TAPE_LIVE;
    return tape;
}

int microcrad_tape_forward(microcrad_tape *tape)
{
    int status = check_tape(tape, "microcrad_tape_forward");
    if (status != MICROCRAD_OK)
        return status;
    for (size_t i = 0; i < tape->len; i++) {
        Value *node = tape->order[i];
        const OpRule *rule = mc_op_rule(node->op);
        if (rule->forward)
            node->data = rule->forward(node);
    }
    return MICROCRAD_OK;
}

int microcrad_tape_backward(microcrad_tape *tape)
{
    int status = check_tape(tape, "microcrad_tape_backward");
    if (status != MICROCRAD_OK)
        return status;
    mc_backpropagate(tape->order, tape->len);
    return MICROCRAD_OK;
}

int microcrad_tape_zero_grad(microcrad_tape *tape)
{
    int status = check_tape(tape, "microcrad_tape_zero_grad");
    if (status != MICROCRAD_OK)
        return status;
    for (size_t i = 0; i < tape->len; i++)
        tape->order[i]->grad = 0.0;
    return MICROCRAD_OK;
}

int64_t microcrad_tape_size(const microcrad_tape *tape)
{
    int status = check_tape(tape, "microcrad_tape_size");
    return status == MICROCRAD_OK ? (int64_t)tape->len : status;
}

double microcrad_tape_data(const microcrad_tape *tape)
{
    return check_tape(tape, "microcrad_tape_data") == MICROCRAD_OK ? tape->root->data : NAN;
}

void microcrad_tape_free(microcrad_tape *tape)
{
    if (!tape || check_tape(tape, "microcrad_tape_free") != MICROCRAD_OK)
        return;
    tape->magic = TAPE_DEAD;
    value_release(tape->root);
    mc_free(tape->order);
    mc_free(tape);
}
