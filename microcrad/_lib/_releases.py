"""Releases in batches: the references of dropped Values, given back to the library
many at a time (value_release_many) instead of one call per ``Value.__del__``.

A call through ctypes costs more than everything else a Value's release does, so
``Value.__del__`` only appends its node's address to ``pending`` and, when ``pending``
holds ``BOUND`` addresses, hands them all over in one call (``release_batch``). The
nodes of a dropped Value therefore live on for a while, and every reader of what a
release changes takes the pending releases first (``flush``), so that it sees exactly
what it would see had each release been made at once:

* ``live_values()`` and ``trim()`` here, ``ref_count`` in ``_nodes`` (and with it
  ``draw_dot(show_refcount=True)``, the step-through and the labs);
* every garbage collection, automatic or ``gc.collect()``, once it is over (a
  ``gc.callbacks`` hook), so that dropping a Value and collecting frees its graph;
* interpreter exit, after which ``Value.__del__`` releases at once (``microcrad.engine``
  switches it), so that objects freed while Python shuts down do not leak.

Threads. ``pending`` is appended to without a lock (``array.append`` is atomic under
the GIL). Taking its contents is done under ``_taking``, a lock held only for a few
operations that allocate no garbage-collected object and so run no Python code
(no finalizer, no collection): a thread never waits on it for longer than those take,
and it is never held while the library runs, so release callbacks (a custom op's
Python function is dropped when its node is freed) may drop Values, and flush, on any
thread. Each taken address is released exactly once, by the thread that took it;
``pending`` holds at most ``BOUND`` addresses plus one per thread that is between its
append and its own ``release_batch``.

A release that another thread has already taken may still be under way while
``flush`` returns (it runs Python callbacks, during which other threads run): as
before batching, a count read while another thread frees a graph can include nodes
about to be freed.
"""

from __future__ import annotations

import array
import atexit
import ctypes
import gc
import os
import threading
from ctypes import c_int, c_int32, c_void_p
from typing import Callable

from microcrad._lib._loading import c

# How many dropped Values wait before their references go back in one call. Measured
# with callgrind (a loop of `c = a * b`, instructions per operation, the call's own
# cost included): 8,299 at 16, 7,974 at 64, 7,890 at 256, 7,957 at 1,024 and 8,008 at
# 4,096; one value_release per drop cost 9,178. Flat from 64 up, so the smallest
# flat point: what waits stays small (2 KB of addresses, and the graphs they hold).
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

_taking = threading.Lock()
# The thread holding `_taking` (threading.get_ident()), 0 when none: a signal handler
# that runs on that thread inside the few lines that hold it must not wait for it.
_taker = 0


def _take() -> tuple[int, bytes]:
    """Removes the addresses now in ``pending`` and returns their count and bytes (0 and
    nothing when none are pending)."""
    global _taker
    me = threading.get_ident()
    while True:
        count = len(pending)
        if count == 0 or _taker == me:
            return 0, b""
        # Made before the lock is taken: while it is held nothing is allocated that the
        # cyclic collector tracks, so no collection, finalizer or Python code can run on
        # this thread (a signal handler aside) and want the lock again.
        prefix = slice(count)
        taken = None
        _taking.acquire()
        try:
            _taker = me
            if len(pending) >= count:  # else another thread took some first: again
                taken = pending.tobytes()  # bytes: not tracked by the collector
                del pending[prefix]
        finally:
            _taker = 0
            _taking.release()
        if taken is not None:
            return count, taken


def release_batch() -> None:
    """Gives back the references now pending, in one call (what ``Value.__del__`` calls
    when ``pending`` holds ``BOUND`` of them). Values dropped meanwhile, by release
    callbacks on this thread or by other threads, go to ``pending`` for the next batch.

    The status is not checked: every address in ``pending`` is one reference that a
    dropped Value owned, which rules out a bad pointer, and this runs from
    finalizers, where an exception could only be printed.
    """
    count, taken = _take()
    if count:
        _release_many(count, taken)


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
    _taking = threading.Lock()
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
