"""The C library itself: finding and opening it (``c``), the C signature of each of its
functions, the numbers of microcrad.h, its op table, and what it says about itself
(version, build features, live node count)."""

from __future__ import annotations

import ctypes
import importlib.resources
import os
import sys
import threading
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
from typing import Any, Callable, NamedTuple



# -----------------------------------------------------------------------------
# The numbers microcrad.h defines
# -----------------------------------------------------------------------------

# microcrad_status codes.
OK = 0
ERR_NULL = -1
ERR_RELEASED = -2
ERR_FOREIGN = -3
ERR_NOMEM = -4
ERR_ARGUMENT = -5
ERR_OVERFLOW = -6
ERR_IO = -7
ERR_CALLBACK = -8  # MICROCRAD_ERR_CALLBACK: a backward callback failed

# The largest reference count a node can hold (the C field is a uint32_t).
MAX_REF_COUNT = 2**32 - 1

# microcrad_op codes.
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

# microcrad_activation codes.
ACT_LINEAR = 0
ACT_RELU = 1
ACT_TANH = 2
ACT_SIGMOID = 3

# microcrad_build_features() bits.
BUILD_ASAN = 1
BUILD_TSAN = 2
BUILD_UBSAN = 4
BUILD_VALGRIND = 8

# MICROCRAD_MAGIC_LIVE: the canary of a node that is alive.
MAGIC_LIVE = 0x6D637276


# -----------------------------------------------------------------------------
# The C signature of every function of microcrad.h, all called with the GIL held.
# -----------------------------------------------------------------------------

_node = c_void_p
_handle = c_void_p
_nodes = ctypes.POINTER(c_void_p)
_doubles = ctypes.POINTER(c_double)
_rng = ctypes.POINTER(c_uint64)

# (name, restype, argtypes) for every function of microcrad.h, in the header's order,
# except the constructors of single ops (value_add, value_exp, value_mul_scalar, ...):
# those have one of the shapes of OP_CONSTRUCTOR_SHAPES and are declared when
# microcrad.engine asks for them (op_constructor), so that a new op needs no line here.
SIGNATURES: list[tuple[str, Any, list[Any]]] = [
    # creating nodes
    ("value_create", _node, [c_double, c_int32, _nodes]),
    ("value_create_leaf", _node, [c_double]),
    ("value_sum", _node, [c_int32, _nodes]),
    ("value_neuron", _node, [c_int32, _nodes, _nodes, _node]),
    # references
    ("value_retain", c_int, [_node]),
    ("value_release", c_int, [_node]),
    ("value_release_many", c_int, [c_int32, _nodes]),
    ("value_ref_count", c_uint32, [_node]),
    # scopes (for C programs; the Python layer owns its references one by one)
    ("microcrad_scope_begin", _handle, []),
    ("microcrad_scope_end", c_int, [_handle]),
    ("microcrad_scope_size", c_int64, [_handle]),
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
    ("microcrad_op_count", c_int, []),
    ("microcrad_op_arity", c_int, [c_int]),
    ("microcrad_op_constructor", c_char_p, [c_int]),
    ("microcrad_op_takes_param", c_int, [c_int]),
    ("value_create_op", _node, [c_int, c_double, c_int32, _nodes]),
    # library state
    ("microcrad_live_values", c_int64, []),
    ("microcrad_trim", c_int64, []),
    ("microcrad_last_error", c_char_p, []),
    ("microcrad_last_status", c_int, []),
    ("microcrad_clear_error", None, []),
    ("microcrad_set_quiet", c_int, [c_int]),
    ("microcrad_status_string", c_char_p, [c_int]),
    ("microcrad_version", c_char_p, []),
    ("microcrad_build_features", c_uint, []),
    # labels and custom ops
    ("value_set_label", c_int, [_node, c_char_p]),
    ("value_label", c_char_p, [_node]),
    ("value_set_op_text", c_int, [_node, c_char_p]),
    ("value_op_text", c_char_p, [_node]),
    # the two function pointers travel as addresses (see _nodes)
    ("value_set_backward", c_int, [_node, c_void_p, c_void_p, c_void_p]),
    ("value_backward_step", c_int, [_node]),
    # test hooks
    ("microcrad_fail_allocation", c_int, [c_int64]),
    ("microcrad_allocation_count", c_int64, []),
]


# Every function is called with the GIL held (ctypes.PyDLL's convention), the long
# ones (backward, replay, an optimizer's step) included. Two reasons:
#   * safety: the calls that write to nodes (backward, zero_grad, setting data or
#     grad, replay, optimizer steps) must not overlap with anything else touching the
#     same nodes (microcrad.h, "Threads"). Holding the GIL makes every Python thread's
#     calls into the library take turns, so two threads back-propagating into a shared
#     leaf, or one reading a grad while another runs backward, get exact results
#     instead of a data race. Reference counts are C11 atomics regardless, so C
#     threads of the caller's own may still share nodes as the header allows.
#   * speed: letting the GIL go and taking it back costs about 30 ns a call, more than
#     the C work of most calls; ``a * b`` went from about 570 to 510 ns.
# The price is that a long backward blocks other Python threads meanwhile, as a long
# pure-Python computation would.


# The C signatures of the constructors of single ops, by shape: how many operands are
# nodes and how many are numbers (which become leaf operands, or a constant parameter).
OP_CONSTRUCTOR_SHAPES: dict[str, tuple[Any, list[Any]]] = {
    "node": (_node, [_node]),  # value_neg, value_exp, ...
    "node_node": (_node, [_node, _node]),  # value_add, value_pow, ...
    "node_number": (_node, [_node, c_double]),  # value_add_scalar, value_pow_const, ...
    "number_node": (_node, [c_double, _node]),  # value_scalar_add, value_scalar_pow, ...
}


def declare(lib: ctypes.PyDLL) -> None:
    """Gives every function of ``lib`` its C signature, so ctypes converts arguments
    correctly (without one, a pointer would be cut to 32 bits).

    Raises:
        ImportError: the library lacks one of the functions (it is not microcrad's, or
            not of this version).
    """
    for name, restype, argtypes in SIGNATURES:
        try:
            function = getattr(lib, name)
        except AttributeError as error:
            raise ImportError(
                f"the microcrad C library at {lib._name!r} does not export {name}(); "
                "it does not match this version of the Python package"
            ) from error
        function.restype = restype
        function.argtypes = argtypes
        setattr(lib, name, function)


# -----------------------------------------------------------------------------
# Finding and opening the C library: ``c``, through which every call is made.
# -----------------------------------------------------------------------------

# The environment variable that points at a specific build of the library.
LIBRARY_ENV_VAR = "MICROCRAD_LIB"
LIBRARY_FILE_NAME = "libmicrocrad.so"


def library_path() -> str:
    """The path of the shared library to load: ``$MICROCRAD_LIB`` or the packaged copy."""
    override = os.environ.get(LIBRARY_ENV_VAR)
    if override:
        return override
    packaged = importlib.resources.files("microcrad") / LIBRARY_FILE_NAME
    # The wheel installs the library as a real file inside the package directory, so
    # the resource has a file system path that the dynamic loader can open.
    return str(packaged)


def _missing_library_advice(path: str) -> str:
    """Why the packaged library is missing, and what to run.

    The usual case is Python started in a source checkout (the repository root, where
    ``./microcrad`` holds the Python sources but no compiled library) by an interpreter
    that has no editable install of the checkout: ./microcrad then shadows any installed
    copy.
    """
    package = os.path.dirname(path)
    checkout = os.path.dirname(package)
    if not os.path.isfile(os.path.join(checkout, "CMakeLists.txt")):
        return (
            f"{path!r} does not exist; reinstall the package with 'pip install' "
            "(which builds the C library)"
        )
    advice = (
        f"this Python ({sys.executable}) imported microcrad from the source checkout "
        f"{checkout!r}, which holds no compiled library, because it has no editable "
        "install of that checkout. "
    )
    venv_python = os.path.join(checkout, ".venv", "bin", "python")
    if os.path.isfile(venv_python):
        advice += (
            f"The checkout's environment has one: use {venv_python} (or run "
            "'source .venv/bin/activate' first, or pick .venv as the notebook kernel); "
            "after pulling new C code, run 'bash tools/setup.sh' again to rebuild it. "
        )
    else:
        advice += "Run 'bash tools/setup.sh' there and use .venv/bin/python. "
    return advice + (
        "Alternatively: 'pip install -e .' into this Python, or build the library with "
        "'cmake --preset release && cmake --build --preset release' and set "
        f"${LIBRARY_ENV_VAR}={os.path.join(checkout, 'build', 'release', LIBRARY_FILE_NAME)}"
    )


def load() -> ctypes.PyDLL:
    """Opens the library and declares its functions, which are all called with the GIL
    held (``PyDLL``; the note above ``declare`` says why).

    Raises:
        ImportError: the file is missing, is not a shared library, or is not
            microcrad's; the message says which, and how to get the right one.
    """
    path = library_path()
    if not os.path.isfile(path):
        if os.environ.get(LIBRARY_ENV_VAR):
            how = f"${LIBRARY_ENV_VAR} is set to {path!r}, which is not a file"
        else:
            how = _missing_library_advice(path)
        raise ImportError(f"cannot load the microcrad C library: {how}")
    try:
        lib = ctypes.PyDLL(path)
    except OSError as error:
        raise ImportError(f"cannot load the microcrad C library from {path!r}: {error}") from error
    declare(lib)
    # Every failure reaches Python as an exception carrying the library's message, so
    # the library's own echo of that message on stderr would only say the same thing
    # twice (and would print even for errors that the caller catches and handles).
    lib.microcrad_set_quiet(1)
    return lib


c = load()
"""The loaded library. Only the modules of ``microcrad._lib`` call it (and tests, to
reach the library below the Python layer); see the rule in ``_lib/__init__``."""


class Op(NamedTuple):
    """One op of the library's op table (microcrad_op_count, microcrad_op_name, ...)."""

    code: int
    name: str  # microcrad_op_name: "+", "ReLU", "" for a leaf, ...
    arity: int  # the number of operands; -1 for any number (sum, neuron, custom)
    takes_param: bool  # whether it keeps a constant (POW_CONST's exponent)


def _op_table() -> tuple[Op, ...]:
    """Every op, by code, as the loaded library describes it."""
    return tuple(
        Op(
            code,
            c.microcrad_op_name(code).decode("ascii"),
            c.microcrad_op_arity(code),
            c.microcrad_op_takes_param(code) == 1,
        )
        for code in range(c.microcrad_op_count())
    )


OPS = _op_table()
"""The library's op table, indexed by op code: code that handles every op alike (graph
copies, tests that enumerate ops) reads it, so a new op needs no table in Python. The
named op codes above (OP_ADD, ...) are for code that handles one op specially; a test
checks them against microcrad.h."""


def op_constructor(name: str, shape: str) -> Callable[..., int | None]:
    """The C function ``name``, a constructor of one op taking its operands as
    ``shape`` (a key of ``OP_CONSTRUCTOR_SHAPES``), declared with that signature.

    This is the bound C function itself, for the operators of Value, whose Python cost
    is most of the cost of an operation: it returns the new node's address (one
    reference, owned by the caller), or None on failure, when ``last_failure()`` gives
    the exception to raise.

    Raises:
        ImportError: the library does not export ``name`` (it is not of this version).
        KeyError: ``shape`` is not a known shape.
    """
    restype, argtypes = OP_CONSTRUCTOR_SHAPES[shape]
    try:
        function = getattr(c, name)
    except AttributeError as error:
        raise ImportError(f"the microcrad C library does not export {name}()") from error
    function.restype = restype
    function.argtypes = argtypes
    constructor: Callable[..., int | None] = function
    return constructor


def release_function() -> Callable[[int], int]:
    """value_release itself, for ``Value.__del__`` once the interpreter exits (it binds
    it early, as it may run at interpreter shutdown; until then releases are batched,
    see ``_arrays``): gives back one reference and returns the status."""
    release: Callable[[int], int] = c.value_release
    return release


# -----------------------------------------------------------------------------
# What the loaded library says about itself
# -----------------------------------------------------------------------------

# The live-node count and trim() are in _arrays: they make the pending releases of
# dropped Values first, which a reader here, below them, could not.


def library_version() -> str:
    """The version of the loaded C library, "MAJOR.MINOR.PATCH"."""
    version: bytes = c.microcrad_version()
    return version.decode("ascii")


def build_features() -> int:
    """The ``MICROCRAD_BUILD_*`` bits of the loaded library (sanitizers, ...)."""
    features: int = c.microcrad_build_features()
    return features


# One lock, re-entrant, around every Python call that walks or writes a graph
# (backward, zero_grad, a node's _backward step, a tape's replay, an optimizer's step,
# bulk writes). The GIL alone does not make such calls take turns once a custom op's
# Python function runs inside a walk: the function may let the GIL go (I/O, a sleep,
# or just the interpreter's switch interval), and another thread's walk over the same
# nodes would then meet the first walk's marks and corrupt both. Re-entrant so that a
# callback may still read and write data and grads, set a _backward or use a tape;
# starting another walk from inside a callback is refused by the library itself.
graph_lock = threading.RLock()
