"""Reading and writing a node's data and grad in place, for microcrad.engine.

microcrad.h lets C programs read ``data`` and ``grad`` and write ``data`` directly;
``NodeView`` does the same from Python, when ``DIRECT_ACCESS`` says it may.
"""

from __future__ import annotations

import ctypes
from ctypes import c_double, c_uint32, c_void_p

from microcrad._lib._codes import (
    BUILD_ASAN,
    BUILD_TSAN,
    BUILD_UBSAN,
    BUILD_VALGRIND,
    MAGIC_LIVE,
    OP_LEAF,
)
from microcrad._lib._errors import node_or_raise
from microcrad._lib._info import build_features
from microcrad._lib._loading import c


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
