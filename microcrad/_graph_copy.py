"""Deep copies of graphs, for ``Value.__deepcopy__``: every node below a root rebuilt
with the same op, parameter, data, grad, label and op text, over copies of its
operands.

Nodes shared in the original are shared in the copy, also across all the objects of
one ``copy.deepcopy`` call (the node-to-copy map lives in the deepcopy memo): copying
a model gives parameters that can be trained without touching the original's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from microcrad import _lib

if TYPE_CHECKING:
    from microcrad.engine import Value

_c = _lib.c

# Key under which the node-to-copy map is kept in the deepcopy memo. The memo is keyed
# by id(); this object lives as long as the module, so its id is never reused.
_MEMO_KEY = object()


def copy_node(original: int, copies: list[Value]) -> int:
    """A new node like ``original`` (same op, param, data and grad) over the copies of
    its operands; the caller owns its reference."""
    from microcrad.engine import Value  # here: the engine imports this module

    pinned = _lib.pin(copies, Value)
    operands = pinned.nodes
    op = _lib.op_of(original)
    if _lib.has_python_backward(original):
        raise TypeError(
            "cannot deep-copy a custom op whose _backward is a Python function: the "
            "function works on the original nodes, not on their copies"
        )
    data = _lib.check_number(_c.value_data(original), original)
    grad = _lib.check_number(_c.value_grad(original), original)
    if op in _lib.BINARY_CONSTRUCTORS:
        node = _lib.node_or_raise(_lib.BINARY_CONSTRUCTORS[op](*operands), *operands)
    elif op in _lib.UNARY_CONSTRUCTORS:
        node = _lib.node_or_raise(_lib.UNARY_CONSTRUCTORS[op](*operands), *operands)
    elif op == _lib.OP_POW_CONST:
        exponent = _lib.param_of(original)
        node = _lib.node_or_raise(_c.value_pow_const(operands[0], exponent), *operands)
    elif op == _lib.OP_SUM:
        node = _lib.sum_of(pinned)
    elif op == _lib.OP_NEURON:  # operands: bias, w0, x0, w1, x1, ...
        weights, inputs = _lib.pin(copies[1::2], Value), _lib.pin(copies[2::2], Value)
        node = _lib.neuron(weights, inputs, _lib.pin(copies[:1], Value))
    elif op in (_lib.OP_LEAF, _lib.OP_CUSTOM):
        node = _lib.create(data, pinned)
    else:
        raise TypeError(f"cannot deep-copy a node of op {_lib.op_name(op)!r}")
    try:
        # The data may have been overwritten after the forward computation; keep it as is.
        _lib.check_status(_c.value_set_data(node, data))
        _lib.check_status(_c.value_set_grad(node, grad))
        label, op_text = _lib.label_of(original), _lib.op_text_of(original)
        if label:
            _lib.set_label(node, label)
        if op_text is not None:
            _lib.set_op_text(node, op_text)
    except BaseException:
        _c.value_release(node)
        raise
    return node


def copy_graph(root: int, memo: dict[int, Any], wrap: Callable[[int], Value]) -> Value:
    """The copy of ``root`` and of the whole graph below it, reusing the copies already
    in ``memo`` (a ``copy.deepcopy`` memo); ``wrap`` makes a Value of a new node."""
    copies: dict[int, Value] = memo.setdefault(id(_MEMO_KEY), {})
    pending = [root]
    while pending:  # post-order without recursion: graphs may be very deep
        node = pending[-1]
        if node in copies:
            pending.pop()
            continue
        operands = _lib.prev(node)
        missing = [operand for operand in operands if operand not in copies]
        if missing:
            pending.extend(missing)
            continue
        pending.pop()
        copies[node] = wrap(copy_node(node, [copies[operand] for operand in operands]))
    return copies[root]
