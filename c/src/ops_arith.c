/*
 * ops_arith.c - add, sub, mul, div, neg, abs and the n-ary sum: each op's forward rule,
 * backward rule and public constructor, side by side.
 */
#include "internal.h"

#include <math.h>


#define A(v) ((v)->prev[0])
#define B(v) ((v)->prev[1])

/* a + b */
static double add_forward(const Value *v) { return A(v)->data + B(v)->data; }
static void add_backward(Value *v)
{
    A(v)->grad += v->grad;
    B(v)->grad += v->grad;
}
const OpRule mc_rule_add = {.name = "+", .constructor = "value_add", .arity = 2,
                            .forward = add_forward, .backward = add_backward};
Value *value_add(Value *a, Value *b) { return mc_binary_new("value_add", MICROCRAD_OP_ADD, a, b); }

/* a - b */
static double sub_forward(const Value *v) { return A(v)->data - B(v)->data; }
static void sub_backward(Value *v)
{
    A(v)->grad += v->grad;
    B(v)->grad -= v->grad;
}
const OpRule mc_rule_sub = {.name = "-", .constructor = "value_sub", .arity = 2,
                            .forward = sub_forward, .backward = sub_backward};
Value *value_sub(Value *a, Value *b) { return mc_binary_new("value_sub", MICROCRAD_OP_SUB, a, b); }

/* a * b */
static double mul_forward(const Value *v) { return A(v)->data * B(v)->data; }
static void mul_backward(Value *v)
{
    A(v)->grad += B(v)->data * v->grad;
    B(v)->grad += A(v)->data * v->grad;
}
const OpRule mc_rule_mul = {.name = "*", .constructor = "value_mul", .arity = 2,
                            .forward = mul_forward, .backward = mul_backward};
Value *value_mul(Value *a, Value *b) { return mc_binary_new("value_mul", MICROCRAD_OP_MUL, a, b); }

/* a / b: da = g / b, db = -g * ((a / b) / b), PyTorch's formula operation by
 * operation. Dividing twice instead of by b * b keeps db finite and exact where b * b
 * would overflow or underflow (a = b = 1e200 gives -1e-200, not 0). The quotient is
 * recomputed from the operands, as PyTorch does, rather than read from the node. */
static double div_forward(const Value *v) { return A(v)->data / B(v)->data; }
static void div_backward(Value *v)
{
    double a = A(v)->data, b = B(v)->data, g = v->grad;
    A(v)->grad += g / b;
    B(v)->grad += -g * ((a / b) / b);
}
const OpRule mc_rule_div = {.name = "/", .constructor = "value_div", .arity = 2,
                            .forward = div_forward, .backward = div_backward};
Value *value_div(Value *a, Value *b) { return mc_binary_new("value_div", MICROCRAD_OP_DIV, a, b); }

/* -a */
static double neg_forward(const Value *v) { return -A(v)->data; }
static void neg_backward(Value *v) { A(v)->grad -= v->grad; }
const OpRule mc_rule_neg = {.name = "neg", .constructor = "value_neg", .arity = 1,
                            .forward = neg_forward, .backward = neg_backward};
Value *value_neg(Value *a) { return mc_node_new("value_neg", MICROCRAD_OP_NEG, 0.0, 0.0, 1, &a); }

/* |a|; d|a| = sign(a), taken as 0 at 0 and at NaN, as PyTorch's sign: g times it,
 * so an inf or NaN g still gives NaN at 0. */
static double abs_forward(const Value *v) { return fabs(A(v)->data); }
static void abs_backward(Value *v)
{
    double a = A(v)->data;
    A(v)->grad += v->grad * (double)((a > 0.0) - (a < 0.0));
}
const OpRule mc_rule_abs = {.name = "abs", .constructor = "value_abs", .arity = 1,
                            .forward = abs_forward, .backward = abs_backward};
Value *value_abs(Value *a) { return mc_node_new("value_abs", MICROCRAD_OP_ABS, 0.0, 0.0, 1, &a); }

/* a0 + a1 + ... + an-1, left to right as Python's sum() adds (bar its leading 0). */
static double sum_forward(const Value *v)
{
    if (v->n_prevs == 0)
        return 0.0;
    double total = v->prev[0]->data;
    for (uint32_t i = 1; i < v->n_prevs; i++)
        total += v->prev[i]->data;
    return total;
}
static void sum_backward(Value *v)
{
    for (uint32_t i = 0; i < v->n_prevs; i++)
        v->prev[i]->grad += v->grad;
}
const OpRule mc_rule_sum = {.name = "sum", .constructor = "value_sum", .arity = -1,
                            .forward = sum_forward, .backward = sum_backward};
Value *value_sum(int32_t n, Value *const *terms)
{
    if (n < 0) {
        mc_error(MICROCRAD_ERR_ARGUMENT, "value_sum: n must be >= 0, got %ld", (long)n);
        return NULL;
    }
    if (n > 0 && !terms) {
        mc_error(MICROCRAD_ERR_NULL, "value_sum: terms is NULL but n is %ld", (long)n);
        return NULL;
    }
    return mc_node_new("value_sum", MICROCRAD_OP_SUM, 0.0, 0.0, (uint32_t)n, terms);
}

/* The one-call forms with a number operand (see mc_binary_scalar). */
Value *value_add_scalar(Value *a, double c)
{
    return mc_binary_scalar("value_add_scalar", MICROCRAD_OP_ADD, a, c, 0);
}
Value *value_sub_scalar(Value *a, double c)
{
    return mc_binary_scalar("value_sub_scalar", MICROCRAD_OP_SUB, a, c, 0);
}
Value *value_mul_scalar(Value *a, double c)
{
    return mc_binary_scalar("value_mul_scalar", MICROCRAD_OP_MUL, a, c, 0);
}
Value *value_div_scalar(Value *a, double c)
{
    return mc_binary_scalar("value_div_scalar", MICROCRAD_OP_DIV, a, c, 0);
}
Value *value_scalar_add(double c, Value *a)
{
    return mc_binary_scalar("value_scalar_add", MICROCRAD_OP_ADD, a, c, 1);
}
Value *value_scalar_sub(double c, Value *a)
{
    return mc_binary_scalar("value_scalar_sub", MICROCRAD_OP_SUB, a, c, 1);
}
Value *value_scalar_mul(double c, Value *a)
{
    return mc_binary_scalar("value_scalar_mul", MICROCRAD_OP_MUL, a, c, 1);
}
Value *value_scalar_div(double c, Value *a)
{
    return mc_binary_scalar("value_scalar_div", MICROCRAD_OP_DIV, a, c, 1);
}
