/*
 * ops_nn.c - the fused neuron op, b + w0*x0 + w1*x1 + ...: its forward rule, backward
 * rule and public constructor, side by side.
 *
 * One node stands for the 2n nodes micrograd builds for a neuron (n products and n
 * sums), with the same roundings in the same order, so the result is bit-identical.
 * Operands are stored as b, w0, x0, w1, x1, ...: operand 2i+1 is w[i], 2i+2 is x[i].
 */
#include "internal.h"

#include <stdint.h>
#include <stdio.h>

#define BIAS(v) ((v)->prev[0])
#define W(v, i) ((v)->prev[2 * (i) + 1])
#define X(v, i) ((v)->prev[2 * (i) + 2])

/* The number of (w, x) pairs of a neuron node. */
static uint32_t neuron_terms(const Value *v) { return (v->n_prevs - 1) / 2; }

/* acc = b; acc = acc + w[i]*x[i] for each i: the product is rounded on its own (the
 * library is built without FMA contraction), then added, exactly as micrograd's
 * sum((wi*xi for ...), b) computes b + p0, then (b + p0) + p1, and so on. */
static double neuron_forward(const Value *v)
{
    double acc = BIAS(v)->data;
    for (uint32_t i = 0; i < neuron_terms(v); i++) {
        double product = W(v, i)->data * X(v, i)->data;
        acc = acc + product;
    }
    return acc;
}

/*
 * d/db = 1, d/dw[i] = x[i], d/dx[i] = w[i]. The contributions are added in the order
 * in which micrograd's unfused graph applies them: the last term first, and the bias
 * just before the first term (b is an operand of the first sum node, which backward
 * reaches after every later term). So when one Value fills several slots, its
 * gradient is summed in the same order and agrees bit for bit too.
 */
static void neuron_backward(Value *v)
{
    double g = v->grad;
    uint32_t n = neuron_terms(v);
    for (uint32_t i = n; i-- > 0;) {
        if (i == 0)
            BIAS(v)->grad += g;
        W(v, i)->grad += X(v, i)->data * g;
        X(v, i)->grad += W(v, i)->data * g;
    }
    if (n == 0)
        BIAS(v)->grad += g;
}

const OpRule mc_rule_neuron = {"neuron", neuron_forward, neuron_backward};

/* Small neurons gather their operands on the stack; bigger ones in a temporary array. */
enum { STACK_OPERANDS = 65 };

/* Checks w[i] or x[i] (argument `arg`, array `name`), naming the slot in the message. */
static int check_slot(const Value *v, int arg, const char *name, int32_t i)
{
    if (v && v->magic == MICROCRAD_MAGIC_LIVE)
        return MICROCRAD_OK;
    char where[64];
    snprintf(where, sizeof where, "value_neuron (%s[%ld])", name, (long)i);
    return mc_check_value(v, where, arg);
}

Value *value_neuron(int32_t n, Value *const *w, Value *const *x, Value *b)
{
    if (n < 0) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "value_neuron: n must be >= 0, got %ld", (long)n);
        return NULL;
    }
    if (n > 0 && (!w || !x)) {
        mc_error(MICROCRAD_ERR_NULL, "value_neuron: %s is NULL but n is %ld", !w ? "w" : "x",
                 (long)n);
        return NULL;
    }
    if (mc_check_value(b, "value_neuron", 4) != MICROCRAD_OK)
        return NULL;
    for (int32_t i = 0; i < n; i++)
        if (check_slot(w[i], 2, "w", i) != MICROCRAD_OK ||
            check_slot(x[i], 3, "x", i) != MICROCRAD_OK)
            return NULL;

    uint32_t count = 2u * (uint32_t)n + 1u; /* at most 2^32 - 1: n_prevs holds it */
#if SIZE_MAX / 8 < UINT32_MAX
    /* Only a 32-bit size_t can fail to count the bytes of the operand array. */
    if (count > SIZE_MAX / sizeof(Value *)) {
        mc_error(MICROCRAD_ERR_NOMEM, "value_neuron: %ld inputs are too many", (long)n);
        return NULL;
    }
#endif
    Value *on_stack[STACK_OPERANDS];
    Value **operands = on_stack;
    if (count > STACK_OPERANDS) {
        operands = mc_alloc(count * sizeof *operands);
        if (!operands) {
            mc_error(MICROCRAD_ERR_NOMEM, "value_neuron: out of memory");
            return NULL;
        }
    }
    operands[0] = b;
    for (size_t i = 0; i < (size_t)n; i++) {
        operands[2 * i + 1] = w[i];
        operands[2 * i + 2] = x[i];
    }
    Value *v = mc_node_new("value_neuron", MICROCRAD_OP_NEURON, 0.0, 0.0, count, operands);
    if (operands != on_stack)
        mc_free(operands);
    return v;
}
