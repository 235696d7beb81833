/*
 * ops_pow.c - powers, exp and log: each op's forward rule, backward rule and public
 * constructor, side by side. Edge cases follow PyTorch (see microcrad.h).
 */
#include "internal.h"

#include <math.h>

#define A(v) ((v)->prev[0])
#define B(v) ((v)->prev[1])

/*
 * The zero masks follow PyTorch's formulas exactly, including where they sit relative
 * to the incoming gradient g, which matters when g is inf or NaN:
 *  - the base: where(p == 0, 0, g * (p * a^(p-1))): the mask replaces the product, so
 *    a zero exponent passes 0 on whatever g is;
 *  - the exponent: g * where(a == 0 && p >= 0, 0, a^p * log(a)): the mask is inside
 *    the product, so an inf or NaN g still gives NaN (g * 0).
 */
static double base_gradient(double g, double a, double p)
{
    return p == 0.0 ? 0.0 : g * (p * pow(a, p - 1.0));
}

/* base ** exponent, both Values. */
static double pow_forward(const Value *v) { return pow(A(v)->data, B(v)->data); }
static void pow_backward(Value *v)
{
    double a = A(v)->data, p = B(v)->data, g = v->grad;
    A(v)->grad += base_gradient(g, a, p);
    /* d(a^p)/dp = a^p * log(a), masked where a == 0 and p >= 0: a^p is flat (or 1)
     * there while log(0) would give 0 * -inf = nan. */
    B(v)->grad += g * ((a == 0.0 && p >= 0.0) ? 0.0 : v->data * log(a));
}
const OpRule mc_rule_pow = {.name = "**", .constructor = "value_pow", .arity = 2,
                            .forward = pow_forward, .backward = pow_backward};
Value *value_pow(Value *base, Value *exponent)
{
    return mc_binary_new("value_pow", MICROCRAD_OP_POW, base, exponent);
}

/* c ** a for a number c: the one-call form (see mc_binary_scalar). */
Value *value_scalar_pow(double c, Value *a)
{
    return mc_binary_scalar("value_scalar_pow", MICROCRAD_OP_POW, a, c, 1);
}

/* base ** param, a constant exponent. */
static double pow_const_forward(const Value *v) { return pow(A(v)->data, v->param); }
static void pow_const_backward(Value *v)
{
    A(v)->grad += base_gradient(v->grad, A(v)->data, v->param);
}
const OpRule mc_rule_pow_const = {.name = "**", .constructor = "value_pow_const", .arity = 1,
                                  .takes_param = 1, .forward = pow_const_forward,
                                  .backward = pow_const_backward};
Value *value_pow_const(Value *base, double exponent)
{
    return mc_node_new("value_pow_const", MICROCRAD_OP_POW_CONST, 0.0, exponent, 1, &base);
}

/* e ** a; the derivative is the result itself. */
static double exp_forward(const Value *v) { return exp(A(v)->data); }
static void exp_backward(Value *v) { A(v)->grad += v->grad * v->data; }
const OpRule mc_rule_exp = {.name = "exp", .constructor = "value_exp", .arity = 1,
                            .forward = exp_forward, .backward = exp_backward};
Value *value_exp(Value *a) { return mc_node_new("value_exp", MICROCRAD_OP_EXP, 0.0, 0.0, 1, &a); }

/* log(a): -inf at 0, nan below; the gradient g / a is inf at 0, as in PyTorch. */
static double log_forward(const Value *v) { return log(A(v)->data); }
static void log_backward(Value *v) { A(v)->grad += v->grad / A(v)->data; }
const OpRule mc_rule_log = {.name = "log", .constructor = "value_log", .arity = 1,
                            .forward = log_forward, .backward = log_backward};
Value *value_log(Value *a) { return mc_node_new("value_log", MICROCRAD_OP_LOG, 0.0, 0.0, 1, &a); }
