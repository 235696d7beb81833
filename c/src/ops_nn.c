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
    Value *const *slot = v->prev; /* b, w0, x0, w1, x1, ... */
    Value *const *end = slot + 1 + 2 * (size_t)neuron_terms(v);
    double acc = slot[0]->data;
    for (slot++; slot != end; slot += 2) {
        double product = slot[0]->data * slot[1]->data;
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
    Value *const *first = v->prev + 1; /* w0's slot */
    Value *const *slot = first + 2 * (size_t)neuron_terms(v);
    /* Both data are read before either grad is written: a node in both slots of a
     * term (w[i] == x[i]) gets x*g and then w*g from the same data either way, since
     * grad writes never change data. Walking down pointer by pointer keeps the loop to
     * a few instructions a term. */
    while (slot != first) {
        slot -= 2;
        Value *w = slot[0], *x = slot[1];
        double wd = w->data, xd = x->data;
        if (slot == first)
            v->prev[0]->grad += g; /* the bias, just before the first term */
        w->grad += xd * g;
        x->grad += wd * g;
    }
    if (neuron_terms(v) == 0) /* no terms: only the bias */
        v->prev[0]->grad += g;
}

/* b, then a (w, x) pair per term: an odd number of operands. */
static int neuron_count_ok(int32_t n) { return n % 2 == 1; }
const OpRule mc_rule_neuron = {.name = "neuron", .constructor = "value_neuron", .arity = -1,
                               .count_ok = neuron_count_ok, .forward = neuron_forward,
                               .backward = neuron_backward};

/* neuron_forward for several nodes at once: each sum is still b, then + w0*x0, then
 * + w1*x1, ..., in its own variable; only the chains of additions of different nodes,
 * which do not wait for each other, are interleaved. */
void mc_neuron_forward_group(Value *const *nodes, size_t k)
{
    Value *const *slots[MC_NEURON_GROUP];
    double acc[MC_NEURON_GROUP];
    for (size_t j = 0; j < k; j++) {
        slots[j] = nodes[j]->prev;
        acc[j] = slots[j][0]->data;
    }
    size_t end = 1 + 2 * (size_t)neuron_terms(nodes[0]); /* the same for all k */
    if (k == MC_NEURON_GROUP) {
        /* The common case spelled out, so that the four sums live in registers.
         * Measured against the general loop below alone (release build, tape forward,
         * 6 interleaved runs of 50 forwards each, least): MLP(2, [16, 16, 1]) over 100
         * points 0.089 vs 0.092 ms, MLP(784, [50, 50, 1]) over 20 inputs 2.73 vs
         * 2.75 ms; callgrind: 0.65 M vs 0.70 M and 5.44 M vs 6.19 M instructions. A
         * few per cent, on the path every replayed network takes: it stays. */
        Value *const *s0 = slots[0], *const *s1 = slots[1], *const *s2 = slots[2],
                     *const *s3 = slots[3];
        double a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
        for (size_t i = 1; i < end; i += 2) {
            double p0 = s0[i]->data * s0[i + 1]->data;
            double p1 = s1[i]->data * s1[i + 1]->data;
            double p2 = s2[i]->data * s2[i + 1]->data;
            double p3 = s3[i]->data * s3[i + 1]->data;
            a0 = a0 + p0;
            a1 = a1 + p1;
            a2 = a2 + p2;
            a3 = a3 + p3;
        }
        acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
    } else {
        for (size_t i = 1; i < end; i += 2)
            for (size_t j = 0; j < k; j++)
                acc[j] = acc[j] + slots[j][i]->data * slots[j][i + 1]->data;
    }
    for (size_t j = 0; j < k; j++)
        nodes[j]->data = acc[j];
}

/* Small neurons gather their operands on the stack; bigger ones in a temporary array. */
enum { STACK_OPERANDS = 65 };

/* The arguments of a neuron node, checked before anything is reserved or allocated;
 * errors name `fn`. */
static int check_neuron_args(const char *fn, int32_t n, Value *const *w, Value *const *x,
                             Value *b)
{
    if (n < 0)
        return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: n must be >= 0, got %ld", fn, (long)n);
    if (n > 0 && (!w || !x))
        return mc_error(MICROCRAD_ERR_NULL, "%s: %s is NULL but n is %ld", fn, !w ? "w" : "x",
                        (long)n);
    int status = mc_check(b, MC_KIND_VALUE, fn, 4);
    for (int32_t i = 0; i < n && status == MICROCRAD_OK; i++) {
        status = mc_check_slot(w[i], fn, 2, "w", i);
        if (status == MICROCRAD_OK)
            status = mc_check_slot(x[i], fn, 3, "x", i);
    }
    return status;
}

/* value_neuron's work over checked arguments, for it and value_neuron_activation,
 * which name themselves in `fn`. */
static Value *neuron_node(const char *fn, int32_t n, Value *const *w, Value *const *x, Value *b)
{
    uint32_t count = 2u * (uint32_t)n + 1u; /* at most 2^32 - 1: n_prevs holds it */
#if SIZE_MAX / 8 < UINT32_MAX
    /* Only a 32-bit size_t can fail to count the bytes of the operand array. */
    if (count > SIZE_MAX / sizeof(Value *)) {
        mc_error(MICROCRAD_ERR_NOMEM, "%s: %ld inputs are too many", fn, (long)n);
        return NULL;
    }
#endif
    Value *on_stack[STACK_OPERANDS];
    Value **operands = on_stack;
    if (count > STACK_OPERANDS) {
        operands = mc_alloc(count * sizeof *operands);
        if (!operands) {
            mc_error(MICROCRAD_ERR_NOMEM, "%s: out of memory", fn);
            return NULL;
        }
    }
    operands[0] = b;
    for (size_t i = 0; i < (size_t)n; i++) {
        operands[2 * i + 1] = w[i];
        operands[2 * i + 2] = x[i];
    }
    Value *v = mc_node_make(fn, MICROCRAD_OP_NEURON, 0.0, 0.0, count, operands);
    if (operands != on_stack)
        mc_free(operands);
    return v;
}

Value *value_neuron(int32_t n, Value *const *w, Value *const *x, Value *b)
{
    static const char fn[] = "value_neuron";
    /* Arguments first: a call that fails on them takes no room in a scope. */
    if (check_neuron_args(fn, n, w, x, b) != MICROCRAD_OK ||
        mc_results_reserve(1, fn) != MICROCRAD_OK)
        return NULL;
    return mc_result(neuron_node(fn, n, w, x, b));
}

int mc_check_activation(microcrad_activation act, const char *fn, int arg)
{
    if ((int)act >= MICROCRAD_ACT_LINEAR && (int)act <= MICROCRAD_ACT_SIGMOID)
        return MICROCRAD_OK;
    return mc_error(MICROCRAD_ERR_ARGUMENT, "%s: argument %d (%d) is not a microcrad_activation",
                    fn, arg, (int)act);
}

/* The op of each activation but LINEAR, which adds no node. */
static microcrad_op activation_op(microcrad_activation act)
{
    switch (act) {
    case MICROCRAD_ACT_RELU: return MICROCRAD_OP_RELU;
    case MICROCRAD_ACT_TANH: return MICROCRAD_OP_TANH;
    case MICROCRAD_ACT_SIGMOID: return MICROCRAD_OP_SIGMOID;
    case MICROCRAD_ACT_LINEAR: break;
    }
    return MICROCRAD_OP_LEAF; /* not reached: callers check act first */
}

/* The neuron node over checked arguments and its activation node; only the activation
 * node holds the neuron node, as if the caller had released its own reference at once. */
static Value *neuron_and_activation(const char *fn, int32_t n, Value *const *w,
                                    Value *const *x, Value *b, microcrad_activation act)
{
    Value *z = neuron_node(fn, n, w, x, b);
    if (!z || act == MICROCRAD_ACT_LINEAR)
        return z;
    Value *y = mc_node_make(fn, activation_op(act), 0.0, 0.0, 1, &z);
    if (!y) {
        value_release(z); /* ours alone: frees it, and records no error over ours */
        return NULL;
    }
    /* Only the activation node holds the neuron node, as if the caller had released
     * its own reference at once. */
    mc_release_fresh(z);
    return y;
}

Value *mc_neuron_make(const char *fn, int32_t n, Value *const *w, Value *const *x, Value *b,
                      microcrad_activation act)
{
    if (check_neuron_args(fn, n, w, x, b) != MICROCRAD_OK)
        return NULL;
    return neuron_and_activation(fn, n, w, x, b, act);
}

Value *value_neuron_activation(int32_t n, Value *const *w, Value *const *x, Value *b,
                               microcrad_activation act)
{
    static const char fn[] = "value_neuron_activation";
    /* Arguments first: a call that fails on them takes no room in a scope. */
    if (mc_check_activation(act, fn, 5) != MICROCRAD_OK ||
        check_neuron_args(fn, n, w, x, b) != MICROCRAD_OK ||
        mc_results_reserve(1, fn) != MICROCRAD_OK)
        return NULL;
    return mc_result(neuron_and_activation(fn, n, w, x, b, act));
}
