"""The bridge to the C library: loading it, declaring its functions, checking results.

This is the only part of the package that uses ctypes. Everything above it sees nodes
as plain ``int`` addresses and C failures as Python exceptions (``_errors`` says which
status becomes which exception). The other modules of the package import this one and
use the names below; the pieces live in:

* ``_loading``: finding the library (``$MICROCRAD_LIB`` or the packaged copy) and
  opening it as ``c``, through which every call is made;
* ``_signatures``: the C signature of every function (all called with the GIL held);
* ``_codes``: the numbers of microcrad.h (status and op codes, build bits, ...);
* ``_errors``: failures turned into exceptions;
* ``_arrays``: C arrays of node pointers, made only by ``pin`` (which holds the Values
  that own the nodes) or owning references of their own;
* ``_bulk``: many nodes' data or grad read or written in one call;
* ``_node_access``: the data and grad properties of Value, in place or checked;
* ``_nodes``: making and inspecting nodes through calls that need arrays or checks;
* ``_node_view``: reading and writing a node's data and grad in place;
* ``_info``: the library's version, build features and live node count;
* ``_optimizers``: the C optimizers behind microcrad.optim;
* ``_dot``: a graph as Graphviz DOT text;
* ``_custom_ops``: labels, op texts and Python backward functions kept with a node.
"""

from __future__ import annotations

from microcrad._lib._arrays import (
    NodeArray,
    PinnedNodes,
    Uncopyable,
    checked_count,
    pin,
    pin_nodes,
)
from microcrad._lib._bulk import BulkNodes
from microcrad._lib._codes import (
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
    ERR_FOREIGN,
    ERR_IO,
    ERR_NOMEM,
    ERR_NULL,
    ERR_OVERFLOW,
    ERR_RELEASED,
    MAGIC_LIVE,
    MAX_REF_COUNT,
    OK,
    OP_ADD,
    OP_CUSTOM,
    OP_DIV,
    OP_EXP,
    OP_LEAF,
    OP_LOG,
    OP_MUL,
    OP_NEG,
    OP_NEURON,
    OP_POW,
    OP_POW_CONST,
    OP_RELU,
    OP_SIGMOID,
    OP_SUB,
    OP_SUM,
    OP_TANH,
)
from microcrad._lib._custom_ops import (
    backward,
    backward_function,
    backward_step,
    check_backward,
    graph_lock,
    has_python_backward,
    label_of,
    op_text_of,
    remove_backward,
    set_backward,
    set_label,
    set_op_text,
)
from microcrad._lib._dot import dot_text
from microcrad._lib._errors import (
    MicrocradError,
    ReleasedValueError,
    check_number,
    check_status,
    exception_for_status,
    last_error_message,
    last_failure,
    node_or_raise,
)
from microcrad._lib._info import build_features, library_version, live_values, trim
from microcrad._lib._loading import LIBRARY_ENV_VAR, LIBRARY_FILE_NAME, c
from microcrad._lib._node_access import node_accessors
from microcrad._lib._node_view import DIRECT_ACCESS, NodeView
from microcrad._lib._nodes import (
    BINARY_CONSTRUCTORS,
    UNARY_CONSTRUCTORS,
    create,
    leaf,
    neuron,
    neuron_forward,
    op_name,
    op_of,
    param_of,
    prev,
    release,
    sum_of,
)
from microcrad._lib._optimizers import (
    adam_create,
    optimizer_free,
    optimizer_lr,
    optimizer_set_lr,
    optimizer_step,
    optimizer_step_zero_grad,
    optimizer_zero_grad,
    sgd_create,
)
from microcrad._lib._signatures import SIGNATURES as _SIGNATURES

__all__ = [
    "ACT_LINEAR",
    "ACT_RELU",
    "ACT_SIGMOID",
    "ACT_TANH",
    "BINARY_CONSTRUCTORS",
    "BUILD_ASAN",
    "BUILD_TSAN",
    "BUILD_UBSAN",
    "BUILD_VALGRIND",
    "BulkNodes",
    "DIRECT_ACCESS",
    "ERR_ARGUMENT",
    "ERR_CALLBACK",
    "ERR_FOREIGN",
    "ERR_IO",
    "ERR_NOMEM",
    "ERR_NULL",
    "ERR_OVERFLOW",
    "ERR_RELEASED",
    "LIBRARY_ENV_VAR",
    "LIBRARY_FILE_NAME",
    "MAGIC_LIVE",
    "MAX_REF_COUNT",
    "MicrocradError",
    "NodeArray",
    "NodeView",
    "PinnedNodes",
    "ReleasedValueError",
    "Uncopyable",
    "OK",
    "OP_ADD",
    "OP_CUSTOM",
    "OP_DIV",
    "OP_EXP",
    "OP_LEAF",
    "OP_LOG",
    "OP_MUL",
    "OP_NEG",
    "OP_NEURON",
    "OP_POW",
    "OP_POW_CONST",
    "OP_RELU",
    "OP_SIGMOID",
    "OP_SUB",
    "OP_SUM",
    "OP_TANH",
    "UNARY_CONSTRUCTORS",
    "adam_create",
    "backward",
    "backward_function",
    "backward_step",
    "check_backward",
    "graph_lock",
    "has_python_backward",
    "label_of",
    "op_text_of",
    "remove_backward",
    "set_backward",
    "set_label",
    "set_op_text",
    "build_features",
    "c",
    "check_number",
    "check_status",
    "checked_count",
    "create",
    "dot_text",
    "exception_for_status",
    "last_error_message",
    "last_failure",
    "leaf",
    "library_version",
    "live_values",
    "trim",
    "neuron",
    "neuron_forward",
    "node_accessors",
    "node_or_raise",
    "op_name",
    "op_of",
    "optimizer_free",
    "optimizer_lr",
    "optimizer_set_lr",
    "optimizer_step",
    "optimizer_step_zero_grad",
    "optimizer_zero_grad",
    "param_of",
    "pin",
    "pin_nodes",
    "prev",
    "release",
    "sgd_create",
    "sum_of",
]
