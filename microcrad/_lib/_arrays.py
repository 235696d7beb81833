"""C arrays of node pointers (made only by ``pin``, which holds the Values that own
the nodes, or owning references of their own), and many nodes' data or grad read or
written in one call.

And the pending releases: the addresses of the nodes that dropped Values gave up,
given back to the library many at a time (see the last section).
"""

from __future__ import annotations

import array
import atexit
import ctypes
import gc
import os
import threading
from collections.abc import Iterable, Sequence
from ctypes import c_double, c_int, c_int32, c_void_p
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

# -----------------------------------------------------------------------------
# Releases in batches.
# -----------------------------------------------------------------------------

# The references of dropped Values, given back to the library
# many at a time (value_release_many) instead of one call per ``Value.__del__``.
#
# A call through ctypes costs more than everything else a Value's release does, so
# ``Value.__del__`` only appends its node's address to ``pending`` and, when ``pending``
# holds ``BOUND`` addresses, hands them all over in one call (``release_batch``). The
# nodes of a dropped Value therefore live on for a while, and every reader of what a
# release changes takes the pending releases first (``flush``), so that it sees exactly
# what it would see had each release been made at once:
#
# * ``live_values()`` and ``trim()`` here, ``ref_count`` in ``_nodes`` (and with it
#   ``draw_dot(show_refcount=True)``, the step-through and the labs);
# * every garbage collection, automatic or ``gc.collect()``, once it is over (a
#   ``gc.callbacks`` hook), so that dropping a Value and collecting frees its graph;
# * interpreter exit, after which ``Value.__del__`` releases at once (``microcrad.engine``
#   switches it), so that objects freed while Python shuts down do not leak.
# * before a node of more operands than ``BOUND`` is made (``Value.sum``, a neuron:
#   ``_nodes``), so that a loop making one such node a step, and dropping one Value a
#   step, does not keep up to ``BOUND`` of them waiting.
#
# Threads. ``pending`` is appended to without a lock (``array.append`` is atomic under
# the GIL). Taking its contents is done under ``_taking``, a re-entrant lock (a signal
# handler may run on the thread that holds it, see ``_take``) held only for a few
# operations that allocate no garbage-collected object and so run no Python code
# (no finalizer, no collection): a thread never waits on it for longer than those take,
# and it is never held while the library runs, so release callbacks (a custom op's
# Python function is dropped when its node is freed) may drop Values, and flush, on any
# thread. Each taken address is released exactly once, by the thread that took it;
# ``pending`` holds at most ``BOUND`` addresses plus one per thread that is between its
# append and its own ``release_batch``.
#
# A release that another thread has already taken may still be under way while
# ``flush`` returns (it runs Python callbacks, during which other threads run): as
# before batching, a count read while another thread frees a graph can include nodes
# about to be freed.

# How many dropped Values wait before their references go back in one call. Measured
# with callgrind (a loop of `c = a * b`, instructions per operation, the call's own
# cost included): 8,299 at 16, 7,974 at 64, 7,890 at 256, 7,957 at 1,024 and 8,008 at
# 4,096; one value_release per drop cost 9,178. Flat from 64 up, so the smallest
# flat point: what waits stays small (2 KB of addresses, and the graphs they hold; a
# loop of nodes of many operands does not leave them waiting, see above).
BOUND = 256


def _address_typecode() -> str:
    """The ``array`` type code whose items are exactly as large as a C pointer."""
    for code in ("L", "Q", "I"):
        if array.array(code).itemsize == ctypes.sizeof(c_void_p):
            return code
    raise ImportError("no array type code holds a C pointer on this platform")


# The addresses of nodes whose references dropped Values gave up, not yet given back.
pending: array.array[int] = array.array(_address_typecode())

# value_release_many with the array of nodes passed as the address of a buffer: the
# bytes of `pending`, copied out while `_taking` is held, travel without conversion.
_release_many: Callable[[int, bytes], int] = c["value_release_many"]
_release_many.restype = c_int  # type: ignore[attr-defined]
_release_many.argtypes = [c_int32, c_void_p]  # type: ignore[attr-defined]

_taking = threading.RLock()
# The thread holding `_taking` (threading.get_ident()), 0 when none: a signal handler
# that runs on that thread inside the few lines that hold it must not wait for it.
_taker = 0


def _take(batch: list[Any]) -> None:
    """Removes the addresses now in ``pending`` and puts their count and bytes in
    ``batch[0]`` and ``batch[1]`` (leaves ``batch`` as it is when none are pending).

    The batch goes into the caller's list before the lock is given back, not out as
    a return value: a signal handler may raise (KeyboardInterrupt) just after the
    release of the lock, and the caller must still have the batch in hand to release
    it (``release_batch``)."""
    global _taker
    me = threading.get_ident()
    while True:
        count = len(pending)
        if count == 0 or _taker == me:
            return
        # Made before the lock is taken: while it is held nothing is allocated that the
        # cyclic collector tracks, so no collection, finalizer or Python code can run on
        # this thread (a signal handler aside) and want the lock again.
        prefix = slice(count)
        taken = None
        # Re-entrant: a signal handler can run on this thread just after acquire()
        # returns, before _taker says so, and may count or drop Values; it must not
        # wait for this thread. (Where _taker is set it returns at once, above.)
        _taking.acquire()
        try:
            _taker = me
            if len(pending) >= count:  # else another thread took some first: again
                taken = pending.tobytes()  # bytes: not tracked by the collector
                del pending[prefix]
                batch[0] = count  # no call (so no signal handler) since the del
                batch[1] = taken
        finally:
            _taker = 0
            _taking.release()
        if taken is not None:
            return


def release_batch() -> None:
    """Gives back the references now pending, in one call (what ``Value.__del__`` calls
    when ``pending`` holds ``BOUND`` of them). Values dropped meanwhile, by release
    callbacks on this thread or by other threads, go to ``pending`` for the next batch.

    The status is not checked: every address in ``pending`` is one reference that a
    dropped Value owned, which rules out a bad pointer, and this runs from
    finalizers, where an exception could only be printed. An exception raised while
    the batch is taken (by a signal handler) still lets the batch go back.
    """
    batch: list[Any] = [0, b""]
    try:
        _take(batch)
    finally:
        if batch[0]:
            _release_many(batch[0], batch[1])


def flush() -> None:
    """Gives back every pending reference, those that the releases themselves add
    (callbacks dropping Values) included: afterwards the library's counts are exact."""
    while pending and _taker != threading.get_ident():
        release_batch()


def _flush_after_collection(phase: str, info: object, _flush: Callable[[], None] = flush) -> None:
    """``gc.callbacks`` hook: the Values a collection freed release their nodes."""
    if phase == "stop":
        _flush()


gc.callbacks.append(_flush_after_collection)
atexit.register(flush)


def _reset_after_fork() -> None:
    """In a child process: a fresh ``_taking``, as another thread of the parent may
    have held it at the fork (the child's pending releases are its own to make: it has
    its own copy of every node and of every Value)."""
    global _taking, _taker
    _taking = threading.RLock()
    _taker = 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def live_values() -> int:
    """How many nodes the C library has allocated and not yet freed, in this process.

    A graph is freed as soon as nothing refers to its root, so after the Python
    objects of a computation are gone (and ``gc.collect()`` has run, if they were part
    of reference cycles) this returns to its earlier value. The releases of dropped
    Values, which wait to be made in batches, are made first, so the count is exact.
    """
    flush()
    count: int = c.microcrad_live_values()
    return count


def trim() -> int:
    """Returns idle node-pool memory to the system; the number of bytes given back.

    Makes the pending releases of dropped Values first. Then frees every pool chunk
    that holds no live node among the calling thread's chunks (after taking back the
    nodes other threads released into them) and those of threads that have exited.
    Useful after dropping a large graph in a long-running process. In builds and
    processes where nodes come from plain malloc (sanitizers, Valgrind) it returns 0.
    """
    flush()
    released: int = c.microcrad_trim()
    return released
