"""Making and inspecting nodes through the calls that need more than plain arguments:
arrays of operands, checked results, op codes turned into names."""

from __future__ import annotations

from microcrad._lib._arrays import NodeArray, PinnedNodes
from microcrad._lib._codes import (
    ACT_LINEAR,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    ERR_ARGUMENT,
    OP_ADD,
    OP_DIV,
    OP_EXP,
    OP_LEAF,
    OP_LOG,
    OP_MUL,
    OP_NEG,
    OP_POW,
    OP_RELU,
    OP_SIGMOID,
    OP_SUB,
    OP_TANH,
)
from microcrad._lib._errors import (
    check_number,
    check_status,
    exception_for_status,
    last_error_message,
    last_failure,
    node_or_raise,
)
from microcrad._lib._loading import c

# ---------------------------------------------------------------------------------
# Making nodes
# ---------------------------------------------------------------------------------


def leaf(data: float) -> int:
    """A new leaf node holding ``data``; the caller owns its reference."""
    return node_or_raise(c.value_create_leaf(data))


def release(node: int) -> None:
    """Gives back one reference to ``node``."""
    check_status(c.value_release(node))


def create(data: float, operands: PinnedNodes) -> int:
    """A new node holding ``data`` over ``operands`` (a leaf when there are none)."""
    if not isinstance(operands, PinnedNodes):
        # Bare addresses are what let operands be freed before C read them.
        raise TypeError("create takes the operands as pin(values, Value) gives them")
    return node_or_raise(c.value_create(data, operands.count, operands.array))


def sum_of(terms: PinnedNodes) -> int:
    """A new node ``terms[0] + terms[1] + ...``, one n-ary sum."""
    return node_or_raise(c.value_sum(terms.count, terms.array))


def neuron(weights: PinnedNodes, inputs: PinnedNodes, bias: PinnedNodes) -> int:
    """A new node ``bias + weights[0] * inputs[0] + ...``, one neuron pre-activation
    (``bias`` holds one node)."""
    if weights.count != inputs.count:
        raise ValueError(f"{weights.count} weights but {inputs.count} inputs")
    if bias.count != 1:
        raise ValueError(f"a neuron has one bias, got {bias.count}")
    node = c.value_neuron(weights.count, weights.array, inputs.array, bias.nodes[0])
    return node_or_raise(node)


# The microcrad_activation that applies each op (OP_LEAF: none).
_ACTIVATION_OF_OP = {OP_LEAF: ACT_LINEAR, OP_RELU: ACT_RELU, OP_TANH: ACT_TANH, OP_SIGMOID: ACT_SIGMOID}


def neuron_forward(params: NodeArray, inputs: PinnedNodes, activation: int) -> int:
    """A new node ``act(b + w[0] * x[0] + ...)``: one value_neuron node, then one
    activation node.

    ``params`` holds ``w[0], ..., w[n-1], b`` (micrograd's parameter order), ``inputs``
    the n nodes ``x``, and
    ``activation`` is ``OP_RELU``, ``OP_TANH``, ``OP_SIGMOID``, or ``OP_LEAF`` for none.
    """
    nodes = params.nodes
    n = len(nodes) - 1
    # C reads exactly n inputs: a shorter array would be read past its end.
    if inputs.count != n:
        raise ValueError(f"the neuron has {n} weights but got {inputs.count} inputs")
    # Both nodes in one call (value_neuron_activation): a call costs more than the C
    # work of a small neuron.
    node: int | None = c.value_neuron_activation(
        n, params.array, inputs.array, nodes[n], _ACTIVATION_OF_OP[activation]
    )
    if node is None:
        raise last_failure()
    return node


# The constructors of the ops that take one or two operands and no parameter, by op
# code, for code that rebuilds a node from its op (see Value.__deepcopy__).
UNARY_CONSTRUCTORS = {
    OP_NEG: c.value_neg,
    OP_EXP: c.value_exp,
    OP_LOG: c.value_log,
    OP_RELU: c.value_relu,
    OP_TANH: c.value_tanh,
    OP_SIGMOID: c.value_sigmoid,
}
BINARY_CONSTRUCTORS = {
    OP_ADD: c.value_add,
    OP_SUB: c.value_sub,
    OP_MUL: c.value_mul,
    OP_DIV: c.value_div,
    OP_POW: c.value_pow,
}

# ---------------------------------------------------------------------------------
# Inspecting nodes
# ---------------------------------------------------------------------------------


def prev(node: int) -> list[int]:
    """The operands of ``node``, as borrowed pointers (in operand order)."""
    count = c.value_n_prevs(node)
    check_status(count)
    operands = []
    for index in range(count):
        operand = c.value_prev(node, index)
        if operand is None:
            raise exception_for_status(ERR_ARGUMENT, last_error_message())
        operands.append(operand)
    return operands


def op_name(op: int) -> str:
    """The library's symbol for an op code ("+", "ReLU", "" for a leaf, ...)."""
    name: bytes = c.microcrad_op_name(op)
    return name.decode("ascii")


def op_of(node: int) -> int:
    """The op code of ``node``."""
    op: int = c.value_op(node)
    check_status(op)
    return op


def param_of(node: int) -> float:
    """The constant parameter of ``node`` (the exponent of a constant power)."""
    return check_number(c.value_param(node), node)
