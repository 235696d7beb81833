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

``data`` and ``grad`` are read and written in place, through a ctypes view of the
node's struct (``_lib.NodeView``), at about half the cost of a checked call into the
library. That is safe because a handle owns a reference to its node, so the node is
alive whenever the view is used. In a library built for AddressSanitizer,
ThreadSanitizer, UBSan or Valgrind (``_lib.DIRECT_ACCESS`` is then False) every access
goes through the checked C accessors instead, so that those tools see each one:
Python's own reads are not instrumented, and a read past a node's life would go
unnoticed.

The quick library calls keep the GIL (``_lib`` explains which calls release it and
why that is thread-safe either way).
"""

from __future__ import annotations

import math
import numbers
import weakref
from collections.abc import Iterable
from typing import Any, Callable, NoReturn, Union

from microcrad import _lib

__all__ = ["Value"]

# What a Value can be combined with: another Value or any real number (int, float,
# bool, Fraction, numpy scalars, ...). numbers.Real covers them all at run time; int
# and float are named for the benefit of static type checkers.
Scalar = Union[int, float, numbers.Real]
Operand = Union["Value", Scalar]

_c = _lib.c
_node_or_raise = _lib.node_or_raise
_last_failure = _lib.last_failure
_new_object = object.__new__

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
_value_data = _c.value_data
_value_grad = _c.value_grad
_value_set_data = _c.value_set_data
_value_set_grad = _c.value_set_grad
_view_of = _lib.NodeView.from_address

# The handle that _prev gives out for a node, while that handle is alive. Only handles
# that someone is likely to hold on to are entered here (those made by Value(...), by
# _prev, by copying, or given a label), never the result of every operation: that would
# cost a weak reference per operation on the hot path.
_shared_handles: weakref.WeakValueDictionary[int, Value] = weakref.WeakValueDictionary()

# Key under which __deepcopy__ keeps its node-to-copy map in the deepcopy memo. The memo
# is keyed by id(); this object lives as long as the module, so its id is never reused.
_DEEPCOPY_NODES_KEY = object()

# The default of Value's _children, recognised by identity to skip checking children.
_NO_CHILDREN: tuple[Value, ...] = ()

# Constant exponents at least this large are shown as floats ("**1e+300"), not as the
# long string of digits of an int.
_LARGEST_EXACT_INTEGER = 2.0**53


def _unsupported(thing: object, role: str = "operand") -> TypeError:
    return TypeError(f"unsupported {role} type for Value: {type(thing).__name__!r}")


def _as_float(number: object, role: str = "operand") -> float:
    """``number`` as a double; TypeError for anything that is not a real number.

    Raises OverflowError for an int (or Fraction) too large for a double, rather than
    letting it become inf silently.
    """
    if type(number) is float:
        return number
    if isinstance(number, numbers.Real):
        return float(number)
    raise _unsupported(number, role)


def _check_text(text: object, role: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{role} must be a str, not {type(text).__name__!r}")
    return text


def _adopt(node: int) -> Value:
    """Wraps a node whose reference the caller hands over (a fresh op result).

    Skips ``__init__``, whose validation is for user input, to keep operations cheap.
    """
    value: Value = _new_object(Value)
    value._ptr = node
    return value


def _shared_handle(node: int) -> Value:
    """The handle of ``node`` that ``_prev`` gives out, made (with its own reference) if
    no live one exists."""
    handle = _shared_handles.get(node)
    # A handle releases its node in __del__ and sets _ptr to None first, before the
    # weak reference to it is cleared: checking _ptr avoids handing out a dying handle.
    if handle is not None and handle._ptr == node:
        return handle
    _lib.check_status(_c.value_retain(node))
    handle = _adopt(node)
    _shared_handles[node] = handle
    return handle


def _share(value: Value) -> None:
    """Makes ``value`` the handle that ``_prev`` gives out for its node, unless a live
    handle already has that role (handing out two objects for one node would break
    code that keys nodes by ``id()``)."""
    node = value._ptr
    current = _shared_handles.get(node)
    if current is None or current._ptr != node:
        _shared_handles[node] = value


def _number(thing: object) -> float | None:
    """``thing`` as a double when it is a real number (int, bool, Fraction, a NumPy
    scalar, ...), else None (the operator then returns NotImplemented).

    Raises OverflowError for an int too large for a double.
    """
    if type(thing) is int or isinstance(thing, numbers.Real):
        return float(thing)  # type: ignore[arg-type]
    return None


def _temporary_leaf(number: object) -> int | None:
    """A new leaf node holding ``number`` (the caller releases it), or None when
    ``number`` is not a real number."""
    if type(number) is float or isinstance(number, numbers.Real):
        return _node_or_raise(_c.value_create_leaf(float(number)))
    return None


def _format_exponent(exponent: float) -> str:
    """A constant exponent as micrograd's f'**{other}' prints it: an integral exponent
    as an int ("2", "-1"), any other as a float ("0.5")."""
    if math.isfinite(exponent) and exponent.is_integer() and abs(exponent) < _LARGEST_EXACT_INTEGER:
        return str(int(exponent))
    return str(exponent)


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
        number = _as_float(data, "data")
        _check_text(_op, "_op")
        _check_text(label, "label")
        if _children is _NO_CHILDREN:  # the common case: a leaf
            children: tuple[Value, ...] = ()
            node = _node_or_raise(_c.value_create_leaf(number))
        else:
            children = tuple(_children)
            for child in children:
                if not isinstance(child, Value):
                    raise TypeError(f"_children must be Values, got {type(child).__name__!r}")
            node = _lib.create(number, [child._ptr for child in children])
        # __init__ may be called again on a live object: start afresh, and give the old
        # node back.
        previous = getattr(self, "_ptr", None)
        self._ptr = node
        if previous is not None:
            _c.value_release(previous)
            for name in ("_label", "_custom_op"):
                if hasattr(self, name):
                    delattr(self, name)
        if children or _op:
            self._custom_op = _op
        if label:
            self._label = label
        _share(self)

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

    # Nodes computed from this one are not recomputed when data is set, as in
    # micrograd. The two variants are chosen once, when the class is made (see the
    # module docstring): in place through a NodeView, or through the checked accessors.
    if _lib.DIRECT_ACCESS:

        def _get_data(self) -> float:
            return _view_of(self._ptr).data  # type: ignore[no-any-return]

        def _set_data(self, number: Scalar) -> None:
            _view_of(self._ptr).data = number if type(number) is float else _as_float(number, "data")

        def _get_grad(self) -> float:
            return _view_of(self._ptr).grad  # type: ignore[no-any-return]

        def _set_grad(self, number: Scalar) -> None:
            _view_of(self._ptr).grad = number if type(number) is float else _as_float(number, "grad")

    else:

        def _get_data(self) -> float:
            node = self._ptr
            return _lib.check_number(_value_data(node), node)

        def _set_data(self, number: Scalar) -> None:
            _lib.check_status(_value_set_data(self._ptr, _as_float(number, "data")))

        def _get_grad(self) -> float:
            node = self._ptr
            return _lib.check_number(_value_grad(node), node)

        def _set_grad(self, number: Scalar) -> None:
            _lib.check_status(_value_set_grad(self._ptr, _as_float(number, "grad")))

    data = property(
        _get_data, _set_data, doc="The node's value (the result of its forward computation)."
    )
    grad = property(
        _get_grad, _set_grad, doc="d(root)/d(this node), as filled in by the last ``backward()``."
    )
    del _get_data, _set_data, _get_grad, _set_grad  # reached through the properties only

    @property
    def label(self) -> str:
        """A name for the node, for drawing graphs ('' if none was given)."""
        return getattr(self, "_label", "")

    @label.setter
    def label(self, text: str) -> None:
        self._label = _check_text(text, "label")
        # So that a labelled node found through _prev shows its label.
        _share(self)

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
            number = other if type(other) is float else _number(other)
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
        number = other if type(other) is float else _number(other)
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
            number = other if type(other) is float else _number(other)
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
        number = other if type(other) is float else _number(other)
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
            number = other if type(other) is float else _number(other)
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
        number = other if type(other) is float else _number(other)
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
            number = other if type(other) is float else _number(other)
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
        number = other if type(other) is float else _number(other)
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
            number = exponent if type(exponent) is float else _number(exponent)
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
        number = base if type(base) is float else _number(base)
        if number is None:
            return NotImplemented
        node = _value_scalar_pow(number, self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def __neg__(self) -> Value:
        """``-self``."""
        node = _value_neg(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    # ---------------------------------------------------------------------------
    # Functions
    # ---------------------------------------------------------------------------

    def relu(self) -> Value:
        """max(self, 0); its gradient at 0 is 0, as in micrograd."""
        node = _value_relu(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def tanh(self) -> Value:
        """The hyperbolic tangent."""
        node = _value_tanh(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def exp(self) -> Value:
        """e ** self (inf when it overflows)."""
        node = _value_exp(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def log(self) -> Value:
        """The natural logarithm: log(0) is -inf and the log of a negative is nan."""
        node = _value_log(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    def sigmoid(self) -> Value:
        """1 / (1 + exp(-self)), computed without overflow for large |self|."""
        node = _value_sigmoid(self._ptr)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._ptr = node
        return result

    @staticmethod
    def sum(terms: Iterable[Operand]) -> Value:
        """``terms[0] + terms[1] + ...`` as one node with every term as an operand.

        Added left to right like Python's ``sum()``, but with one node instead of a
        chain of ``+`` nodes, so a long sum costs one node and back-propagates in one
        step. An empty sum is 0.

        Raises:
            TypeError: a term is neither a Value nor a real number.
        """
        nodes: list[int] = []
        leaves: list[int] = []
        try:
            for term in terms:
                if isinstance(term, Value):
                    nodes.append(term._ptr)
                    continue
                leaf = _temporary_leaf(term)
                if leaf is None:
                    raise _unsupported(term, "term")
                leaves.append(leaf)
                nodes.append(leaf)
            return _adopt(_lib.sum_of(nodes))
        finally:
            for leaf in leaves:
                _c.value_release(leaf)

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
        return {_shared_handle(node) for node in _lib.prev(self._ptr)}

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
        for name in ("_label", "_custom_op"):
            if hasattr(self, name):
                setattr(twin, name, getattr(self, name))
        return twin

    def __deepcopy__(self, memo: dict[int, Any]) -> Value:
        """An independent copy of the node and of the whole graph below it.

        Every node is rebuilt with the same op, data and grad, and nodes shared in the
        original are shared in the copy, also across all the objects of one
        ``copy.deepcopy`` call: deep-copying a model gives parameters that can be
        trained without touching the original's.
        """
        copies: dict[int, Value] = memo.setdefault(id(_DEEPCOPY_NODES_KEY), {})
        root = self._ptr
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
            copies[node] = _rebuild(node, [copies[operand] for operand in operands])
        duplicate = copies[root]
        for name in ("_label", "_custom_op"):
            if hasattr(self, name):
                setattr(duplicate, name, getattr(self, name))
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


def _rebuild(original: int, operands: list[Value]) -> Value:
    """A new node like ``original`` (same op, param, data and grad) over ``operands``,
    the copies of its operands."""
    op = _lib.op_of(original)
    nodes: list[int] = [operand._ptr for operand in operands]
    data = _lib.check_number(_c.value_data(original), original)
    if op in _lib.BINARY_CONSTRUCTORS:
        node = _node_or_raise(_lib.BINARY_CONSTRUCTORS[op](*nodes), *nodes)
    elif op in _lib.UNARY_CONSTRUCTORS:
        node = _node_or_raise(_lib.UNARY_CONSTRUCTORS[op](*nodes), *nodes)
    elif op == _lib.OP_POW_CONST:
        node = _node_or_raise(_c.value_pow_const(nodes[0], _lib.param_of(original)), *nodes)
    elif op == _lib.OP_SUM:
        node = _lib.sum_of(nodes)
    elif op == _lib.OP_NEURON:  # operands: bias, w0, x0, w1, x1, ...
        node = _lib.neuron(nodes[1::2], nodes[2::2], nodes[0])
    elif op in (_lib.OP_LEAF, _lib.OP_CUSTOM):
        node = _lib.create(data, nodes)
    else:
        raise TypeError(f"cannot deep-copy a node of op {_lib.op_name(op)!r}")
    copy = _adopt(node)
    # The data may have been overwritten after the forward computation; keep it as is.
    _lib.check_status(_c.value_set_data(node, data))
    _lib.check_status(_c.value_set_grad(node, _lib.check_number(_c.value_grad(original), original)))
    _share(copy)
    return copy
