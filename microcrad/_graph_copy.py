"""Deep copies of graphs, for ``Value.__deepcopy__``: every node below a root rebuilt
with the same op, parameter, data, grad, label and op text, over copies of its
operands.

Nodes shared in the original are shared in the copy, also across all the objects of
one ``copy.deepcopy`` call (the node-to-copy map lives in the deepcopy memo): copying
a model gives parameters that can be trained without touching the original's.
"""

from __future__ import annotations

from typing import Any, Callable

from microcrad import _lib
from microcrad._shared_handles import H

# Key under which the node-to-copy map is kept in the deepcopy memo. The memo is keyed
# by id(); this object lives as long as the module, so its id is never reused.
_MEMO_KEY = object()


def copy_node(original: int, copies: list[H], handle_type: type[H]) -> int:
    """A new node like ``original`` (same op, param, data and grad) over the copies of
    its operands (handles of type ``handle_type``); the caller owns its reference.

    Any op is rebuilt by value_create_op from its op code, so a new op needs nothing
    here."""
    pinned = _lib.pin(copies, handle_type)
    op = _lib.op_of(original)
    if _lib.has_python_backward(original):
        raise TypeError(
            "cannot deep-copy a custom op whose _backward is a Python function: the "
            "function works on the original nodes, not on their copies"
        )
    data = _lib.data_of(original)
    grad = _lib.grad_of(original)
    # value_create_op's param: the data of a leaf or custom node, else the op's constant.
    param = data if op in (_lib.OP_LEAF, _lib.OP_CUSTOM) else _lib.param_of(original)
    node = _lib.create_op(op, param, pinned)
    try:
        # The data may have been overwritten after the forward computation; keep it as is.
        _lib.set_data_and_grad(node, data, grad)
        label, op_text = _lib.label_of(original), _lib.op_text_of(original)
        if label:
            _lib.set_label(node, label)
        if op_text is not None:
            _lib.set_op_text(node, op_text)
    except BaseException:
        _lib.release(node)
        raise
    return node


def copy_graph(
    root: int, memo: dict[int, Any], wrap: Callable[[int], H], handle_type: type[H]
) -> H:
    """The copy of ``root`` and of the whole graph below it, reusing the copies already
    in ``memo`` (a ``copy.deepcopy`` memo); ``wrap`` makes a handle (of type
    ``handle_type``) of a new node."""
    copies: dict[int, H] = memo.setdefault(id(_MEMO_KEY), {})
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
        copied = copy_node(node, [copies[operand] for operand in operands], handle_type)
        copies[node] = wrap(copied)
    return copies[root]
