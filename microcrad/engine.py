"""``Value``: a scalar that remembers how it was computed, backed by a C graph node.

``Value`` is a drop-in replacement for micrograd's ``micrograd.engine.Value``: the same
operators, the same ``backward()``, the same ``data``, ``grad``, ``_prev`` and ``_op``.
The numbers and the graph live in the C library; a ``Value`` object is a thin handle
that owns exactly one reference to its node, so a graph is freed as soon as the last
``Value`` that reaches it is gone.

Two handles of the same node compare and hash equal. While a handle of a node is
alive, ``_prev`` hands out that same object for the node, so code that keys nodes by
``id()`` (such as micrograd's ``draw_dot``) sees every node once.

Speed. Every operation is one call into the library: ``x * 2`` makes the leaf for 2
and the product in the same call (value_mul_scalar), so the graph still has the
constant as a leaf operand, exactly as micrograd's has. The operators are written
out in full, without helper calls, because in micrograd-style code the Python
overhead of each operation is most of its cost.

``data`` and ``grad`` are read and written in place, through a view of the node's
struct, except in builds for sanitizers and Valgrind (``_lib._node_access`` explains).

The quick library calls keep the GIL (``_lib._signatures`` explains which calls
release it and why that is thread-safe either way).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Callable, NoReturn, Union

from microcrad import _lib
from microcrad._graph_copy import copy_graph
from microcrad._numbers import (
    Scalar,
    as_float,
    check_text,
    float_or_none,
    temporary_leaf,
    unsupported,
)
from microcrad._shared_handles import SharedHandles

__all__ = ["Value"]

# What a Value can be combined with: another Value or any real number.
Operand = Union["Value", Scalar]

_c = _lib.c
_node_or_raise = _lib.node_or_raise
_last_failure = _lib.last_failure
_new_object = object.__new__
_get_data, _set_data, _get_grad, _set_grad = _lib.node_accessors(as_float)

# The library functions of the hot paths, looked up once.
_value_add = _c.value_add
_value_sub = _c.value_sub
_value_mul = _c.value_mul
_value_div = _c.value_div
_value_pow = _c.value_pow
_value_pow_const = _c.value_pow_const
_value_add_scalar = _c.value_add_scalar
_value_sub_scalar = _c.value_sub_scalar
_value_mul_scalar = _c.value_mul_scalar
_value_div_scalar = _c.value_div_scalar
_value_scalar_add = _c.value_scalar_add
_value_scalar_sub = _c.value_scalar_sub
_value_scalar_mul = _c.value_scalar_mul
_value_scalar_div = _c.value_scalar_div
_value_scalar_pow = _c.value_scalar_pow
_value_neg = _c.value_neg
_value_relu = _c.value_relu
_value_tanh = _c.value_tanh
_value_exp = _c.value_exp
_value_log = _c.value_log
_value_sigmoid = _c.value_sigmoid

# The default of Value's _children, recognised by identity to skip checking children.
_NO_CHILDREN: tuple[Value, ...] = ()

# The attributes a Value has only when given (its label, micrograd's _op text), which
# a copy carries over.
_LABEL_AND_OP = ("_label", "_custom_op")

# Constant exponents at least this large are shown as floats ("**1e+300"), not as the
# long string of digits of an int.
_LARGEST_EXACT_INTEGER = 2.0**53


def _adopt(node: int) -> Value:
    """Wraps a node whose reference the caller hands over (a fresh op result).

    Skips ``__init__``, whose validation is for user input, to keep operations cheap.
    """
    value: Value = _new_object(Value)
    value._ptr = node
    return value


# The handle that _prev gives out for each node (see _shared_handles).
_shared_handles = SharedHandles(adopt=_adopt)


def _adopt_shared(node: int) -> Value:
    """Wraps a new node as ``_adopt`` does, and makes the result the handle that
    ``_prev`` gives out for it."""
    value = _adopt(node)
    _shared_handles.offer(value)
    return value


def _number_leaf(number: object) -> Value | None:
    """A new leaf Value holding ``number``, or None when it is not a real number."""
    node = temporary_leaf(number)
    return None if node is None else _adopt(node)


def _unsupported_term(term: object) -> TypeError:
    return unsupported(term, "term")


def _copy_label_and_op(source: Value, target: Value) -> None:
    """Gives ``target`` the label and ``_op`` text that ``source`` was given, if any."""
    for name in _LABEL_AND_OP:
        if hasattr(source, name):
            setattr(target, name, getattr(source, name))


def _format_exponent(exponent: float) -> str:
    """A constant exponent as micrograd's f'**{other}' prints it: an integral exponent
    as an int ("2", "-1"), any other as a float ("0.5")."""
    if math.isfinite(exponent) and exponent.is_integer() and abs(exponent) < _LARGEST_EXACT_INTEGER:
        return str(int(exponent))
    return str(exponent)


def _unary_op(
    c_function: Callable[[int], int | None], name: str, doc: str
) -> Callable[[Value], Value]:
    """A method of Value applying the one-operand C op ``c_function`` to its node.

    The method is as fast as one written out: the C function is a closure cell, where a
    written-out method would look it up as a global.
    """

    def method(self: Value) -> Value:
        node = c_function(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    method.__name__ = name
    method.__qualname__ = f"Value.{name}"
    method.__doc__ = doc
    return method


class Value:
    """A scalar node of a computation graph, with its value ``data`` and its gradient
    ``grad``.

    Build expressions with ``+ - * / **``, unary ``-`` and the methods ``relu``,
    ``tanh``, ``exp``, ``log`` and ``sigmoid``, mixing Values and real numbers freely;
    then call ``backward()`` on the result to fill in ``grad`` on every node that it
    depends on.

    Args:
        data: the node's value, any real number (stored as a double).
        _children: operands to record, as micrograd's constructor allows. A node made
            this way keeps them alive and lists them in ``_prev``, but no gradient
            flows through it: it is opaque to ``backward()``.
        _op: the text ``_op`` returns for this node (micrograd's constructor argument).
        label: a name for the node, for drawing graphs (as in micrograd's notebooks).

    Raises:
        TypeError: ``data`` is not a real number, a child is not a Value, or ``_op``
            or ``label`` is not a str.
        OverflowError: ``data`` is an int too large for a double.
    """

    # _ptr: the address of the node, of which this object owns one reference.
    # _label and _custom_op: set only when given, so operation results carry neither.
    __slots__ = ("_ptr", "_label", "_custom_op", "__weakref__")

    _ptr: int  # None only while the object is being destroyed, in __del__
    _label: str
    _custom_op: str

    def __init__(
        self,
        data: Scalar,
        _children: Iterable[Value] = _NO_CHILDREN,
        _op: str = "",
        label: str = "",
    ) -> None:
        number = as_float(data, "data")
        check_text(_op, "_op")
        check_text(label, "label")
        if _children is _NO_CHILDREN:  # the common case: a leaf
            children: tuple[Value, ...] = ()
            node = _node_or_raise(_c.value_create_leaf(number))
        else:
            children = tuple(_children)
            for child in children:
                if not isinstance(child, Value):
                    raise TypeError(f"_children must be Values, got {type(child).__name__!r}")
            node = _lib.create(number, _lib.pin(children, Value))
        # __init__ may be called again on a live object: start afresh, and give the old
        # node back.
        previous = getattr(self, "_ptr", None)
        self._ptr = node
        if previous is not None:
            _c.value_release(previous)
            for name in _LABEL_AND_OP:
                if hasattr(self, name):
                    delattr(self, name)
        if children or _op:
            self._custom_op = _op
        if label:
            self._label = label
        _shared_handles.offer(self)

    def __del__(self, _release: Callable[[int], int] = _c.value_release) -> None:
        # _release is bound as a default argument because at interpreter shutdown the
        # module's globals may already have been cleared to None.
        try:
            node = self._ptr
        except AttributeError:
            return  # __init__ raised before the object got a node
        if node is None:
            return
        self._ptr = None  # type: ignore[assignment]
        # The status is not checked: it can only report a pointer that is not a live
        # node, which this object's reference rules out, and an exception raised here
        # could only be printed, not handled.
        _release(node)

    # ---------------------------------------------------------------------------
    # The number and its gradient
    # ---------------------------------------------------------------------------

    # In place or through the checked accessors, as chosen once by _lib._node_access.
    data = property(
        _get_data,
        _set_data,
        doc="The node's value (the result of its forward computation); setting it does "
        "not recompute the nodes computed from it, as in micrograd.",
    )
    grad = property(
        _get_grad,
        _set_grad,
        doc="d(root)/d(this node), as filled in by the last ``backward()``.",
    )

    @property
    def label(self) -> str:
        """A name for the node, for drawing graphs ('' if none was given)."""
        return getattr(self, "_label", "")

    @label.setter
    def label(self, text: str) -> None:
        self._label = check_text(text, "label")
        # So that a labelled node found through _prev shows its label.
        _shared_handles.offer(self)

    # ---------------------------------------------------------------------------
    # Arithmetic
    # ---------------------------------------------------------------------------

    # Each operator calls the library once and wraps the new node without any helper
    # call: in micrograd-style code these few lines are the Python cost of every
    # operation. A number operand becomes a leaf inside that one library call.

    def __add__(self, other: Operand) -> Value:
        """``self + other``; a number ``other`` becomes a leaf operand."""
        if isinstance(other, Value):
            node = _value_add(self._ptr, other._ptr)
        else:
            number = other if type(other) is float else float_or_none(other)
            if number is None:
                return NotImplemented
            node = _value_add_scalar(self._ptr, number)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __radd__(self, other: Scalar) -> Value:
        """``other + self`` for a number ``other`` (micrograd's ``1 + x``), which becomes a leaf operand."""
        number = other if type(other) is float else float_or_none(other)
        if number is None:
            return NotImplemented
        node = _value_scalar_add(number, self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __sub__(self, other: Operand) -> Value:
        """``self - other``; a number ``other`` becomes a leaf operand."""
        if isinstance(other, Value):
            node = _value_sub(self._ptr, other._ptr)
        else:
            number = other if type(other) is float else float_or_none(other)
            if number is None:
                return NotImplemented
            node = _value_sub_scalar(self._ptr, number)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __rsub__(self, other: Scalar) -> Value:
        """``other - self`` for a number ``other`` (``1 - x``), which becomes a leaf operand."""
        number = other if type(other) is float else float_or_none(other)
        if number is None:
            return NotImplemented
        node = _value_scalar_sub(number, self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __mul__(self, other: Operand) -> Value:
        """``self * other``; a number ``other`` becomes a leaf operand."""
        if isinstance(other, Value):
            node = _value_mul(self._ptr, other._ptr)
        else:
            number = other if type(other) is float else float_or_none(other)
            if number is None:
                return NotImplemented
            node = _value_mul_scalar(self._ptr, number)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __rmul__(self, other: Scalar) -> Value:
        """``other * self`` for a number ``other`` (``2 * x``), which becomes a leaf operand."""
        number = other if type(other) is float else float_or_none(other)
        if number is None:
            return NotImplemented
        node = _value_scalar_mul(number, self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __truediv__(self, other: Operand) -> Value:
        """``self / other``; a number ``other`` becomes a leaf operand."""
        if isinstance(other, Value):
            node = _value_div(self._ptr, other._ptr)
        else:
            number = other if type(other) is float else float_or_none(other)
            if number is None:
                return NotImplemented
            node = _value_div_scalar(self._ptr, number)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __rtruediv__(self, other: Scalar) -> Value:
        """``other / self`` for a number ``other`` (``1 / x``), which becomes a leaf operand."""
        number = other if type(other) is float else float_or_none(other)
        if number is None:
            return NotImplemented
        node = _value_scalar_div(number, self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __pow__(self, exponent: Operand) -> Value:
        """``self ** exponent``: a Value exponent gets a gradient too; a number is a
        constant (the node's ``_op`` then shows it, as in micrograd: ``'**2'``)."""
        if isinstance(exponent, Value):
            node = _value_pow(self._ptr, exponent._ptr)
        else:
            number = exponent if type(exponent) is float else float_or_none(exponent)
            if number is None:
                return NotImplemented
            node = _value_pow_const(self._ptr, number)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __rpow__(self, base: Scalar) -> Value:
        """``base ** self`` for a number ``base``: the exponent is the Value, the base a
        leaf operand."""
        number = base if type(base) is float else float_or_none(base)
        if number is None:
            return NotImplemented
        node = _value_scalar_pow(number, self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    __neg__ = _unary_op(_value_neg, "__neg__", "``-self``.")

    # ---------------------------------------------------------------------------
    # Functions
    # ---------------------------------------------------------------------------

    relu = _unary_op(_value_relu, "relu", "max(self, 0); its gradient at 0 is 0, as in micrograd.")

    tanh = _unary_op(_value_tanh, "tanh", "The hyperbolic tangent.")

    exp = _unary_op(_value_exp, "exp", "e ** self (inf when it overflows).")

    log = _unary_op(
        _value_log, "log", "The natural logarithm: log(0) is -inf and the log of a negative is nan."
    )

    sigmoid = _unary_op(
        _value_sigmoid,
        "sigmoid",
        "1 / (1 + exp(-self)), computed without overflow for large |self|.",
    )

    @staticmethod
    def sum(terms: Iterable[Operand]) -> Value:
        """``terms[0] + terms[1] + ...`` as one node with every term as an operand.

        Added left to right like Python's ``sum()``, but with one node instead of a
        chain of ``+`` nodes, so a long sum costs one node and back-propagates in one
        step. An empty sum is 0.

        Raises:
            TypeError: a term is neither a Value nor a real number.
        """
        # pin holds every term (a generator's too) until value_sum has retained them.
        return _adopt(_lib.sum_of(_lib.pin(terms, Value, _number_leaf, _unsupported_term)))

    # ---------------------------------------------------------------------------
    # Gradients
    # ---------------------------------------------------------------------------

    def backward(self) -> None:
        """Fills in ``grad`` for every node this one depends on.

        As in micrograd and PyTorch, leaf gradients accumulate over calls (reset them
        with ``zero_grad()``), while the gradients of interior nodes are recomputed.

        Raises:
            MemoryError: the graph is too large for the temporary arrays.
        """
        _lib.check_status(_c.value_backward(self._ptr))

    def zero_grad(self) -> None:
        """Sets ``grad`` to 0 on this node and on every node it depends on."""
        _lib.check_status(_c.value_zero_grad(self._ptr))

    # ---------------------------------------------------------------------------
    # The graph, as micrograd exposes it
    # ---------------------------------------------------------------------------

    @property
    def _prev(self) -> set[Value]:
        """The node's operands (a set, as in micrograd)."""
        return {_shared_handles.handle_of(node) for node in _lib.prev(self._ptr)}

    @property
    def _op(self) -> str:
        """The operation that made the node, as micrograd names it: '' for a leaf,
        '+', '*', 'ReLU', ..., and '**2' for a constant power."""
        custom: str | None = getattr(self, "_custom_op", None)
        if custom is not None:
            return custom
        node = self._ptr
        op = _lib.op_of(node)
        if op == _lib.OP_POW_CONST:
            return "**" + _format_exponent(_lib.param_of(node))
        return _lib.op_name(op)

    # ---------------------------------------------------------------------------
    # Identity, copying, printing
    # ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Two Values are equal when they are handles of the same node."""
        if isinstance(other, Value):
            return self._ptr == other._ptr
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._ptr)

    def __copy__(self) -> Value:
        """Another handle of the same node (what copying any Python object reference
        means for micrograd's Value, whose copy shares its operands)."""
        node = self._ptr
        _lib.check_status(_c.value_retain(node))
        twin = _adopt(node)
        _copy_label_and_op(self, twin)
        return twin

    def __deepcopy__(self, memo: dict[int, Any]) -> Value:
        """An independent copy of the node and of the whole graph below it.

        Every node is rebuilt with the same op, data and grad, and nodes shared in the
        original are shared in the copy, also across all the objects of one
        ``copy.deepcopy`` call: deep-copying a model gives parameters that can be
        trained without touching the original's.
        """
        duplicate = copy_graph(self._ptr, memo, _adopt_shared)
        _copy_label_and_op(self, duplicate)
        return duplicate

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError(
            "cannot pickle a microcrad Value: it is a handle of a node in the C "
            "library's memory; save its .data (and rebuild the graph) instead"
        )

    def __reduce__(self) -> NoReturn:
        self.__reduce_ex__(None)

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"
