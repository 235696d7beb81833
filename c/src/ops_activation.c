/*
 * ops_activation.c - relu, tanh and sigmoid: each op's forward rule, backward rule and
 * public constructor, side by side.
 */
#include "internal.h"

#include <math.h>

#define A(v) ((v)->prev[0])

/* max(a, 0), written as micrograd's `0 if a < 0 else a`: NaN and -0.0 pass through
 * unchanged, as in micrograd and PyTorch; the slope at 0 is 0, as in micrograd. */
static double relu_forward(const Value *v)
{
    double a = A(v)->data;
    return a < 0.0 ? 0.0 : a;
}
/* Written as "not <= 0" so that a NaN result passes the gradient on, as in PyTorch. */
static void relu_backward(Value *v)
{
    if (!(v->data <= 0.0))
        A(v)->grad += v->grad;
}
const OpRule mc_rule_relu = {.name = "ReLU", .constructor = "value_relu", .arity = 1,
                             .forward = relu_forward, .backward = relu_backward};
Value *value_relu(Value *a) { return mc_node_new("value_relu", MICROCRAD_OP_RELU, 0.0, 0.0, 1, &a); }

/* tanh(a); d tanh = 1 - tanh^2, computed from the result. */
static double tanh_forward(const Value *v) { return tanh(A(v)->data); }
static void tanh_backward(Value *v) { A(v)->grad += v->grad * (1.0 - v->data * v->data); }
const OpRule mc_rule_tanh = {.name = "tanh", .constructor = "value_tanh", .arity = 1,
                             .forward = tanh_forward, .backward = tanh_backward};
Value *value_tanh(Value *a) { return mc_node_new("value_tanh", MICROCRAD_OP_TANH, 0.0, 0.0, 1, &a); }

/* 1 / (1 + e^-a), PyTorch's formula: for a below about -709, e^-a overflows to inf and
 * the result is 0 (never NaN). The backward rule is PyTorch's too, (g * (1 - y)) * y,
 * in that order, so that gradients agree bit for bit. */
static double sigmoid_forward(const Value *v) { return 1.0 / (1.0 + exp(-A(v)->data)); }
static void sigmoid_backward(Value *v) { A(v)->grad += (v->grad * (1.0 - v->data)) * v->data; }
const OpRule mc_rule_sigmoid = {.name = "sigmoid", .constructor = "value_sigmoid", .arity = 1,
                                .forward = sigmoid_forward, .backward = sigmoid_backward};
Value *value_sigmoid(Value *a)
{
    return mc_node_new("value_sigmoid", MICROCRAD_OP_SIGMOID, 0.0, 0.0, 1, &a);
}
