"""Nodes: making them, inspecting them, reading and writing their data and grad (in
place or checked), and what is kept with a node (labels, op texts, Python backward
functions)."""

from __future__ import annotations

import atexit
import ctypes
import threading
import weakref
from collections.abc import Iterable
from ctypes import c_double, c_int, c_uint32, c_void_p
from typing import Any, Callable, Optional

from microcrad._lib._arrays import NodeArray, PinnedNodes
from microcrad._lib._errors import (
    ReleasedValueError,
    check_number,
    check_status,
    exception_for_status,
    last_error_message,
    last_failure,
    node_or_raise,
)
from microcrad._lib._loading import (
    ACT_LINEAR,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    BUILD_ASAN,
    BUILD_TSAN,
    BUILD_UBSAN,
    BUILD_VALGRIND,
    ERR_ARGUMENT,
    ERR_CALLBACK,
    MAGIC_LIVE,
    OP_LEAF,
    OP_RELU,
    OP_SIGMOID,
    OP_TANH,
    build_features,
    c,
    graph_lock,
)
from microcrad._lib._arrays import BOUND as _PENDING_BOUND, flush



# -----------------------------------------------------------------------------
# Making and inspecting nodes
# -----------------------------------------------------------------------------

# ---------------------------------------------------------------------------------
# Making nodes
# ---------------------------------------------------------------------------------


def leaf(data: float) -> int:
    """A new leaf node holding ``data``; the caller owns its reference."""
    return node_or_raise(c.value_create_leaf(data))


def release(node: int) -> None:
    """Gives back one reference to ``node``."""
    check_status(c.value_release(node))


def retain(node: int) -> None:
    """Takes one more reference to ``node``."""
    check_status(c.value_retain(node))


def ref_count(node: int) -> int:
    """How many references ``node`` has (0 for a pointer that is not a live node),
    after the pending releases of dropped Values (see ``_arrays``)."""
    flush()
    count: int = c.value_ref_count(node)
    return count


def create(data: float, operands: PinnedNodes) -> int:
    """A new node holding ``data`` over ``operands`` (a leaf when there are none)."""
    if not isinstance(operands, PinnedNodes):
        # Bare addresses are what let operands be freed before C read them.
        raise TypeError("create takes the operands as pin(values, Value) gives them")
    return node_or_raise(c.value_create(data, operands.count, operands.array))


def create_op(op: int, param: float, operands: PinnedNodes) -> int:
    """A new node of op ``op`` over ``operands``, as the op's own constructor makes it
    (value_create_op); ``param`` is the op's constant, or the data of a leaf or custom
    node. Rebuilds a node of any op, so a new op needs no table here."""
    return node_or_raise(c.value_create_op(op, param, operands.count, operands.array))


def _make_room_for(operands: int) -> None:
    """Before making a node of ``operands`` operands: when it has more than the pending
    list holds addresses, the pending releases go first. Such a node weighs more than
    the whole list (8 bytes an operand slot), and a loop that makes one a step drops
    one Value a step: without this, up to ``BOUND`` dropped ones would wait at once
    (``Value.sum`` over 100,000 parameters: 200 MB where one release per drop kept
    5 MB). One call into the library is small next to making such a node."""
    if operands > _PENDING_BOUND:
        flush()


def sum_of(terms: PinnedNodes) -> int:
    """A new node ``terms[0] + terms[1] + ...``, one n-ary sum."""
    _make_room_for(terms.count)
    return node_or_raise(c.value_sum(terms.count, terms.array))


def neuron(weights: PinnedNodes, inputs: PinnedNodes, bias: PinnedNodes) -> int:
    """A new node ``bias + weights[0] * inputs[0] + ...``, one neuron pre-activation
    (``bias`` holds one node)."""
    if weights.count != inputs.count:
        raise ValueError(f"{weights.count} weights but {inputs.count} inputs")
    if bias.count != 1:
        raise ValueError(f"a neuron has one bias, got {bias.count}")
    _make_room_for(weights.count)
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
    _make_room_for(n)
    # Both nodes in one call (value_neuron_activation): a call costs more than the C
    # work of a small neuron.
    node: int | None = c.value_neuron_activation(
        n, params.array, inputs.array, nodes[n], _ACTIVATION_OF_OP[activation]
    )
    if node is None:
        raise last_failure()
    return node


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


def data_of(node: int) -> float:
    """The data of ``node``, checked (NaN from a bad pointer raises)."""
    return check_number(c.value_data(node), node)


def grad_of(node: int) -> float:
    """The grad of ``node``, checked (NaN from a bad pointer raises)."""
    return check_number(c.value_grad(node), node)


def set_data_and_grad(node: int, data: float, grad: float) -> None:
    """Writes ``node``'s data and grad."""
    check_status(c.value_set_data(node, data))
    check_status(c.value_set_grad(node, grad))


def param_of(node: int) -> float:
    """The constant parameter of ``node`` (the exponent of a constant power)."""
    return check_number(c.value_param(node), node)


# -----------------------------------------------------------------------------
# Reading and writing a node's data and grad in place, for microcrad.engine.
# -----------------------------------------------------------------------------

class NodeView(ctypes.Structure):
    """``struct Value`` of microcrad.h, laid over a node with ``from_address``.

    A view reads or writes a field at the cost of an attribute access (about 20 ns)
    instead of a checked call into the library (about 100 ns). Only for nodes that are
    certainly alive: a view checks nothing.
    """

    _fields_ = [
        ("data", c_double),
        ("grad", c_double),
        ("prev", c_void_p),
        ("param", c_double),
        ("ref_count", c_uint32),
        ("n_prevs", c_uint32),
        ("magic", c_uint32),
        ("op", ctypes.c_uint16),
        ("flags", ctypes.c_uint16),
    ]


def _direct_access_allowed() -> bool:
    """Whether Python may read and write nodes through a ``NodeView``.

    Not in a build for AddressSanitizer, ThreadSanitizer, UBSan or Valgrind: those
    tools watch the library's own accesses, and a read from Python (which is not
    instrumented) would slip past them, a use after free included. Everywhere else the
    layout is confirmed on a real node first, so a library that does not match this
    declaration falls back to the checked accessors instead of reading garbage.
    """
    if build_features() & (BUILD_ASAN | BUILD_TSAN | BUILD_UBSAN | BUILD_VALGRIND):
        return False
    node = node_or_raise(c.value_create_leaf(0.25))
    try:
        view = NodeView.from_address(node)
        return bool(
            view.data == 0.25
            and view.magic == MAGIC_LIVE
            and view.ref_count == 1
            and view.n_prevs == 0
            and view.op == OP_LEAF
        )
    finally:
        c.value_release(node)


# True when microcrad.engine reads and writes data and grad through NodeView.
DIRECT_ACCESS: bool = _direct_access_allowed()


# -----------------------------------------------------------------------------
# How a Value reads and writes its node's ``data`` and ``grad``: the property
# -----------------------------------------------------------------------------

# A getter takes a Value (anything with the node's address in ``_ptr``); a setter also
# takes the number.
Getter = Callable[[Any], float]
Setter = Callable[[Any, Any], None]


def node_accessors(to_float: Callable[[Any, str], float]) -> tuple[Getter, Setter, Getter, Setter]:
    """``(get_data, set_data, get_grad, set_grad)`` for ``Value``'s properties.

    ``to_float(number, role)`` turns what a user assigns into a double, raising
    TypeError for what is not a real number (the engine's own rule, passed in so that
    this package need not import the engine's modules).
    """
    if DIRECT_ACCESS:
        view_of = NodeView.from_address

        # A released Value (reached during garbage collection after its finalizer
        # ran) has _ptr None, which from_address rejects with a TypeError; the
        # handler, which costs nothing until it runs, names the cause instead.

        def get_data(value: Any) -> float:
            try:
                return view_of(value._ptr).data  # type: ignore[no-any-return]
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        def set_data(value: Any, number: Any) -> None:
            if type(number) is not float:
                number = to_float(number, "data")
            try:
                view_of(value._ptr).data = number
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        def get_grad(value: Any) -> float:
            try:
                return view_of(value._ptr).grad  # type: ignore[no-any-return]
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        def set_grad(value: Any, number: Any) -> None:
            if type(number) is not float:
                number = to_float(number, "grad")
            try:
                view_of(value._ptr).grad = number
            except TypeError:
                if value._ptr is None:
                    raise ReleasedValueError() from None
                raise

        return get_data, set_data, get_grad, set_grad

    value_data, value_grad = c.value_data, c.value_grad
    value_set_data, value_set_grad = c.value_set_data, c.value_set_grad

    def checked_get_data(value: Any) -> float:
        node = value._ptr
        return check_number(value_data(node), node)

    def checked_set_data(value: Any, number: Any) -> None:
        check_status(value_set_data(value._ptr, to_float(number, "data")))

    def checked_get_grad(value: Any) -> float:
        node = value._ptr
        return check_number(value_grad(node), node)

    def checked_set_grad(value: Any, number: Any) -> None:
        check_status(value_set_grad(value._ptr, to_float(number, "grad")))

    return checked_get_data, checked_set_data, checked_get_grad, checked_set_grad


# -----------------------------------------------------------------------------
# Labels, op texts and custom ops: the C side records of a node, from Python.
# -----------------------------------------------------------------------------

# A node's backward function (None after `del v._backward`), and weak references to
# every borrowed handle (see _backward_functions) handed out for the node, in this
# function or an earlier one: they all point at the node until it is freed.
Entry = tuple[Optional[Callable[[], object]], list["weakref.ref[Any]"]]

# The entry of every node that has had a backward function set from Python, by node
# address. The C callback stays registered for the node's whole life once set, so
# that its release (the node being freed) is always reported.
_functions: dict[int, Entry] = {}

# The node whose callback set_backward is replacing: the library releases the old
# one, which must not drop the entry (it is the node's, not the old function's).
_replacing: int | None = None

# The exception raised by a callback, until check_backward raises it.
_pending = threading.local()


def _run(node: int, context: int) -> int:
    """The C callback (microcrad_backward_fn): calls the function of node `context`."""
    try:
        entry = _functions.get(context)
        function = None if entry is None else entry[0]
        if function is not None:
            function()
    except BaseException as error:  # KeyboardInterrupt included: it is raised again
        _pending.error = error
        return 1
    return 0


def _release(context: int, _functions: dict[int, Entry] = _functions) -> None:
    """The C release function: the node is freed (or its callback replaced, which
    set_backward handles); forgets its function and invalidates the borrowed handles
    of it (bound as a default argument, so that it works while the interpreter shuts
    down)."""
    if context == _replacing:
        return
    entry = _functions.pop(context, None)
    if entry is not None:
        for reference in entry[1]:
            handle = reference()
            if handle is not None:
                handle._Value__node = None  # see engine.Value


_BACKWARD_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
_RELEASE_FN = ctypes.CFUNCTYPE(None, c_void_p)
_run_thunk = _BACKWARD_FN(_run)
_release_thunk = _RELEASE_FN(_release)
# Nodes may be freed at any time until the interpreter is gone, module teardown
# included, and each free of a custom op calls the release thunk: the two thunks must
# never be freed. One extra reference each, never given back, makes them immortal.
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_run_thunk))
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_release_thunk))
_RUN_ADDRESS = ctypes.cast(_run_thunk, c_void_p).value
_RELEASE_ADDRESS = ctypes.cast(_release_thunk, c_void_p).value


def _drop_functions_at_exit() -> None:
    """Takes every backward function off its node when the interpreter exits.

    The immortal thunks keep ``_functions`` alive, and with it every function's
    globals (a script's ``__main__`` dictionary, say), which Python's shutdown would
    then never clear: the script's graphs would never be freed, and a leak checker
    would report them. Dropping the functions first lets shutdown free everything.
    A node freed on the way drops its entry, so each entry still present is a live node.
    """
    for node in list(_functions):
        if node in _functions:
            c.value_set_backward(node, None, None, None)


atexit.register(_drop_functions_at_exit)


def set_backward(node: int, function: Callable[[], object], borrowed: Iterable[Any] = ()) -> None:
    """Makes ``function`` the backward step of ``node`` (a node with operands, made by
    value_create). ``borrowed`` are the borrowed handles of the node made for it: they
    point at the node until it is freed, even after ``function`` is replaced (code may
    have kept the old function, to wrap it, or be running it).

    Raises:
        ValueError: the node is a leaf or a built-in op.
    """
    global _replacing
    with graph_lock:
        old = _functions.get(node)
        references = [] if old is None else [r for r in old[1] if r() is not None]
        references.extend(weakref.ref(handle) for handle in borrowed)
        # Stored before the library can call it: a walk (on this thread, from inside
        # a callback) must find the new function.
        _functions[node] = (function, references)
        _replacing = node
        try:
            status = c.value_set_backward(node, _RUN_ADDRESS, node, _RELEASE_ADDRESS)
        finally:
            _replacing = None
        if status < 0:
            if old is None:
                del _functions[node]
            else:
                _functions[node] = old
            check_status(status)


def remove_backward(node: int) -> None:
    """Takes the backward function off ``node`` (a no-op when it has none): the node
    then passes no gradient on, as a custom op without a function."""
    with graph_lock:
        entry = _functions.get(node)
        if entry is not None:
            # The callback stays registered (doing nothing), so the node's borrowed
            # handles are still invalidated when it is freed.
            _functions[node] = (None, entry[1])


def backward_function(node: int) -> Callable[[], object] | None:
    """The Python backward function of ``node``, or None."""
    entry = _functions.get(node)
    return entry[0] if entry is not None else None


def has_python_backward(node: int) -> bool:
    """Whether ``node`` has a backward function set from Python."""
    return _functions.get(node, (None,))[0] is not None


def check_backward(status: int) -> None:
    """Checks the status of a call that ran backward callbacks: raises the exception a
    Python callback raised, as itself, or the exception for any other failure."""
    if status >= 0:
        return
    error: BaseException | None = getattr(_pending, "error", None)
    _pending.error = None
    if status == ERR_CALLBACK and error is not None:
        try:
            raise error
        finally:
            del error  # no reference cycle through this frame
    check_status(status)


def backward(node: int) -> None:
    """value_backward on ``node``."""
    with graph_lock:
        status = c.value_backward(node)
    if status < 0:
        check_backward(status)


def zero_grad(node: int) -> None:
    """value_zero_grad on ``node``: grad 0 on it and on every node it depends on."""
    with graph_lock:
        status = c.value_zero_grad(node)
    check_status(status)


def backward_step(node: int) -> None:
    """value_backward_step on ``node``: the node's own chain rule, once."""
    with graph_lock:
        status = c.value_backward_step(node)
    if status < 0:
        check_backward(status)


def _encode(text: str) -> bytes:
    data = text.encode("utf-8")
    if b"\0" in data:
        raise ValueError("the text contains a NUL character")
    return data


def set_label(node: int, label: str) -> None:
    """Sets the label of ``node`` ("" removes it)."""
    check_status(c.value_set_label(node, _encode(label)))


def label_of(node: int) -> str:
    """The label of ``node`` ("" for none)."""
    label: bytes | None = c.value_label(node)
    if label is None:
        check_status(c.microcrad_last_status())
        raise ValueError(last_error_message())
    return label.decode("utf-8")


def set_op_text(node: int, text: str | None) -> None:
    """Sets the op text of ``node`` (None removes it)."""
    check_status(c.value_set_op_text(node, None if text is None else _encode(text)))


def op_text_of(node: int) -> str | None:
    """The op text given to ``node``, or None (the node shows its op's symbol)."""
    text: bytes | None = c.value_op_text(node)
    return None if text is None else text.decode("utf-8")
