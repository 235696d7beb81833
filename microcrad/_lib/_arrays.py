"""C arrays of node pointers (made only by ``pin``, which holds the Values that own
the nodes, or owning references of their own), and many nodes' data or grad read or
written in one call."""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Sequence
from ctypes import c_double, c_void_p
from typing import Any, Callable, NoReturn, Optional

from microcrad._lib._errors import check_status
from microcrad._lib._loading import c, graph_lock



# -----------------------------------------------------------------------------
# C arrays of node pointers, for the calls that take many nodes at once.
# -----------------------------------------------------------------------------

# C takes counts of nodes as int32_t.
_MAX_COUNT = 2**31 - 1


def checked_count(nodes: Sequence[Any]) -> int:
    """``len(nodes)``, which C receives as an int32_t; ValueError if it does not fit."""
    if len(nodes) > _MAX_COUNT:
        raise ValueError(f"too many operands for one node: {len(nodes)}")
    return len(nodes)


class Uncopyable:
    """Copying, deep-copying and pickling raise a TypeError that names the class.

    For the objects of this package that hold C memory or node addresses, where a copy
    that shared them would free them twice or outlive them. ``_copy_advice`` says what
    to do instead.
    """

    __slots__ = ()
    _copy_advice = "make a new one"

    def _refuse(self, what: str) -> NoReturn:
        raise TypeError(
            f"cannot {what} a microcrad {type(self).__name__}: it holds memory of the C "
            f"library; {self._copy_advice}"
        )

    def __copy__(self) -> NoReturn:
        self._refuse("copy")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        self._refuse("deep-copy")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        self._refuse("pickle")

    def __reduce__(self) -> NoReturn:
        self._refuse("pickle")


class PinnedNodes(Uncopyable):
    """The nodes of some Values as a C array, with the Values held alongside.

    Made by ``pin``. ``values`` are the Value objects (numbers already turned into
    leaf Values), ``nodes`` their addresses, ``array`` the C array of those addresses
    (None, which C reads as NULL, when there are none) and ``count`` their number. The
    addresses stay valid for as long as this object lives, because it holds the Values
    that own the nodes.
    """

    __slots__ = ("values", "nodes", "array", "count")
    _copy_advice = "pin the Values again"

    def __init__(self, values: list[Any], nodes: list[int]) -> None:
        self.values = values
        self.nodes = nodes
        self.count = checked_count(nodes)
        self.array: Optional[ctypes.Array[c_void_p]] = (
            (c_void_p * self.count)(*nodes) if self.count else None
        )

    def __len__(self) -> int:
        return self.count


def pin(
    items: Iterable[Any],
    value_type: type[Any],
    to_value: Callable[[Any], Any] | None = None,
    reject: Callable[[Any], Exception] | None = None,
) -> PinnedNodes:
    """``items`` (any iterable: a list, a generator, a ``map``...) as a ``PinnedNodes``.

    Every item must be a ``value_type`` (``Value``). With ``to_value``, any other item
    is passed to it and may come back as a new Value (a number made a leaf), which the
    result holds like the others; ``to_value`` returns None for what it does not take.

    Raises:
        TypeError: an item is neither a Value nor taken by ``to_value`` (the exception
            is ``reject(item)`` when given).
        ValueError: there are more items than an int32_t counts.
    """
    values: list[Any] = list(items)
    # The common case in one pass: every item is exactly a Value.
    nodes = [value._ptr for value in values if type(value) is value_type]
    if len(nodes) != len(values):
        values, nodes = _converted(values, value_type, to_value, reject)
    # A released Value's _ptr is None, which becomes NULL in the array: the C call
    # rejects it, and the NULL status is raised as ReleasedValueError.
    return PinnedNodes(values, nodes)


def _converted(
    items: list[Any],
    value_type: type,
    to_value: Callable[[Any], Any] | None,
    reject: Callable[[Any], Exception] | None,
) -> tuple[list[Any], list[int]]:
    """``pin``'s Values and nodes when not every item is exactly a ``value_type``: a
    subclass's instances are taken as they are, anything else goes through
    ``to_value`` (or is rejected)."""
    values: list[Any] = []
    for item in items:
        if not isinstance(item, value_type):
            converted = to_value(item) if to_value is not None else None
            if converted is None:
                if reject is not None:
                    raise reject(item)
                raise TypeError(f"expected a {value_type.__name__}, got {type(item).__name__!r}")
            item = converted
        values.append(item)
    return values, [value._ptr for value in values]


def pin_nodes(nodes: Sequence[int], keep_alive: object) -> PinnedNodes:
    """Nodes whose references the caller manages itself, as a ``PinnedNodes``.

    For code below the Value layer (tests that count references by hand): the result
    holds ``keep_alive``, which must be what keeps every node alive.
    """
    return PinnedNodes([keep_alive], list(nodes))


class NodeArray(Uncopyable):
    """A C array of node pointers that owns one reference to each node.

    For nodes handed to C again and again, such as a neuron's weights and bias: the
    array is built once, and its own references keep every pointer in it valid for as
    long as the array lives, whatever happens to the Values the nodes came from.
    """

    __slots__ = ("array", "nodes")
    _copy_advice = "make a new one from the Values"

    def __init__(self, pinned: PinnedNodes) -> None:
        nodes = tuple(pinned.nodes)
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
        self.array: ctypes.Array[c_void_p] = (c_void_p * len(nodes))(*nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __del__(self, _release: Any = c.value_release) -> None:
        # _release is bound early: at interpreter shutdown the module globals may be gone.
        nodes = getattr(self, "nodes", ())
        self.nodes = ()
        for node in nodes:
            _release(node)


# -----------------------------------------------------------------------------
# The data or grad of many nodes read or written in one call (value_*_many).
# -----------------------------------------------------------------------------

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
        with graph_lock:  # takes turns with walks (see _loading.graph_lock)
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
