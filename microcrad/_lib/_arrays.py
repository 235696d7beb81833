"""C arrays of node pointers, for the calls that take many nodes at once.

``pointer_array`` borrows: the caller keeps the nodes alive while C reads the array
(typically for the duration of one call). ``NodeArray`` owns a reference to each of
its nodes, for arrays handed to C call after call (a neuron's weights and bias).
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from ctypes import c_void_p
from typing import Any

from microcrad._lib._errors import check_status
from microcrad._lib._loading import c

# C takes counts of nodes as int32_t.
_MAX_COUNT = 2**31 - 1


def checked_count(nodes: Sequence[int]) -> int:
    """``len(nodes)``, which C receives as an int32_t; ValueError if it does not fit."""
    if len(nodes) > _MAX_COUNT:
        raise ValueError(f"too many operands for one node: {len(nodes)}")
    return len(nodes)


def pointer_array(nodes: Sequence[int]) -> ctypes.Array[c_void_p]:
    """A C array of ``nodes`` that holds no references: the caller keeps the nodes alive
    for as long as it uses the array (typically for the duration of one call)."""
    return (c_void_p * len(nodes))(*nodes)


def counted_pointer_array(nodes: Sequence[int]) -> tuple[int, ctypes.Array[c_void_p] | None]:
    """``(count, array)`` for the C calls that take a count and an array of nodes: the
    array borrows, as ``pointer_array``'s does, and is None (NULL) when there are no
    nodes.

    Raises:
        ValueError: there are more nodes than an int32_t counts.
    """
    n = checked_count(nodes)
    return n, pointer_array(nodes) if n else None


class NodeArray:
    """A C array of node pointers that owns one reference to each node.

    For nodes handed to C again and again, such as a neuron's weights and bias: the
    array is built once, and its own references keep every pointer in it valid for as
    long as the array lives, whatever happens to the Values the nodes came from.
    """

    __slots__ = ("array", "nodes")

    def __init__(self, nodes: Sequence[int]) -> None:
        nodes = tuple(nodes)
        checked_count(nodes)
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
        self.array: ctypes.Array[c_void_p] = pointer_array(nodes)

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
