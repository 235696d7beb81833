"""The data or grad of many nodes read or written in one call (value_*_many)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from ctypes import c_double
from typing import Any, Callable

from microcrad._lib._arrays import PinnedNodes, Uncopyable
from microcrad._lib._custom_ops import graph_lock
from microcrad._lib._errors import check_status
from microcrad._lib._loading import c


class BulkNodes(Uncopyable):
    """A fixed list of nodes, for value_set_data_many and its readers.

    Holds the ``PinnedNodes`` it is made from, so its nodes stay alive while it does.
    """

    __slots__ = ("_count", "_pinned", "_doubles")
    _copy_advice = "make a new one from the Values"

    def __init__(self, pinned: PinnedNodes) -> None:
        self._count = pinned.count
        self._pinned = pinned
        self._doubles = c_double * self._count

    def _buffer(self, numbers: Any, to_float: Callable[[Any], float]) -> ctypes.Array[c_double]:
        """``numbers`` as a C array of doubles; ``to_float`` converts (and checks) any
        item that is not already an int or float."""
        if isinstance(numbers, (str, bytes, bytearray)):
            # Their buffers are characters, not numbers: b"ab" is not [97.0, 98.0].
            raise TypeError(f"expected a sequence of numbers, not {type(numbers).__name__!r}")
        try:
            view = memoryview(numbers)
        except TypeError:
            view = None
        if view is not None:
            if view.ndim != 1:
                shape = "a 0-d array" if view.ndim == 0 else f"a {view.ndim}-d array"
                raise (TypeError if view.ndim == 0 else ValueError)(
                    f"expected a flat sequence of {self._count} numbers, got {shape}"
                )
            if view.format == "d" and view.c_contiguous:
                # A native float64 buffer (array.array('d'), a NumPy float64 array...):
                # one copy.
                if len(view) != self._count:
                    raise ValueError(f"expected {self._count} numbers, got {len(view)}")
                return self._doubles.from_buffer_copy(view)
        items: Sequence[Any]
        try:
            items = view.tolist() if view is not None else list(numbers)
        except NotImplementedError:
            # A format memoryview cannot unpack (a NumPy complex or big-endian array...):
            # the items as the object itself gives them, each converted by to_float,
            # which takes a big-endian float and rejects a complex number.
            items = list(numbers)
            if len(items) != self._count:
                raise ValueError(f"expected {self._count} numbers, got {len(items)}") from None
            return self._doubles(*(to_float(item) for item in items))
        if len(items) != self._count:
            raise ValueError(f"expected {self._count} numbers, got {len(items)}")
        try:
            return self._doubles(*items)
        except TypeError:
            # Not all ints and floats: convert one by one, which names the first item
            # that is not a number.
            return self._doubles(*(to_float(item) for item in items))

    def set_data(self, numbers: Any, to_float: Callable[[Any], float]) -> None:
        """Sets node i's data to ``numbers[i]`` for every i, in one call."""
        data = self._buffer(numbers, to_float)
        pinned = self._pinned
        with graph_lock:  # takes turns with walks (see _custom_ops.graph_lock)
            status = c.value_set_data_many(self._count, pinned.array, data)
        check_status(status)

    def data(self) -> list[float]:
        """Every node's data, in one call."""
        out = self._doubles()
        check_status(c.value_get_data_many(self._count, self._pinned.array, out))
        return list(out)

    def grad(self) -> list[float]:
        """Every node's grad, in one call."""
        out = self._doubles()
        check_status(c.value_get_grad_many(self._count, self._pinned.array, out))
        return list(out)
