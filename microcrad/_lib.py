"""The bridge to the C library: loading it, declaring its functions, checking results.

This is the only module of the package that uses ctypes. Everything above it sees
nodes as plain ``int`` addresses and C failures as Python exceptions:

* a function returning ``Value *`` signals failure with NULL (``None`` through ctypes),
* a function returning ``double`` with NaN,
* a function returning ``int`` with a negative ``microcrad_status``;

in every case ``microcrad_last_error()`` holds the message, which becomes the text of
the exception. Status codes map to exceptions as follows:

* out of memory -> ``MemoryError``,
* an invalid argument -> ``ValueError``,
* a reference count that would pass its maximum -> ``OverflowError``,
* a failed write -> ``OSError``,
* a NULL, released or foreign pointer -> ``MicrocradError``, which always means a bug
  in microcrad itself, since Python code cannot get hold of a raw pointer.

The library is loaded from ``$MICROCRAD_LIB`` when that is set (for example a build
with AddressSanitizer), otherwise from the ``libmicrocrad.so`` installed inside the
package.
"""

from __future__ import annotations

import ctypes
import importlib.resources
import os
from collections.abc import Sequence
from ctypes import (
    c_char_p,
    c_double,
    c_int,
    c_int32,
    c_int64,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
)
from typing import Any

__all__ = [
    "MicrocradError",
    "c",
    "node_or_raise",
    "check_status",
    "check_number",
    "create",
    "sum_of",
    "neuron",
    "prev",
    "op_name",
    "live_values",
    "library_version",
    "build_features",
]

# The environment variable that points at a specific build of the library.
LIBRARY_ENV_VAR = "MICROCRAD_LIB"
LIBRARY_FILE_NAME = "libmicrocrad.so"

# microcrad_status codes, as in microcrad.h.
OK = 0
ERR_NULL = -1
ERR_RELEASED = -2
ERR_FOREIGN = -3
ERR_NOMEM = -4
ERR_ARGUMENT = -5
ERR_OVERFLOW = -6
ERR_IO = -7

# The largest reference count a node can hold (the C field is a uint32_t).
MAX_REF_COUNT = 2**32 - 1

# microcrad_op codes, as in microcrad.h.
OP_LEAF = 0
OP_CUSTOM = 1
OP_ADD = 2
OP_SUB = 3
OP_MUL = 4
OP_DIV = 5
OP_NEG = 6
OP_POW = 7
OP_POW_CONST = 8
OP_EXP = 9
OP_LOG = 10
OP_RELU = 11
OP_TANH = 12
OP_SIGMOID = 13
OP_SUM = 14
OP_NEURON = 15


class MicrocradError(RuntimeError):
    """The C library was handed a NULL, released or foreign node pointer.

    Python code cannot produce such a pointer on its own, so this error means that
    microcrad's bookkeeping of references is broken; please report it.
    """


# ---------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------


def _library_path() -> str:
    """The path of the shared library to load: ``$MICROCRAD_LIB`` or the packaged copy."""
    override = os.environ.get(LIBRARY_ENV_VAR)
    if override:
        return override
    packaged = importlib.resources.files("microcrad") / LIBRARY_FILE_NAME
    # The wheel installs the library as a real file inside the package directory, so
    # the resource has a file system path that the dynamic loader can open.
    return str(packaged)


def _load() -> ctypes.PyDLL:
    """Opens the library. Its functions are called with the GIL held (``PyDLL``),
    except those that :func:`_declare` lets release it (see ``_RELEASES_GIL``)."""
    path = _library_path()
    if not os.path.isfile(path):
        if os.environ.get(LIBRARY_ENV_VAR):
            how = f"${LIBRARY_ENV_VAR} is set to {path!r}, which is not a file"
        else:
            how = (
                f"{path!r} does not exist; install the package with "
                "'pip install .' (which builds the C library), or build it with CMake "
                f"and point ${LIBRARY_ENV_VAR} at the resulting {LIBRARY_FILE_NAME}"
            )
        raise ImportError(f"cannot load the microcrad C library: {how}")
    try:
        return ctypes.PyDLL(path)
    except OSError as error:
        raise ImportError(f"cannot load the microcrad C library from {path!r}: {error}") from error


# (name, restype, argtypes) for every function of microcrad.h, in the header's order.
# Every pointer to a library object (a Value, an optimizer, a network, a tape, a FILE)
# travels as c_void_p: ctypes then hands back a Python int, or None for NULL. Enums
# travel as c_int.
_node = c_void_p
_handle = c_void_p
_nodes = ctypes.POINTER(c_void_p)
_doubles = ctypes.POINTER(c_double)
_rng = ctypes.POINTER(c_uint64)
_SIGNATURES: list[tuple[str, Any, list[Any]]] = [
    # creating nodes
    ("value_create", _node, [c_double, c_int32, _nodes]),
    ("value_create_leaf", _node, [c_double]),
    ("value_add", _node, [_node, _node]),
    ("value_sub", _node, [_node, _node]),
    ("value_mul", _node, [_node, _node]),
    ("value_div", _node, [_node, _node]),
    ("value_neg", _node, [_node]),
    ("value_pow", _node, [_node, _node]),
    ("value_pow_const", _node, [_node, c_double]),
    ("value_exp", _node, [_node]),
    ("value_log", _node, [_node]),
    ("value_relu", _node, [_node]),
    ("value_tanh", _node, [_node]),
    ("value_sigmoid", _node, [_node]),
    ("value_add_scalar", _node, [_node, c_double]),
    ("value_sub_scalar", _node, [_node, c_double]),
    ("value_mul_scalar", _node, [_node, c_double]),
    ("value_div_scalar", _node, [_node, c_double]),
    ("value_scalar_add", _node, [c_double, _node]),
    ("value_scalar_sub", _node, [c_double, _node]),
    ("value_scalar_mul", _node, [c_double, _node]),
    ("value_scalar_div", _node, [c_double, _node]),
    ("value_scalar_pow", _node, [c_double, _node]),
    ("value_sum", _node, [c_int32, _nodes]),
    ("value_neuron", _node, [c_int32, _nodes, _nodes, _node]),
    # references
    ("value_retain", c_int, [_node]),
    ("value_release", c_int, [_node]),
    ("value_ref_count", c_uint32, [_node]),
    # gradients
    ("value_backward", c_int, [_node]),
    ("value_zero_grad", c_int, [_node]),
    # graph pictures
    ("value_write_dot", c_int, [_node, c_void_p]),
    # optimizers
    ("microcrad_sgd_create", _handle, [c_int32, _nodes, c_double, c_double, c_double]),
    (
        "microcrad_adam_create",
        _handle,
        [c_int32, _nodes, c_double, c_double, c_double, c_double, c_double],
    ),
    ("microcrad_optimizer_step", c_int, [_handle]),
    ("microcrad_optimizer_zero_grad", c_int, [_handle]),
    ("microcrad_optimizer_step_zero_grad", c_int, [_handle]),
    ("microcrad_optimizer_set_lr", c_int, [_handle, c_double]),
    ("microcrad_optimizer_lr", c_double, [_handle]),
    ("microcrad_optimizer_free", None, [_handle]),
    # neural networks
    ("value_neuron_activation", _node, [c_int32, _nodes, _nodes, _node, c_int]),
    ("microcrad_random_uniform", c_double, [_rng, c_double, c_double]),
    ("microcrad_neuron_create", _handle, [c_int32, c_int, _rng]),
    ("microcrad_neuron_forward", _node, [_handle, _nodes]),
    ("microcrad_neuron_parameters", c_int64, [_handle, _nodes, c_int64]),
    ("microcrad_neuron_n_parameters", c_int64, [_handle]),
    ("microcrad_neuron_free", None, [_handle]),
    ("microcrad_layer_create", _handle, [c_int32, c_int32, c_int, _rng]),
    ("microcrad_layer_forward", c_int, [_handle, _nodes, _nodes]),
    ("microcrad_layer_parameters", c_int64, [_handle, _nodes, c_int64]),
    ("microcrad_layer_n_parameters", c_int64, [_handle]),
    ("microcrad_layer_free", None, [_handle]),
    (
        "microcrad_mlp_create",
        _handle,
        [c_int32, c_int32, ctypes.POINTER(c_int32), c_int, c_int, _rng],
    ),
    ("microcrad_mlp_forward", c_int, [_handle, _nodes, _nodes]),
    ("microcrad_mlp_parameters", c_int64, [_handle, _nodes, c_int64]),
    ("microcrad_mlp_n_parameters", c_int64, [_handle]),
    ("microcrad_mlp_free", None, [_handle]),
    # replay
    ("microcrad_tape_create", _handle, [_node]),
    ("microcrad_tape_forward", c_int, [_handle]),
    ("microcrad_tape_backward", c_int, [_handle]),
    ("microcrad_tape_zero_grad", c_int, [_handle]),
    ("microcrad_tape_size", c_int64, [_handle]),
    ("microcrad_tape_data", c_double, [_handle]),
    ("microcrad_tape_free", None, [_handle]),
    # bulk access
    ("value_set_data_many", c_int, [c_int32, _nodes, _doubles]),
    ("value_get_data_many", c_int, [c_int32, _nodes, _doubles]),
    ("value_get_grad_many", c_int, [c_int32, _nodes, _doubles]),
    # accessors
    ("value_data", c_double, [_node]),
    ("value_grad", c_double, [_node]),
    ("value_set_data", c_int, [_node, c_double]),
    ("value_set_grad", c_int, [_node, c_double]),
    ("value_op", c_int, [_node]),
    ("value_param", c_double, [_node]),
    ("value_n_prevs", c_int64, [_node]),
    ("value_prev", _node, [_node, c_uint32]),
    ("microcrad_op_name", c_char_p, [c_int]),
    # library state
    ("microcrad_live_values", c_int64, []),
    ("microcrad_last_error", c_char_p, []),
    ("microcrad_last_status", c_int, []),
    ("microcrad_clear_error", None, []),
    ("microcrad_set_quiet", c_int, [c_int]),
    ("microcrad_status_string", c_char_p, [c_int]),
    ("microcrad_version", c_char_p, []),
    ("microcrad_build_features", c_uint, []),
    # test hooks
    ("microcrad_fail_allocation", c_int, [c_int64]),
    ("microcrad_allocation_count", c_int64, []),
]


# The functions whose running time grows with a whole graph or parameter list: they
# release the GIL while they run (ctypes.CDLL's convention), so that other Python
# threads carry on meanwhile. Every other function takes tens of nanoseconds and keeps
# the GIL (ctypes.PyDLL's convention): letting it go and taking it back costs about 30
# ns a call, more than the C work of the call itself; ``a * b`` (two calls, with the
# result's release) went from about 570 to 510 ns.
#
# Either way is thread-safe: reference counts are C11 atomics, so retaining and
# releasing nodes may happen on any thread, with or without the GIL; the writes to
# nodes that must not overlap (backward, zero_grad, setting data or grad, replay, an
# optimizer's step) are the caller's to serialise, as microcrad.h says, exactly as
# they would be without the GIL. value_release stays on the fast side although
# freeing a large graph takes a while: it runs for nearly every operation (each
# temporary Value's __del__), and CPython, too, frees large structures with the GIL
# held.
_RELEASES_GIL = frozenset(
    {
        "value_backward",
        "value_zero_grad",
        "value_write_dot",
        "microcrad_sgd_create",
        "microcrad_adam_create",
        "microcrad_optimizer_step",
        "microcrad_optimizer_zero_grad",
        "microcrad_optimizer_step_zero_grad",
        "microcrad_optimizer_free",
        "microcrad_neuron_create",
        "microcrad_layer_create",
        "microcrad_layer_forward",
        "microcrad_layer_free",
        "microcrad_mlp_create",
        "microcrad_mlp_forward",
        "microcrad_mlp_free",
        "microcrad_tape_create",
        "microcrad_tape_forward",
        "microcrad_tape_backward",
        "microcrad_tape_zero_grad",
        "microcrad_tape_free",
    }
)


def _declare(lib: ctypes.PyDLL) -> None:
    """Gives every function its C signature, so ctypes converts arguments correctly,
    and makes the functions of ``_RELEASES_GIL`` release the GIL."""
    # A second handle of the same file: the dynamic loader hands back the library that
    # is already loaded, so both handles call the same code and share its state.
    releasing = ctypes.CDLL(lib._name)
    for name, restype, argtypes in _SIGNATURES:
        try:
            function = getattr(releasing if name in _RELEASES_GIL else lib, name)
        except AttributeError as error:
            raise ImportError(
                f"the microcrad C library at {lib._name!r} does not export {name}(); "
                "it does not match this version of the Python package"
            ) from error
        function.restype = restype
        function.argtypes = argtypes
        setattr(lib, name, function)


c = _load()
_declare(c)

# Every failure reaches Python as an exception carrying the library's message, so the
# library's own echo of that message on stderr would only say the same thing twice
# (and would print even for errors that the caller catches and handles).
c.microcrad_set_quiet(1)


# ---------------------------------------------------------------------------------
# Turning failures into exceptions
# ---------------------------------------------------------------------------------


def _last_error_message() -> str:
    message: bytes = c.microcrad_last_error()
    return message.decode("utf-8", errors="replace")


def _exception_for_status(status: int, message: str) -> Exception:
    if status == ERR_NOMEM:
        return MemoryError(message)
    if status == ERR_ARGUMENT:
        return ValueError(message)
    if status == ERR_OVERFLOW:
        return OverflowError(message)
    if status == ERR_IO:
        return OSError(message)
    # ERR_NULL, ERR_RELEASED, ERR_FOREIGN, or a code this version does not know.
    return MicrocradError(message)


def _failure(message: str) -> Exception:
    """The exception for a constructor that returned NULL: the failing call recorded
    its status (microcrad_last_status) and message on this thread."""
    return _exception_for_status(c.microcrad_last_status(), message)


def node_or_raise(result: int | None, *operands: int) -> int:
    """Returns the node pointer ``result`` of a constructor called on ``operands``.

    Raises the matching exception when ``result`` is NULL.
    """
    if result is None:
        raise _failure(_last_error_message())
    return result


def last_failure() -> Exception:
    """The exception for the constructor that has just returned NULL on this thread.

    For hot paths that test the result for None themselves, so that a successful call
    costs no extra function call.
    """
    return _failure(_last_error_message())


def check_status(status: int) -> None:
    """Raises the exception matching a negative ``microcrad_status``."""
    if status < 0:
        raise _exception_for_status(status, _last_error_message())


def check_number(result: float, node: int) -> float:
    """Returns a ``double`` read from ``node``, raising if the read failed.

    NaN is both the error signal and an ordinary value a node may hold, so on NaN the
    node is checked again to tell the two apart.
    """
    if result != result:  # NaN: cheaper than math.isnan on the hot path
        message = _last_error_message()
        status = c.value_op(node)
        if status < 0:
            raise _exception_for_status(status, message)
    return result


# ---------------------------------------------------------------------------------
# Checked helpers for the calls that need ctypes arrays or strings
# ---------------------------------------------------------------------------------


def _pointer_array(nodes: Sequence[int]) -> ctypes.Array[c_void_p]:
    return (c_void_p * len(nodes))(*nodes)


def _count(nodes: Sequence[int]) -> int:
    if len(nodes) > 2**31 - 1:
        raise ValueError(f"too many operands for one node: {len(nodes)}")
    return len(nodes)


def create(data: float, operands: Sequence[int]) -> int:
    """A new node holding ``data`` over ``operands`` (a leaf when there are none)."""
    n = _count(operands)
    result = c.value_create(data, n, _pointer_array(operands) if n else None)
    return node_or_raise(result, *operands)


def sum_of(terms: Sequence[int]) -> int:
    """A new node ``terms[0] + terms[1] + ...``, one n-ary sum."""
    n = _count(terms)
    result = c.value_sum(n, _pointer_array(terms) if n else None)
    return node_or_raise(result, *terms)


def neuron(weights: Sequence[int], inputs: Sequence[int], bias: int) -> int:
    """A new node ``bias + weights[0] * inputs[0] + ...``, one neuron pre-activation."""
    if len(weights) != len(inputs):
        raise ValueError(f"{len(weights)} weights but {len(inputs)} inputs")
    n = _count(weights)
    result = c.value_neuron(n, _pointer_array(weights), _pointer_array(inputs), bias)
    return node_or_raise(result, bias, *weights, *inputs)


def prev(node: int) -> list[int]:
    """The operands of ``node``, as borrowed pointers (in operand order)."""
    count = c.value_n_prevs(node)
    check_status(count)
    operands = []
    for index in range(count):
        operand = c.value_prev(node, index)
        if operand is None:
            raise _exception_for_status(ERR_ARGUMENT, _last_error_message())
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


def live_values() -> int:
    """How many nodes the C library has allocated and not yet freed, in this process.

    A graph is freed as soon as nothing refers to its root, so after the Python
    objects of a computation are gone (and ``gc.collect()`` has run, if they were part
    of reference cycles) this returns to its earlier value.
    """
    count: int = c.microcrad_live_values()
    return count


def library_version() -> str:
    """The version of the loaded C library, "MAJOR.MINOR.PATCH"."""
    version: bytes = c.microcrad_version()
    return version.decode("ascii")


def build_features() -> int:
    """The ``MICROCRAD_BUILD_*`` bits of the loaded library (sanitizers, ...)."""
    features: int = c.microcrad_build_features()
    return features


# ---------------------------------------------------------------------------------
# Reading and writing a node's data and grad in place (microcrad.engine)
# ---------------------------------------------------------------------------------

# microcrad_build_features() bits, as in microcrad.h.
BUILD_ASAN = 1
BUILD_TSAN = 2
BUILD_UBSAN = 4
BUILD_VALGRIND = 8

MAGIC_LIVE = 0x6D637276


class NodeView(ctypes.Structure):
    """``struct Value`` of microcrad.h, laid over a node with ``from_address``.

    microcrad.h lets C programs read ``data`` and ``grad`` and write ``data`` directly;
    a view does the same from Python at the cost of an attribute access (about 20 ns)
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
        return (
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


# ---------------------------------------------------------------------------------
# Neurons: the same weights passed to C call after call (microcrad.nn)
# ---------------------------------------------------------------------------------


class NodeArray:
    """A C array of node pointers that owns one reference to each node.

    For nodes handed to C again and again, such as a neuron's weights and bias: the
    array is built once, and its own references keep every pointer in it valid for as
    long as the array lives, whatever happens to the Values the nodes came from.
    """

    __slots__ = ("array", "nodes")

    def __init__(self, nodes: Sequence[int]) -> None:
        nodes = tuple(nodes)
        _count(nodes)
        taken = 0
        try:
            for node in nodes:
                check_status(c.value_retain(node))
                taken += 1
        except BaseException:
            for node in nodes[:taken]:
                c.value_release(node)
            raise
        self.nodes: tuple[int, ...] = nodes
        self.array: ctypes.Array[c_void_p] = _pointer_array(nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __reduce__(self) -> Any:
        # A copy would share the pointers without holding references of its own.
        raise TypeError("a NodeArray cannot be copied or pickled; make a new one")

    def __del__(self, _release: Any = c.value_release) -> None:
        # _release is bound early: at interpreter shutdown the module globals may be gone.
        nodes = getattr(self, "nodes", ())
        self.nodes = ()
        for node in nodes:
            _release(node)


def pointer_array(nodes: Sequence[int]) -> ctypes.Array[c_void_p]:
    """A C array of ``nodes`` that holds no references: the caller keeps the nodes alive
    for as long as it uses the array (typically for the duration of one call)."""
    return _pointer_array(nodes)


def leaf(data: float) -> int:
    """A new leaf node holding ``data``; the caller owns its reference."""
    return node_or_raise(c.value_create_leaf(data))


def release(node: int) -> None:
    """Gives back one reference to ``node``."""
    check_status(c.value_release(node))


def neuron_forward(params: NodeArray, inputs: ctypes.Array[c_void_p], activation: int) -> int:
    """A new node ``act(b + w[0] * x[0] + ...)``: one value_neuron node, then one
    activation node.

    ``params`` holds ``w[0], ..., w[n-1], b`` (micrograd's parameter order), ``inputs``
    the n nodes ``x`` (from ``pointer_array``; the caller keeps them alive), and
    ``activation`` is ``OP_RELU``, ``OP_TANH``, ``OP_SIGMOID``, or ``OP_LEAF`` for none.
    """
    nodes = params.nodes
    n = len(nodes) - 1
    # C reads exactly n inputs: a shorter array would be read past its end.
    if len(inputs) != n:
        raise ValueError(f"the neuron has {n} weights but got {len(inputs)} inputs")
    # Both nodes in one call (value_neuron_activation): a call costs more than the C
    # work of a small neuron.
    node: int | None = c.value_neuron_activation(
        n, params.array, inputs, nodes[n], _ACTIVATION_OF_OP[activation]
    )
    if node is None:
        raise _failure(_last_error_message())
    return node


# The microcrad_activation that applies each op (OP_LEAF: none), as microcrad.h numbers
# them.
_ACTIVATION_OF_OP = {OP_LEAF: 0, OP_RELU: 1, OP_TANH: 2, OP_SIGMOID: 3}


# ---------------------------------------------------------------------------------
# Optimizers (microcrad.optim)
# ---------------------------------------------------------------------------------


def _handle_or_raise(handle: int | None) -> int:
    if handle is None:
        raise _failure(_last_error_message())
    return handle


def sgd_create(params: Sequence[int], lr: float, momentum: float, weight_decay: float) -> int:
    """A new C SGD optimizer over ``params`` (it retains them); free it with
    ``optimizer_free``."""
    n = _count(params)
    handle = c.microcrad_sgd_create(
        n, _pointer_array(params) if n else None, lr, momentum, weight_decay
    )
    return _handle_or_raise(handle)


def adam_create(
    params: Sequence[int],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
) -> int:
    """A new C Adam optimizer over ``params`` (it retains them); free it with
    ``optimizer_free``."""
    n = _count(params)
    handle = c.microcrad_adam_create(
        n, _pointer_array(params) if n else None, lr, beta1, beta2, eps, weight_decay
    )
    return _handle_or_raise(handle)


def optimizer_step(handle: int) -> None:
    """One update of every parameter of the optimizer, in one C call."""
    check_status(c.microcrad_optimizer_step(handle))


def optimizer_step_zero_grad(handle: int) -> None:
    """One update of every parameter, then its gradient set to 0, in one C call."""
    check_status(c.microcrad_optimizer_step_zero_grad(handle))


def optimizer_zero_grad(handle: int) -> None:
    """Sets the gradient of every parameter of the optimizer to 0."""
    check_status(c.microcrad_optimizer_zero_grad(handle))


def optimizer_set_lr(handle: int, lr: float) -> None:
    """Changes the optimizer's learning rate."""
    check_status(c.microcrad_optimizer_set_lr(handle, lr))


def optimizer_lr(handle: int) -> float:
    """The optimizer's learning rate."""
    lr: float = c.microcrad_optimizer_lr(handle)
    if lr != lr:  # NaN: a learning rate never is, so the handle was bad
        raise _failure(_last_error_message())
    return lr


def optimizer_free(handle: int, _free: Any = c.microcrad_optimizer_free) -> None:
    """Frees the optimizer and releases its parameters."""
    # _free is bound early so that __del__ methods may call this at interpreter shutdown.
    _free(handle)


# ---------------------------------------------------------------------------------
# DOT text (microcrad.viz)
# ---------------------------------------------------------------------------------

_libc: ctypes.CDLL | None = None


def _c_runtime() -> ctypes.CDLL:
    """The C runtime's stream functions, declared on first use."""
    global _libc
    if _libc is None:
        # The symbols the process already has: on Linux and macOS that includes libc.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.open_memstream.restype = c_void_p
        libc.open_memstream.argtypes = [ctypes.POINTER(c_void_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.fclose.restype = c_int
        libc.fclose.argtypes = [c_void_p]
        libc.free.restype = None
        libc.free.argtypes = [c_void_p]
        _libc = libc
    return _libc


def dot_text(node: int) -> str:
    """The graph below ``node`` as Graphviz DOT text, from value_write_dot.

    The text is written to an in-memory stream (open_memstream), so no file is made.
    """
    libc = _c_runtime()
    buffer = c_void_p()
    size = ctypes.c_size_t()
    stream = libc.open_memstream(ctypes.byref(buffer), ctypes.byref(size))
    if not stream:
        errno = ctypes.get_errno()
        raise OSError(errno, f"open_memstream failed: {os.strerror(errno)}")
    try:
        try:
            status = c.value_write_dot(node, stream)
        finally:
            # Closing is what makes buffer and size final.
            closed = libc.fclose(stream)
        check_status(status)
        if closed != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"closing the DOT stream failed: {os.strerror(errno)}")
        return ctypes.string_at(buffer.value, size.value).decode("utf-8")  # type: ignore[arg-type]
    finally:
        libc.free(buffer)
