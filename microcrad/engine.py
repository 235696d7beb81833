"""``Value``: a scalar that remembers how it was computed, backed by a C graph node.

``Value`` is a drop-in replacement for micrograd's ``micrograd.engine.Value``: the same
operators, the same ``backward()``, the same ``data``, ``grad``, ``_prev`` and ``_op``.
The numbers and the graph live in the C library; a ``Value`` object is a thin handle
that owns exactly one reference to its node, so a graph is freed as soon as the last
``Value`` that reaches it is gone.

A node's label and hand-made ``_op`` text are kept with the node in C, so every handle
of it sees them. Custom ops are defined as in micrograd, by giving a node made with
``Value(data, children, op)`` a ``_backward`` function, which ``backward()`` calls at
the node's place in topological order. A Value takes arbitrary attributes
(``p.m = 0.0``), and ``vars(v)`` shows ``data``, ``grad`` and the rest as micrograd's
does.

Two handles of the same node compare and hash equal. While a handle of a node is
alive, ``_prev`` hands out that same object for the node, so code that keys nodes by
``id()`` (such as micrograd's ``draw_dot``) sees every node once.

Speed. Every operation is one call into the library: ``x * 2`` makes the leaf for 2
and the product in the same call (value_mul_scalar), so the graph still has the
constant as a leaf operand, exactly as micrograd's has. In micrograd-style code the
Python overhead of each operation is most of its cost, so each operator is a closure
made by ``_binary_op`` or ``_unary_op`` that holds its C functions in cells and calls
no helper.

A dropped Value does not call the library: its ``__del__`` adds the node to a list of
pending releases, which goes to the library in one call (value_release_many) when it
holds ``_lib.PENDING_BOUND`` (256) nodes. So a dropped Value's graph is freed a little
later than the Value: at the latest after that many more drops, or when anything reads
what a release changes (``microcrad.live_values()``, ``microcrad.trim()``, reference
counts), or after a garbage collection, or before a node of more than that many
operands is made (``Value.sum``, a neuron), or at interpreter exit (after which Values
release at once); ``_lib._arrays`` explains.

``data`` and ``grad`` are read and written in place, through a view of the node's
struct, except in builds for sanitizers and Valgrind (``_lib._nodes`` explains).

Every library call holds the GIL, the long ones (backward) included; ``_lib._loading``
explains why.
"""

from __future__ import annotations

import atexit
import math
import warnings
from collections.abc import Iterable
from typing import Any, Callable, NoReturn, Union

from microcrad import _lib
from microcrad._attributes import ValueAttributes
from microcrad._backward_functions import detach_own_handles, reaches_handle
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

_last_failure = _lib.last_failure
_new_object = object.__new__
_get_data, _set_data, _get_grad, _set_grad = _lib.node_accessors(as_float)
_op_constructor = _lib.op_constructor

# The default of Value's _children, recognised by identity to skip checking children.
_NO_CHILDREN: tuple[Value, ...] = ()

# Constant exponents at least this large are shown as floats ("**1e+300"), not as the
# long string of digits of an int.
_LARGEST_EXACT_INTEGER = 2.0**53


def _adopt(node: int) -> Value:
    """Wraps a node whose reference the caller hands over (a fresh op result).

    Skips ``__init__``, whose validation is for user input, to keep operations cheap.
    """
    value: Value = _new_object(Value)
    value._Value__node = node
    return value


# The handle that _prev gives out for each node (see _shared_handles).
_shared_handles: SharedHandles[Value] = SharedHandles(adopt=_adopt)


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


def _copy_attributes(source: Value, target: Value, memo: dict[int, Any] | None = None) -> None:
    """Gives ``target`` the attributes set on ``source`` (``p.m``, ...): the same
    objects, or deep copies of them when ``memo`` (a deepcopy memo) is given."""
    own = _instance_dict(source)
    if own:
        if memo is not None:
            import copy

            own = copy.deepcopy(own, memo)
        _instance_dict(target).update(own)


def _of_class_of(source: Value, copy: Value, memo: dict[int, Any] | None = None) -> Value:
    """``copy`` (a new handle, owning its reference), or, when ``source`` is of a
    subclass of Value, a handle of the same node of that subclass, with the values of
    the subclass's own slots (deep copies of them when ``memo`` is given): copying an
    object keeps its class."""
    cls = type(source)
    if cls is Value or cls is _BorrowedValue:
        return copy
    import copy as copying

    node = copy._Value__node
    _lib.retain(node)
    twin: Value = _new_object(cls)
    twin._Value__node = node
    for klass in cls.__mro__:
        if klass is Value:
            break
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__") or name.startswith("__"):
                continue
            try:
                item = getattr(source, name)
            except AttributeError:
                continue
            setattr(twin, name, item if memo is None else copying.deepcopy(item, memo))
    _shared_handles.offer(twin)
    return twin


def _format_exponent(exponent: float) -> str:
    """A constant exponent as micrograd's f'**{other}' prints it: an integral exponent
    as an int ("2", "-1"), any other as a float ("0.5")."""
    if math.isfinite(exponent) and exponent.is_integer() and abs(exponent) < _LARGEST_EXACT_INTEGER:
        return str(int(exponent))
    return str(exponent)


# The operators of Value that the factories below make, by method name: "unary" for a
# one-operand op (``x.relu()``), "binary" for a two-operand one (``x * y``, ``x * 2``)
# and "reflected" for its reflected form (``2 * x``). Tests enumerate ops through it, so
# a new op's method is tested without naming it there.
OPERATORS: dict[str, str] = {}


def _unary_op(c_name: str, name: str, doc: str) -> Callable[[Value], Value]:
    """A method of Value applying the one-operand C op constructor ``c_name`` (such as
    ``"value_exp"``) to its node.

    The method is as fast as one written out: the C function is a closure cell, where a
    written-out method would look it up as a global.
    """
    c_function = _op_constructor(c_name, "node")
    OPERATORS[name] = "unary"

    def method(self: Value) -> Value:
        node = c_function(self._Value__node)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._Value__node = node
        return result

    method.__name__ = name
    method.__qualname__ = f"Value.{name}"
    method.__doc__ = doc
    return method


def _binary_op(
    c_names: tuple[str, str, str], name: str, doc: str, reflected_doc: str
) -> tuple[Callable[[Value, Operand], Value], Callable[[Value, Scalar], Value]]:
    """The methods ``name`` and its reflected form (``__add__`` and ``__radd__``) of a
    two-operand op, from the names of its three C constructors: Value with Value
    (``value_add``), Value with a number (``value_add_scalar``) and number with Value
    (``value_scalar_add``). A number operand becomes a leaf operand inside that one
    call (or the constant of the op, for ``value_pow_const``).

    Each method calls the library once and wraps the new node without any helper call:
    in micrograd-style code these few lines are the Python cost of every operation.
    The C functions are closure cells, as fast to reach as globals.
    """
    with_value = _op_constructor(c_names[0], "node_node")
    with_number = _op_constructor(c_names[1], "node_number")
    number_with = _op_constructor(c_names[2], "number_node")

    def method(self: Value, other: Operand) -> Value:
        if isinstance(other, Value):
            node = with_value(self._Value__node, other._Value__node)
        else:
            # float and int (``x * 2``, ``x ** 2``) without a helper call (float() of an
            # int beyond a double raises OverflowError); float_or_none takes every other
            # kind of number.
            kind = type(other)
            number = (
                other if kind is float else float(other) if kind is int else float_or_none(other)
            )
            if number is None:
                # mypy takes NotImplemented for a Value only in methods named __add__ ...
                return NotImplemented  # type: ignore[no-any-return]
            node = with_number(self._Value__node, number)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._Value__node = node
        return result

    def reflected(self: Value, other: Scalar) -> Value:
        kind = type(other)
        number = other if kind is float else float(other) if kind is int else float_or_none(other)
        if number is None:
            return NotImplemented  # type: ignore[no-any-return]
        node = number_with(number, self._Value__node)
        if node is None:
            raise _last_failure()
        result: Value = _new_object(Value)
        result._Value__node = node
        return result

    reflected_name = "__r" + name[2:]
    OPERATORS[name], OPERATORS[reflected_name] = "binary", "reflected"
    for function, function_name, function_doc in (
        (method, name, doc),
        (reflected, reflected_name, reflected_doc),
    ):
        function.__name__ = function_name
        function.__qualname__ = f"Value.{function_name}"
        function.__doc__ = function_doc
    return method, reflected


class _ValueSlots:
    """The storage of a Value: an instance dictionary for the attributes code sets on
    it, and weak references (see _shared_handles). The node's address is Value's own
    private slot."""

    __slots__ = ("__dict__", "__weakref__")


# The real instance dictionary of a Value (Value.__dict__ is the view of vars()).
_instance_dict: Callable[[Any], dict[str, Any]] = _ValueSlots.__dict__["__dict__"].__get__
_set_instance_dict: Callable[[Any, dict[str, Any]], None] = _ValueSlots.__dict__["__dict__"].__set__


class Value(_ValueSlots):
    """A scalar node of a computation graph, with its value ``data`` and its gradient
    ``grad``.

    Build expressions with ``+ - * / **``, unary ``-`` and the methods ``relu``,
    ``tanh``, ``exp``, ``log`` and ``sigmoid``, mixing Values and real numbers freely;
    then call ``backward()`` on the result to fill in ``grad`` on every node that it
    depends on.

    Args:
        data: the node's value, any real number (stored as a double).
        _children: operands to record, as micrograd's constructor allows. A node made
            this way keeps them alive and lists them in ``_prev``; gradient flows to
            them through the ``_backward`` function given to it (a custom op), and
            not at all without one.
        _op: the text ``_op`` returns for this node (micrograd's constructor argument).
        label: a name for the node, for drawing graphs (as in micrograd's notebooks).

    Both texts are kept with the C node: every handle of the node sees them, and
    ``microcrad.viz`` draws them.

    A Value owns one reference to its node. When the Value is dropped, that reference
    goes back in a batch with those of other dropped Values (see the module's
    docstring): counts (``microcrad.live_values()``, reference counts) make the waiting
    releases first, so they are exact as soon as the Value is gone.

    Raises:
        TypeError: ``data`` is not a real number, a child is not a Value, ``_op`` or
            ``label`` is not a str, or the object is already initialised.
        ValueError: ``_op`` or ``label`` contains a NUL character.
        OverflowError: ``data`` is an int too large for a double.
    """

    # The address of the node of which the object owns one reference (None only while
    # the object is being destroyed, in __del__). Private (``_Value__node``), and
    # shown read-only as ``_ptr``: a wrong address written into it would make the
    # library read and write arbitrary memory.
    __slots__ = ("__node",)

    def __init__(
        self,
        data: Scalar,
        _children: Iterable[Value] = _NO_CHILDREN,
        _op: str = "",
        label: str = "",
    ) -> None:
        if getattr(self, "_Value__node", None) is not None:
            # Networks, optimizers and tapes hold this object's node; a new node under
            # the same object would leave them working on the old one.
            raise TypeError(
                "Value.__init__ cannot be called again on an initialised Value; "
                "assign .data to change its value, or make a new Value"
            )
        number = as_float(data, "data")
        check_text(_op, "_op")
        check_text(label, "label")
        if _children is _NO_CHILDREN:  # the common case: a leaf
            children: tuple[Value, ...] = ()
            node = _lib.leaf(number)
        else:
            children = tuple(_children)
            for child in children:
                if not isinstance(child, Value):
                    raise TypeError(f"_children must be Values, got {type(child).__name__!r}")
            node = _lib.create(number, _lib.pin(children, Value))
        self._Value__node = node
        # A hand-made node always shows its own text, "" included (micrograd's default).
        if children or _op:
            _lib.set_op_text(node, _op)
        if label:
            _lib.set_label(node, label)
        _shared_handles.offer(self)

    def __del__(
        self,
        _pending: Any = _lib.pending_releases,
        _defer: Callable[[int], None] = _lib.pending_releases.append,
        _bound: int = _lib.PENDING_BOUND,
        _release_batch: Callable[[], None] = _lib.release_batch,
    ) -> None:
        # The node's reference is given back later, with others, in one library call
        # (_lib._arrays): a call costs more than the rest of a Value's life. Every
        # count (live_values, ref counts) takes the pending releases first. The
        # helpers are bound as default arguments: fastest to reach, and still there
        # when interpreter shutdown has cleared the module's globals.
        try:
            node = self._Value__node
        except AttributeError:
            return  # __init__ raised before the object got a node
        if node is None:
            return
        self._Value__node = None  # type: ignore[assignment]
        _defer(node)
        if len(_pending) >= _bound:
            _release_batch()

    # ---------------------------------------------------------------------------
    # The number and its gradient
    # ---------------------------------------------------------------------------

    # In place or through the checked accessors, as chosen once by _lib._nodes.
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
        """A name for the node, for drawing graphs ('' if none was given). Kept with the
        node, so every handle of it, ``_prev``'s included, shows it."""
        return _lib.label_of(self._Value__node)

    @label.setter
    def label(self, text: str) -> None:
        _lib.set_label(self._Value__node, check_text(text, "label"))

    @property
    def __dict__(self) -> ValueAttributes:  # type: ignore[override]
        """What ``vars(v)`` shows: ``data``, ``grad``, ``_backward``, ``_prev``, ``_op`` and
        ``label`` (read from the node), then the attributes set on this object. A live
        view: writing to it sets the attribute."""
        return ValueAttributes(self, _instance_dict(self))

    def __dir__(self) -> list[str]:
        # object.__dir__ adds the instance's attributes only from a real dict.
        return sorted(set(super().__dir__()) | set(_instance_dict(self)))

    # ---------------------------------------------------------------------------
    # Arithmetic
    # ---------------------------------------------------------------------------

    # A number operand becomes a leaf inside the one library call of each operator.

    __add__, __radd__ = _binary_op(
        ("value_add", "value_add_scalar", "value_scalar_add"),
        "__add__",
        "``self + other``; a number ``other`` becomes a leaf operand.",
        "``other + self`` for a number ``other`` (micrograd's ``1 + x``), which becomes a leaf operand.",
    )
    __sub__, __rsub__ = _binary_op(
        ("value_sub", "value_sub_scalar", "value_scalar_sub"),
        "__sub__",
        "``self - other``; a number ``other`` becomes a leaf operand.",
        "``other - self`` for a number ``other`` (``1 - x``), which becomes a leaf operand.",
    )
    __mul__, __rmul__ = _binary_op(
        ("value_mul", "value_mul_scalar", "value_scalar_mul"),
        "__mul__",
        "``self * other``; a number ``other`` becomes a leaf operand.",
        "``other * self`` for a number ``other`` (``2 * x``), which becomes a leaf operand.",
    )
    __truediv__, __rtruediv__ = _binary_op(
        ("value_div", "value_div_scalar", "value_scalar_div"),
        "__truediv__",
        "``self / other``; a number ``other`` becomes a leaf operand.",
        "``other / self`` for a number ``other`` (``1 / x``), which becomes a leaf operand.",
    )
    __pow__, __rpow__ = _binary_op(
        ("value_pow", "value_pow_const", "value_scalar_pow"),
        "__pow__",
        "``self ** exponent``: a Value exponent gets a gradient too; a number is a "
        "constant (the node's ``_op`` then shows it, as in micrograd: ``'**2'``).",
        "``base ** self`` for a number ``base``: the exponent is the Value, the base a "
        "leaf operand.",
    )

    __neg__ = _unary_op("value_neg", "__neg__", "``-self``.")

    __abs__ = _unary_op(
        "value_abs",
        "__abs__",
        "``abs(self)``; its gradient is the sign of self, 0 at 0 (and at nan), as in PyTorch.",
    )

    # ---------------------------------------------------------------------------
    # Functions
    # ---------------------------------------------------------------------------

    relu = _unary_op("value_relu", "relu", "max(self, 0); its gradient at 0 is 0, as in micrograd.")

    tanh = _unary_op("value_tanh", "tanh", "The hyperbolic tangent.")

    exp = _unary_op("value_exp", "exp", "e ** self (inf when it overflows).")

    log = _unary_op(
        "value_log", "log", "The natural logarithm: log(0) is -inf and the log of a negative is nan."
    )

    sigmoid = _unary_op(
        "value_sigmoid",
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

        A custom op's ``_backward`` function runs at the node's place in the order;
        an exception it raises stops the pass and propagates from here, as itself.

        Raises:
            MemoryError: the graph is too large for the temporary arrays.
            ValueError: called from inside a custom op's ``_backward``.
        """
        _lib.backward(self._ptr)

    @property
    def _backward(self) -> Callable[[], object]:
        """This node's own step of back-propagation, as in micrograd: calling it adds
        ``self.grad`` times the local derivative to each operand's ``grad``, once (a
        leaf's does nothing). Calling it on every node in reverse topological order,
        after setting the root's grad to 1, is what ``backward()`` does.

        Assigning a function to it makes a node built as ``Value(data, children, op)``
        a custom op: ``backward()`` calls the function at the node's place in the order.
        The node keeps the function as long as it lives.
        """
        function = _lib.backward_function(self._Value__node)
        if function is not None:
            return function
        return self._backward_step

    @_backward.setter
    def _backward(self, function: Callable[[], object]) -> None:
        if not callable(function):
            raise TypeError(f"_backward must be callable, not {type(function).__name__!r}")
        node = self._Value__node
        op = _lib.op_of(node)
        if op != _lib.OP_CUSTOM:
            what = "a leaf" if op == _lib.OP_LEAF else f"a built-in op ({self._op!r})"
            raise ValueError(
                f"cannot set _backward on {what}: only a node made with its operands, "
                "Value(data, (a, b, ...), 'op'), takes a backward function"
            )
        def is_own_handle(item: object) -> bool:
            return (
                isinstance(item, Value)
                and type(item) is not _BorrowedValue
                and item._Value__node == node
            )

        def is_replaceable(item: object) -> bool:
            # A subclass's object may carry slots, methods and a class of its own,
            # which a borrowed handle would not have: it is left as it is (and warned
            # about below).
            return type(item) is Value and item._Value__node == node

        kept, borrowed = detach_own_handles(function, is_replaceable, _borrow)
        if reaches_handle(kept, is_own_handle):
            warnings.warn(
                f"the _backward function {function!r} holds a Value of its own node "
                "inside an object (such as self.out of an op object whose method it "
                "is), or a Value subclass's object of it: the node and that object "
                "keep each other alive and are never freed. Reach the node through a "
                "closure variable, a default argument or functools.partial instead "
                "(see the README, 'Differences from micrograd')",
                ResourceWarning,
                stacklevel=2,
            )
        _lib.set_backward(node, kept, borrowed)

    @_backward.deleter
    def _backward(self) -> None:
        _lib.remove_backward(self._Value__node)

    def _backward_step(self) -> None:
        """The node's built-in chain rule, once (value_backward_step)."""
        _lib.backward_step(self._Value__node)

    def zero_grad(self) -> None:
        """Sets ``grad`` to 0 on this node and on every node it depends on."""
        _lib.zero_grad(self._ptr)

    # ---------------------------------------------------------------------------
    # The graph, as micrograd exposes it
    # ---------------------------------------------------------------------------

    @property
    def _prev(self) -> set[Value]:
        """The node's operands (a set, as in micrograd)."""
        return {_shared_handles.handle_of(node) for node in _lib.prev(self._Value__node)}

    @property
    def _op(self) -> str:
        """The operation that made the node, as micrograd names it: '' for a leaf,
        '+', '*', 'ReLU', ..., '**2' for a constant power, and the text given to the
        node (``Value(x, (a,), 'sin')``, or assigned) when there is one."""
        node = self._Value__node
        custom = _lib.op_text_of(node)
        if custom is not None:
            return custom
        op = _lib.op_of(node)
        if op == _lib.OP_POW_CONST:
            return "**" + _format_exponent(_lib.param_of(node))
        return _lib.op_name(op)

    @_op.setter
    def _op(self, text: str) -> None:
        _lib.set_op_text(self._Value__node, check_text(text, "_op"))

    # ---------------------------------------------------------------------------
    # Identity, copying, printing
    # ---------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """Two Values are equal when they are handles of the same node."""
        if isinstance(other, Value):
            return self._Value__node == other._Value__node
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._Value__node)

    def __copy__(self) -> Value:
        """Another handle of the same node (what copying any Python object reference
        means for micrograd's Value, whose copy shares its operands)."""
        node = self._ptr
        _lib.retain(node)
        twin = _of_class_of(self, _adopt(node))
        _copy_attributes(self, twin)
        return twin

    def __deepcopy__(self, memo: dict[int, Any]) -> Value:
        """An independent copy of the node and of the whole graph below it.

        Every node is rebuilt with the same op, data and grad, and nodes shared in the
        original are shared in the copy, also across all the objects of one
        ``copy.deepcopy`` call: deep-copying a model gives parameters that can be
        trained without touching the original's.
        """
        duplicate = _of_class_of(self, copy_graph(self._ptr, memo, _adopt_shared, Value), memo)
        _copy_attributes(self, duplicate, memo)
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


class _BorrowedValue(Value):
    """A handle that owns no reference: the stand-in for a node's own handles in the
    backward function the node keeps (see _backward_functions). It is valid while the
    node lives, which is as long as that function can run."""

    __slots__ = ()

    def __del__(self) -> None:  # type: ignore[override]  # nothing to bind early
        pass  # owns no reference to give back


def _borrow(handle: Value) -> Value:
    """A borrowed handle standing for ``handle``: the same node, and the same
    attributes (it shares the instance dictionary)."""
    value: Value = _new_object(_BorrowedValue)
    value._Value__node = handle._Value__node
    _set_instance_dict(value, _instance_dict(handle))
    return value


def _read_only_ptr(self: Value, address: object) -> NoReturn:
    raise AttributeError(
        "Value._ptr is read-only: it is the address of the node this object owns a "
        "reference to; make a new Value instead"
    )


# The node's address, for the rest of the package (and for inspection). Read-only.
Value._ptr = property(  # type: ignore[attr-defined]
    Value.__dict__["_Value__node"].__get__, _read_only_ptr, doc="The node's address (read-only)."
)


def _release_at_once(
    self: Value, _release: Callable[[int], int] = _lib.release_function()
) -> None:
    """``Value.__del__`` once the interpreter exits: gives the node's reference back at
    once, as nothing would make a pending release any more.

    The status is not checked: it can only report a pointer that is not a live node,
    which the object's reference rules out, and an exception raised here could only
    be printed."""
    try:
        node = self._Value__node
    except AttributeError:
        return
    if node is None:
        return
    self._Value__node = None  # type: ignore[assignment]
    _release(node)


def _release_at_once_from_now() -> None:
    """At exit: Values freed from now on (by atexit handlers, module teardown and the
    last collections) release their nodes at once, and what is pending goes now, so
    that nothing is left for a leak checker to find. Registered after _lib's own
    handlers, so it runs before them (atexit runs handlers last in, first out)."""
    Value.__del__ = _release_at_once  # type: ignore[method-assign]
    _lib.flush_releases()


atexit.register(_release_at_once_from_now)
