"""The data or grad of many nodes read or written in one call (value_*_many)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from ctypes import c_double
from typing import Any, Callable

from microcrad._lib._arrays import checked_count, pointer_array
from microcrad._lib._errors import check_status
from microcrad._lib._loading import c


class BulkNodes:
    """A fixed list of nodes, for value_set_data_many and its readers.

    Borrows, like ``pointer_array``: the caller keeps the nodes alive while it uses
    this object.
    """

    __slots__ = ("_count", "_nodes", "_doubles")

    def __init__(self, nodes: Sequence[int]) -> None:
        self._count = checked_count(nodes)
        self._nodes = pointer_array(nodes)
        self._doubles = c_double * self._count

    def _buffer(self, numbers: Any, to_float: Callable[[Any], float]) -> ctypes.Array[c_double]:
        """``numbers`` as a C array of doubles; ``to_float`` converts (and checks) any
        item that is not already an int or float."""
        try:
            view = memoryview(numbers)
        except TypeError:
            view = None
        if view is not None and view.format == "d" and view.c_contiguous and view.ndim == 1:
            # A float64 buffer (array.array('d'), a NumPy float64 array, ...): one copy.
            length = len(view)  # ndim == 1: the number of doubles
            if length != self._count:
                raise ValueError(f"expected {self._count} numbers, got {length}")
            return self._doubles.from_buffer_copy(view)
        items: Sequence[Any] = view.tolist() if view is not None else list(numbers)
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
        check_status(c.value_set_data_many(self._count, self._nodes, data))

    def data(self) -> list[float]:
        """Every node's data, in one call."""
        out = self._doubles()
        check_status(c.value_get_data_many(self._count, self._nodes, out))
        return list(out)

    def grad(self) -> list[float]:
        """Every node's grad, in one call."""
        out = self._doubles()
        check_status(c.value_get_grad_many(self._count, self._nodes, out))
        return list(out)
