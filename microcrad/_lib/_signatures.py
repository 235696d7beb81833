"""The C signature of every function of microcrad.h, all called with the GIL held.

ctypes converts arguments by the declared types, so every function is declared before
use. Every pointer to a library object (a Value, an optimizer, a network, a tape, a
FILE) travels as ``c_void_p``: ctypes then hands back a Python int, or None for NULL.
Enums travel as ``c_int``.
"""

from __future__ import annotations

import ctypes
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

_node = c_void_p
_handle = c_void_p
_nodes = ctypes.POINTER(c_void_p)
_doubles = ctypes.POINTER(c_double)
_rng = ctypes.POINTER(c_uint64)

# (name, restype, argtypes) for every function of microcrad.h, in the header's order.
SIGNATURES: list[tuple[str, Any, list[Any]]] = [
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
    # the two function pointers travel as addresses (see _custom_ops)
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
