"""Labels, op texts and custom ops: the C side records of a node, from Python.

A custom op's backward function is a Python callable. The C library calls it through
one ctypes trampoline, ``_run``, with the node's address as the callback's context;
the callable itself waits in ``_functions`` under that address. When the node is
freed (or its callback replaced) the library calls ``_release``, which drops the entry
and so the callable: a closure lives exactly as long as its node.

An exception raised by the callable cannot cross C frames. The trampoline keeps it
(per thread), reports a failure, the library stops the backward pass and returns
MICROCRAD_ERR_CALLBACK, and ``check_backward`` raises the kept exception itself.
"""

from __future__ import annotations

import atexit
import ctypes
import threading
import weakref
from collections.abc import Iterable
from ctypes import c_int, c_void_p
from typing import Any, Callable, Optional

from microcrad._lib._codes import ERR_CALLBACK
from microcrad._lib._errors import check_status, last_error_message
from microcrad._lib._loading import c

# One lock, re-entrant, around every Python call that walks or writes a graph
# (backward, zero_grad, a node's _backward step, a tape's replay, an optimizer's step,
# bulk writes). The GIL alone does not make such calls take turns once a custom op's
# Python function runs inside a walk: the function may let the GIL go (I/O, a sleep,
# or just the interpreter's switch interval), and another thread's walk over the same
# nodes would then meet the first walk's marks and corrupt both. Re-entrant so that a
# callback may still read and write data and grads, set a _backward or use a tape;
# starting another walk from inside a callback is refused by the library itself.
graph_lock = threading.RLock()

# A node's backward function (None after `del v._backward`), and weak references to
# every borrowed handle (see _backward_functions) handed out for the node, in this
# function or an earlier one: they all point at the node until it is freed.
Entry = tuple[Optional[Callable[[], object]], list["weakref.ref[Any]"]]

# The entry of every node that has had a backward function set from Python, by node
# address. The C callback stays registered for the node's whole life once set, so
# that its release (the node being freed) is always reported.
_functions: dict[int, Entry] = {}

# The node whose callback set_backward is replacing: the library releases the old
# one, which must not drop the entry (it is the node's, not the old function's).
_replacing: int | None = None

# The exception raised by a callback, until check_backward raises it.
_pending = threading.local()


def _run(node: int, context: int) -> int:
    """The C callback (microcrad_backward_fn): calls the function of node `context`."""
    try:
        entry = _functions.get(context)
        function = None if entry is None else entry[0]
        if function is not None:
            function()
    except BaseException as error:  # KeyboardInterrupt included: it is raised again
        _pending.error = error
        return 1
    return 0


def _release(context: int, _functions: dict[int, Entry] = _functions) -> None:
    """The C release function: the node is freed (or its callback replaced, which
    set_backward handles); forgets its function and invalidates the borrowed handles
    of it (bound as a default argument, so that it works while the interpreter shuts
    down)."""
    if context == _replacing:
        return
    entry = _functions.pop(context, None)
    if entry is not None:
        for reference in entry[1]:
            handle = reference()
            if handle is not None:
                handle._Value__node = None  # see engine.Value


_BACKWARD_FN = ctypes.CFUNCTYPE(c_int, c_void_p, c_void_p)
_RELEASE_FN = ctypes.CFUNCTYPE(None, c_void_p)
_run_thunk = _BACKWARD_FN(_run)
_release_thunk = _RELEASE_FN(_release)
# Nodes may be freed at any time until the interpreter is gone, module teardown
# included, and each free of a custom op calls the release thunk: the two thunks must
# never be freed. One extra reference each, never given back, makes them immortal.
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_run_thunk))
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_release_thunk))
_RUN_ADDRESS = ctypes.cast(_run_thunk, c_void_p).value
_RELEASE_ADDRESS = ctypes.cast(_release_thunk, c_void_p).value


def _drop_functions_at_exit() -> None:
    """Takes every backward function off its node when the interpreter exits.

    The immortal thunks keep ``_functions`` alive, and with it every function's
    globals (a script's ``__main__`` dictionary, say), which Python's shutdown would
    then never clear: the script's graphs would never be freed, and a leak checker
    would report them. Dropping the functions first lets shutdown free everything.
    A node freed on the way drops its entry, so each entry still present is a live node.
    """
    for node in list(_functions):
        if node in _functions:
            c.value_set_backward(node, None, None, None)


atexit.register(_drop_functions_at_exit)


def set_backward(node: int, function: Callable[[], object], borrowed: Iterable[Any] = ()) -> None:
    """Makes ``function`` the backward step of ``node`` (a node with operands, made by
    value_create). ``borrowed`` are the borrowed handles of the node made for it: they
    point at the node until it is freed, even after ``function`` is replaced (code may
    have kept the old function, to wrap it, or be running it).

    Raises:
        ValueError: the node is a leaf or a built-in op.
    """
    global _replacing
    with graph_lock:
        old = _functions.get(node)
        references = [] if old is None else [r for r in old[1] if r() is not None]
        references.extend(weakref.ref(handle) for handle in borrowed)
        # Stored before the library can call it: a walk (on this thread, from inside
        # a callback) must find the new function.
        _functions[node] = (function, references)
        _replacing = node
        try:
            status = c.value_set_backward(node, _RUN_ADDRESS, node, _RELEASE_ADDRESS)
        finally:
            _replacing = None
        if status < 0:
            if old is None:
                del _functions[node]
            else:
                _functions[node] = old
            check_status(status)


def remove_backward(node: int) -> None:
    """Takes the backward function off ``node`` (a no-op when it has none): the node
    then passes no gradient on, as a custom op without a function."""
    with graph_lock:
        entry = _functions.get(node)
        if entry is not None:
            # The callback stays registered (doing nothing), so the node's borrowed
            # handles are still invalidated when it is freed.
            _functions[node] = (None, entry[1])


def backward_function(node: int) -> Callable[[], object] | None:
    """The Python backward function of ``node``, or None."""
    entry = _functions.get(node)
    return entry[0] if entry is not None else None


def has_python_backward(node: int) -> bool:
    """Whether ``node`` has a backward function set from Python."""
    return _functions.get(node, (None,))[0] is not None


def check_backward(status: int) -> None:
    """Checks the status of a call that ran backward callbacks: raises the exception a
    Python callback raised, as itself, or the exception for any other failure."""
    if status >= 0:
        return
    error: BaseException | None = getattr(_pending, "error", None)
    _pending.error = None
    if status == ERR_CALLBACK and error is not None:
        try:
            raise error
        finally:
            del error  # no reference cycle through this frame
    check_status(status)


def backward(node: int) -> None:
    """value_backward on ``node``."""
    with graph_lock:
        status = c.value_backward(node)
    if status < 0:
        check_backward(status)


def backward_step(node: int) -> None:
    """value_backward_step on ``node``: the node's own chain rule, once."""
    with graph_lock:
        status = c.value_backward_step(node)
    if status < 0:
        check_backward(status)


def _encode(text: str) -> bytes:
    data = text.encode("utf-8")
    if b"\0" in data:
        raise ValueError("the text contains a NUL character")
    return data


def set_label(node: int, label: str) -> None:
    """Sets the label of ``node`` ("" removes it)."""
    check_status(c.value_set_label(node, _encode(label)))


def label_of(node: int) -> str:
    """The label of ``node`` ("" for none)."""
    label: bytes | None = c.value_label(node)
    if label is None:
        check_status(c.microcrad_last_status())
        raise ValueError(last_error_message())
    return label.decode("utf-8")


def set_op_text(node: int, text: str | None) -> None:
    """Sets the op text of ``node`` (None removes it)."""
    check_status(c.value_set_op_text(node, None if text is None else _encode(text)))


def op_text_of(node: int) -> str | None:
    """The op text given to ``node``, or None (the node shows its op's symbol)."""
    text: bytes | None = c.value_op_text(node)
    return None if text is None else text.decode("utf-8")
