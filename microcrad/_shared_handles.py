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
from typing import TYPE_CHECKING, Callable

from microcrad import _lib

if TYPE_CHECKING:
    from microcrad.engine import Value


class SharedHandles:
    """The handle given out for each node, while that handle is alive.

    Args:
        adopt: wraps a node, whose reference it takes over, in a new handle.
    """

    def __init__(self, adopt: Callable[[int], Value]) -> None:
        self._adopt = adopt
        self._handles: weakref.WeakValueDictionary[int, Value] = weakref.WeakValueDictionary()

    def _live(self, node: int) -> Value | None:
        handle = self._handles.get(node)
        # A handle releases its node in __del__ and sets _ptr to None first, before the
        # weak reference to it is cleared: checking _ptr avoids handing out a dying one.
        if handle is not None and handle._ptr == node:
            return handle
        return None

    def handle_of(self, node: int) -> Value:
        """The handle of ``node`` to give out, made (with its own reference) if no live
        one exists."""
        handle = self._live(node)
        if handle is None:
            _lib.check_status(_lib.c.value_retain(node))
            handle = self._adopt(node)
            self._handles[node] = handle
        return handle

    def offer(self, value: Value) -> None:
        """Makes ``value`` the handle given out for its node, unless a live handle
        already has that role (two objects for one node would break code that keys
        nodes by ``id()``)."""
        node = value._ptr
        if self._live(node) is None:
            self._handles[node] = value
