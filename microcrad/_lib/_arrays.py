"""C arrays of node pointers, for the calls that take many nodes at once.

A node's address is only valid while something holds a reference to the node, and in
Python what holds it is the ``Value`` object that owns it. An array of bare addresses,
collected from Values that are then dropped (a generator's items, ``map`` results,
temporaries of a comprehension), points at freed nodes by the time C reads it. So no
address list is ever built by hand: ``pin`` is the one way to turn Values into a C
array, and the resulting ``PinnedNodes`` holds the Values themselves for as long as it
lives. Every function of ``_lib`` that hands many nodes to C takes a ``PinnedNodes``,
so the caller cannot forget: passing it as an argument keeps it (and every Value in
it) alive until the C call returns.

``NodeArray`` goes further and owns a reference of its own to each node, for arrays
handed to C call after call (a neuron's weights and bias).

None of these objects can be copied or pickled: a copy would either share the C memory
or hold addresses without the references that make them valid.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Sequence
from ctypes import c_void_p
from typing import Any, Callable, NoReturn, Optional

from microcrad._lib._errors import check_status
from microcrad._lib._loading import c

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
    value_type: type,
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
    values = list(items)
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
