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


def _load() -> ctypes.CDLL:
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
        return ctypes.CDLL(path)
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
    ("microcrad_optimizer_set_lr", c_int, [_handle, c_double]),
    ("microcrad_optimizer_lr", c_double, [_handle]),
    ("microcrad_optimizer_free", None, [_handle]),
    # neural networks
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


def _declare(lib: ctypes.CDLL) -> None:
    """Gives every function its C signature, so ctypes converts arguments correctly."""
    for name, restype, argtypes in _SIGNATURES:
        try:
            function = getattr(lib, name)
        except AttributeError as error:
            raise ImportError(
                f"the microcrad C library at {lib._name!r} does not export {name}(); "
                "it does not match this version of the Python package"
            ) from error
        function.restype = restype
        function.argtypes = argtypes


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
