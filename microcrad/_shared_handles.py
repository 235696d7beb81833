"""One Python object per node, for the handles that ``Value._prev`` gives out.

micrograd's graph-walking code (``draw_dot``, topological sorts) keys nodes by
``id()``, so walking the graph must meet the same object for a node every time, while
that object is alive. A weak dictionary remembers the handle given out for each node.

Only handles that someone is likely to hold on to are entered (those made by
``Value(...)``, by ``_prev``, by copying, or given a label), never the result of every
operation: that would cost a weak reference per operation on the hot path.
"""

from __future__ import annotations

import weakref
from typing import Callable, Generic, Protocol, TypeVar

from microcrad import _lib


class Handle(Protocol):
    """What this module needs of a handle: the address of its node (None once the
    handle has given its reference back)."""

    _ptr: int


# The type of the handles (microcrad.engine's Value), a parameter so that this module
# need not import the engine, which imports it.
H = TypeVar("H", bound=Handle)


class SharedHandles(Generic[H]):
    """The handle given out for each node, while that handle is alive.

    Args:
        adopt: wraps a node, whose reference it takes over, in a new handle.
    """

    def __init__(self, adopt: Callable[[int], H]) -> None:
        self._adopt = adopt
        self._handles: weakref.WeakValueDictionary[int, H] = weakref.WeakValueDictionary()

    def _live(self, node: int) -> H | None:
        handle = self._handles.get(node)
        # A handle releases its node in __del__ and sets _ptr to None first, before the
        # weak reference to it is cleared: checking _ptr avoids handing out a dying one.
        if handle is not None and handle._ptr == node:
            return handle
        return None

    def handle_of(self, node: int) -> H:
        """The handle of ``node`` to give out, made (with its own reference) if no live
        one exists."""
        handle = self._live(node)
        if handle is None:
            _lib.retain(node)
            handle = self._adopt(node)
            self._handles[node] = handle
        return handle

    def offer(self, value: H) -> None:
        """Makes ``value`` the handle given out for its node, unless a live handle
        already has that role (two objects for one node would break code that keys
        nodes by ``id()``)."""
        node = value._ptr
        if self._live(node) is None:
            self._handles[node] = value
